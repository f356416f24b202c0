"""Measures of one lesion mask on its image: core density, shape index, edge sharpness.

One home for each measure, used by the synthesiser to check that what a report says is true of
its voxels (``training.data.measure``, ``synthesize``) and by the engine to measure the
candidates a model finds (``pipeline.candidates``), so "hypodense" and "round-like" mean the
same thing where data is made and where it is read:

* core: the mask without a 3 mm in-plane rim (edge voxels mix lesion and host);
* sphericity: pi^(1/3) (6V)^(2/3) / A with A from marching cubes in millimetres, and the shape
  index that divides it by a digital ball's of the same volume on the same grid;
* edge sharpness: the share of the lesion-to-surroundings contrast crossed at the margin.
"""

from __future__ import annotations

import numpy as np


def in_plane_core(mask: np.ndarray, spacing_ijk=(1.0, 1.0, 1.0), depth_mm: float = 3.0) -> np.ndarray:
    """The lesion mask without an in-plane rim of ``depth_mm`` (at least one voxel).

    Edge voxels mix lesion and host (partial volume, blurred margins); density is measured on
    this core. The rim shrinks when it would leave fewer than 8 voxels (tiny lesions on coarse
    grids), down to the mask itself.
    """
    from scipy import ndimage

    steps = max(1, int(round(depth_mm / float(min(spacing_ijk[0], spacing_ijk[1])))))
    st = np.zeros((3, 3, 3), bool)
    st[1] = ndimage.generate_binary_structure(2, 1)
    for n in range(steps, 0, -1):
        core = ndimage.binary_erosion(mask, structure=st, iterations=n)
        if core.sum() >= 8:
            return core
    return mask


def bbox(mask: np.ndarray, margin: tuple[int, int, int] = (0, 0, 0)) -> tuple[slice, slice, slice]:
    """Slices (K, J, I) of the bounding box of ``mask`` grown by ``margin`` voxels."""
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(0) - np.asarray(margin), 0)
    hi = np.minimum(idx.max(0) + 1 + np.asarray(margin), mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))  # type: ignore[return-value]


def sphericity(mask: np.ndarray, spacing_ijk) -> float:
    """Sphericity of a binary mask (1 for a ball; lower for lobulated / spiculated shapes)."""
    from skimage import measure

    m = np.pad(mask[bbox(mask)], 1).astype(np.float32)
    sp = tuple(float(v) for v in spacing_ijk[::-1])
    verts, faces, _, _ = measure.marching_cubes(m, level=0.5, spacing=sp)
    area = measure.mesh_surface_area(verts, faces)
    volume = float(mask.sum()) * float(np.prod(sp))
    return float(np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / max(area, 1e-6))


def ball_sphericity(volume_mm3: float, spacing_ijk) -> float:
    """Sphericity of a digital ball of ``volume_mm3`` on a grid of ``spacing_ijk``.

    Voxel staircases lower the sphericity of even a perfect ball, the more so for thick slices;
    dividing by this gives a shape index comparable across grids.
    """
    sp = np.asarray(spacing_ijk, float)[::-1]
    r = (3 * volume_mm3 / (4 * np.pi)) ** (1 / 3)
    n = np.ceil(r / sp).astype(int) + 2
    k, j, i = np.ogrid[-n[0]:n[0] + 1, -n[1]:n[1] + 1, -n[2]:n[2] + 1]
    # a quarter-voxel offset avoids the special symmetric case of a ball centred on a voxel
    ball = ((k + 0.25) * sp[0]) ** 2 + ((j + 0.25) * sp[1]) ** 2 + ((i + 0.25) * sp[2]) ** 2 <= r * r
    return sphericity(ball, spacing_ijk) if ball.sum() >= 8 else 1.0


def shape_index(mask: np.ndarray, spacing_ijk) -> float:
    """Sphericity of ``mask`` relative to a digital ball of the same volume on the same grid."""
    volume = float(mask.sum()) * float(np.prod(spacing_ijk))
    return sphericity(mask, spacing_ijk) / ball_sphericity(volume, spacing_ijk)


def core_values(hu: np.ndarray, mask: np.ndarray, spacing_ijk) -> np.ndarray:
    """HU of the lesion core (:func:`in_plane_core`), float64."""
    sl = bbox(mask)
    return hu[sl][in_plane_core(mask[sl], spacing_ijk)].astype(np.float64)


def core_stats(hu: np.ndarray, mask: np.ndarray, spacing_ijk, values: np.ndarray | None = None) -> dict[str, float]:
    """Mean, median and 15th/85th percentiles of the lesion core HU (``values``: the core's HU
    when the caller already has them, :func:`core_values`)."""
    v = core_values(hu, mask, spacing_ijk) if values is None else values
    return {"mean": float(v.mean()), "median": float(np.median(v)), "p15": float(np.percentile(v, 15)),
            "p85": float(np.percentile(v, 85)), "std": float(v.std()), "voxels": int(v.size)}


def edge_sharpness(hu: np.ndarray, mask: np.ndarray, spacing_ijk, surround_hu: float) -> float:
    """Fraction of the lesion-to-surroundings contrast crossed in one voxel step at the margin.

    Mean HU of the one-voxel in-plane shell just outside the mask minus that of the shell just
    inside, divided by (surroundings - core mean). A sharp margin crosses about half the
    contrast in that step; a blurred, infiltrative one much less. In-plane shells, because
    thick slices blur every margin along z.
    """
    from scipy import ndimage

    sl = bbox(mask, (1, 3, 3))
    m = mask[sl]
    sub = hu[sl]
    st = np.zeros((3, 3, 3), bool)
    st[1] = ndimage.generate_binary_structure(2, 1)
    outer = ndimage.binary_dilation(m, st) & ~m
    inner = m & ~ndimage.binary_erosion(m, st)
    contrast = surround_hu - core_stats(hu, mask, spacing_ijk)["mean"]
    step = float(sub[outer].mean() - sub[inner].mean())
    return step / contrast if abs(contrast) >= 1.0 else 0.0
