"""Painting primitives for procedural phantoms, all in physical LPS millimetres.

A phantom is built on an axis-aligned grid (direction = a signed permutation-free diagonal,
e.g. identity or Slicer/DICOM-like ``diag(-1, -1, 1)``), so the physical x, y and z of a voxel
depend on i, j and k alone. Shapes are evaluated only inside their index bounding box, which
keeps a 256x256x128 phantom well under a second on one core.

Coordinates come from :meth:`Image.kji_to_lps` (the one place that knows geometry); nothing
here flips signs by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...pipeline.geometry import Image


@dataclass
class Grid:
    """Physical coordinates of an axis-aligned image grid.

    Attributes:
        image: the grid (array may be a placeholder).
        x, y, z: LPS coordinate (mm) of each I, J, K index (1D arrays).
    """

    image: Image
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    @classmethod
    def from_image(cls, image: Image) -> "Grid":
        """Coordinates of ``image``'s voxel centres; the direction must be diagonal (±1)."""
        d = image.direction
        if not np.allclose(np.abs(d), np.eye(3)):
            raise ValueError("procedural phantoms need an axis-aligned (diagonal ±1) direction")
        k, j, i = image.array.shape[:3]
        xi = image.kji_to_lps(np.stack([np.zeros(i), np.zeros(i), np.arange(i)], axis=-1))[:, 0]
        yj = image.kji_to_lps(np.stack([np.zeros(j), np.arange(j), np.zeros(j)], axis=-1))[:, 1]
        zk = image.kji_to_lps(np.stack([np.arange(k), np.zeros(k), np.zeros(k)], axis=-1))[:, 2]
        return cls(image=image, x=xi, y=yj, z=zk)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (K, J, I)."""
        return (len(self.z), len(self.y), len(self.x))

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices (K, J, I) of voxels whose centres lie in the LPS box [lo, hi]; None if empty."""
        sl = []
        for axis, coords in ((2, self.z), (1, self.y), (0, self.x)):
            inside = np.flatnonzero((coords >= lo[axis]) & (coords <= hi[axis]))
            if inside.size == 0:
                return None
            sl.append(slice(int(inside[0]), int(inside[-1]) + 1))
        return tuple(sl)  # type: ignore[return-value]

    def local(self, sl: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable (z, y, x) coordinate arrays of a box, shapes (k,1,1), (1,j,1), (1,1,i)."""
        return (self.z[sl[0]][:, None, None], self.y[sl[1]][None, :, None], self.x[sl[2]][None, None, :])


def paint_ellipsoid(labels: np.ndarray, grid: Grid, label: int, center, semi, rotation_z_deg: float = 0.0,
                    where: np.ndarray | None = None, only_on: tuple[int, ...] | None = None) -> None:
    """Set ``labels`` to ``label`` inside an ellipsoid (centre, semi-axes in mm, rotated about z).

    ``only_on``: paint only over voxels currently holding one of these labels (e.g. keep
    organs inside the body cavity).
    """
    c = np.asarray(center, float)
    a = np.asarray(semi, float)
    r = float(a.max())
    sl = grid.box(c - r, c + r)
    if sl is None:
        return
    z, y, x = grid.local(sl)
    t = np.deg2rad(rotation_z_deg)
    dx, dy, dz = x - c[0], y - c[1], z - c[2]
    u = np.cos(t) * dx + np.sin(t) * dy
    v = -np.sin(t) * dx + np.cos(t) * dy
    inside = (u / a[0]) ** 2 + (v / a[1]) ** 2 + (dz / a[2]) ** 2 <= 1.0
    _apply(labels, sl, inside, label, only_on)


def paint_elliptic_cylinder(labels: np.ndarray, grid: Grid, label: int, center_xy, semi_xy, z_range,
                            only_on: tuple[int, ...] | None = None) -> None:
    """Set ``labels`` inside an elliptic cylinder along z (axis-parallel)."""
    cx, cy = center_xy
    ax, ay = semi_xy
    lo = np.array([cx - ax, cy - ay, z_range[0]])
    hi = np.array([cx + ax, cy + ay, z_range[1]])
    sl = grid.box(lo, hi)
    if sl is None:
        return
    z, y, x = grid.local(sl)
    inside = np.broadcast_to(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0, (z.shape[0], y.shape[1], x.shape[2]))
    _apply(labels, sl, inside, label, only_on)


def capsule_distance(grid: Grid, sl, p0, p1) -> np.ndarray:
    """Distance (mm) of each voxel of box ``sl`` to the segment p0-p1."""
    z, y, x = grid.local(sl)
    p0 = np.asarray(p0, float)
    d = np.asarray(p1, float) - p0
    dd = float(d @ d) or 1e-9
    px, py, pz = x - p0[0], y - p0[1], z - p0[2]
    t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / dd, 0.0, 1.0)
    return np.sqrt((px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2)


def paint_tube(labels: np.ndarray, grid: Grid, label: int, points, radius: float,
               wall_label: int | None = None, wall_mm: float = 0.0,
               only_on: tuple[int, ...] | None = None) -> None:
    """Paint a tube of ``radius`` along a polyline; optionally a wall of ``wall_mm`` around it.

    With a wall, the wall gets ``wall_label`` and the lumen ``label`` (e.g. airway air).
    """
    pts = [np.asarray(p, float) for p in points]
    outer = radius + (wall_mm if wall_label is not None else 0.0)
    for p0, p1 in zip(pts[:-1], pts[1:]):
        lo = np.minimum(p0, p1) - outer
        hi = np.maximum(p0, p1) + outer
        sl = grid.box(lo, hi)
        if sl is None:
            continue
        dist = capsule_distance(grid, sl, p0, p1)
        if wall_label is not None:
            _apply(labels, sl, dist <= outer, wall_label, only_on)
            # lumen overwrites wall of earlier segments too (only where the wall was just set)
            _apply(labels, sl, dist <= radius, label, None if only_on is None else only_on + (wall_label,))
        else:
            _apply(labels, sl, dist <= radius, label, only_on)


def _apply(labels: np.ndarray, sl, inside: np.ndarray, label: int, only_on: tuple[int, ...] | None) -> None:
    """Write ``label`` where ``inside`` (and, if given, where the current label is in ``only_on``)."""
    view = labels[sl]
    if only_on is not None:
        inside = inside & np.isin(view, np.asarray(only_on, dtype=labels.dtype))
    view[inside] = label


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int, int], factor: int) -> np.ndarray:
    """A smooth random field (float32, std about 1) of ``shape``: coarse noise upsampled linearly.

    Upsampling a grid ``factor`` times coarser is far cheaper than Gaussian-filtering white noise
    at full resolution, and gives the low-frequency texture of organs and lesions.
    """
    from scipy import ndimage

    coarse_shape = tuple(max(2, int(np.ceil(s / factor)) + 1) for s in shape)
    coarse = rng.standard_normal(coarse_shape).astype(np.float32)
    zoom = [(s + 0.0) / (c - 1) for s, c in zip(shape, coarse_shape)]
    field = ndimage.zoom(coarse, zoom, order=1, mode="nearest", grid_mode=False)
    field = field[: shape[0], : shape[1], : shape[2]]
    if field.shape != tuple(shape):  # zoom may round one voxel short
        field = np.pad(field, [(0, s - f) for s, f in zip(shape, field.shape)], mode="edge")
    return field / max(float(field.std()), 1e-6)
