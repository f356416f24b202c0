"""Training descriptions (``training.data.descriptions``) and reading scenes (``training.data.reading``):
every phrasing parses back to what it states, descriptions of a lesion fit it alone, absent ones
fit no lesion of the case, the demo's held-out prompts are never produced, reading scenes contrast."""

from __future__ import annotations

import numpy as np
import pytest

from TextLesionSegLib.query import parse_text
from TextLesionSegLib.training.data.descriptions import (
    HELD_OUT,
    absent_descriptions,
    case_descriptions,
    describe,
    distinguishing_keys,
    fits,
)
from TextLesionSegLib.training.data.reading import plan_reading_case

LESIONS = [
    {"organ": "lung", "side": "left", "sub_location": "upper lobe", "shape": "irregular", "density": "isodense",
     "density_variation": "heterogeneous", "surface": "ill-defined", "size_mm": [34.0, 28.0]},
    {"organ": "lung", "side": "right", "sub_location": "lower lobe", "shape": "round-like", "density": "hyperdense",
     "density_variation": "homogeneous", "surface": "well-defined", "size_mm": [14.0, 12.0]},
    {"organ": "kidney", "side": "left", "shape": "round-like", "density": "hypodense", "size_mm": [22.0, 20.0]},
    {"organ": "liver", "side": "right", "sub_location": "right lobe", "shape": "irregular", "density": "hyperdense",
     "size_mm": [41.0, 30.0]},
]


def _parsed_value(query, key):
    if key == "side" and query.organ == "liver":  # the parser reads a liver side as the lobe
        return (query.sub_location or "").split()[0] if query.sub_location else None
    if key == "size_mm":
        return max(query.size_mm) if query.size_mm else None
    return getattr(query, key)


@pytest.mark.parametrize("seed", range(6))
def test_every_phrasing_parses_back_to_what_it_states(seed):
    rng = np.random.default_rng(seed)
    for attrs in LESIONS:
        for _ in range(8):
            keys = [k for k in ("side", "shape", "density", "size_mm", "surface", "density_variation") if rng.random() < 0.6]
            text, stated = describe(attrs, keys, rng)
            (query,) = parse_text(text).queries
            for key, value in stated.items():
                want = max(value) if key == "size_mm" else value
                got = _parsed_value(query, key)
                if key == "size_mm":
                    assert got == pytest.approx(want, abs=1.0), text
                elif key != "sub_location":
                    assert got == want, (key, text)


def test_the_held_out_demo_prompts_are_never_written():
    rng = np.random.default_rng(0)
    left = {"organ": "lung", "side": "left"}
    texts = {describe(left, ["side"], rng)[0].lower().strip(" .") for _ in range(300)}
    assert "a mass in the left lung" in HELD_OUT and not texts & set(HELD_OUT)
    assert len(texts) > 10  # and the phrasing varies


def test_a_lesions_descriptions_fit_it_alone_and_absent_ones_fit_none():
    rng = np.random.default_rng(1)
    lesions = {i + 1: a for i, a in enumerate(LESIONS[:2])}
    described, absent = case_descriptions(lesions, rng, organs=["lung"], per_lesion=5, absent=6)
    for lesion_id, texts in described.items():
        assert len(texts) == 5
        others = [a for i, a in lesions.items() if i != lesion_id]
        for text, stated in texts:
            assert fits(stated, lesions[lesion_id]) and not any(fits(stated, o) for o in others), text
    assert len(absent) == 6
    for text, stated in absent:
        assert not any(fits(stated, a) for a in lesions.values()), text
    keys = distinguishing_keys(LESIONS[0], [LESIONS[1]], rng)
    assert keys[0] == "organ" and len(keys) >= 2  # organ alone cannot tell two lung lesions apart


def test_absent_descriptions_can_name_a_lesion_free_organ_of_the_scan():
    rng = np.random.default_rng(3)
    texts = absent_descriptions([LESIONS[2]], rng, 20, organs=["liver", "kidney", "pancreas"])
    named = {stated.get("organ") for _, stated in texts}
    assert named & {"liver", "pancreas"} and all(not fits(stated, LESIONS[2]) for _, stated in texts)


@pytest.mark.parametrize("index", range(8))
def test_reading_scenes_hold_lesions_that_differ_in_what_words_name(index):
    plan = plan_reading_case(5, index)
    specs = plan["specs"]
    assert 2 <= len(specs) <= 4 and plan["host"]
    keys = {(s["side"], s["density"], s["shape"], s["surface"], max(s["size_mm"]) > 25) for s in specs}
    assert len(keys) == len(specs)  # no two lesions alike in every value a description can state
    for n, s in enumerate(specs):
        same_side = [m for m in range(n) if specs[m]["side"] == s["side"]]
        assert ("near" in s) == bool(same_side)  # placed near a same-side lesion: they share a window
    assert plan_reading_case(5, index)["specs"] == specs  # seeded: the same plan every time


def test_split_seed_plans_fresh_cases(monkeypatch):
    """``synth --split S --seed N`` once ignored the seed (validation sets were SynthLesion's own
    cases); the seed now reaches the planner, and without it the benchmark's cases come back."""
    from TextLesionSegLib.training.data import benchmark as bench

    definition = bench.load_definition()
    own = bench.plan_split_case(definition, "referring", "test", 0)
    fresh = bench.plan_split_case({**definition, "seed": 101}, "referring", "test", 0)
    assert own["specs"] != fresh["specs"] or own["host"] != fresh["host"]
    seen = {}

    def fake_generate_split(out, split, count, definition, organ_masks, progress, seed=None):
        seen["seed"] = seed
        return out

    from TextLesionSegLib.cli import main
    from TextLesionSegLib.training.data import generate

    monkeypatch.setattr(generate, "generate_split", fake_generate_split)
    assert main(["synth", "--out", "unused", "--split", "referring", "--seed", "101", "--no-progress"]) == 0
    assert seen["seed"] == 101
