"""The body's frame and position channels (``pipeline.body_frame``): they follow the patient,
not the file — a flipped, permuted or oblique storage of one scan gives the same coordinates at
the same physical point — and "left" is the patient's left."""

from __future__ import annotations

import numpy as np
import pytest

from TextLesionSegLib.models.base import PreprocessingConfig
from TextLesionSegLib.pipeline.body_frame import body_frame, body_level
from TextLesionSegLib.pipeline.geometry import Image
from TextLesionSegLib.pipeline.preprocess import to_working_grid

WINDOW = (-175.0, 250.0)
CFG = PreprocessingConfig(spacing=(2.0, 2.0, 2.0), hu_window=WINDOW, roi_size=(16, 16, 16))


def _phantom() -> Image:
    """An elliptic "body" (40 HU) in air, off-centre in its field of view, with a dark "lung"
    in it and a table slab below it; LPS identity, 2 mm voxels (K, J, I) = (30, 50, 60)."""
    k, j, i = np.mgrid[:30, :50, :60]
    hu = np.full((30, 50, 60), -1000.0, np.float32)
    body = ((i - 34) / 20.0) ** 2 + ((j - 22) / 14.0) ** 2 < 1
    hu[body & (k >= 4) & (k < 26)] = 40.0
    hu[(((i - 40) / 6.0) ** 2 + ((j - 20) / 6.0) ** 2 < 1) & (k >= 8) & (k < 20)] = -800.0  # a lung
    hu[(j >= 44) & (j < 47)] = 100.0  # table, apart from the body
    return Image(array=hu, spacing=(2.0, 2.0, 2.0), origin=np.array([-60.0, -40.0, 10.0]), direction=np.eye(3))


def _stored(image: Image, flips: tuple[bool, bool, bool], perm: tuple[int, int, int], rotate: float = 0.0) -> Image:
    """The same patient stored differently: array axes flipped/permuted (direction adjusted so
    every voxel keeps its physical place), optionally under an oblique rotation about S."""
    arr = image.array
    d = image.direction.copy()
    origin = image.origin.copy()
    for axis_kji, flip in enumerate(flips):
        if flip:
            axis_ijk = 2 - axis_kji
            origin = origin + d[:, axis_ijk] * image.spacing[axis_ijk] * (arr.shape[axis_kji] - 1)
            d[:, axis_ijk] = -d[:, axis_ijk]
            arr = np.flip(arr, axis=axis_kji)
    arr = np.ascontiguousarray(np.transpose(arr, perm))
    ijk_perm = [2 - p for p in perm[::-1]]
    d = d[:, ijk_perm]
    spacing = tuple(image.spacing[p] for p in ijk_perm)
    if rotate:
        c, s = np.cos(rotate), np.sin(rotate)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        d = rot @ d
        origin = rot @ origin
    return Image(array=arr, spacing=spacing, origin=origin, direction=d)


def _coords_at(image: Image, lps: np.ndarray) -> np.ndarray:
    vol, grid = to_working_grid(image, CFG)
    frame = body_frame(vol[0, 0].numpy(), body_level(WINDOW))
    kji = grid.working.lps_to_kji(lps)
    return frame.normalised(kji)


def test_frame_centres_on_the_body_not_the_field_of_view():
    img = _phantom()
    vol, grid = to_working_grid(img, PreprocessingConfig(spacing=None, hu_window=WINDOW, roi_size=(8, 8, 8),
                                                         crop_foreground=False))
    frame = body_frame(vol[0, 0].numpy(), body_level(WINDOW))
    # body centre at i = 34, j = 22 (the lung inside and the separate table do not move it)
    assert frame.centre_kji[2] == pytest.approx(34, abs=1.5)
    assert frame.centre_kji[1] == pytest.approx(22, abs=1.5)
    assert frame.half_extent_kji[2] == pytest.approx(20, abs=2)
    assert frame.side((15, 22, 45)) == "left" and frame.side((15, 22, 25)) == "right"
    x, y, z = frame.normalised([(15, 22, 54)])[0]
    assert x == pytest.approx(1.0, abs=0.1) and abs(y) < 0.1


@pytest.mark.parametrize("flips,perm,rotate", [
    ((False, False, True), (0, 1, 2), 0.0),
    ((True, True, False), (0, 1, 2), 0.0),
    ((False, False, False), (2, 1, 0), 0.0),
    ((True, False, True), (1, 2, 0), 0.0),
    ((False, True, False), (0, 2, 1), 0.3),
])
def test_channels_follow_the_patient_through_any_storage(flips, perm, rotate):
    """Three physical points (left, right, posterior of the body) get the same body coordinates
    whatever the file's axis order, flips and (oblique) direction."""
    base = _phantom()
    points_kji = np.array([(15.0, 22.0, 48.0), (15.0, 22.0, 20.0), (15.0, 32.0, 34.0)])
    points = base.kji_to_lps(points_kji)
    want = _coords_at(base, points)
    stored = _stored(base, flips, perm, rotate)
    if rotate:  # the whole patient turned about the S axis: every point turns with it
        c, s = np.cos(rotate), np.sin(rotate)
        points = points @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]).T
    got = _coords_at(stored, points)
    np.testing.assert_allclose(got, want, atol=0.12)
    assert got[0, 0] > 0.4 and got[1, 0] < -0.4  # patient's left is x > 0, right x < 0
    assert got[2, 1] > 0.4  # posterior is y > 0


def test_channels_are_the_normalised_coordinates_of_each_voxel():
    frame = body_frame(np.pad(np.ones((10, 12, 14), np.float32), 3), 0.5)
    ch = frame.channels((2, 3, 4), (5, 6, 7))
    assert ch.shape == (3, 5, 6, 7) and ch.dtype == np.float32
    kji = np.array([2 + 4, 3 + 5, 4 + 6], float)
    np.testing.assert_allclose(ch[:, 4, 5, 6], frame.normalised(kji)[0], atol=1e-6)
    sl = frame.slice_channels(6, (8, 10), (5, 7))
    np.testing.assert_allclose(sl, frame.channels((6, 8, 10), (1, 5, 7))[:, 0])


def test_empty_volume_falls_back_to_its_own_centre():
    frame = body_frame(np.zeros((8, 10, 12), np.float32), 0.5)
    assert frame.centre_kji == (3.5, 4.5, 5.5)
    assert body_level((-1000.0, 400.0)) == pytest.approx(500 / 1400)
    assert 0 < body_level(WINDOW) < 0.02
