"""The evaluation loop, text sensitivity and the ``evaluate`` CLI, on the tiny two-lesion dataset.

Two real rule-based segmenters with known behaviour calibrate the text-sensitivity measurement:
one reads the density word of the description (it follows the text by construction), the other
segments every abnormal density whatever the text says (it ignores the text).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from test_eval_cases import tiny_dataset  # noqa: F401 - fixture
from TextLesionSegLib.cli import main
from TextLesionSegLib.evaluation.cases import load_cases
from TextLesionSegLib.evaluation.runner import EvalOptions, evaluate_model
from TextLesionSegLib.evaluation.text_sensitivity import has_swappable, swap_attributes
from TextLesionSegLib.models.base import InferenceSettings, LesionSegmenter, PreprocessingConfig

WINDOW = (-175.0, 250.0)


def _norm(hu: float) -> float:
    return (hu - WINDOW[0]) / (WINDOW[1] - WINDOW[0])


class DensityRuleSegmenter(LesionSegmenter):
    """Thresholds the working volume by the density word of each query (or every density if blind)."""

    def __init__(self, blind: bool = False) -> None:
        self.blind = blind
        self.name = "blind-rule" if blind else "density-rule"
        self.preprocessing = PreprocessingConfig(spacing=None, hu_window=WINDOW, roi_size=(16, 16, 16),
                                                 crop_foreground=False)

    def predict(self, volume, queries, settings, progress=None):
        v = volume[0, 0]
        hypo = (v > _norm(-120)) & (v < _norm(0))
        hyper = v > _norm(120)
        maps = []
        for q in queries:
            text = (q.text or "").lower()
            if self.blind:
                m = hypo | hyper
            elif "hypodense" in text:
                m = hypo
            elif "hyperdense" in text:
                m = hyper
            else:
                m = torch.zeros_like(hypo)
            maps.append(m.float())
        return torch.stack(maps)


def test_swap_attributes_both_ways_at_once():
    assert swap_attributes("A round hypodense lesion in the right kidney.") == \
        "A irregular hyperdense lesion in the left kidney."
    assert swap_attributes("Round-like, well-defined; Left lobe") == "Irregular, ill-defined; Right lobe"
    assert swap_attributes("leftover") == "leftover"
    assert not has_swappable("a mass in the liver")


def test_text_following_model_scores_full_follow_rate(tiny_dataset):  # noqa: F811
    ev = evaluate_model(DensityRuleSegmenter(), load_cases(tiny_dataset), InferenceSettings(device="cpu"))
    d = ev.to_dict()
    assert d["n_lesions"] == 6 and not d["errors"]
    assert d["overall"]["dice"]["mean"] > 0.9
    assert d["overall"]["nsd"]["mean"] > 0.9
    assert d["overall"]["hd95_mm"]["mean"] < 3.0
    assert d["detection"]["tp"] == 6 and d["detection"]["fp"] == 0 and d["detection"]["f1"] == 1.0
    assert set(d["per_lesion_type"]) == {"renal cyst", "renal cell carcinoma"}
    assert d["per_split"]["seen"]["n"] == 4 and d["per_split"]["unseen"]["n"] == 2
    t = d["text_sensitivity"]
    assert t["n"] == 6 and t["follow_rate"] == 1.0 and t["chance_rate"] == 0.5
    # swapping hypodense<->hyperdense makes the rule pick the other lesion: Dice collapses
    assert t["n_swapped"] == 6 and t["mean_dice_drop_swap"] > 0.9 and t["mean_dice_empty"] == 0.0
    assert t["verdict"].startswith("follows the text")


def test_text_blind_model_is_called_out(tiny_dataset):  # noqa: F811
    """The network alone ("network" selection): a text-blind model gives every description of a
    scan the same lesion, so it follows exactly at chance and swaps change nothing."""
    ev = evaluate_model(DensityRuleSegmenter(blind=True), load_cases(tiny_dataset),
                        InferenceSettings(device="cpu", extra={"selection": "network"}), EvalOptions(max_cases=2))
    t = ev.to_dict()["text_sensitivity"]
    assert t["follow_rate"] == t["chance_rate"] == 0.5 and t["mean_dice_drop_swap"] == pytest.approx(0.0)
    assert "IGNORES THE TEXT" in t["verdict"]


def test_measured_layer_reads_the_words_a_blind_network_cannot(tiny_dataset):  # noqa: F811
    """The same text-blind network with the measured-attribute layer ("measured", the default):
    the layer reads "hypodense"/"hyperdense" from the HU of each candidate — which is why every
    model's numbers are reported in both modes."""
    ev = evaluate_model(DensityRuleSegmenter(blind=True), load_cases(tiny_dataset), InferenceSettings(device="cpu"),
                        EvalOptions(max_cases=2))
    d = ev.to_dict()
    assert d["text_sensitivity"]["follow_rate"] == 1.0 and d["detection"]["recall"] == 1.0


def test_evaluate_cli_writes_reports_and_refuses_overwrite(tiny_dataset, tmp_path):  # noqa: F811
    from TextLesionSegLib.models.unet.model import UNetBaseline

    torch.manual_seed(0)
    weights = tmp_path / "unet-tiny"
    UNetBaseline({"channels": [4, 8], "strides": [2], "num_res_units": 0, "roi_size": [16, 32, 32]}).save_pretrained(weights)
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", str(weights), "--data", str(tiny_dataset), "--out", str(out), "--max-cases", "2"]
    assert main(argv) == 0
    report = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    network, measured = report["models"]  # both selection modes from one inference, side by side
    assert (network["model"], measured["model"]) == ("unet-tiny (network)", "unet-tiny (measured)")
    for m in (network, measured):
        assert m["n_lesions"] == 4 and m["absent"]["n"] == 4  # 2 absent descriptions per case
        assert m["text_sensitivity"]["n"] == 4 and m["text_sensitivity"]["chance_rate"] == 0.5
        assert 0.0 <= m["overall"]["dice"]["mean"] <= 1.0
    md = (out / "evaluation.md").read_text(encoding="utf-8")
    assert "## unet-tiny (network)" in md and "Verdict" in md and "does not hold" in md
    for png in ("per_type_dice.png", "text_sensitivity.png", "unet-tiny_network_best.png", "unet-tiny_measured_worst.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = (out / "evaluation.json").read_bytes()
    assert main(argv) == 2  # exists, no --overwrite: refused, file untouched
    assert (out / "evaluation.json").read_bytes() == before


def test_evaluate_cli_bad_inputs(tmp_path, capsys):
    assert main(["evaluate", "--model", "x", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_verdict_tells_ignoring_the_words_from_misreading_them():
    from TextLesionSegLib.evaluation.text_sensitivity import SensitivitySummary, verdict

    blind = SensitivitySummary(n=10, follow_rate=0.2, chance_rate=0.4, mean_dice_drop_swap=0.0)
    misreads = SensitivitySummary(n=10, follow_rate=0.2, chance_rate=0.4, mean_dice_drop_swap=0.3)
    good = SensitivitySummary(n=10, follow_rate=0.9, chance_rate=0.4, mean_dice_drop_swap=0.6)
    assert verdict(blind).startswith("IGNORES THE TEXT")
    assert verdict(misreads).startswith("READS THE WORDS BUT DOES NOT FOLLOW THEM") and "0.30" in verdict(misreads)
    assert verdict(good).startswith("follows the text: 90%")
