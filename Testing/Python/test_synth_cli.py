"""``textlesionseg synth``: MSD layout, reports joined to instance labels, determinism, bad input."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from TextLesionSegLib.cli import main


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


ARGS = ["--count", "2", "--hosts", "ctchest4", "chest", "--grid", "small", "--lesions-per-case", "2", "--no-progress"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "a"
    assert main(["synth", "--out", str(out), "--seed", "3", *ARGS]) == 0
    return out


def test_layout_and_reports_match_labels(dataset: Path) -> None:
    meta = json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))
    assert meta["numTraining"] == 2 and len(meta["training"]) == 2
    rows = list(csv.DictReader(open(dataset / "reports.csv", encoding="utf-8")))
    assert len(rows) == 4
    for entry in meta["training"]:
        image = sitk.ReadImage(str(dataset / entry["image"]))
        label = sitk.ReadImage(str(dataset / entry["label"]))
        assert image.GetPixelID() == sitk.sitkInt16
        assert image.GetSize() == label.GetSize()
        np.testing.assert_allclose(image.GetDirection(), label.GetDirection())
        case_id = Path(entry["image"]).name.replace(".nii.gz", "")
        ids = set(np.unique(sitk.GetArrayFromImage(label)).tolist()) - {0}
        case_rows = [r for r in rows if r["case_id"] == case_id]
        assert ids == {int(r["lesion_id"]) for r in case_rows}
        for r in case_rows:
            assert r["organ"] == "lung" and r["side"] in ("left", "right")
            assert r["shape"] in ("round-like", "irregular") and r["report"].endswith(".")
            assert r["side"] in r["report"]


def test_same_seed_same_bytes_other_seed_differs(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "b"
    assert main(["synth", "--out", str(again), "--seed", "3", *ARGS]) == 0
    assert _digest(again) == _digest(dataset)
    other = tmp_path / "c"
    assert main(["synth", "--out", str(other), "--seed", "4", *ARGS]) == 0
    assert _digest(other) != _digest(dataset)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "x"
    assert main(["synth", "--out", str(out), "--lesion-types", "unicorn", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unicorn" in err
    assert not out.exists()
    assert main(["synth", "--out", str(out), "--hosts", "ctchest4", "--lesion-types", "renal cyst", "--no-progress"]) == 2
    assert not out.exists()
    # an existing non-empty folder is never touched
    out.mkdir()
    (out / "mine.txt").write_text("user data", encoding="utf-8")
    assert main(["synth", "--out", str(out), "--count", "1", "--hosts", "ctchest4", "--no-progress"]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert not list(tmp_path.glob(".x.partial-*"))


def test_a_case_that_cannot_be_placed_is_drawn_afresh_then_refused_in_one_line(tmp_path: Path, capsys,
                                                                               monkeypatch) -> None:
    """The synthesiser refuses a lesion whose attributes would not measure true (RuntimeError): the
    case is drawn afresh; when no draw fits, one line and exit 2, not an internal error."""
    from TextLesionSegLib.training.data import generate as gen

    real, calls = gen.make_case, []

    def first_draw_fails(plan, case_id, fallback_hosts=()):
        calls.append(case_id)
        if len(calls) == 1:
            raise RuntimeError("could not place a lung nodule (test)")
        return real(plan, case_id, fallback_hosts)

    monkeypatch.setattr(gen, "make_case", first_draw_fails)
    out = tmp_path / "ok"
    assert main(["synth", "--out", str(out), "--count", "1", "--hosts", "chest", "--grid", "small", "--no-progress"]) == 0
    assert calls == ["synth_00000", "synth_00000"] and (out / "reports.csv").is_file()

    def never(plan, case_id, fallback_hosts=()):
        raise RuntimeError("could not place a lung nodule (test)")

    monkeypatch.setattr(gen, "make_case", never)
    capsys.readouterr()
    out = tmp_path / "refused"
    assert main(["synth", "--out", str(out), "--count", "1", "--hosts", "chest", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "could not synthesise case 0" in err and "--seed" in err
    assert not out.exists() and not list(tmp_path.glob(".refused.partial-*"))


def test_referring_split_describes_one_lesion(tmp_path: Path) -> None:
    out = tmp_path / "ref"
    assert main(["synth", "--out", str(out), "--split", "referring", "--count", "1", "--no-progress"]) == 0
    rows = list(csv.DictReader(open(out / "reports.csv", encoding="utf-8")))
    by_case: dict[str, list[dict]] = {}
    for r in rows:
        by_case.setdefault(r["case_id"], []).append(r)
    assert len(by_case) == 2  # one train + one test case
    for case_rows in by_case.values():
        assert 2 <= len(case_rows) <= 3
        assert sum(int(r["described"]) for r in case_rows) == 1
        pairs = {(r["density"], r["shape"]) for r in case_rows}
        assert len(pairs) == len(case_rows)  # the described lesion differs from every distractor
    meta = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    assert meta["numTraining"] == 1 and meta["numTest"] == 1


def test_organ_masks_are_written_and_read_back(tmp_path: Path) -> None:
    from TextLesionSegLib.training.data import LesionDataset

    out = tmp_path / "org"
    assert main(["synth", "--out", str(out), "--count", "1", "--hosts", "ctchest4", "--organ-masks", "--no-progress"]) == 0
    meta = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    names = meta["organ_labels"]
    assert "ctchest4:12" in names and names["ctchest4:12"] == "left lung upper lobe"
    case = LesionDataset(out)[0]
    assert case.organs is not None and case.organs.shape == case.label.shape
    lesion = case.lesions[0]
    inside = case.organs[case.label == lesion.lesion_id]
    lung_ids = [int(k.split(":")[1]) for k, v in names.items() if "lung" in v]
    assert np.isin(inside, lung_ids).mean() > 0.4  # the lesion sits in the lung (related ones may protrude)
