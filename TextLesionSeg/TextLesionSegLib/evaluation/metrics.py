"""Overlap and surface metrics between a predicted and a reference binary mask.

Every metric works on KJI arrays (``pipeline.geometry`` convention) with the voxel spacing given
in IJK order, as :class:`~TextLesionSegLib.pipeline.geometry.Image` stores it; the spacing is
reversed here, once, to match the array axes MONAI sees.

The distances come from MONAI (``compute_surface_dice`` for the normalised surface Dice, NSD,
and ``compute_hausdorff_distance`` with ``percentile=95`` for HD95), in millimetres. MONAI returns
NaN or inf for empty masks; the conventions used here instead are stated in :func:`segmentation_metrics`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import warnings
from typing import Sequence

import numpy as np

#: NSD tolerance used throughout the project's reports (mm) [chosen; the MSD/medvlsm convention].
DEFAULT_NSD_TOLERANCE_MM = 2.0


@dataclass
class SegmentationScores:
    """Scores of one prediction against one reference mask.

    ``hd95_mm`` is ``inf`` when exactly one of the two masks is empty (no surface to measure to).
    """

    dice: float
    nsd: float
    hd95_mm: float
    pred_voxels: int
    ref_voxels: int

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dictionary (inf written as ``None``)."""
        out = asdict(self)
        if not np.isfinite(out["hd95_mm"]):
            out["hd95_mm"] = None
        return out


def dice_score(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice coefficient of two binary masks; 1.0 when both are empty (nothing to find, nothing found)."""
    p = np.asarray(pred, dtype=bool)
    r = np.asarray(ref, dtype=bool)
    total = int(p.sum()) + int(r.sum())
    if total == 0:
        return 1.0
    return 2.0 * float(np.logical_and(p, r).sum()) / total


def _crop_to_union(pred: np.ndarray, ref: np.ndarray, margin: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Crop both masks to the bounding box of their union plus a margin.

    Surface distances only depend on voxels near the two surfaces, and MONAI's distance transform
    on a full 512x512x300 grid costs seconds; the margin keeps each surface off the crop border.
    """
    union = pred | ref
    nz = np.nonzero(union)
    slices = tuple(
        slice(max(int(idx.min()) - margin, 0), min(int(idx.max()) + margin + 1, size))
        for idx, size in zip(nz, union.shape)
    )
    return pred[slices], ref[slices]


def _as_monai(mask: np.ndarray) -> "object":
    import torch

    # (batch, channel, *spatial): one foreground channel, include_background=True below
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]


def surface_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing_ijk: Sequence[float],
    tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
) -> tuple[float, float]:
    """(NSD at ``tolerance_mm``, HD95 in mm) of two non-empty binary KJI masks, via MONAI."""
    from monai.metrics import compute_hausdorff_distance, compute_surface_dice

    p, r = _crop_to_union(np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool))
    spacing_kji = [float(s) for s in tuple(spacing_ijk)[::-1]]
    yp, yr = _as_monai(p), _as_monai(r)
    with warnings.catch_warnings():
        # MONAI 1.5+ warns about its own internal use of a deprecated argument of get_mask_edges
        warnings.simplefilter("ignore", FutureWarning)
        # use_subvoxels=False: on analytic spheres (test_eval_metrics) MONAI's voxel-centre
        # surfaces land closer to the exact NSD than its sub-voxel surfels do
        nsd = compute_surface_dice(
            yp, yr, class_thresholds=[float(tolerance_mm)], include_background=True, spacing=spacing_kji
        )
        hd95 = compute_hausdorff_distance(yp, yr, include_background=True, percentile=95, spacing=spacing_kji)
    return float(nsd.reshape(-1)[0]), float(hd95.reshape(-1)[0])


def segmentation_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing_ijk: Sequence[float] = (1.0, 1.0, 1.0),
    tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
) -> SegmentationScores:
    """Dice, NSD (``tolerance_mm``) and HD95 (mm) of a binary prediction against a reference.

    Conventions for empty masks: both empty gives Dice = NSD = 1 and HD95 = 0; exactly one
    empty gives Dice = NSD = 0 and HD95 = inf (aggregations report it as a count, not a mean).
    """
    p = np.asarray(pred, dtype=bool)
    r = np.asarray(ref, dtype=bool)
    if p.shape != r.shape:
        raise ValueError(f"prediction shape {p.shape} differs from reference shape {r.shape}")
    n_p, n_r = int(p.sum()), int(r.sum())
    if n_p == 0 and n_r == 0:
        return SegmentationScores(1.0, 1.0, 0.0, 0, 0)
    if n_p == 0 or n_r == 0:
        return SegmentationScores(0.0, 0.0, float("inf"), n_p, n_r)
    nsd, hd95 = surface_metrics(p, r, spacing_ijk, tolerance_mm)
    return SegmentationScores(dice_score(p, r), nsd, hd95, n_p, n_r)


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, median, std, min, max and count of the finite values, plus the count of inf/NaN ones."""
    arr = np.asarray(list(values), dtype=float)
    finite = arr[np.isfinite(arr)]
    out: dict[str, float | int | None] = {"n": int(arr.size), "n_infinite": int(arr.size - finite.size)}
    if finite.size == 0:
        out.update(mean=None, median=None, std=None, min=None, max=None)
    else:
        out.update(
            mean=float(finite.mean()),
            median=float(np.median(finite)),
            std=float(finite.std()),
            min=float(finite.min()),
            max=float(finite.max()),
        )
    return out
