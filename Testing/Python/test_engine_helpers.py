"""Synthetic volumes with known geometry, shared by the engine tests (helpers only, no tests)."""

from __future__ import annotations

import numpy as np

from TextLesionSegLib.pipeline.geometry import Image


def rotation(axis: str, degrees: float) -> np.ndarray:
    """3x3 rotation matrix about x, y or z."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


#: direction matrices the round trips go through: identity, flipped, permuted, oblique
DIRECTIONS = {
    "identity": np.eye(3),
    "flipped": np.diag([-1.0, -1.0, 1.0]),
    "permuted": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "oblique": rotation("z", 25) @ rotation("x", -15) @ np.diag([1.0, -1.0, 1.0]),
}


def grid_image(shape_kji, spacing, direction, centre_lps, fill=-1000.0, dtype=np.float32) -> Image:
    """An image of constant ``fill`` whose voxel-grid centre sits at ``centre_lps``."""
    direction = np.asarray(direction, dtype=float)
    half = (np.asarray(shape_kji[::-1]) - 1) / 2.0
    origin = np.asarray(centre_lps, float) - direction @ (np.asarray(spacing) * half)
    return Image(array=np.full(shape_kji, fill, dtype=dtype), spacing=spacing, origin=origin, direction=direction)


def physical_coords(image: Image) -> np.ndarray:
    """LPS coordinates (K, J, I, 3) of every voxel centre."""
    kji = np.stack(np.meshgrid(*[np.arange(n) for n in image.array.shape], indexing="ij"), axis=-1)
    return image.kji_to_lps(kji)


def add_ellipsoid(image: Image, centre_lps, radii_mm, value: float, axes=None) -> np.ndarray:
    """Set voxels inside an ellipsoid (radii along ``axes`` columns, default LPS axes) to ``value``."""
    axes = np.eye(3) if axes is None else np.asarray(axes, float)
    local = (physical_coords(image) - np.asarray(centre_lps, float)) @ axes
    inside = np.sum((local / np.asarray(radii_mm, float)) ** 2, axis=-1) <= 1.0
    image.array[inside] = value
    return inside


def mask_centroid_lps(image: Image, mask: np.ndarray) -> np.ndarray:
    """Physical centroid (LPS) of a mask on ``image``'s grid."""
    idx = np.argwhere(mask > 0)
    return image.kji_to_lps(idx.mean(axis=0))
