"""Property-based geometry tests (hypothesis): any rotation, flip, permutation, spacing and origin."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from TextLesionSegLib.models.base import PreprocessingConfig
from TextLesionSegLib.pipeline.geometry import Image, lps_to_ras
from TextLesionSegLib.pipeline.preprocess import to_working_grid


@st.composite
def directions(draw) -> np.ndarray:
    """A proper or improper rotation: random unit quaternion, then a random permutation and flips."""
    q = np.array([draw(st.floats(-1, 1)) for _ in range(4)])
    if np.linalg.norm(q) < 1e-3:
        q = np.array([1.0, 0, 0, 0])
    w, x, y, z = q / np.linalg.norm(q)
    rot = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    perm = draw(st.permutations([0, 1, 2]))
    flips = np.array([draw(st.sampled_from([-1.0, 1.0])) for _ in range(3)])
    return rot[:, perm] * flips


spacings = st.tuples(*[st.floats(0.3, 6.0) for _ in range(3)])
origins = st.tuples(*[st.floats(-300, 300) for _ in range(3)]).map(np.array)


@settings(max_examples=60, deadline=None)
@given(directions(), spacings, origins, st.tuples(*[st.floats(-50, 50) for _ in range(3)]))
def test_point_round_trips(direction, spacing, origin, kji):
    img = Image(array=np.zeros((4, 5, 6), np.int16), spacing=spacing, origin=origin, direction=direction)
    kji = np.array(kji)
    np.testing.assert_allclose(img.lps_to_kji(img.kji_to_lps(kji)), kji, atol=1e-6)
    np.testing.assert_allclose(img.ras_to_kji(img.kji_to_ras(kji)), kji, atol=1e-6)
    np.testing.assert_allclose(img.kji_to_ras(kji), lps_to_ras(img.kji_to_lps(kji)), atol=1e-9)
    back = Image.from_ijk_to_ras(img.array, img.ijk_to_ras())
    np.testing.assert_allclose(back.spacing, spacing, rtol=1e-9)
    np.testing.assert_allclose(back.direction, direction, atol=1e-9)
    np.testing.assert_allclose(back.origin, origin, atol=1e-9)
    via_sitk = Image.from_sitk(img.to_sitk())
    np.testing.assert_allclose(via_sitk.kji_to_lps(kji), img.kji_to_lps(kji), atol=1e-6)


@settings(max_examples=12, deadline=None)
@given(directions(), st.tuples(*[st.floats(0.8, 2.5) for _ in range(3)]))
def test_blob_survives_working_grid(direction, spacing):
    """A bright blob anywhere in any geometry: forward to the working grid and back, it stays put."""
    img = Image(array=np.full((14, 16, 18), -1000.0, np.float32), spacing=spacing, origin=(5.0, -7.0, 3.0),
                direction=direction)
    centre = np.array([6, 8, 9])
    img.array[tuple(slice(c - 2, c + 3) for c in centre)] = 250.0
    cfg = PreprocessingConfig(spacing=(1.2, 1.2, 1.2), roi_size=(8, 8, 8), crop_foreground=True)
    tensor, grid = to_working_grid(img, cfg)
    # reorientation only permutes and flips axes (no rotation, so no interpolation from it)
    signed_perm = np.abs(direction.T @ grid.working.direction)
    np.testing.assert_allclose(np.sort(signed_perm, axis=0), [[0, 0, 0], [0, 0, 0], [1, 1, 1]], atol=1e-6)
    work = tensor[0, 0].numpy()
    w_centroid = grid.working.kji_to_lps((np.argwhere(work > 0.5)).mean(axis=0))
    true_lps = img.kji_to_lps(centre.astype(float))
    assert np.linalg.norm(w_centroid - true_lps) < 0.5 * np.linalg.norm(grid.working.spacing) + 0.5 * np.linalg.norm(spacing)
    back = grid.to_input_grid(tensor[0])[0]
    idx = np.argwhere(back > 0.5).mean(axis=0)
    assert np.linalg.norm(img.kji_to_lps(idx) - true_lps) < 0.5 * np.linalg.norm(spacing)
