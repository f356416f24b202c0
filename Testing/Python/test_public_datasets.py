"""ReXGroundingCT and CVPR-BiomedSegFM folders in their published layouts, the authors' Malenia
workbook as published, and two training steps of each model on each public layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from public_fixtures import REX_TEXTS, SHAPE, write_rex, write_segfm
from TextLesionSegLib.cli import main
from TextLesionSegLib.errors import InputError
from TextLesionSegLib.training.data import LesionDataset, read_attribute_table
from TextLesionSegLib.training.data.adapters import detect_layout
from TextLesionSegLib.training.data.public import finding_axis_first, segfm_spacing


def test_rexgroundingct_findings_become_described_lesions(tmp_path: Path) -> None:
    root = write_rex(tmp_path / "ReXGroundingCT", n_train=2)
    assert detect_layout(root) == "rexgroundingct"  # not MSD, although it has a dataset.json
    train, val = LesionDataset(root), LesionDataset(root, part="test")
    assert train.case_ids == ["train_1_a_1", "train_2_a_1"]
    assert val.case_ids == ["valid_7_a_1"]  # the public validation scans; "test" has no masks
    case = train[0]
    assert case.image.spacing == (1.5, 1.5, 3.0) and case.label.shape == SHAPE
    nodule, consolidation = case.lesions
    # one record per finding, all its entities together (the nodule's two entities: 100 + 36 voxels)
    assert (nodule.lesion_id, nodule.report, nodule.voxels) == (1, REX_TEXTS[0], 136)
    assert consolidation.report == REX_TEXTS[1] and consolidation.voxels == 5 * 8 * 7
    # the sentence's own attributes, as the parser reads a user's words
    assert nodule.attributes["side"] == "left" and nodule.attributes["organ"] == "lung"
    assert consolidation.attributes["side"] == "right"


def test_rexgroundingct_mask_orders_and_missing_volumes(tmp_path: Path) -> None:
    masks = np.zeros(SHAPE + (2,), np.uint8)
    masks[1, 2, 3, 1] = 1
    assert finding_axis_first(masks, 2, SHAPE)[1, 1, 2, 3] == 1  # SimpleITK's (D, W, H, F)
    assert finding_axis_first(np.moveaxis(masks, -1, 0), 2, SHAPE)[1, 1, 2, 3] == 1
    label = np.zeros(SHAPE, np.uint8)
    label[0, 0, 0], label[1, 1, 1] = 1, 2  # a 3D label map: value f + 1 is finding f
    assert finding_axis_first(label, 2, SHAPE)[:, 1, 1, 1].tolist() == [False, True]
    with pytest.raises(InputError, match="fits no finding-axis order"):
        finding_axis_first(np.zeros((3, 4, 5, 6)), 2, SHAPE)
    root = write_rex(tmp_path / "rex", n_train=1)
    for volume in (root / "dataset").rglob("*.nii.gz"):
        volume.unlink()  # metadata and masks downloaded, CT-RATE volumes not yet
    with pytest.raises(InputError, match="no CT volume found"):
        LesionDataset(root)


def test_biomedsegfm_ct_cases_prompts_and_validation_ground_truth(tmp_path: Path) -> None:
    root = write_segfm(tmp_path / "CVPR-BiomedSegFM")
    assert detect_layout(root) == "biomedsegfm"
    train = LesionDataset(root)
    assert train.case_ids == ["CT_LiverTumour_000", "CT_LiverTumour_002", "CT_LungNodules_001"]  # MR skipped
    liver = train[0]
    assert liver.image.spacing == (1.5, 1.5, 3.0)
    # 0..255 back to HU on the soft-tissue window: the body (40 HU) near 40, air at the window's low end
    assert abs(float(np.median(liver.image.array[8, 6:30, 23:25])) - 40) < 5
    assert [(l.lesion_id, l.report, l.attributes["organ"]) for l in liver.lesions] == \
        [(1, "Liver tumour in abdominal CT", "liver")]
    nodules = train[2]  # instance_label 1: each value one nodule, both with class 1's prompt
    assert [(l.lesion_id, l.report) for l in nodules.lesions] == [(1, "Lung nodule in chest CT"), (2, "Lung nodule in chest CT")]
    val = LesionDataset(root, part="test")
    assert val.case_ids == ["CT_LiverTumour_100"] and val[0].lesions[0].voxels == 5 * 6 * 6
    assert segfm_spacing(np.array([3.0, 0.8, 0.8])) == (0.8, 0.8, 3.0)  # a (z, y, x) spacing is recognised


def test_published_malenia_workbook_joins_in_one_command(tmp_path: Path) -> None:
    """The authors' workbook as published: one sheet per lesion type, numbered Chinese headers,
    example rows; ``train --attributes`` joins it to a KiTS23 folder."""
    import openpyxl

    from test_adapters_datasets import write_kits_case

    book = openpyxl.Workbook()
    header = ["ID", "1) 增强情况: 1. 平扫CT 2. 增强CT", "2)    病灶部位:1.左肾 2.右肾", "3)    形状: 1类圆形，2不规则",
              "4)    亮度变化: 1.低 2.等 3.高", "5)    亮度变化: 1.均匀，2.不均匀", "6)    表面表现: 1.清晰 2.不清",
              "7)    与周围器官关系", "病灶的影像学完整结构化报告"]
    sheet = book.active
    sheet.title = "肾癌"
    sheet.append(header)
    sheet.append(["Example 1", 2, 1, 2, 2, 2, 2, 2, "An example row."])
    sheet.append(["case_00001", 2, 1, 2, 3, 2, 2, 1, "Contrast-enhanced CT: an irregular hyperdense lesion in the left kidney."])
    cysts = book.create_sheet("肾囊肿")
    cysts.append(header)
    cysts.append(["case_00001", 2, 2, 1, 1, 1, 1, 1, "A round-like hypodense cyst in the right kidney."])
    path = tmp_path / "annotations_of_lesion_descriptions.xlsx"
    book.save(path)
    table = read_attribute_table(path)
    assert list(table) == ["case_00001"]  # the example row names no case
    tumour_row, cyst_row = table["case_00001"]
    assert (tumour_row["lesion_type"], tumour_row["density"], tumour_row["side"]) == ("renal cell carcinoma", "hyperdense", "left")
    assert (cyst_row["lesion_type"], cyst_row["organ"]) == ("renal cyst", "kidney")
    root = tmp_path / "kits23"
    for case_id in ("case_00001", "case_00002"):
        write_kits_case(root / case_id, flip=False)
    case = LesionDataset(root, attributes=path)[0]
    tumour, cyst = case.lesions
    assert tumour.attributes["density"] == "hyperdense" and cyst.report.startswith("A round-like hypodense cyst")
    config = _config(tmp_path, "malenia")
    code = main(["train", "malenia", "--config", str(config), "--data", str(root), "--attributes", str(path),
                 "--out", str(tmp_path / "run"), "--max-steps", "2", "--no-progress"])
    assert code == 0 and (tmp_path / "run" / "last" / "model.safetensors").is_file()
    assert main(["train", "malenia", "--config", str(config), "--data", str(root), "--attributes",
                 str(tmp_path / "missing.xlsx"), "--out", str(tmp_path / "run2")]) == 2


TINY = {
    "malenia": {"model": {"backbone": "cnn", "cnn_channels": [4, 8, 8, 8], "hidden_dim": 16, "mask_dim": 8,
                          "num_tokens": 2, "num_heads": 2, "ffn_dim": 16, "roi_size": [16, 16, 16],
                          "spacing": [2.0, 2.0, 2.0]},
                "data": {"samples_per_epoch": 4, "val_fraction": 0.34},
                "train": {"epochs": 1, "batch_size": 2, "lr": 1.0e-3, "warmup_steps": 1, "threads": 1}},
    "lsms": {"model": {"preset": "tiny"}, "data": {"val_fraction": 0.34, "descriptions_per_lesion": 2, "absent_descriptions": 1},
             "train": {"epochs": 1, "batch_size": 2, "lr": 1.0e-3, "warmup_steps": 1, "threads": 1}},
}


def _config(folder: Path, arch: str) -> Path:
    """A tiny config for ``arch`` written as the YAML ``train --config`` reads (JSON is YAML)."""
    path = folder / f"{arch}-tiny.yaml"
    path.write_text(json.dumps(TINY[arch]), encoding="utf-8")
    return path


def _log_losses(run: Path) -> list[float]:
    with open(run / "log.csv", newline="", encoding="utf-8") as f:
        return [float(r["train_loss"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("arch", ["malenia", "lsms"])
@pytest.mark.parametrize("layout", ["rexgroundingct", "biomedsegfm"])
def test_two_training_steps_on_each_public_layout(tmp_path: Path, arch: str, layout: str, capsys) -> None:
    root = write_rex(tmp_path / "data") if layout == "rexgroundingct" else write_segfm(tmp_path / "data")
    run = tmp_path / "run"
    code = main(["train", arch, "--config", str(_config(tmp_path, arch)), "--data", str(root), "--format", layout,
                 "--out", str(run), "--max-steps", "2", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2
    assert all(np.isfinite(_log_losses(run)))
    assert (run / "last" / "model.safetensors").is_file() and (run / "last" / "config.json").is_file()


def test_format_that_does_not_fit_is_one_line(tmp_path: Path, capsys) -> None:
    root = write_segfm(tmp_path / "segfm", n_train=1)
    code = main(["train", "lsms", "--config", str(_config(tmp_path, "lsms")), "--data", str(root),
                 "--format", "rexgroundingct", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "dataset.json" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "last").exists()


def test_rex_mask_written_finding_first_reads_the_same(tmp_path: Path) -> None:
    root = write_rex(tmp_path / "rex", n_train=1)
    mask_path = root / "segmentations" / "train_1_a_1.nii.gz"
    before = LesionDataset(root)[0].label
    masks = sitk.GetArrayFromImage(sitk.ReadImage(str(mask_path)))
    sitk.WriteImage(sitk.GetImageFromArray(np.ascontiguousarray(np.moveaxis(masks, -1, 0)), isVector=False), str(mask_path))
    assert np.array_equal(LesionDataset(root)[0].label, before)


def test_rexgroundingct_published_metrics_beside_ours(tmp_path: Path) -> None:
    """``evaluate`` on ReXGroundingCT's public validation scans reports its Global Dice (mean Dice per
    finding) and hit rate (share of findings with Dice >= 0.1) from the same per-finding records."""
    from test_eval_runner import DensityRuleSegmenter
    from TextLesionSegLib.evaluation.cases import load_cases
    from TextLesionSegLib.evaluation.published import rexgroundingct
    from TextLesionSegLib.evaluation.report import markdown
    from TextLesionSegLib.evaluation.runner import EvalOptions, evaluate_model
    from TextLesionSegLib.models.base import InferenceSettings

    assert rexgroundingct([0.05, 0.1, 0.5]) | {"definition": ""} == \
        {"n_findings": 3, "global_dice": 0.2167, "hit_rate": 0.6667, "definition": ""}
    root = write_rex(tmp_path / "rex", n_train=1)
    # text-blind: segments the soft-tissue-dense consolidation (-50 HU), never the nodule (30 HU)
    ev = evaluate_model(DensityRuleSegmenter(blind=True), load_cases(root, None, "test"),
                        InferenceSettings(device="cpu", extra={"selection": "network"}), EvalOptions(absent_per_case=0))
    d = ev.to_dict()
    dices = [r["dice"] for r in d["lesions"]]
    assert len(dices) == 2 and min(dices) < 0.1 <= max(dices)
    pub = d["published"]["rexgroundingct"]
    assert pub["global_dice"] == pytest.approx(np.mean(dices), abs=1e-4) and pub["hit_rate"] == 0.5
    assert "rexgroundingct's own metrics (2 findings" in markdown([d], {"data": str(root)})
