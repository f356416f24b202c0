"""Measurements that check a written attribute against the image it describes.

These are what the tests (and the synthesiser's own verification) use:

* density: mean HU of the lesion core (mask minus a 3 mm in-plane rim, see
  :func:`pipeline.lesion_measures.in_plane_core`) minus the reference tissue mean (the host organ's parenchyma
  away from lesions; soft tissue for lung lesions, as Malenia's code book defines);
* sphericity: pi^(1/3) (6V)^(2/3) / A with A from marching cubes in millimetres;
* edge sharpness: the share of the lesion-to-surroundings contrast crossed between the voxel
  shells just inside and just outside the margin (in-plane);
* relation: which other structures the lesion touches (within 2 mm).
"""

from __future__ import annotations

import numpy as np

from ...pipeline.lesion_measures import (  # noqa: F401  (re-exported: one home for each measure)
    ball_sphericity, bbox, core_stats, edge_sharpness, in_plane_core, shape_index, sphericity)


def away_from(masks: list[np.ndarray], spacing_ijk, distance_mm: float = 10.0) -> np.ndarray:
    """Voxels farther than ``distance_mm`` from every mask in ``masks`` (bool, full volume)."""
    from scipy import ndimage

    shape = masks[0].shape
    near = np.zeros(shape, bool)
    sp = np.asarray(spacing_ijk, float)[::-1]
    for m in masks:
        if not m.any():
            continue
        margin = np.ceil(distance_mm / sp).astype(int) + 1
        sl = bbox(m, tuple(margin))
        d = ndimage.distance_transform_edt(~m[sl], sampling=sp)
        near[sl] |= d <= distance_mm
    return ~near


def region_mean(hu: np.ndarray, region: np.ndarray) -> float:
    """Mean HU over a region (NaN when empty)."""
    return float(hu[region].mean()) if region.any() else float("nan")


def touching(mask: np.ndarray, parts: np.ndarray, spacing_ijk, exclude: set[int], distance_mm: float = 2.0) -> dict[int, int]:
    """Part labels (not in ``exclude``) within ``distance_mm`` of the lesion, with voxel counts."""
    from scipy import ndimage

    sp = np.asarray(spacing_ijk, float)[::-1]
    margin = tuple(int(v) for v in np.ceil(distance_mm / sp) + 1)
    sl = bbox(mask, margin)
    d = ndimage.distance_transform_edt(~mask[sl], sampling=sp)
    shell = d <= distance_mm  # inside the lesion too: a protruding lesion overlaps its neighbour
    labels, counts = np.unique(parts[sl][shell], return_counts=True)
    return {int(l): int(c) for l, c in zip(labels, counts) if int(l) not in exclude}
