"""Simulated clicks and click maps: how a user corrects a mask, for training and measuring.

The protocol is the one interactive-segmentation papers use (RITM, SAM-Med3D, nnInteractive):
the first click goes to the point of the lesion farthest from its boundary; every next click
goes to the centre (the point farthest from the region's boundary) of the largest error region,
positive where the prediction misses lesion (false negative), negative where it covers
background (false positive). Click maps encode clicks as Gaussians of the distance to the
nearest click, so the network sees *where* and *how near*, not a single voxel.

Everything works on KJI arrays of one grid (numpy + scipy; no torch). ``Click`` itself is
``pipeline.clicks.Click``, re-exported here.
"""

from __future__ import annotations

import numpy as np

from ..pipeline.clicks import Click

#: Gaussian width of a click map in voxels [chosen: 2 voxels = 4 mm at 2 mm spacing, a small
#: lesion's radius; nnInteractive also encodes points as small blobs]
CLICK_SIGMA_VOXELS = 2.0


def _inner_distance(mask: np.ndarray, spacing: tuple[float, float, float] | None = None) -> np.ndarray:
    """Distance of every mask voxel to the nearest non-mask voxel (the volume's edge counts as
    outside, so a region cut by the border is still centred inside the image)."""
    from scipy.ndimage import distance_transform_edt

    padded = np.pad(np.asarray(mask, bool), 1)
    sampling = None if spacing is None else tuple(float(s) for s in spacing[::-1])  # IJK -> KJI
    return distance_transform_edt(padded, sampling=sampling)[1:-1, 1:-1, 1:-1]


def farthest_from_boundary(mask: np.ndarray, spacing: tuple[float, float, float] | None = None) -> tuple[int, int, int] | None:
    """The voxel of ``mask`` farthest from its boundary (the first click), or None if empty.

    ``spacing`` (IJK, mm) makes the distance physical on anisotropic grids; ties go to the first
    voxel in array order, so the click is deterministic.
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        return None
    dist = _inner_distance(mask, spacing)
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(dist)), mask.shape))  # type: ignore[return-value]


def next_click(prediction: np.ndarray, reference: np.ndarray,
               spacing: tuple[float, float, float] | None = None) -> Click | None:
    """The corrective click: at the centre of the largest connected error region, positive for a
    missed piece of lesion, negative for a false one. None when prediction equals reference."""
    from scipy.ndimage import label as connected

    pred, ref = np.asarray(prediction, bool), np.asarray(reference, bool)
    best: tuple[int, bool, np.ndarray] | None = None
    for positive, error in ((True, ref & ~pred), (False, pred & ~ref)):
        if not error.any():
            continue
        labels, n = connected(error)
        sizes = np.bincount(labels.ravel())[1:]
        largest = int(np.argmax(sizes))
        if best is None or sizes[largest] > best[0]:
            best = (int(sizes[largest]), positive, labels == largest + 1)
    if best is None:
        return None
    kji = farthest_from_boundary(best[2], spacing)
    return Click(kji, best[1]) if kji is not None else None


def first_click(reference: np.ndarray, spacing: tuple[float, float, float] | None = None) -> Click | None:
    """The first click of the protocol: positive, at the lesion's most interior voxel."""
    kji = farthest_from_boundary(reference, spacing)
    return None if kji is None else Click(kji, True)


def random_inner_click(reference: np.ndarray, rng: np.random.Generator, min_share: float = 0.4) -> Click | None:
    """A positive click anywhere well inside the lesion (distance at least ``min_share`` of the
    largest): users rarely hit the exact centre, so training varies the first click."""
    mask = np.asarray(reference, bool)
    if not mask.any():
        return None
    dist = _inner_distance(mask)
    candidates = np.argwhere(dist >= min_share * dist.max())
    kji = candidates[int(rng.integers(len(candidates)))]
    return Click(tuple(int(v) for v in kji), True)  # type: ignore[arg-type]


def click_maps(shape: tuple[int, int, int], clicks: list[Click], sigma: float = CLICK_SIGMA_VOXELS) -> np.ndarray:
    """``(2, K, J, I)`` float32 maps of the positive and the negative clicks: ``exp(-d²/2σ²)``
    of the distance ``d`` (voxels) to the nearest click of each kind; zero without clicks.

    Only a box of ±4σ around each click is computed: a map is zero beyond that anyway.
    """
    out = np.zeros((2,) + tuple(int(s) for s in shape), np.float32)
    reach = int(np.ceil(4 * sigma))
    grid = np.arange(-reach, reach + 1, dtype=np.float32)
    blob = np.exp(-(grid[:, None, None] ** 2 + grid[None, :, None] ** 2 + grid[None, None, :] ** 2) / (2 * sigma ** 2))
    for click in clicks:
        channel = out[0 if click.positive else 1]
        lo = [c - reach for c in click.kji]
        src = tuple(slice(max(0, -a), blob.shape[0] - max(0, a + blob.shape[0] - s)) for a, s in zip(lo, shape))
        dst = tuple(slice(max(0, a), min(s, a + blob.shape[0])) for a, s in zip(lo, shape))
        if all(d.stop > d.start for d in dst):
            np.maximum(channel[dst], blob[src], out=channel[dst])
    return out


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice of two binary masks (1.0 when both are empty)."""
    pred, ref = np.asarray(prediction, bool), np.asarray(reference, bool)
    total = int(pred.sum()) + int(ref.sum())
    return 1.0 if total == 0 else 2.0 * int((pred & ref).sum()) / total
