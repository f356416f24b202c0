"""Dataset reading for evaluation (MSD + reports.csv, KiTS23) and the tiny two-lesion dataset other tests use."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from TextLesionSegLib.errors import InputError
from TextLesionSegLib.evaluation.cases import load_cases

SPACING = (1.5, 1.5, 2.0)
SHAPE = (24, 48, 64)  # K, J, I
BODY_HU, HYPO_HU, HYPER_HU = 40.0, -60.0, 170.0


def _ball(centre_kji, radius_mm):
    k, j, i = np.indices(SHAPE, dtype=float)
    ck, cj, ci = centre_kji
    return ((i - ci) * SPACING[0]) ** 2 + ((j - cj) * SPACING[1]) ** 2 + ((k - ck) * SPACING[2]) ** 2 <= radius_mm**2


def write_tiny_dataset(root: Path, n_cases: int = 3, seed: int = 0) -> Path:
    """MSD-layout folder: each case a soft-tissue slab holding a hypodense lesion on the patient's
    right (low I... see below) and a hyperdense one on the left, with reports naming both.

    LPS: +I points to the patient's left, so small I = right side, large I = left side.
    """
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    rows, items = [], []
    for c in range(n_cases):
        case = f"tiny_{c:03d}"
        hu = np.full(SHAPE, -1000.0, np.float32)
        hu[2:-2, 4:-4, 4:-4] = BODY_HU
        hu += rng.normal(0, 5, SHAPE).astype(np.float32)
        lab = np.zeros(SHAPE, np.uint8)
        r1, r2 = 6.0 + c, 7.0 + (c % 2)
        right = _ball((12, 24 + c, 18), r1)
        left = _ball((12, 22, 46 - c), r2)
        hu[right], lab[right] = HYPO_HU + rng.normal(0, 5, int(right.sum())), 1
        hu[left], lab[left] = HYPER_HU + rng.normal(0, 5, int(left.sum())), 2
        for arr, folder, name in ((hu, "imagesTr", f"{case}_0000.nii.gz"), (lab, "labelsTr", f"{case}.nii.gz")):
            img = sitk.GetImageFromArray(arr)
            img.SetSpacing(SPACING)
            sitk.WriteImage(img, str(root / folder / name))
        items.append({"image": f"./imagesTr/{case}_0000.nii.gz", "label": f"./labelsTr/{case}.nii.gz"})
        split = "unseen" if c == n_cases - 1 else "seen"
        rows.append({"case_id": case, "lesion_id": 1, "lesion_type": "renal cyst", "split": split,
                     "density": "hypodense", "report": "A round hypodense lesion in the right kidney."})
        rows.append({"case_id": case, "lesion_id": 2, "lesion_type": "renal cell carcinoma", "split": split,
                     "density": "hyperdense", "report": "An irregular hyperdense mass in the left kidney."})
    (root / "dataset.json").write_text(json.dumps({"name": "tiny", "training": items}), encoding="utf-8")
    with (root / "reports.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def test_msd_cases_with_reports(tiny_dataset):
    cases = load_cases(tiny_dataset)
    assert [c.case_id for c in cases] == ["tiny_000", "tiny_001", "tiny_002"]
    c0 = cases[0]
    assert [l.lesion_id for l in c0.lesions] == [1, 2]
    assert c0.lesions[0].report.startswith("A round hypodense")
    assert c0.lesions[1].lesion_type == "renal cell carcinoma"
    assert c0.lesions[0].attributes["density"] == "hypodense"
    image, inst = c0.load()
    assert image.array.shape == SHAPE and inst.shape == SHAPE
    assert image.spacing == pytest.approx(SPACING)
    assert set(np.unique(inst)) == {0, 1, 2}


def test_split_filter(tiny_dataset):
    unseen = load_cases(tiny_dataset, "unseen")
    assert [c.case_id for c in unseen] == ["tiny_002"]
    assert len(load_cases(tiny_dataset, "seen")) == 2
    with pytest.raises(InputError, match="no case in split"):
        load_cases(tiny_dataset, "referring")


def test_benchmark_root_and_parts(tmp_path):
    root = tmp_path / "bench"
    write_tiny_dataset(root / "seen", n_cases=2)
    write_tiny_dataset(root / "referring", n_cases=2, seed=1)
    rows = (root / "referring" / "reports.csv").read_text(encoding="utf-8").splitlines()
    header = rows[0] + ",part"
    parts = [r + (",train" if "tiny_000" in r else ",test") for r in rows[1:]]
    (root / "referring" / "reports.csv").write_text("\n".join([header] + parts) + "\n", encoding="utf-8")
    assert len(load_cases(root)) == 4
    assert [c.case_id for c in load_cases(root, part="test")] == ["tiny_001", "tiny_000", "tiny_001"]
    only = load_cases(root / "referring", part="train")
    assert [c.case_id for c in only] == ["tiny_000"] and only[0].part == "train"


def test_kits_layout_splits_classes_into_lesions(tmp_path):
    import SimpleITK as sitk

    case = tmp_path / "case_00000"
    case.mkdir()
    img = np.zeros((10, 20, 20), np.int16)
    seg = np.zeros_like(img, dtype=np.uint8)
    seg[2:4, 2:5, 2:5] = 2  # tumour
    seg[6:8, 10:13, 10:13] = 2  # a second tumour, separate
    seg[2:4, 15:18, 15:18] = 3  # cyst
    sitk.WriteImage(sitk.GetImageFromArray(img), str(case / "imaging.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(seg), str(case / "segmentation.nii.gz"))
    (c,) = load_cases(tmp_path)
    _, inst = c.load()
    assert sorted(l.lesion_type for l in c.lesions) == ["renal cyst", "renal tumor", "renal tumor"]
    assert int(inst.max()) == 3


def test_missing_folder_is_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_cases(tmp_path / "nope")
    with pytest.raises(InputError, match="no labelled cases"):
        load_cases(tmp_path)


def test_cases_are_listed_without_reading_images(tiny_dataset, monkeypatch):
    from TextLesionSegLib.training.data.dataset import LesionDataset

    def refuse(self, index):
        raise AssertionError("an image was read while listing cases")

    with monkeypatch.context() as m:
        m.setattr(LesionDataset, "__getitem__", refuse)
        (case,) = load_cases(tiny_dataset, "unseen")
    assert case.split == "unseen" and [l.lesion_id for l in case.lesions] == [1, 2]
    _, inst = case.load()
    assert all(l.voxels == int((inst == l.lesion_id).sum()) > 0 for l in case.lesions)


def test_hand_made_reports_columns_and_described_flag(tmp_path):
    from TextLesionSegLib.training.data.adapters import detect_layout

    root = write_tiny_dataset(tmp_path / "hand", n_cases=1)
    # another tool's column names, file names as case ids, a referring distractor
    (root / "reports.csv").write_text(
        "Case,Lesion,Type,Text,Subset,described\n"
        "tiny_000_0000.nii.gz,1,renal cyst,A round hypodense lesion.,Referring,1\n"
        "tiny_000_0000.nii.gz,2,renal cell carcinoma,An irregular hyperdense mass.,referring,0\n"
        "tiny_000_0000.nii.gz,,note without a lesion,,,\n", encoding="utf-8")
    assert detect_layout(root) == "synthetic"  # reports.csv rows name instances of the label map
    (case,) = load_cases(root, "referring")
    assert [(l.lesion_id, l.lesion_type, l.described) for l in case.lesions] == \
        [(1, "renal cyst", True), (2, "renal cell carcinoma", False)]
    assert case.lesions[0].report == "A round hypodense lesion." and case.part == ""
