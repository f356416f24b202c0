"""LSMS's training samples: left-right augmentation, lesion-free slices, absent descriptions,
position channels, referring sentences. No network is trained here (fast). The 3D read-out
(candidates, ranking, "not found") is the pipeline's shared selection: ``test_selection.py``."""

from __future__ import annotations

import numpy as np
import pytest

from TextLesionSegLib.models.lsms.slices import ReferringCase, ReferringSliceDataset, swap_left_right
from TextLesionSegLib.models.lsms.training import sentences_for, unambiguous
from TextLesionSegLib.pipeline.geometry import Image

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
    from TextLesionSegLib.pipeline.body_frame import body_frame, body_level
    from TextLesionSegLib.pipeline.preprocess import to_working_grid

    for direction in (np.eye(3), np.diag([-1.0, -1.0, 1.0])):
        img = Image(np.full((4, 40, 40), -1000.0, np.float32), (4.0, 4.0, 5.0), direction=direction)
        lps = img.kji_to_lps(np.argwhere(np.ones(img.array.shape, bool))).reshape(img.array.shape + (3,))
        img.array[np.abs(lps[..., 0] - lps[..., 0].mean()) < 60] = 40.0  # body
        img.array[np.hypot(lps[..., 0] - lps[..., 0].mean() - 40, lps[..., 1] - lps[..., 1].mean()) < 12] = 300.0
        tensor, grid = to_working_grid(img, preprocessing_for(tiny_config(spacing=(4.0, 4.0, 5.0))))
        vol = tensor[0, 0].numpy()
        bright = np.argwhere(vol > 0.9)
        frame = body_frame(vol, body_level(preprocessing_for(tiny_config()).hu_window))
        assert bright[:, 2].mean() > frame.centre_kji[2] + 5  # patient left = larger I
        assert frame.side(bright.mean(axis=0)) == "left"


def test_absent_descriptions_are_paired_with_lesion_slices_and_an_empty_target() -> None:
    volume = np.full((6, 40, 40), 0.6, np.float32)
    inst = np.zeros((6, 40, 40), np.int32)
    inst[2:4, 10:16, 26:32] = 1
    case = ReferringCase(volume, inst, {1: ["a round lesion in the left kidney"]}, absent=["a lesion in the right kidney"])
    ds = ReferringSliceDataset([case], context=1, size=40, train=False, negatives_per_lesion=0, absent_per_lesion=2)
    assert len(ds.absent) == 2 and len(ds) == 4
    for n in range(len(ds)):
        sample = ds[n]
        if n in ds.absent:
            assert sample["text"] == "a lesion in the right kidney" and sample["label"].sum() == 0
        else:
            assert sample["label"].sum() > 0 and "left" in sample["text"]
        k = ds.index[n][2]
        assert inst[k].any()  # absent descriptions sit on slices that show a lesion


def test_position_channels_flip_with_the_image() -> None:
    """A flipped crop is the mirrored patient: the lesion moves to the other half and so does the
    body-frame x (x > 0 = patient left), so "right" + flipped image + flipped position agree."""
    volume = np.zeros((3, 32, 32), np.float32)
    volume[:, 4:28, 4:28] = 0.6  # the body, centred
    inst = np.zeros((3, 32, 32), np.int32)
    inst[:, 12:16, 22:26] = 1  # patient left (large I)
    case = ReferringCase(volume, inst, {1: ["a mass in the left lung"]})
    plain = ReferringSliceDataset([case], context=1, size=32, train=False, position=True)[0]
    x = plain["position"][0].numpy()
    assert x[14, 24] > 0.3 and x[14, 8] < -0.3
    flipped = ReferringSliceDataset([case], context=1, size=32, train=True, negatives_per_lesion=0,
                                    flip_probability=1.0, position=True)[0]
    lesion = flipped["label"][0].numpy() > 0
    xf = flipped["position"][0].numpy()
    assert "right" in flipped["text"] and xf[lesion].mean() < -0.3  # now on the patient's right, x < 0
