"""Malenia's whole-volume choice among the lesions found (models/malenia/selection.py), on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest

from TextLesionSegLib.models.malenia.selection import component_scores, keep_matching_components


@pytest.fixture()
def maps():
    """Two lesions drawn by tokens scoring 0.8 and 0.2 for the description, and a 2-voxel speck."""
    prob = np.zeros((20, 20, 40), np.float32)
    score = np.zeros_like(prob)
    prob[5:12, 5:12, 3:10], score[5:12, 5:12, 3:10] = 0.9, 0.8
    prob[6:13, 6:13, 25:33], score[6:13, 6:13, 25:33] = 0.7, 0.2
    prob[18, 18, 38:40], score[18, 18, 38:40] = 0.95, 1.0
    return prob, prob * score


def test_score_is_the_probability_weighted_mean_and_specks_drop_out(maps) -> None:
    prob, weighted = maps
    labels, score = component_scores(prob, weighted, 0.5)
    assert sorted(np.round(score[score > 0], 3)) == [0.2, 0.8]
    assert labels[18, 18, 39] == 0 and labels[8, 8, 5] > 0 and labels[8, 8, 28] > 0


def test_only_the_agreeing_lesion_survives_a_high_keep_ratio(maps) -> None:
    prob, weighted = maps
    out = keep_matching_components(prob, weighted, 0.5, keep_ratio=0.9)
    assert (out[5:12, 5:12, 3:10] == 0.9).all()
    assert not out[:, :, 20:].any()  # the poorly agreeing lesion and the speck are gone
    both = keep_matching_components(prob, weighted, 0.5, keep_ratio=0.2)
    assert both[8, 8, 5] > 0.5 and both[8, 8, 28] > 0.5
    assert keep_matching_components(prob, weighted, 0.5, keep_ratio=0.0) is prob  # 0 = no whole-volume choice


def test_a_description_asserting_nothing_keeps_every_lesion(maps) -> None:
    prob, _ = maps
    out = keep_matching_components(prob, prob * 1.0, 0.5, keep_ratio=0.9)  # every window scored alike
    assert out[8, 8, 5] > 0.5 and out[8, 8, 28] > 0.5


def test_nothing_above_threshold_gives_an_empty_map(maps) -> None:
    prob, weighted = maps
    assert not keep_matching_components(prob * 0.3, weighted * 0.3, 0.5, keep_ratio=0.9).any()
