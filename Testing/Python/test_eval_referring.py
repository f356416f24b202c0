"""The referring evaluation (``evaluation.referring``) on the tiny two-lesion dataset, calibrated
by rule-based segmenters whose reading is known: one reads the density word, one is text-blind.
Both selection modes are measured from one inference; absent descriptions must get no segment."""

from __future__ import annotations

import json

import pytest

from test_eval_cases import tiny_dataset  # noqa: F401 - fixture
from test_eval_runner import DensityRuleSegmenter
from TextLesionSegLib.evaluation.referring import calibrate, evaluate, summarize, write_thresholds


def test_a_reader_follows_rejects_absent_lesions_and_is_not_fooled_by_swaps(tiny_dataset):  # noqa: F811
    result = evaluate(DensityRuleSegmenter(), tiny_dataset, part="train")
    for mode in ("network", "measured"):
        s = result["summary"][mode]
        assert s["n_own"] == 6 and s["follows"] == 1.0 and s["candidate_found"] == 1.0
        assert s["chance"] == 0.5 and s["neutral_follows"] == 0.0  # "a lesion" names no density: no answer
        assert s["n_wrong"] == 6 and s["wrong_still_follows"] == 0.0  # hypo<->hyper swapped: the other lesion
        assert s["n_absent"] >= 3 and s["absent_rejected"] == 1.0  # e.g. "an isodense lesion": nothing


def test_a_blind_network_follows_at_chance_and_the_measured_layer_reads_for_it(tiny_dataset):  # noqa: F811
    result = evaluate(DensityRuleSegmenter(blind=True), tiny_dataset, part="train")
    network, measured = result["summary"]["network"], result["summary"]["measured"]
    assert network["follows"] == pytest.approx(0.5) and network["candidate_found"] == 1.0
    assert measured["follows"] == 1.0
    assert network["absent_rejected"] == 0.0  # with no threshold a blind network always answers


def test_calibration_picks_the_threshold_that_separates_present_from_absent(tiny_dataset, tmp_path):  # noqa: F811
    rows = evaluate(DensityRuleSegmenter(), tiny_dataset, part="train")["rows"]
    t = calibrate(rows, "measured")
    at = summarize(rows, "measured", t)
    assert at["own_answered"] >= 0.9 and at["absent_rejected"] == 1.0
    assert t > 0.0  # the highest threshold that still answers the real lesions
    weights = tmp_path / "w"
    weights.mkdir()
    (weights / "config.json").write_text(json.dumps({"architecture": "lsms", "extra": {}}), encoding="utf-8")
    write_thresholds(weights, {"network": 0.7, "measured": t}, "tiny")
    written = json.loads((weights / "config.json").read_text(encoding="utf-8"))["extra"]["selection"]
    assert written["network"] == 0.7 and written["calibrated_on"] == "tiny"


class MuteNetworkWithLesionMap(DensityRuleSegmenter):
    """A network whose maps for the words are empty, but whose text-free lesion map marks every
    lesion (as LSMS's objectness output or Malenia's prompt-free map would)."""

    def candidate_maps(self, volume, queries, settings, progress=None):
        every = DensityRuleSegmenter(blind=True).predict(volume, queries[:1], settings)[0]
        return super().predict(volume, queries, settings) * 0.0, None, every


def test_text_free_candidates_let_the_measured_layer_read_where_the_network_is_mute(tiny_dataset):  # noqa: F811
    """The network alone answers nothing; with the lesion map the measured layer reads the density
    words: it follows every description, and at its calibrated threshold descriptions of absent
    lesions (another density) get nothing. evaluation.rescore reproduces the measured answers from
    the stored candidate tables, for any weight of the text-free candidates."""
    from TextLesionSegLib.evaluation.rescore import compare, rescore

    result = evaluate(MuteNetworkWithLesionMap(), tiny_dataset, part="train")
    network, measured = result["summary"]["network"], result["summary"]["measured"]
    assert network["follows"] == 0.0 and network["candidate_found"] == 0.0
    assert measured["follows"] == 1.0 and measured["candidate_found"] == 1.0
    at = summarize(result["rows"], "measured", calibrate(result["rows"], "measured"))
    assert at["follows"] == 1.0 and at["absent_rejected"] == 1.0
    for prior in (0.5, 1.0):
        again = summarize(rescore(result["rows"], prior), "measured")
        assert again["follows"] == 1.0 and again["n_own"] == measured["n_own"]
    (low, high) = compare(result["rows"], [0.5, 1.0])
    assert high["threshold"] == pytest.approx(2 * low["threshold"], abs=2e-4)  # scores scale with the prior


def test_the_lesion_prior_travels_with_the_weights(tmp_path):
    weights = tmp_path / "w"
    weights.mkdir()
    (weights / "config.json").write_text(json.dumps({"architecture": "lsms", "extra": {}}), encoding="utf-8")
    write_thresholds(weights, {"network": 0.6, "measured": 0.4}, "validation", lesion_prior=0.7)
    extra = json.loads((weights / "config.json").read_text(encoding="utf-8"))["extra"]
    model = DensityRuleSegmenter()
    model.read_min_scores(extra)
    assert model.lesion_prior == 0.7 and model.min_score("measured") == 0.4
    model.read_min_scores({})
    assert model.lesion_prior is None
