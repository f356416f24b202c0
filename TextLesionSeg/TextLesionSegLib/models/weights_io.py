"""Save and load for models whose configuration is a plain dict: ``model.safetensors`` +
``config.json`` in one folder, never pickle (the image-only UNet, the click model).

A start on the one save/load contract of issue 20: a class mixes in :class:`DictConfigWeights`,
keeps its configuration in ``self.config`` and is built by ``cls(config)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, TypeVar

from ..errors import ModelError
from .base import LesionSegmenter, PreprocessingConfig

M = TypeVar("M", bound="DictConfigWeights")


class DictConfigWeights:
    """``save_pretrained`` / ``from_pretrained`` for an ``nn.Module`` built as ``cls(config_dict)``."""

    config: dict[str, Any]
    #: the training command named when a folder lacks its files
    train_hint: str = "textlesionseg train"

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        save_file(state, str(out / "model.safetensors"))
        (out / "config.json").write_text(json.dumps(self.config, indent=2), encoding="utf-8")

    @classmethod
    def from_pretrained(cls: type[M], directory: str | Path, device: str = "cpu") -> M:
        """Load a model written by :meth:`save_pretrained` (strict: weights must fit the config)."""
        from safetensors.torch import load_file

        d = Path(directory)
        if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
            raise ModelError(f"{d} lacks config.json or model.safetensors; train with '{cls.train_hint}'")
        model = cls(json.loads((d / "config.json").read_text(encoding="utf-8")))  # type: ignore[call-arg]
        try:
            model.load_state_dict(load_file(str(d / "model.safetensors"), device="cpu"))  # type: ignore[attr-defined]
        except RuntimeError as exc:
            raise ModelError(f"weights in {d} do not match its config.json: {str(exc).splitlines()[0]}") from exc
        return model.to(device).eval()  # type: ignore[attr-defined]


class DictConfigSegmenter(LesionSegmenter):
    """The pipeline's view of one :class:`DictConfigWeights` network: built around it, or loaded
    from a registry weights folder. A subclass names its ``network_class`` and how its config
    becomes a working grid (``preprocessing_for``)."""

    network_class: type[DictConfigWeights]
    preprocessing_for: Callable[[dict[str, Any]], PreprocessingConfig]

    def __init__(self, model: Any, device: str = "cpu", name: str | None = None, version: str = "0") -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.name = name or type(self).name
        self.version = version
        self.preprocessing = type(self).preprocessing_for(model.config)

    @classmethod
    def from_pretrained(cls, weights_dir: Path, device: str = "cpu") -> "DictConfigSegmenter":
        """Load from a registry weights folder (``model.safetensors`` + ``config.json``)."""
        d = Path(weights_dir)
        return cls(cls.network_class.from_pretrained(d, device), device, name=d.name)
