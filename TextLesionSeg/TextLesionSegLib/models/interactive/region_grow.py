"""Region growing from the clicks: the text-free, training-free baseline the click model must beat.

[chosen] The classic seeded region growing of CT tools: voxels connected to a positive click
whose windowed intensity lies within the click neighbourhood's median ± ``tolerance`` × its
spread (floored, so a flat lesion still grows), inside the same region the click model sees.
Pieces holding a negative click are removed. It has no weights and no training; it stands
beside the click model behind the same seam (``capabilities = {"clicks"}``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...training.clicks import Click
from ..base import InferenceSettings, LesionSegmenter, PreprocessingConfig, ProgressCallback

#: the click model's working grid, so both answer on the same voxels
REGION_GROW_PREPROCESSING = PreprocessingConfig(spacing=(2.0, 2.0, 2.0), hu_window=(-175.0, 250.0),
                                                roi_size=(64, 64, 64), crop_foreground=True)


class RegionGrowSegmenter(LesionSegmenter):
    """Seeded region growing on the working grid (see the module doc)."""

    name = "region-grow"
    version = "1"
    capabilities = frozenset({"clicks"})

    def __init__(self, tolerance: float = 2.5, min_spread: float = 0.03, neighbourhood: int = 2,
                 preprocessing: PreprocessingConfig = REGION_GROW_PREPROCESSING) -> None:
        self.tolerance, self.min_spread, self.neighbourhood = tolerance, min_spread, neighbourhood
        self.preprocessing = preprocessing

    def predict(self, volume: Any, queries: Sequence[Any], settings: InferenceSettings,
                progress: ProgressCallback | None = None) -> Any:
        """Not available: region growing needs a click."""
        from ...errors import ModelError

        raise ModelError("region growing segments from clicks only: give an include point")

    def refine(self, volume: Any, clicks: Sequence[Click], prior: np.ndarray | None = None,
               region_size: Sequence[int] | None = None) -> np.ndarray:
        """1.0 on the grown region, 0.0 elsewhere, ``(K, J, I)`` on the working grid. Without a
        positive click the prior is kept, less the pieces holding a negative click."""
        from scipy.ndimage import label

        from .segmenter import region_box

        vol = np.asarray(volume[0, 0], np.float32)
        size = tuple(int(r) for r in (region_size or self.preprocessing.roi_size))
        positive = [c.kji for c in clicks if c.positive]
        grown = np.zeros(vol.shape, bool)
        if positive:
            box = region_box(vol.shape, size, np.mean(positive, axis=0))
            sl = tuple(slice(a, b) for a, b in box)
            local = vol[sl]
            for kji in positive:
                r = self.neighbourhood
                near = vol[tuple(slice(max(0, v - r), v + r + 1) for v in kji)]
                centre, spread = float(np.median(near)), max(float(near.std()), self.min_spread)
                inside = np.abs(local - centre) <= self.tolerance * spread
                pieces, _ = label(inside)
                seed = pieces[tuple(v - a for v, (a, _) in zip(kji, box))]
                if seed:
                    grown[sl] |= pieces == seed
        elif prior is not None:
            grown = np.asarray(prior, bool).copy()
        negative = [c.kji for c in clicks if not c.positive]
        if negative and grown.any():
            pieces, _ = label(grown)
            for kji in negative:
                if pieces[kji]:
                    grown[pieces == pieces[kji]] = False
        return grown.astype(np.float32)
