"""Property-based geometry tests (issue 10 "Contract"): random direction matrices, spacings and
origins. ``pipeline.geometry`` must agree with SimpleITK (an independent implementation), and the
working grid must map results back onto the input's own voxels."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from TextLesionSegLib.models.base import PreprocessingConfig
from TextLesionSegLib.pipeline.geometry import Image, lps_to_ras
from TextLesionSegLib.pipeline.preprocess import to_working_grid

FLOATS = dict(allow_nan=False, allow_infinity=False)


@st.composite
def directions(draw) -> np.ndarray:
    """Any proper or improper rotation: signed axis permutations and oblique rotations."""
    perm = draw(st.permutations([0, 1, 2]))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=3, max_size=3))
    base = np.eye(3)[:, perm] * np.asarray(signs)
    if draw(st.booleans()):
        q = np.array(draw(st.lists(st.floats(-1, 1, **FLOATS), min_size=4, max_size=4)))
        if np.linalg.norm(q) > 0.1:
            w, x, y, z = q / np.linalg.norm(q)
            rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
            base = rot @ base
    # Entries like 1e-298 (products of subnormal quaternion parts) are left in on purpose:
    # Image snaps them to 0 (test_subnormal_direction_entries_do_not_zero_the_result).
    return base


spacings = st.tuples(*[st.floats(0.3, 6.0, **FLOATS)] * 3)
origins = st.tuples(*[st.floats(-500.0, 500.0, **FLOATS)] * 3)


def _image(shape, spacing, origin, direction, array=None) -> Image:
    return Image(array=np.zeros(shape, np.int16) if array is None else array, spacing=spacing,
                 origin=np.asarray(origin), direction=direction)


@settings(max_examples=150, deadline=None)
@given(directions(), spacings, origins, st.tuples(*[st.floats(-5.0, 40.0, **FLOATS)] * 3))
def test_index_to_physical_agrees_with_simpleitk(direction, spacing, origin, kji):
    img = _image((4, 5, 6), spacing, origin, direction)
    reference = img.to_sitk().TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in kji[::-1]))
    lps = img.kji_to_lps(np.array(kji))
    np.testing.assert_allclose(lps, reference, atol=1e-6 * (1 + np.abs(reference).max()))
    np.testing.assert_allclose(img.lps_to_kji(lps), kji, atol=1e-6 * (1 + max(abs(v) for v in kji)))
    np.testing.assert_allclose(img.kji_to_ras(np.array(kji)), lps_to_ras(reference), atol=1e-6 * (1 + np.abs(reference).max()))
    m = img.ijk_to_ras()
    np.testing.assert_allclose((m @ np.r_[np.array(kji)[::-1], 1.0])[:3], lps_to_ras(reference), atol=1e-6 * (1 + np.abs(reference).max()))


@settings(max_examples=150, deadline=None)
@given(directions(), spacings, origins)
def test_slicer_matrix_round_trip(direction, spacing, origin):
    img = _image((3, 4, 5), spacing, origin, direction)
    back = Image.from_ijk_to_ras(img.array, img.ijk_to_ras())
    np.testing.assert_allclose(back.spacing, spacing, rtol=1e-9)
    np.testing.assert_allclose(back.origin, origin, atol=1e-9)
    np.testing.assert_allclose(back.direction, direction, atol=1e-9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(directions(), spacings, origins, st.tuples(*[st.integers(2, 9)] * 3), st.integers(0, 2**31 - 1),
       st.tuples(*[st.integers(1, 12)] * 3))
def test_working_grid_without_resampling_returns_every_voxel(direction, spacing, origin, shape, seed, roi):
    """Reorientation and padding are exact: each input voxel comes back with its own value."""
    values = np.random.default_rng(seed).integers(-1000, 1000, shape).astype(np.int16)
    img = _image(shape, spacing, origin, direction, values)
    cfg = PreprocessingConfig(spacing=None, hu_window=(-1000.0, 1000.0), roi_size=roi, crop_foreground=False)
    tensor, grid = to_working_grid(img, cfg)
    assert all(s >= r for s, r in zip(tensor.shape[2:], roi))
    back = grid.to_input_grid(tensor[0].numpy(), nearest=True)[0]
    np.testing.assert_allclose(back, (values + 1000.0) / 2000.0, atol=1e-6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(directions(), st.tuples(*[st.floats(0.8, 3.0, **FLOATS)] * 3), origins,
       st.tuples(*[st.floats(-6.0, 6.0, **FLOATS)] * 3))
def test_a_sphere_comes_back_where_it_was_after_resampling(direction, spacing, origin, offset):
    """Resampled to 1.5 mm and back: the sphere's centre moves less than half an input voxel."""
    fov = 40.0
    shape = tuple(int(np.ceil(fov / s)) for s in spacing[::-1])
    img = _image(shape, spacing, origin, direction)
    centre_kji = (np.asarray(shape) - 1) / 2.0
    centre = img.kji_to_lps(centre_kji) + np.asarray(offset)
    kk, jj, ii = np.indices(shape)
    points = img.kji_to_lps(np.stack([kk, jj, ii], axis=-1).astype(float))
    inside = np.linalg.norm(points - centre, axis=-1) <= 8.0
    img.array[:] = np.where(inside, 200, -1000).astype(np.int16)
    cfg = PreprocessingConfig(spacing=(1.5, 1.5, 1.5), hu_window=(-1000.0, 200.0), roi_size=(8, 8, 8),
                              crop_foreground=False)
    tensor, grid = to_working_grid(img, cfg)
    back = grid.to_input_grid(tensor[0].numpy())[0] > 0.5
    got = points[back].mean(axis=0)
    want = points[inside].mean(axis=0)
    assert np.linalg.norm(got - want) < 0.5 * float(np.linalg.norm(spacing)), (got, want)
    overlap = (back & inside).sum() / inside.sum()
    assert overlap > 0.8 and back.sum() < 1.25 * inside.sum()


def test_simpleitk_reference_is_itself_consistent():
    """Guard: the reference used above reads direction columns as index axes, as geometry.py does."""
    image = sitk.Image(4, 5, 6, sitk.sitkInt16)
    image.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))
    image.SetSpacing((2.0, 3.0, 4.0))
    assert image.TransformIndexToPhysicalPoint((1, 0, 0)) == (0.0, -2.0, 0.0)


def test_subnormal_direction_entries_do_not_zero_the_result():
    """A direction with a 1e-298 entry once made ITK's resampler return zeros silently."""
    direction = np.eye(3)
    direction[0, 1] = 1e-298
    values = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    img = _image((4, 5, 6), (1.0, 1.0, 1.0), (0, 0, 0), direction, values)
    assert img.direction[0, 1] == 0.0
    cfg = PreprocessingConfig(spacing=(0.9, 0.9, 0.9), hu_window=(0.0, 200.0), roi_size=(1, 1, 1), crop_foreground=False)
    tensor, grid = to_working_grid(img, cfg)
    back = grid.to_input_grid(tensor[0].numpy())[0]
    assert np.abs(back).max() > 0.5  # not silently zero
