"""Load a model for evaluation or benchmarking: a registry name, or a weights folder of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ModelError


def architecture_of(weights_dir: Path) -> str:
    """Architecture named in a weights folder's ``config.json`` (our key, or CLIPSeg's ``model_type``)."""
    try:
        cfg = json.loads((weights_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{weights_dir}: no readable config.json ({exc})") from exc
    arch = cfg.get("architecture") or (cfg.get("textlesionseg") or {}).get("architecture") or cfg.get("model_type")
    if not arch:
        raise ModelError(f"{weights_dir}/config.json names no architecture")
    return str(arch)


def load_model(spec: str, device: str = "cpu") -> Any:
    """A :class:`~TextLesionSegLib.models.base.LesionSegmenter` from a registry name or a folder.

    A folder (e.g. ``RUN/best`` of ``textlesionseg train``) is loaded with the class the registry
    maps its architecture to, so unregistered runs can be evaluated before they are published.
    """
    from ..models import registry

    path = Path(spec)
    if path.is_dir():
        cls = registry.default_registry().segmenter_class(architecture_of(path))
        model = cls.from_pretrained(path, registry.resolve_device(device))
        if getattr(model, "name", "") in ("", "best", "last", "weights"):
            model.name = f"{path.parent.name}-{path.name}" if path.name in ("best", "last", "weights") else path.name
        return model
    return registry.load_segmenter(spec, device)
