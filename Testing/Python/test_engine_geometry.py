"""A sphere at a known physical point comes back at that point: file IO and the working grid."""

from __future__ import annotations

import numpy as np
import pytest

from test_engine_helpers import DIRECTIONS, add_ellipsoid, grid_image, mask_centroid_lps
from TextLesionSegLib.models.base import PreprocessingConfig
from TextLesionSegLib.pipeline.io import read_image, write_image
from TextLesionSegLib.pipeline.preprocess import to_working_grid, to_working_grid_label

SPACING = (0.9, 1.3, 2.5)
CENTRE = np.array([12.0, -30.0, 41.0])
SPHERE_AT = CENTRE + np.array([4.0, -3.0, 5.0])


def _sphere_image(name: str):
    img = grid_image((24, 40, 44), SPACING, DIRECTIONS[name], CENTRE)
    inside = add_ellipsoid(img, SPHERE_AT, (9.0, 9.0, 9.0), 80.0)
    return img, inside


def _half_voxel(spacing) -> float:
    return 0.5 * float(np.linalg.norm(spacing))


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz", ".mha"])
def test_file_round_trip_keeps_geometry(tmp_path, name, suffix):
    img, inside = _sphere_image(name)
    path = write_image(img, tmp_path / f"sphere{suffix}")
    back = read_image(path)
    assert back.array.shape == img.array.shape
    np.testing.assert_allclose(back.spacing, SPACING, atol=1e-5)
    np.testing.assert_allclose(back.direction, img.direction, atol=1e-5)
    np.testing.assert_allclose(back.origin, img.origin, atol=1e-4)
    centroid = mask_centroid_lps(back, back.array > 0)
    assert np.linalg.norm(centroid - SPHERE_AT) < _half_voxel(SPACING)
    assert back.metadata["source_path"].endswith(suffix)


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
@pytest.mark.parametrize("crop", [True, False])
def test_working_grid_round_trip(name, crop):
    img, inside = _sphere_image(name)
    cfg = PreprocessingConfig(spacing=(1.5, 1.5, 1.5), hu_window=(-175, 250), roi_size=(32, 32, 32), crop_foreground=crop)
    tensor, grid = to_working_grid(img, cfg)
    assert tensor.shape[:2] == (1, 1) and tuple(tensor.shape[2:]) == grid.working.array.shape
    assert all(s >= r for s, r in zip(tensor.shape[2:], cfg.roi_size))
    assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0
    # the working grid is oriented closest to identity in LPS
    assert np.all(np.diag(grid.working.direction) > 0.8)
    # sphere centre on the working grid, physically
    work_mask = tensor[0, 0].numpy() > 0.3
    assert np.linalg.norm(mask_centroid_lps(grid.working, work_mask) - SPHERE_AT) < _half_voxel(grid.working.spacing)
    # and back onto the input grid
    back = grid.to_input_grid(tensor[0])
    assert back.shape == (1,) + img.array.shape
    mask = back[0] > 0.3
    assert np.linalg.norm(mask_centroid_lps(img, mask) - SPHERE_AT) < _half_voxel(SPACING)
    dice = 2 * np.sum(mask & inside) / (mask.sum() + inside.sum())
    assert dice > 0.85


def test_label_to_working_grid_matches_image():
    img, inside = _sphere_image("oblique")
    label = img.with_array(inside.astype(np.uint8))
    cfg = PreprocessingConfig(spacing=(1.5, 1.5, 1.5), roi_size=(16, 16, 16), crop_foreground=True)
    tensor, grid = to_working_grid(img, cfg)
    lab = to_working_grid_label(label, grid)
    assert lab.shape == tuple(tensor.shape[2:]) and lab.dtype == np.uint8
    assert set(np.unique(lab)) <= {0, 1}
    img_mask = tensor[0, 0].numpy() > 0.3
    dice = 2 * np.sum(img_mask & (lab > 0)) / (img_mask.sum() + lab.sum())
    assert dice > 0.85


def test_hu_window_and_padding():
    img = grid_image((4, 10, 12), (1.0, 1.0, 1.0), np.eye(3), (0, 0, 0), fill=-1000.0)
    img.array[2, 5, 6] = 250.0
    img.array[1, 5, 6] = 37.5
    cfg = PreprocessingConfig(spacing=None, hu_window=(-175, 250), roi_size=(8, 16, 16), crop_foreground=False)
    tensor, grid = to_working_grid(img, cfg)
    assert tuple(tensor.shape[2:]) == (8, 16, 16)
    assert grid.pad_before_kji == (2, 3, 2)
    vol = tensor[0, 0].numpy()
    assert vol[4, 8, 8] == pytest.approx(1.0)
    assert vol[3, 8, 8] == pytest.approx(0.5)
    assert vol.min() == 0.0
    # padding is undone exactly: same-spacing round trip returns the windowed values
    back = grid.to_input_grid(tensor[0])[0]
    np.testing.assert_allclose(back, np.clip((img.array + 175) / 425, 0, 1), atol=1e-5)


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_back_to_input_grid_resamples_only_the_maps_support_with_the_same_result(name):
    """Only the box where a map is non-zero is resampled: same values as a full resampling."""
    import SimpleITK as sitk

    from TextLesionSegLib.pipeline.preprocess import _resample

    img, _ = _sphere_image(name)
    cfg = PreprocessingConfig(spacing=(1.5, 1.5, 1.5), hu_window=(-175, 250), roi_size=(16, 16, 16), crop_foreground=False)
    tensor, grid = to_working_grid(img, cfg)
    rng = np.random.default_rng(0)
    maps = np.zeros((3,) + grid.working.array.shape, np.float32)
    maps[0, 3:7, 5:9, 4:10] = rng.random((4, 4, 6))  # a small blob
    maps[1, -2:, -3:, -1:] = 1.0  # at the grid's far corner
    back = grid.to_input_grid(maps)  # map 2 stays empty
    for q in range(3):
        src = grid.working.to_sitk(maps[q])
        full = sitk.GetArrayFromImage(_resample(src, grid.input, sitk.sitkLinear, 0.0, src.GetPixelID()))
        np.testing.assert_allclose(back[q], full, rtol=0, atol=1e-6)  # equal up to float rounding
    assert back[0].any() and back[1].any() and not back[2].any()
    assert np.count_nonzero(back[0]) < 0.2 * back[0].size  # the blob stays small, not smeared
