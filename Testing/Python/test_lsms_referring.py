"""LSMS's 3D read-out and training samples: candidates, ranking by side / size / ordinal words,
left-right augmentation, referring sentences. No network is trained here (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from TextLesionSegLib.models.lsms.referring import (
    BODY_LEVEL,
    body_midline_i,
    find_candidates,
    rank_candidates,
    select_lesion,
)
from TextLesionSegLib.models.lsms.slices import ReferringCase, ReferringSliceDataset, swap_left_right
from TextLesionSegLib.models.lsms.training import sentences_for, unambiguous
from TextLesionSegLib.pipeline.geometry import Image
from TextLesionSegLib.query.types import LesionQuery

SPACING = (2.0, 2.0, 5.0)


def _ball(shape, centre, radius):
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return ((k - centre[0]) * 2.5) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= radius**2


@pytest.fixture()
def scene():
    """Working-grid body with three blobs: big at patient right (low I), small at patient left
    (high I, more superior), medium at patient left (inferior)."""
    shape = (20, 64, 96)
    volume = np.zeros(shape, np.float32)
    volume[:, 8:56, 8:88] = 0.75  # body, symmetric about I = 47.5
    prob = np.zeros(shape, np.float32)
    blobs = {"big_right": ((10, 32, 25), 9), "small_left": ((15, 30, 70), 4), "mid_left": ((5, 34, 72), 6.5)}
    masks = {}
    for name, (c, r) in blobs.items():
        masks[name] = _ball(shape, c, r)
        prob[masks[name]] = 0.9
    return volume, prob, masks


def _chosen(prob, volume, query, masks):
    out, ranked = select_lesion(prob, volume, query, SPACING, threshold=0.5, min_mm3=10)
    picked = [name for name, m in masks.items() if (out[m] > 0.5).mean() > 0.9]
    assert len(picked) == 1, picked
    assert all((out[m] > 0.5).sum() == 0 for name, m in masks.items() if name != picked[0])
    return picked[0]


def test_candidates_are_3d_components_without_specks(scene) -> None:
    volume, prob, masks = scene
    prob = prob.copy()
    prob[0, 0, 0] = 0.95  # a one-voxel speck
    labels, cands = find_candidates(prob, volume, SPACING, 0.5, min_mm3=30)  # speck: 20 mm³
    assert len(cands) == 3 and labels[0, 0, 0] == 0
    vols = sorted(c.volume_mm3 for c in cands)
    assert vols[-1] == pytest.approx(masks["big_right"].sum() * 20.0)


def test_body_midline_and_side_follow_the_lps_working_grid(scene) -> None:
    volume, prob, masks = scene
    assert body_midline_i(volume) == pytest.approx(47.5, abs=0.01)
    # "left" picks a blob at larger I (patient left on the LPS grid), "right" the one at small I
    assert _chosen(prob, volume, LesionQuery(text="", side="right"), masks) == "big_right"
    assert _chosen(prob, volume, LesionQuery(text="", side="left", ordinal="larger"), masks) == "mid_left"


@pytest.mark.parametrize("ordinal, expected", [
    ("larger", "big_right"), ("smallest", "small_left"), ("second", "mid_left"),
    ("most inferior", "mid_left"), ("most superior", "small_left"),
])
def test_ordinal_words_choose_among_candidates(scene, ordinal, expected) -> None:
    volume, prob, masks = scene
    assert _chosen(prob, volume, LesionQuery(text="", ordinal=ordinal), masks) == expected


def test_size_and_probability_rank_candidates(scene) -> None:
    volume, prob, masks = scene
    assert _chosen(prob, volume, LesionQuery(text="", size_mm=[8.0]), masks) == "small_left"
    prob = prob.copy()
    prob[masks["mid_left"]] = 0.99  # no words: the most probable lesion wins
    prob[masks["big_right"]] = 0.6
    assert _chosen(prob, volume, LesionQuery(text=""), masks) == "mid_left"


def test_sub_location_breaks_ties_but_does_not_overrule_the_model(scene) -> None:
    volume, prob, masks = scene
    prob = prob.copy()
    prob[masks["big_right"]] = 0.0  # two left blobs: small_left superior, mid_left inferior
    upper, lower = LesionQuery(text="", sub_location="upper lobe"), LesionQuery(text="", sub_location="lower lobe")
    assert _chosen(prob, volume, upper, masks) == "small_left"  # equal probabilities: the words decide
    assert _chosen(prob, volume, lower, masks) == "mid_left"
    prob[masks["small_left"]] = 0.7  # mid_left clearly more probable: "upper" must not move the pick
    assert _chosen(prob, volume, upper, masks) == "mid_left"


def test_nothing_above_threshold_gives_an_empty_answer(scene) -> None:
    volume, prob, _ = scene
    out, ranked = select_lesion(prob * 0.3, volume, LesionQuery(text="x"), SPACING)
    assert ranked == [] and not out.any()


def test_lung_context_prefers_lesions_in_aerated_lung() -> None:
    shape = (6, 40, 80)
    volume = np.full(shape, 0.75, np.float32)
    volume[:, 5:35, 45:75] = 0.1  # left lung, lung density
    prob = np.zeros(shape, np.float32)
    lung_blob, wall_blob = _ball(shape, (3, 20, 60), 4), _ball(shape, (3, 20, 25), 4)
    prob[lung_blob] = 0.8
    prob[wall_blob] = 0.85
    out, ranked = select_lesion(prob, volume, LesionQuery(text="", organ="lung"), SPACING, min_mm3=10)
    assert (out[lung_blob] > 0.5).all() and not (out[wall_blob] > 0.5).any()
    assert ranked[0].lung_context > 0.5 > ranked[1].lung_context
    assert BODY_LEVEL == pytest.approx(500 / 1400)


def test_swap_left_right_keeps_case() -> None:
    assert swap_left_right("Left lung; the RIGHT kidney, leftover") == "Right lung; the LEFT kidney, leftover"


def test_flip_augmentation_moves_the_lesion_and_swaps_the_words() -> None:
    volume = np.zeros((3, 32, 32), np.float32)
    inst = np.zeros((3, 32, 32), np.int32)
    inst[:, 10:14, 24:28] = 1  # patient left (large I)
    case = ReferringCase(volume, inst, {1: ["a mass in the left lung"]})
    ds = ReferringSliceDataset([case], context=1, size=32, train=True, negatives_per_lesion=0, flip_probability=1.0)
    sample = ds[0]
    cols = np.nonzero(sample["label"][0].numpy().any(axis=0))[0]
    assert sample["text"] == "a mass in the right lung" and cols.max() < 16
    val = ReferringSliceDataset([case], context=1, size=32, train=False)[0]
    assert val["text"] == "a mass in the left lung" and val["label"][0, 10:14, 24:28].all()


def test_lesion_free_slices_are_sampled_with_an_empty_target() -> None:
    """``background_per_lesion`` adds slices holding no lesion (inference sees them all); training
    redraws them among the lesion-free slices, validation keeps fixed ones; 0 adds none."""
    volume = np.random.default_rng(0).random((12, 32, 32)).astype(np.float32)
    inst = np.zeros((12, 32, 32), np.int32)
    inst[2:4, 10:14, 10:14] = 1
    inst[3:5, 20:24, 20:24] = 2
    case = ReferringCase(volume, inst, {1: ["first"], 2: ["second"]})
    free = set(range(5, 12)) | {0, 1}
    plain = ReferringSliceDataset([case], context=1, size=32, train=False, negatives_per_lesion=1)
    assert not plain.background and all(k not in free for _, _, k in plain.index)
    val = ReferringSliceDataset([case], context=1, size=32, train=False, negatives_per_lesion=1,
                                background_per_lesion=3)
    assert len(val) == len(plain) + 6 and len(val.background) == 6
    picked = [val.index[n][2] for n in sorted(val.background)]
    assert set(picked) <= free and len(set(picked)) > 3  # spread, and not the same for both lesions
    for n in val.background:
        assert val[n]["label"].sum() == 0
    train = ReferringSliceDataset([case], context=1, size=32, train=True, negatives_per_lesion=1,
                                  background_per_lesion=3)
    n = min(train.background)
    drawn = set()
    for _ in range(30):
        sample = train[n]
        assert sample["label"].sum() == 0
        k = int(np.flatnonzero([np.allclose(sample["image"][1].numpy(), volume[kk]) or
                                np.allclose(sample["image"][1].numpy(), volume[kk][:, ::-1]) for kk in range(12)])[0])
        drawn.add(k)
    assert drawn <= free and len(drawn) > 3


def test_referring_sentences_are_unambiguous_within_a_scan() -> None:
    a = sentences_for({"report": "Report A", "organ": "lung", "side": "left", "lesion_type": "lung cancer",
                       "density": "isodense", "shape": "irregular"})
    b = sentences_for({"report": "Report B", "organ": "lung", "side": "left", "lesion_type": "pulmonary nodule",
                       "density": "hyperdense", "shape": "round-like"})
    assert "a mass in the left lung" in a and "a mass in the left lung" in b
    out = unambiguous({1: a, 2: b})
    assert out[1][0] == "Report A" and "a mass in the left lung" not in out[1] + out[2]
    assert "irregular isodense lesion in the left lung" not in out[2]


def test_side_words_mean_patient_sides_in_physical_space() -> None:
    """The working grid's I axis is patient-left whatever the file's direction (E1's contract);
    the side rule relies on it, so check it here through the real preprocessing."""
    from TextLesionSegLib.models.lsms.config import tiny_config
    from TextLesionSegLib.models.lsms.training import preprocessing_for
    from TextLesionSegLib.pipeline.preprocess import to_working_grid

    for direction in (np.eye(3), np.diag([-1.0, -1.0, 1.0])):
        img = Image(np.full((4, 40, 40), -1000.0, np.float32), (4.0, 4.0, 5.0), direction=direction)
        lps = img.kji_to_lps(np.argwhere(np.ones(img.array.shape, bool))).reshape(img.array.shape + (3,))
        img.array[np.abs(lps[..., 0] - lps[..., 0].mean()) < 60] = 40.0  # body
        img.array[np.hypot(lps[..., 0] - lps[..., 0].mean() - 40, lps[..., 1] - lps[..., 1].mean()) < 12] = 300.0
        tensor, grid = to_working_grid(img, preprocessing_for(tiny_config(spacing=(4.0, 4.0, 5.0))))
        vol = tensor[0, 0].numpy()
        bright = np.argwhere(vol > 0.9)
        assert bright[:, 2].mean() > body_midline_i(vol) + 5  # patient left = larger I
