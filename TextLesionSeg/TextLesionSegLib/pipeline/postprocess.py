"""Probability map -> clean binary mask: threshold, connected components, specks, holes."""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: default smallest lesion kept (mm^3): about a 4 mm sphere; smaller blobs are noise
DEFAULT_MIN_VOLUME_MM3 = 30.0


def _structure() -> np.ndarray:
    from scipy import ndimage

    # 26-connectivity: diagonal neighbours belong to the same lesion (as in Slicer's islands tool)
    return ndimage.generate_binary_structure(3, 3)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (26-connected) of a binary KJI mask: (labels int32, count)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask > 0, structure=_structure())
    return labels.astype(np.int32, copy=False), int(n)


def remove_specks(mask: np.ndarray, spacing: Sequence[float], min_volume_mm3: float) -> np.ndarray:
    """Drop connected components smaller than ``min_volume_mm3`` (spacing in mm, IJK order)."""
    if min_volume_mm3 <= 0 or not mask.any():
        return mask.astype(np.uint8, copy=False)
    labels, n = label_components(mask)
    voxel_mm3 = float(np.prod(spacing))
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    keep = counts * voxel_mm3 >= min_volume_mm3
    keep[0] = False
    return keep[labels].astype(np.uint8)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed cavities in 3D and, slice by slice, in the axial (K) planes."""
    from scipy import ndimage

    if not mask.any():
        return mask.astype(np.uint8, copy=False)
    filled = ndimage.binary_fill_holes(mask > 0)
    # A lesion with a necrotic core open at the top/bottom slice is still filled in-plane.
    for k in np.flatnonzero(filled.any(axis=(1, 2))):
        filled[k] = ndimage.binary_fill_holes(filled[k])
    return filled.astype(np.uint8)


def postprocess(
    probability: np.ndarray,
    spacing: Sequence[float],
    threshold: float = 0.5,
    min_volume_mm3: float = DEFAULT_MIN_VOLUME_MM3,
    holes: bool = True,
) -> np.ndarray:
    """Binary uint8 mask from one probability map on the input grid.

    Args:
        probability: (K, J, I) values in 0..1.
        spacing: voxel size (I, J, K) in mm, for the speck size.
        threshold: probability above which a voxel is lesion.
        min_volume_mm3: components smaller than this are removed.
        holes: fill enclosed holes.
    """
    full = (np.asarray(probability) > threshold).astype(np.uint8)
    if not full.any():
        return full
    # Work on the bounding box plus one voxel: the same result (background outside the box is
    # connected to the border either way) at a fraction of the cost on a 512 x 512 CT.
    box = tuple(
        slice(max(0, int(idx[0]) - 1), int(idx[-1]) + 2)
        for idx in (np.flatnonzero(full.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3))
    )
    mask = remove_specks(full[box], spacing, min_volume_mm3)
    if holes:
        mask = fill_holes(mask)
    full[...] = 0
    full[box] = mask
    return full
