"""The click model behind the pipeline's seam: one lesion from clicks on the working grid.

It cannot read (``capabilities = {"clicks"}``): ``pipeline.clicks`` calls :meth:`refine` with the
clicks mapped onto the working grid and, when correcting, the current mask as the prior.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ...errors import ModelError
from ...training.clicks import Click
from ..base import InferenceSettings, ProgressCallback
from ..weights_io import DictConfigSegmenter
from . import SPEC
from .model import InteractiveNet
from .training import preprocessing_of


def region_box(shape: Sequence[int], size: Sequence[int], centre: Sequence[float]) -> list[tuple[int, int]]:
    """KJI (start, stop) of a ``size`` box centred on ``centre`` and moved inside ``shape``
    (shorter where the volume is smaller than the box)."""
    box = []
    for s, r, c in zip(shape, size, centre):
        start = int(np.clip(int(round(c)) - r // 2, 0, max(0, s - r)))
        box.append((start, min(s, start + r)))
    return box


class InteractiveSegmenter(DictConfigSegmenter):
    """Segment or correct one lesion from positive and negative clicks (no text)."""

    name = "interactive"
    capabilities = SPEC.capabilities

    network_class = InteractiveNet
    preprocessing_for = staticmethod(preprocessing_of)

    def predict(self, volume: torch.Tensor, queries: Sequence[Any], settings: InferenceSettings,
                progress: ProgressCallback | None = None) -> torch.Tensor:
        """Not available: this model needs clicks, not words."""
        raise ModelError(f"model '{self.name}' segments from clicks only: give --include-point R,A,S "
                         "(or choose a text model with --model)")

    def refine(self, volume: torch.Tensor, clicks: Sequence[Click], prior: np.ndarray | None = None,
               region_size: Sequence[int] | None = None) -> np.ndarray:
        """Probability ``(K, J, I)`` of the clicked lesion on the working grid; zero outside the
        region (``region_size``, default the config's) centred on the positive clicks (on the
        prior, or on all clicks, when there is none). Clicks outside the region are ignored."""
        shape = tuple(volume.shape[2:])
        if not clicks and (prior is None or not np.any(prior)):
            return np.zeros(shape, np.float32)  # nothing to go on
        size = tuple(int(r) for r in (region_size or self.model.config["region_size"]))
        positive = [c.kji for c in clicks if c.positive]
        if positive:
            centre = np.mean(positive, axis=0)
        elif prior is not None and np.any(prior):
            centre = np.argwhere(prior).mean(axis=0)
        else:
            centre = np.mean([c.kji for c in clicks], axis=0)
        box = region_box(shape, size, centre)
        sl = tuple(slice(a, b) for a, b in box)
        local = [Click(tuple(int(v - a) for v, (a, _) in zip(c.kji, box)), c.positive) for c in clicks  # type: ignore[misc]
                 if all(a <= v < b for v, (a, b) in zip(c.kji, box))]
        image = torch.zeros((1, 1) + size, dtype=torch.float32)
        inner = tuple(slice(0, b - a) for a, b in box)
        image[(0, 0) + inner] = volume[(0, 0) + sl].float()
        prior_t = None
        if prior is not None:
            prior_t = torch.zeros_like(image)
            prior_t[(0, 0) + inner] = torch.from_numpy(np.asarray(prior, np.float32)[sl])
        x = self.model.inputs(image, [local], prior_t).to(self.device)
        with torch.no_grad():
            prob = torch.sigmoid(self.model(x))[0, 0].cpu().numpy()
        out = np.zeros(shape, np.float32)
        out[sl] = prob[inner]
        return out
