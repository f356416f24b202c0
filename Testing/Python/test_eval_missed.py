"""evaluation.missed: the referring results grouped by organ, contrast and size of the lesion."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from TextLesionSegLib.evaluation import missed

FIELDS = ["case_id", "lesion_id", "organ", "measured_core_mean_hu", "measured_reference_hu", "measured_volume_ml"]


def _reports(folder: Path) -> Path:
    rows = [("c0", 1, "liver", 95.0, 110.0, 2.0),   # 15 HU: low contrast
            ("c0", 2, "liver", 20.0, 110.0, 12.0),  # 90 HU
            ("c1", 1, "lung", -20.0, -800.0, 0.5),  # 780 HU, small
            ("c1", 2, "lung", "", -800.0, 0.5)]     # no measurement: not classed
    path = folder / "reports.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        w.writerows(rows)
    return path


def _row(case: str, lesion: int, found: bool, follows: bool, mode: str = "network", kind: str = "own") -> dict:
    return {"case_id": case, "lesion_id": lesion, "mode": mode, "kind": kind,
            "candidate_found": found, "follows": follows}


def test_lesions_are_classed_by_contrast_and_size(tmp_path: Path) -> None:
    classes = missed.lesion_classes(_reports(tmp_path))
    assert classes[("c0", 1)] == {"organ": "liver", "contrast": "< 40 HU", "size": "1–10 mL"}
    assert classes[("c0", 2)]["contrast"] == "40–100 HU" and classes[("c0", 2)]["size"] == ">= 10 mL"
    assert classes[("c1", 1)] == {"organ": "lung", "contrast": ">= 100 HU", "size": "< 1 mL"}
    assert ("c1", 2) not in classes


def test_breakdown_counts_only_own_rows_of_the_mode(tmp_path: Path) -> None:
    classes = missed.lesion_classes(_reports(tmp_path))
    rows = [_row("c0", 1, False, False), _row("c0", 2, True, True), _row("c1", 1, True, False),
            _row("c0", 1, True, True, mode="measured"),     # other mode: not counted
            _row("c0", 1, True, True, kind="wrong"),        # not an own description
            _row("c1", 2, True, True)]                      # unclassed lesion
    lines = missed.breakdown(rows, classes, "network", by=("organ",))
    assert lines == [{"organ": "liver", "lesions": 2, "found": 1, "follows": 1},
                     {"organ": "lung", "lesions": 1, "found": 1, "follows": 0}]
    table = missed.markdown(lines, ("organ",))
    assert "| liver | 2 | 1 (50%) | 1 (50%) |" in table
    assert table.splitlines()[-1] == "| **all** | 3 | 2 (67%) | 1 (33%) |"


def test_cli_reads_a_stored_result(tmp_path: Path, capsys) -> None:
    _reports(tmp_path)
    result = tmp_path / "r.json"
    result.write_text(json.dumps({"data": str(tmp_path), "rows": [_row("c0", 1, False, False)]}), encoding="utf-8")
    assert missed.main([str(result), "--by", "organ", "contrast", "size"]) == 0
    assert "| liver | < 40 HU | 1–10 mL | 1 | 0 (0%) | 0 (0%) |" in capsys.readouterr().out
    assert missed.main([str(result), "--data", str(tmp_path / "nowhere")]) == 2
    assert "no reports.csv" in capsys.readouterr().err
