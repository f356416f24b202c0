"""Prompt-free evaluation (``evaluate --prompt-free``) on the tiny two-lesion dataset.

Real rule-based segmenters with known answers calibrate it: one finds every abnormal-density blob
and names its density, type and side from the voxels (all correct), one finds the same blobs plus
a false positive but always answers "hypodense" / "renal cyst" (accuracy at chance), one finds
nothing (recall 0), and the text-only rule segmenter of ``test_eval_runner`` has no prompt-free
mode (reported as skipped).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from test_eval_cases import write_tiny_dataset
from test_eval_runner import DensityRuleSegmenter, _norm
from TextLesionSegLib.cli import main
from TextLesionSegLib.errors import ModelError
from TextLesionSegLib.evaluation.cases import load_cases
from TextLesionSegLib.evaluation.prompt_free import (
    attribute_accuracy,
    evaluate_prompt_free,
    has_prompt_free,
    is_correct,
    reference_value,
)
from TextLesionSegLib.evaluation.runner import EvalOptions
from TextLesionSegLib.models import registry
from TextLesionSegLib.models.base import InferenceSettings

SETTINGS = InferenceSettings(device="cpu")


class BlobFinder(DensityRuleSegmenter):
    """Prompt-free rule model: every hypo- or hyperdense blob is a lesion.

    ``honest``: density from the blob's values, type from the density, side from its I position
    (LPS: large I = patient's left). Otherwise every answer is "hypodense" / "renal cyst" and a
    false-positive cube is added. ``empty``: finds nothing.
    """

    def __init__(self, honest: bool = True, empty: bool = False) -> None:
        super().__init__()
        self.honest, self.empty = honest, empty
        self.name = "empty-finder" if empty else "blob-finder" if honest else "constant-finder"

    def find_lesions(self, volume, settings, progress=None):
        if self.empty:
            return []
        v = volume[0, 0]
        hypo = ((v > _norm(-120)) & (v < _norm(0))).numpy()
        hyper = (v > _norm(120)).numpy()
        labels, n = ndimage.label(ndimage.binary_opening(hypo | hyper))
        found = []
        for lab in range(1, n + 1):
            comp = labels == lab
            dense = "hyperdense" if hyper[comp].mean() > 0.5 else "hypodense"
            side = "left" if np.nonzero(comp)[2].mean() > comp.shape[2] / 2 else "right"
            if not self.honest:
                dense = "hypodense"
            found.append({"probability": torch.from_numpy(comp.astype(np.float32)),
                          "attributes": {"density": (dense, 0.9), "location": (f"{side} kidney", 0.8),
                                         "shape": ("round-like", 0.5)},
                          "lesion_type": "renal cell carcinoma" if dense == "hyperdense" else "renal cyst"})
        if not self.honest:
            fp = np.zeros(v.shape, np.float32)
            fp[3:7, 8:12, 30:34] = 1.0  # in the body, away from both lesions
            found.append({"probability": torch.from_numpy(fp), "attributes": {"density": ("hypodense", 0.5)},
                          "lesion_type": "renal cyst"})
        return found


@pytest.fixture(scope="module")
def located_dataset(tmp_path_factory):
    """The tiny dataset with organ and side columns (lesion 1 right kidney, lesion 2 left)."""
    root = write_tiny_dataset(tmp_path_factory.mktemp("pf"))
    path = root / "reports.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    for row in rows:
        row.update(organ="kidney", side="right" if row["lesion_id"] == "1" else "left")
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


def test_location_is_compared_at_organ_and_side_level():
    assert reference_value("location", {"organ": "lung", "side": "left"}) == "left lung"
    assert reference_value("location", {"organ": "liver", "side": "right"}) == "liver"  # unpaired: no side
    assert reference_value("location", {"organ": None}) is None
    assert is_correct("location", "left upper lobe of the lung", "left lung")
    assert not is_correct("location", "right lung", "left lung")
    assert is_correct("location", "liver segment VII", "liver")
    assert is_correct("location", "left lung", "lung")  # reference without a side: organ only
    assert not is_correct("location", None, "lung")
    assert reference_value("specific_features", {"specific_features": "calcification; fat"}) == ["calcification", "fat"]
    assert is_correct("specific_features", "fat", ["calcification", "fat"])
    assert reference_value("lesion_type", {"lesion_type": "lesion"}) is None  # type unknown: skipped


def test_chance_is_the_majority_answer():
    recs = [{"attributes": {"density": {"predicted": "hypodense", "reference": r, "correct": r == "hypodense"}}}
            for r in ("hypodense", "hyperdense", "hyperdense", "hyperdense")]
    (acc,) = attribute_accuracy(recs).values()
    assert acc == {"n": 4, "n_answered": 4, "accuracy": 0.25, "chance": 0.75, "majority_value": "hyperdense"}


def test_honest_finder_finds_and_describes_every_lesion(located_dataset):
    ev = evaluate_prompt_free(BlobFinder(), load_cases(located_dataset), SETTINGS)
    d = ev.to_dict()
    assert not d["skipped"] and not d["errors"] and d["n_lesions"] == 6 and d["n_matched"] == 6
    det = d["detection"]
    assert (det["tp"], det["fp"], det["fn"]) == (6, 0, 0) and det["f1"] == 1.0
    assert d["at_threshold_0"]["recall"] == 1.0 and d["at_model_threshold"]["precision"] == 1.0
    assert d["overall"]["dice"]["mean"] > 0.9 and d["overall"]["nsd"]["mean"] > 0.9
    attrs = d["attributes"]
    assert set(attrs) == {"location", "density", "lesion_type"}  # no reference shape: not scored
    for name in attrs:
        assert attrs[name]["accuracy"] == 1.0 and attrs[name]["chance"] == 0.5 and attrs[name]["n"] == 6
    assert d["per_split"]["seen"]["n"] == 4 and d["per_split"]["unseen"]["recall"] == 1.0
    assert d["per_lesion_type"]["renal cyst"]["attributes"]["density"]["accuracy"] == 1.0
    rec = d["lesions"][0]
    assert rec["matched"] and rec["predicted_type"] == "renal cyst" and rec["iou"] > 0.8


def test_constant_answers_score_at_chance_and_false_positive_costs_precision(located_dataset):
    d = evaluate_prompt_free(BlobFinder(honest=False), load_cases(located_dataset), SETTINGS).to_dict()
    det = d["detection"]
    assert (det["tp"], det["fp"], det["fn"]) == (6, 3, 0)
    assert det["precision"] == pytest.approx(6 / 9) and det["recall"] == 1.0 and det["f1"] == pytest.approx(0.8)
    assert d["attributes"]["density"]["accuracy"] == 0.5 == d["attributes"]["density"]["chance"]
    assert d["attributes"]["lesion_type"]["accuracy"] == 0.5
    assert d["attributes"]["location"]["accuracy"] == 1.0  # the side is still read from the image


def test_finding_nothing_is_recall_zero_and_dice_zero(located_dataset):
    d = evaluate_prompt_free(BlobFinder(empty=True), load_cases(located_dataset), SETTINGS,
                             EvalOptions(max_cases=2)).to_dict()
    assert d["detection"]["recall"] == 0.0 and d["detection"]["fn"] == 4 and d["detection"]["precision"] == 1.0
    assert d["overall"]["dice"]["mean"] == 0.0 and d["overall"]["hd95_mm"]["n_infinite"] == 4
    assert d["attributes"] == {} and d["n_matched"] == 0


class RaisingFinder(BlobFinder):
    def find_lesions(self, volume, settings, progress=None):
        raise ModelError("weights lack the attribute bank")


def test_model_without_prompt_free_mode_is_skipped(located_dataset):
    cases = load_cases(located_dataset)
    text_only = DensityRuleSegmenter()
    assert not has_prompt_free(text_only) and has_prompt_free(BlobFinder())
    d = evaluate_prompt_free(text_only, cases, SETTINGS).to_dict()
    assert "no prompt-free mode" in d["skipped"] and d["n_lesions"] == 0
    d = evaluate_prompt_free(RaisingFinder(), cases, SETTINGS).to_dict()
    assert "attribute bank" in d["skipped"] and d["n_lesions"] == 0


def test_cli_prompt_free_report_with_a_skipped_model(located_dataset, tmp_path, monkeypatch, capsys):
    models = {"blobs": BlobFinder(), "text-only": DensityRuleSegmenter()}
    monkeypatch.setattr(registry, "load_segmenter", lambda spec, device="cpu", progress=None: models[spec])
    out = tmp_path / "pf"
    argv = ["evaluate", "--prompt-free", "--model", "blobs", "--model", "text-only", "--data", str(located_dataset),
            "--out", str(out)]
    assert main(argv) == 0
    assert "skipped density-rule" in capsys.readouterr().err
    report = json.loads((out / "prompt_free.json").read_text(encoding="utf-8"))
    blobs, text_only = report["models"]
    assert blobs["detection"]["f1"] == 1.0 and blobs["attributes"]["density"]["accuracy"] == 1.0
    assert text_only["skipped"] and report["meta"]["mode"] == "prompt-free"
    md = (out / "prompt_free.md").read_text(encoding="utf-8")
    assert "## blob-finder" in md and "**Skipped**" in md and "| density | 6 | 6 | 1.000 | 0.500 (hypodense) |" in md
    assert (out / "prompt_free_attributes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "evaluation.json").exists()
    assert main(argv) == 2  # exists, no --overwrite
    # only models without the mode: nothing measured, a model error, no report
    assert main(["evaluate", "--prompt-free", "--model", "text-only", "--data", str(located_dataset),
                 "--out", str(tmp_path / "none")]) == 3
    assert "no prompt-free mode" in capsys.readouterr().err and not (tmp_path / "none").exists()


def test_cli_prompt_free_on_a_weights_folder(located_dataset, tmp_path):
    from TextLesionSegLib.models.unet.model import UNetBaseline

    torch.manual_seed(0)
    weights = tmp_path / "unet-tiny"
    UNetBaseline({"channels": [4, 8], "strides": [2], "num_res_units": 0, "roi_size": [16, 32, 32]}).save_pretrained(weights)
    out = tmp_path / "eval"
    assert main(["evaluate", "--prompt-free", "--model", str(weights), "--data", str(located_dataset),
                 "--out", str(out), "--max-cases", "1", "--no-plots"]) == 0
    (m,) = json.loads((out / "prompt_free.json").read_text(encoding="utf-8"))["models"]
    assert m["model"] == "unet-tiny" and m["n_lesions"] == 2 and not m["skipped"]
    # the UNet predicts no attribute: whatever it matched is scored as unanswered
    assert all(v["n_answered"] == 0 and v["accuracy"] == 0.0 for k, v in m["attributes"].items() if k != "lesion_type")
    assert not list(out.glob("*.png"))


def test_cli_prompt_free_bad_input(tmp_path, capsys):
    assert main(["evaluate", "--prompt-free", "--model", "x", "--data", str(tmp_path / "missing"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_operating_points_trade_false_positives_for_recall():
    """Dropping segments below a score threshold: matched ones cost recall, unmatched ones were
    false positives; the calibrated threshold is the best F1 among the observed scores."""
    from TextLesionSegLib.evaluation.prompt_free import PromptFreeEvaluation

    e = PromptFreeEvaluation(model="m", version="1", min_score=0.5)
    e.lesions = [{"matched": True}, {"matched": True}, {"matched": False}]  # 3 reference lesions
    e.segment_scores = [(0.9, True), (0.6, True), (0.4, False), (0.3, False), (0.2, False)]
    assert e.operating_point(0.0) == {"min_score": 0.0, "tp": 2, "fp": 3, "precision": 0.4, "recall": 0.667,
                                      "f1": 0.5}
    assert e.operating_point(0.5)["precision"] == 1.0 and e.operating_point(0.5)["recall"] == 0.667
    assert e.calibrated_min_score() == 0.6
