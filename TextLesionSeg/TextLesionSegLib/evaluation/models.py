"""Load a model for evaluation or benchmarking: a registry name, or a weights folder of a run."""

from __future__ import annotations

from typing import Any


def load_model(spec: str, device: str = "cpu") -> Any:
    """A :class:`~TextLesionSegLib.models.base.LesionSegmenter` from a registry name or a folder
    (e.g. ``RUN/best`` of ``textlesionseg train``, loaded unregistered so a run can be evaluated
    before it is published: :func:`models.registry.load_segmenter`)."""
    from ..models import registry

    return registry.load_segmenter(spec, device)
