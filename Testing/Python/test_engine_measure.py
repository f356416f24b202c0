"""Measurements against analytic shapes (volume, RECIST diameters, 3D diameter, HU, centroid)."""

from __future__ import annotations

import numpy as np
import pytest

from test_engine_helpers import DIRECTIONS, add_ellipsoid, grid_image
from TextLesionSegLib.pipeline.geometry import lps_to_ras
from TextLesionSegLib.pipeline.measure import measure_lesions
from TextLesionSegLib.pipeline.postprocess import fill_holes, postprocess, remove_specks

CENTRE = np.array([5.0, -20.0, 30.0])


def _close(measured: float, expected: float, rel: float = 0.05) -> bool:
    return abs(measured - expected) <= rel * expected


@pytest.mark.parametrize("name", ["identity", "flipped", "permuted"])
def test_sphere(name):
    # anisotropic: in-plane 0.7 mm, 1.0 mm slices, so diameters must use physical spacing
    spacing = (0.7, 0.7, 1.0) if name != "permuted" else (0.7, 1.0, 0.7)
    img = grid_image((56, 60, 60), spacing, DIRECTIONS[name], CENTRE, fill=-800.0)
    inside = add_ellipsoid(img, CENTRE, (15.0, 15.0, 15.0), 40.0)
    (m,) = measure_lesions(img, inside)
    assert _close(m.volume_ml, 4 / 3 * np.pi * 15.0**3 / 1000)
    assert _close(m.longest_axial_mm, 30.0)
    assert _close(m.perpendicular_axial_mm, 30.0)
    assert _close(m.longest_3d_mm, 30.0)
    assert m.mean_hu == pytest.approx(40.0) and m.sd_hu == pytest.approx(0.0)
    np.testing.assert_allclose(m.centroid_ras, lps_to_ras(CENTRE), atol=0.5)
    assert m.voxel_count == int(inside.sum())


def test_ellipsoid_oblique_in_plane():
    # semi-axes 20 (rotated 30 degrees in the axial plane), 10 in-plane, 7 superior-inferior
    axes = np.array([[np.cos(np.radians(30)), -np.sin(np.radians(30)), 0], [np.sin(np.radians(30)), np.cos(np.radians(30)), 0], [0, 0, 1]])
    img = grid_image((24, 70, 70), (0.75, 0.75, 1.0), np.eye(3), CENTRE, fill=-800.0)
    inside = add_ellipsoid(img, CENTRE, (20.0, 10.0, 7.0), 60.0, axes=axes)
    img.array[inside] = np.where(np.arange(inside.sum()) % 2, 50.0, 70.0)
    (m,) = measure_lesions(img, inside)
    assert _close(m.volume_ml, 4 / 3 * np.pi * 20 * 10 * 7 / 1000)
    assert _close(m.longest_axial_mm, 40.0)
    assert _close(m.perpendicular_axial_mm, 20.0, rel=0.08)  # one voxel of 20 mm is 3.75 %
    assert _close(m.longest_3d_mm, 40.0)
    assert m.mean_hu == pytest.approx(60.0, abs=0.1) and m.sd_hu == pytest.approx(10.0, abs=0.1)


def test_two_lesions_largest_first_and_specks_removed():
    img = grid_image((30, 60, 60), (1.0, 1.0, 1.0), np.eye(3), (0, 0, 0), fill=-800.0)
    big = add_ellipsoid(img, (-10, 0, 0), (8, 8, 8), 30.0)
    small = add_ellipsoid(img, (15, 10, 0), (4, 4, 4), 30.0)
    speck = np.zeros_like(big)
    speck[2, 2, 2] = True
    prob = (big | small | speck).astype(np.float32) * 0.9
    mask = postprocess(prob, img.spacing, threshold=0.5, min_volume_mm3=10.0)
    assert not mask[2, 2, 2]
    ms = measure_lesions(img, mask)
    assert [m.label for m in ms] == [1, 2]
    assert ms[0].voxel_count == big.sum() and ms[1].voxel_count == small.sum()
    assert ms[0].centroid_ras[0] == pytest.approx(10.0, abs=0.5)  # L -10 -> R +10


def test_fill_holes_and_threshold():
    mask = np.zeros((9, 9, 9), np.uint8)
    mask[2:7, 2:7, 2:7] = 1
    mask[4, 4, 4] = 0
    assert fill_holes(mask)[4, 4, 4] == 1
    assert remove_specks(mask, (1, 1, 1), 1000.0).sum() == 0
    prob = np.full((5, 5, 5), 0.4, np.float32)
    assert postprocess(prob, (1, 1, 1), threshold=0.5).sum() == 0
    assert postprocess(prob, (1, 1, 1), threshold=0.3, min_volume_mm3=0).sum() == 125


def test_flat_and_thin_lesions():
    """One-slice and one-voxel-wide lesions (degenerate hulls) still measure, edge to edge."""
    img = grid_image((5, 80, 80), (0.5, 0.5, 3.0), np.eye(3), (0, 0, 0), fill=-800.0)
    flat = np.zeros(img.array.shape, bool)
    flat[2, 20:60, 10:70] = True  # 30 x 20 mm rectangle in one slice
    line = np.zeros(img.array.shape, bool)
    line[1, 5, 0:80] = True  # 40 mm long, one voxel wide
    (m,) = measure_lesions(img, flat)
    # the longest chord perpendicular to the diagonal crosses the centre: 2 * 10 * diagonal / 30
    assert _close(m.longest_axial_mm, np.hypot(30, 20)) and _close(m.perpendicular_axial_mm, 20 * np.hypot(30, 20) / 30)
    assert _close(m.longest_3d_mm, np.hypot(30, 20))
    (m,) = measure_lesions(img, line)
    assert _close(m.longest_axial_mm, 40.0) and m.perpendicular_axial_mm == pytest.approx(0.5, abs=0.3)
