"""Adapters on tiny MSD and KiTS23 folders written here, attribute tables, and LesionDataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from TextLesionSegLib.errors import InputError
from TextLesionSegLib.pipeline.geometry import Image
from TextLesionSegLib.training.data import LesionDataset
from TextLesionSegLib.training.data.adapters import detect_layout, msd_task, read_attribute_table

SHAPE = (12, 40, 48)  # K, J, I


def _write(array: np.ndarray, path: Path, flip: bool) -> None:
    """Write on a grid whose i axis points to the patient's right when ``flip`` (as most CTs)."""
    direction = np.diag([-1.0, -1.0, 1.0]) if flip else np.eye(3)
    img = Image(array=array, spacing=(2.0, 2.0, 4.0), origin=np.array([47.0, 39.0, 0.0]) if flip else np.array([-47.0, -39.0, 0.0]),
                direction=direction)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img.to_sitk(), str(path), True)


def _volume(flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Body block with two lesion blobs: a big one on the patient's LEFT, a small one on the right."""
    hu = np.full(SHAPE, -1000, np.int16)
    hu[:, 5:35, 4:44] = 40
    lab = np.zeros(SHAPE, np.uint8)
    # patient's left = +x (LPS); with identity direction +x is high i, with the flip it is low i
    left_i, right_i = (slice(6, 14), slice(34, 38)) if flip else (slice(34, 42), slice(10, 14))
    lab[2:8, 10:20, left_i] = 2
    lab[3:6, 25:29, right_i] = 2
    return hu, lab


@pytest.mark.parametrize("flip", [False, True])
def test_msd_liver_task_instances_and_sides(tmp_path: Path, flip: bool) -> None:
    root = tmp_path / "Task03_Liver"
    hu, lab = _volume(flip)
    lab[lab == 0] = 0
    lab[0:2, 5:35, 4:44] = 1  # liver class, not a lesion
    _write(hu, root / "imagesTr" / "liver_0.nii.gz", flip)
    _write(lab, root / "labelsTr" / "liver_0.nii.gz", flip)
    (root / "dataset.json").write_text(json.dumps({"name": "Liver", "training": [
        {"image": "./imagesTr/liver_0.nii.gz", "label": "./labelsTr/liver_0.nii.gz"}], "test": []}), encoding="utf-8")
    assert detect_layout(root) == "msd" and msd_task(root) == 3
    ds = LesionDataset(root)
    case = ds[0]
    assert case.case_id == "liver_0"
    assert [l.lesion_id for l in case.lesions] == [1, 2]
    assert case.lesions[0].voxels > case.lesions[1].voxels  # largest first
    # without dataset.json the folders are scanned, skipping the tarballs' macOS "._" files
    (root / "dataset.json").unlink()
    (root / "imagesTr" / "._liver_0.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    assert LesionDataset(root).case_ids == ["liver_0"]
    assert set(np.unique(case.label)) == {0, 1, 2}
    assert all(l.attributes["organ"] == "liver" and l.attributes["lesion_type"] == "liver tumor" for l in case.lesions)


def write_kits_case(case_dir: Path, flip: bool) -> None:
    """A KiTS23 case: the big left blob is a tumour (class 2), the small right blob a cyst (class 3)."""
    hu, lab = _volume(flip)
    right = np.zeros(SHAPE, bool)
    right[3:6, 25:29] = True
    lab[right & (lab == 2)] = 3
    _write(hu, case_dir / "imaging.nii.gz", flip)
    _write(lab, case_dir / "segmentation.nii.gz", flip)


def write_malenia_table(path: Path, case_id: str) -> None:
    """A one-row attribute table in the Malenia format (codes: ../shared/reference/README.md)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["lesion_type", "organ", "case_id", "enhancement", "location", "shape", "density",
                    "density_variation", "surface", "relation", "report"])
        w.writerow(["renal cell carcinoma", "kidney", case_id, "2", "1", "2", "3", "2", "2", "1",
                    "Contrast-enhanced CT: An irregular hyperdense lesion is seen in the left kidney."])


@pytest.mark.parametrize("flip", [False, True])
def test_kits23_classes_sides_and_attribute_table(tmp_path: Path, flip: bool) -> None:
    write_kits_case(tmp_path / "kits" / "case_00007", flip)
    table = tmp_path / "attrs.csv"
    write_malenia_table(table, "case_00007")
    ds = LesionDataset(tmp_path / "kits", attributes=table)
    assert ds.layout == "kits23"
    case = ds[0]
    big_lesion, cyst = case.lesions
    assert big_lesion.attributes["side"] == "left" and cyst.attributes["side"] == "right"
    # the table row joins the largest lesion, with canonical values
    assert big_lesion.attributes["shape"] == "irregular" and big_lesion.attributes["density"] == "hyperdense"
    assert big_lesion.attributes["enhancement"] == "contrast-enhanced"
    assert big_lesion.report.startswith("Contrast-enhanced CT")
    assert cyst.attributes["lesion_type"] == "renal cyst" and "right kidney" in cyst.report
    q = big_lesion.query()
    assert q.organ == "kidney" and q.side == "left" and q.density == "hyperdense"


def test_malenia_reference_table_reads_canonical(tmp_path: Path) -> None:
    ref = Path(__file__).resolve().parents[3] / "shared" / "reference" / "malenia_attributes.csv"
    path = ref if ref.exists() else None
    if path is None:  # a user's clone: a two-row copy of the format
        path = tmp_path / "t.csv"
        path.write_text("lesion_type,organ,case_id,enhancement,location,shape,density,density_variation,surface,relation,report\n"
                        "renal cyst,kidney,case_00001,2,1,1,1,1,1,1,A cyst.\n", encoding="utf-8")
    table = read_attribute_table(path)
    rows = [r for rows in table.values() for r in rows]
    assert rows and all(r["shape"] in ("round-like", "irregular", None) for r in rows)
    assert {r["density"] for r in rows} <= {"hypodense", "isodense", "hyperdense", "mixed", None}
    kidney = [r for r in rows if r["organ"] == "kidney" and r["side"]]
    assert kidney and {r["side"] for r in kidney} <= {"left", "right"}


def test_xlsx_table_and_bad_folders(tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["lesion_type", "organ", "case_id", "enhancement", "location", "shape", "density",
               "density_variation", "surface", "relation", "report"])
    ws.append(["pancreatic cancer", "pancreas", "pancreas_148.nii", 2, 2, 2, 1, 2, 2, 1, "An irregular hypodense lesion."])
    wb.save(tmp_path / "t.xlsx")
    table = read_attribute_table(tmp_path / "t.xlsx")
    row = table["pancreas_148"][0]
    assert row["sub_location"] == "body" and row["density"] == "hypodense" and row["shape"] == "irregular"
    with pytest.raises(InputError):
        LesionDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        LesionDataset(tmp_path / "empty")


def test_synthetic_folder_and_training_windows(tmp_path: Path) -> None:
    from TextLesionSegLib.cli import main
    from TextLesionSegLib.models.base import PreprocessingConfig
    from TextLesionSegLib.training.data.transforms import TrainingWindows

    out = tmp_path / "syn"
    assert main(["synth", "--out", str(out), "--count", "2", "--hosts", "ctchest4", "--lesions-per-case", "2",
                 "--seed", "5", "--no-progress"]) == 0
    ds = LesionDataset(out)
    assert ds.layout == "synthetic" and len(ds) == 2
    for case in ds:
        ids = set(np.unique(case.label).tolist()) - {0}
        assert ids == {l.lesion_id for l in case.lesions}
        for l in case.lesions:
            assert l.attributes["organ"] == "lung" and l.report and l.attributes["shape"] in ("round-like", "irregular")
            assert isinstance(l.attributes["specific_features"], list)
    roi = (16, 48, 48)
    windows = TrainingWindows(ds, PreprocessingConfig(spacing=(3.0, 3.0, 5.0), roi_size=roi), roi, samples_per_epoch=6,
                              augment=True, seed=1)
    hits = 0
    for i in range(len(windows)):
        s = windows[i]
        assert tuple(s["image"].shape) == (1,) + roi and tuple(s["label"].shape) == (1,) + roi
        assert -0.2 <= float(s["image"].min()) and float(s["image"].max()) <= 1.2  # 0..1, then light intensity jitter
        present = set(s["label"].unique().tolist()) - {0}
        assert {l.lesion_id for l in s["lesions"]} <= present
        hits += bool(present)
    assert hits >= 2  # label-balanced crops: most windows hold a lesion
    # on the working grid (LPS identity: +i = patient's left) a left-lung lesion lies left of the midline
    from TextLesionSegLib.training.data.transforms import to_working_arrays

    checked = 0
    for case in ds:
        arrays = to_working_arrays(case, PreprocessingConfig(spacing=(3.0, 3.0, 5.0), roi_size=roi))
        assert np.allclose(arrays["grid"].working.direction, np.eye(3))
        body_i = np.argwhere(arrays["image"][0] > 0.2)[:, 2]
        for lesion in arrays["lesions"]:
            i = np.argwhere(arrays["label"][0] == lesion.lesion_id)[:, 2].mean()
            assert (i > np.median(body_i)) == (lesion.attributes["side"] == "left")
            checked += 1
    assert checked >= 2
