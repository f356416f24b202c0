"""Simulated clicks on hand-made masks: the first click at the most interior voxel, each next one
at the centre of the largest error, positive for a miss and negative for a false piece; click maps."""

from __future__ import annotations

import numpy as np

from TextLesionSegLib.training.clicks import (Click, click_maps, dice, farthest_from_boundary, first_click, next_click,
                                             random_inner_click)


def _box(shape, start, stop) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(start, stop))] = True
    return m


def test_first_click_is_the_most_interior_voxel_of_an_elongated_lesion():
    ref = _box((20, 20, 40), (5, 5, 2), (14, 14, 30))  # 9 x 9 x 28 voxels: centre slab at k,j = 9
    click = first_click(ref)
    assert click is not None and click.positive
    k, j, i = click.kji
    assert (k, j) == (9, 9) and 6 <= i <= 25 and ref[click.kji]
    # an L-shaped lesion: the click falls in the thick arm, never in the thin one or outside
    ell = _box((30, 30, 30), (2, 2, 2), (20, 20, 20)) | _box((30, 30, 30), (2, 2, 20), (5, 5, 29))
    kji = farthest_from_boundary(ell)
    assert ell[kji] and kji[2] < 20


def test_spacing_makes_the_distance_physical():
    ref = _box((10, 30, 30), (2, 5, 5), (8, 25, 25))  # 6 slices thick, 20 x 20 in-plane
    # with 5 mm slices the lesion is 30 mm thick and 20 mm wide: every interior slice ties in k
    kji_iso = farthest_from_boundary(ref)
    kji_thick = farthest_from_boundary(ref, spacing=(1.0, 1.0, 5.0))
    assert ref[kji_iso] and ref[kji_thick]
    assert kji_thick[1] in (14, 15) and kji_thick[2] in (14, 15)


def test_empty_mask_gives_no_click():
    assert first_click(np.zeros((5, 5, 5), bool)) is None
    assert next_click(np.zeros((5, 5, 5), bool), np.zeros((5, 5, 5), bool)) is None


def test_next_click_is_positive_in_the_largest_miss():
    ref = _box((30, 30, 30), (5, 5, 5), (25, 25, 25))
    pred = ref.copy()
    pred[5:25, 5:25, 15:25] = False  # half the lesion missed: a 20 x 20 x 10 false negative
    pred |= _box((30, 30, 30), (0, 0, 0), (3, 3, 3))  # a small false positive (27 voxels)
    click = next_click(pred, ref)
    assert click == Click(click.kji, True)
    assert ref[click.kji] and not pred[click.kji] and 17 <= click.kji[2] <= 22


def test_next_click_is_negative_in_the_largest_false_piece():
    ref = _box((30, 30, 30), (10, 10, 10), (20, 20, 20))
    pred = ref | _box((30, 30, 30), (0, 0, 0), (8, 8, 8))  # a big leak into background
    pred[12, 12, 12] = False  # and a one-voxel miss
    click = next_click(pred, ref)
    assert click is not None and not click.positive
    assert click.kji == (3, 3, 3) or (pred[click.kji] and not ref[click.kji] and max(click.kji) <= 7)


def test_clicks_correct_a_mask_until_it_matches():
    ref = _box((24, 24, 24), (4, 4, 4), (16, 16, 16))
    pred = np.zeros_like(ref)
    for _ in range(20):  # a perfect "model": each click fixes the error region it lands in
        click = next_click(pred, ref)
        if click is None:
            break
        from scipy.ndimage import label

        err = (ref & ~pred) if click.positive else (pred & ~ref)
        labels, _ = label(err)
        region = labels == labels[click.kji]
        pred = pred | region if click.positive else pred & ~region
    assert dice(pred, ref) == 1.0


def test_random_inner_click_stays_well_inside():
    ref = _box((20, 20, 20), (2, 2, 2), (18, 18, 18))
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = random_inner_click(ref, rng, min_share=0.5)
        assert ref[c.kji] and all(5 <= v <= 14 for v in c.kji)


def test_click_maps_are_gaussians_of_the_nearest_click_per_kind():
    clicks = [Click((5, 5, 5), True), Click((5, 5, 15), True), Click((0, 19, 0), False)]
    maps = click_maps((10, 20, 20), clicks, sigma=2.0)
    assert maps.shape == (2, 10, 20, 20) and maps.dtype == np.float32
    assert maps[0, 5, 5, 5] == 1.0 and maps[0, 5, 5, 15] == 1.0 and maps[1, 0, 19, 0] == 1.0
    np.testing.assert_allclose(maps[0, 5, 5, 7], np.exp(-4 / 8), rtol=1e-6)  # 2 voxels from the nearest
    assert maps[0, 0, 19, 0] == 0.0 and maps[1, 5, 5, 5] == 0.0  # each kind in its own channel
    assert click_maps((4, 4, 4), []).max() == 0.0
