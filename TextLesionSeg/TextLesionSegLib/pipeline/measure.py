"""Per-lesion measurements in physical units: volume, RECIST diameters, HU, centroid.

Diameters are measured between voxel *extents*, not centres: the distance between the two
farthest voxel centres plus the width of one voxel along that direction, which is what a
reader measuring from edge to edge would get. Positions come from ``geometry.Image`` so
anisotropic spacing and oblique directions are honoured.

"Axial" means planes perpendicular to the patient's superior axis: the slices are taken along
the index axis most aligned with S, and in-plane distances are physical.
"""

from __future__ import annotations

import numpy as np

from .geometry import Image
from .postprocess import label_components
from .result import LesionMeasurement


def _voxel_extent_along(u: np.ndarray, axes_mm: np.ndarray) -> float:
    """Width of one voxel (edges = columns of ``axes_mm``) along unit vector ``u``."""
    return float(np.sum(np.abs(u @ axes_mm)))


def _boundary_points(mask: np.ndarray) -> np.ndarray:
    """KJI indices of surface voxels (the farthest pair is always among them)."""
    from scipy import ndimage

    inner = ndimage.binary_erosion(mask, structure=np.ones((3, 3, 3), bool), border_value=0)
    pts = np.argwhere(mask & ~inner)
    return pts if len(pts) else np.argwhere(mask)


def _farthest_pair(points: np.ndarray) -> tuple[float, np.ndarray]:
    """Largest distance among ``points`` (N, d) and the unit vector joining that pair."""
    if len(points) < 2:
        return 0.0, np.eye(points.shape[1])[0]
    cand = points
    if len(points) > 64:
        from scipy.spatial import ConvexHull, QhullError

        try:
            cand = points[ConvexHull(points, qhull_options="QJ").vertices]  # QJ: flat or collinear sets too
        except (QhullError, ValueError):  # flat set: fall back to all points (small anyway)
            cand = points[:: max(1, len(points) // 2000)]
    diff = cand[:, None, :] - cand[None, :, :]
    d2 = np.einsum("ijk,ijk->ij", diff, diff)
    a, b = np.unravel_index(int(np.argmax(d2)), d2.shape)
    dist = float(np.sqrt(d2[a, b]))
    u = (cand[b] - cand[a]) / dist if dist > 0 else np.eye(points.shape[1])[0]
    return dist, u


def axial_axis(image: Image) -> int:
    """Index of the array axis (KJI order: 0, 1, 2) most aligned with the patient's S axis."""
    s_component = np.abs(image.direction[2, :])  # per I, J, K column
    ijk_axis = int(np.argmax(s_component))
    return 2 - ijk_axis


def axial_diameters(image: Image, mask: np.ndarray) -> tuple[float, float]:
    """Longest axial diameter and the longest diameter perpendicular to it, in the same slice (mm)."""
    axis = axial_axis(image)
    m = image.ijk_to_lps()[:3, :3]
    axes_mm = m[:, ::-1]  # columns for K, J, I (array order)
    best = (0.0, 0.0)
    slices = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
    for s in slices:
        sl = [slice(None)] * 3
        sl[axis] = s
        plane = np.zeros_like(mask)
        plane[tuple(sl)] = mask[tuple(sl)]
        pts = _boundary_points_2d(plane, axis)
        if len(pts) == 0:
            continue
        xyz = pts @ axes_mm.T  # physical offsets (mm)
        # In-plane 2D coordinates: project onto the plane spanned by the two other array axes.
        in_plane = [a for a in range(3) if a != axis]
        basis, _ = np.linalg.qr(axes_mm[:, in_plane])
        uv = xyz @ basis
        dist, u = _farthest_pair(uv)
        u3 = basis @ u
        long_mm = dist + _voxel_extent_along(u3, axes_mm[:, in_plane])
        if long_mm <= best[0]:
            continue
        v3 = basis @ np.array([-u[1], u[0]])
        best = (long_mm, _perpendicular_extent(uv, u, axes_mm[:, in_plane], v3))
    return best


def _boundary_points_2d(plane_mask: np.ndarray, axis: int) -> np.ndarray:
    """KJI indices of the in-plane boundary voxels of a one-slice mask."""
    from scipy import ndimage

    structure = np.ones((3, 3, 3), bool)
    sel = [slice(None)] * 3
    sel[axis] = [0, 2]
    structure[tuple(sel)] = False  # erode within the slice only
    inner = ndimage.binary_erosion(plane_mask, structure=structure, border_value=0)
    return np.argwhere(plane_mask & ~inner)


def _perpendicular_extent(uv: np.ndarray, u: np.ndarray, in_plane_axes: np.ndarray, v3: np.ndarray) -> float:
    """Longest chord perpendicular to ``u``: max over strips along u of the extent along v."""
    v = np.array([-u[1], u[0]])
    a = uv @ u
    b = uv @ v
    step = float(np.min(np.linalg.norm(in_plane_axes, axis=0)))
    bins = np.floor((a - a.min()) / step).astype(int)
    best = 0.0
    for k in np.unique(bins):
        sel = bins == k
        best = max(best, float(b[sel].max() - b[sel].min()))
    return best + _voxel_extent_along(v3, in_plane_axes)


def longest_3d(image: Image, mask: np.ndarray) -> float:
    """Longest distance across the lesion in 3D (mm), edge to edge."""
    pts = _boundary_points(mask)
    m = image.ijk_to_lps()[:3, :3]
    axes_mm = m[:, ::-1]
    xyz = pts @ axes_mm.T
    dist, u = _farthest_pair(xyz)
    return dist + _voxel_extent_along(u, axes_mm)


def measure_lesions(image: Image, mask: np.ndarray, max_lesions: int = 50) -> list[LesionMeasurement]:
    """Measure every connected component of ``mask`` (largest first, at most ``max_lesions``)."""
    labels, n = label_components(mask)
    if n == 0:
        return []
    from scipy import ndimage

    counts = np.bincount(labels.ravel(), minlength=n + 1)
    order = [int(i) for i in np.argsort(-counts[1:]) + 1][:max_lesions]
    objects = ndimage.find_objects(labels)
    voxel_ml = float(np.prod(image.spacing)) / 1000.0
    hu = np.asarray(image.array)
    out = []
    for rank, lab in enumerate(order, start=1):
        box = objects[lab - 1]
        sub = labels[box] == lab
        offset = np.array([s.start for s in box])
        sub_img = Image(array=sub, spacing=image.spacing, origin=image.kji_to_lps(offset), direction=image.direction)
        values = hu[box][sub].astype(np.float64)
        values = values[np.isfinite(values)]
        long_ax, perp = axial_diameters(sub_img, sub)
        centroid = image.kji_to_ras(np.argwhere(sub).mean(axis=0) + offset)
        out.append(
            LesionMeasurement(
                label=rank,
                voxel_count=int(counts[lab]),
                volume_ml=float(counts[lab] * voxel_ml),
                longest_axial_mm=round(long_ax, 2),
                perpendicular_axial_mm=round(perp, 2),
                longest_3d_mm=round(longest_3d(sub_img, sub), 2),
                mean_hu=float(values.mean()) if values.size else float("nan"),
                sd_hu=float(values.std()) if values.size else float("nan"),
                centroid_ras=tuple(float(c) for c in centroid),
            )
        )
    return out
