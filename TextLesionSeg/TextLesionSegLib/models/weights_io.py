"""The one save/load of every model: ``model.safetensors`` + ``config.json`` in one folder, never pickle.

A network class mixes in :class:`DictConfigWeights` and says how its configuration becomes the
JSON of ``config.json`` (:meth:`~DictConfigWeights.config_dict`) and back into a network
(:meth:`~DictConfigWeights.from_config_dict`); the default is a plain dict kept in
``self.config`` and a class built as ``cls(config)``. Checking the files, refusing a config the
network cannot take or weights that do not fit it (``ModelError`` naming the fix), strict
loading, the device and ``eval()`` are done here once. A network whose files another library
writes (CLIPSeg: ``transformers``) overrides :meth:`~DictConfigWeights.write_files` and
:meth:`~DictConfigWeights.read_files` only. [chosen] Not ``huggingface_hub``'s
``PyTorchModelHubMixin``: it writes ``config.json`` with sorted keys and builds models from
keyword arguments, which would change the shipped folders' format, and falls back to
``pytorch_model.bin``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

from ..errors import ModelError
from .base import LesionSegmenter, PreprocessingConfig
from .registry_weights import CONFIG_FILE, WEIGHTS_FILE

M = TypeVar("M", bound="DictConfigWeights")


class DictConfigWeights:
    """``save_pretrained`` / ``from_pretrained`` for an ``nn.Module`` (see the module docstring)."""

    config: Any
    #: the training command named when a folder lacks its files
    train_hint: ClassVar[str] = "textlesionseg train"
    #: safetensors header metadata written with the weights (each model's as it first shipped)
    weights_metadata: ClassVar["dict[str, str] | None"] = None

    # ---- what a model may override ---------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The JSON object written to ``config.json`` (default: ``self.config``)."""
        return self.config

    @classmethod
    def from_config_dict(cls: type[M], data: dict[str, Any]) -> M:
        """A fresh network from ``config.json``'s object; ``ValueError``/``TypeError``/``KeyError``
        when it is not this model's configuration (default: ``cls(data)``)."""
        return cls(data)  # type: ignore[call-arg]

    def write_files(self, folder: Path) -> None:
        """Write the weights and the configuration into the existing ``folder``."""
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        save_file(state, str(folder / WEIGHTS_FILE), metadata=self.weights_metadata)
        (folder / CONFIG_FILE).write_text(json.dumps(self.config_dict(), indent=2), encoding="utf-8")

    @classmethod
    def read_files(cls: type[M], folder: Path) -> M:
        """The network :meth:`write_files` wrote into ``folder`` (on the CPU)."""
        from safetensors.torch import load_file

        config_path, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        try:
            data = json.loads(config_path.read_text(encoding="utf-8"))
            model = cls.from_config_dict(data)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"{config_path} is not a valid {cls.__name__} config: {exc}") from exc
        try:
            state = load_file(str(weights), device="cpu")
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise ModelError(f"cannot read the weights {weights}: {exc}") from exc
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)  # type: ignore[attr-defined]
        except RuntimeError as exc:  # a shape differs: the line after "Error(s) in loading ..." names it
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise ModelError(f"weights {weights} do not match its config.json: {lines[min(1, len(lines) - 1)]}") from exc
        if missing or unexpected:
            raise ModelError(f"weights {weights} do not match its config.json (missing {list(missing)[:3]}, "
                             f"unexpected {list(unexpected)[:3]})")
        return model

    # ---- the contract ---------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created); return it."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.write_files(out)
        return out

    @classmethod
    def from_pretrained(cls: type[M], directory: str | Path, device: str = "cpu") -> M:
        """Load a model written by :meth:`save_pretrained` (strict: weights must fit the config)."""
        d = Path(directory)
        if not (d / CONFIG_FILE).is_file() or not (d / WEIGHTS_FILE).is_file():
            raise ModelError(f"{d} lacks {CONFIG_FILE} or {WEIGHTS_FILE} (weights not found); "
                             f"train with '{cls.train_hint}'")
        return cls.read_files(d).to(device).eval()  # type: ignore[attr-defined]


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
