"""The click evaluation: curves through the engine on a known image, NoC and the summary."""

from __future__ import annotations

import numpy as np

from test_clicks_pipeline import _two_balls
from TextLesionSegLib.evaluation.clicks import click_curve, group_summaries, noc, summarise
from TextLesionSegLib.models.interactive.region_grow import RegionGrowSegmenter


def test_noc_counts_clicks_until_the_level_and_caps_at_the_clicks_given():
    assert noc([0.5, 0.85, 0.95], 0.8) == 2 and noc([0.5, 0.85, 0.95], 0.9) == 3 and noc([0.5, 0.6], 0.9) == 2
    rows = [{"dice": [0.5, 0.85, 0.95, 0.95, 0.95], "seconds": 1.0}, {"dice": [0.9] * 5, "seconds": 2.0}]
    s = summarise(rows, 5)
    assert s["dice@1"] == 0.7 and s["dice@3"] == 0.925 and s["noc@80"] == 1.5 and s["noc@90"] == 2.0
    assert s["reached@90"] == 1.0 and s["lesions"] == 2 and s["seconds_per_click"] == 0.3


def test_a_mixed_validation_set_is_also_summarised_per_part():
    rows = [{"lesion": "large_00001#1", "dice": [0.2] * 5, "seconds": 1.0},
            {"lesion": "large_00002#1", "dice": [0.4] * 5, "seconds": 1.0},
            {"lesion": "seen_train_00000#2", "dice": [0.9] * 5, "seconds": 1.0}]
    groups = group_summaries(rows, 5)
    assert set(groups) == {"large", "seen"} and groups["large"]["lesions"] == 2
    assert groups["large"]["dice@1"] == 0.3 and groups["seen"]["dice@1"] == 0.9
    assert group_summaries(rows[:2], 5) == {}  # one part: nothing to split


def test_click_curve_segments_the_clicked_ball_through_the_engine():
    img, upper, lower = _two_balls("oblique")
    curve = click_curve(img, upper, RegionGrowSegmenter(), max_clicks=3)
    assert len(curve) == 3 and curve[0] > 0.8
    # the lower ball's curve is its own: clicking one lesion never scores the other
    assert click_curve(img, lower, RegionGrowSegmenter(), max_clicks=1)[0] > 0.8
