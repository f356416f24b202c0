"""Evaluation cases: image, instance label map and per-lesion descriptions of a dataset folder.

Layouts read (the ones ``textlesionseg synth`` and the training adapters use):

* **MSD / SynthLesion**: ``dataset.json`` (``training``/``test`` lists of ``{"image","label"}``, or
  just ``imagesTr/`` + ``labelsTr/``), plus ``reports.csv`` with one row per lesion (case id,
  lesion id = its value in the instance label map, lesion type, report, and optionally a split
  such as ``seen``/``unseen``/``referring``). Without ``reports.csv`` each connected component of
  the label is a lesion of the dataset's own type, with an empty description.
* **KiTS23**: ``case_XXXXX/imaging.nii.gz`` + ``segmentation.nii.gz`` (2 = tumour, 3 = cyst);
  each connected component of a class is one lesion of that type.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

_CASE_KEYS = ("case_id", "case", "caseid", "id", "image_id")
_LESION_KEYS = ("lesion_id", "lesion", "label", "instance", "label_value")
_TYPE_KEYS = ("lesion_type", "type", "lesion_class", "class")
_REPORT_KEYS = ("report", "text", "description", "sentence")
_SPLIT_KEYS = ("split", "subset", "group", "benchmark_split")
_PART_KEYS = ("part",)
_DESCRIBED_KEYS = ("described",)
KITS_TYPES = {2: "renal tumor", 3: "renal cyst"}


@dataclass
class LesionInfo:
    """One reference lesion: its id in the instance map, its type, its description."""

    lesion_id: int
    lesion_type: str = "lesion"
    report: str = ""
    split: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    part: str = ""
    described: bool = True


@dataclass
class Case:
    """One evaluation case; :meth:`load` reads the image and the instance label map."""

    case_id: str
    image_path: Path
    label_path: Path
    lesions: list[LesionInfo] = field(default_factory=list)
    split: str = ""
    label_classes: dict[int, str] | None = None  # semantic labels to split into instances (KiTS)
    part: str = ""  # "train" / "test" where the dataset says (SynthLesion's reports.csv)

    def load(self) -> tuple[Any, np.ndarray]:
        """(image as ``pipeline.geometry.Image``, instance label map KJI on the same grid)."""
        from ..pipeline.io import read_image

        image = read_image(self.image_path)
        label = np.asarray(read_image(self.label_path).array)
        if label.shape != image.array.shape:
            raise InputError(f"{self.label_path.name}: label shape {label.shape} differs from image {image.array.shape}")
        if self.label_classes is not None or not self.lesions:
            label, self.lesions = _instances_from_semantic(label, self.label_classes or {}, self.lesions)
        return image, label.astype(np.int32)


def _instances_from_semantic(
    label: np.ndarray, classes: dict[int, str], known: list[LesionInfo]
) -> tuple[np.ndarray, list[LesionInfo]]:
    """Split semantic labels into connected-component instances (one lesion each)."""
    from .detection import connected_components

    values = sorted(classes) if classes else [int(v) for v in np.unique(label) if v != 0]
    default_type = known[0].lesion_type if known else "lesion"
    out = np.zeros(label.shape, np.int32)
    lesions: list[LesionInfo] = []
    for value in values:
        comps, n = connected_components(label == value)
        for c in range(1, n + 1):
            lid = len(lesions) + 1
            out[comps == c] = lid
            lesions.append(LesionInfo(lid, classes.get(value, default_type)))
    return out, lesions


def _pick(row: dict[str, str], keys: tuple[str, ...], default: str = "") -> str:
    lower = {k.strip().lower(): v for k, v in row.items() if k}
    for key in keys:
        if key in lower and lower[key] not in (None, ""):
            return str(lower[key]).strip()
    return default


def _case_id(path: str | Path) -> str:
    name = Path(path).name
    for ext in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    return name[:-5] if name.endswith("_0000") else name


def _read_reports(path: Path) -> dict[str, list[LesionInfo]]:
    """Lesions per case id from a SynthLesion/Malenia-style ``reports.csv``."""
    out: dict[str, list[LesionInfo]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            case = _pick(row, _CASE_KEYS)
            lesion = _pick(row, _LESION_KEYS)
            if not case or not lesion.lstrip("-").isdigit():
                continue
            known = set(_CASE_KEYS + _LESION_KEYS + _TYPE_KEYS + _REPORT_KEYS + _SPLIT_KEYS + _PART_KEYS)
            attrs = {k: v for k, v in row.items() if k and k.strip().lower() not in known}
            out.setdefault(_case_id(case), []).append(
                LesionInfo(int(lesion), _pick(row, _TYPE_KEYS, "lesion"), _pick(row, _REPORT_KEYS),
                           _pick(row, _SPLIT_KEYS).lower(), attrs, _pick(row, _PART_KEYS).lower(),
                           _pick(row, _DESCRIBED_KEYS, "1") not in ("0", "false", "no"))
            )
    return out


def _msd_pairs(root: Path) -> list[tuple[Path, Path, str]]:
    """(image, label, split-from-json) triples of an MSD-layout folder."""
    pairs: list[tuple[Path, Path, str]] = []
    meta = root / "dataset.json"
    if meta.is_file():
        data = json.loads(meta.read_text(encoding="utf-8"))
        for key in ("training", "test", "validation"):
            for item in data.get(key, []) or []:
                if isinstance(item, dict) and "image" in item and "label" in item:
                    pairs.append((root / item["image"], root / item["label"], str(item.get("split", ""))))
    if not pairs and (root / "imagesTr").is_dir():
        for img in sorted((root / "imagesTr").iterdir()):
            lab = root / "labelsTr" / img.name.replace("_0000", "")
            if lab.exists():
                pairs.append((img, lab, ""))
    return pairs


def _benchmark_folders(root: Path) -> list[Path]:
    """Sub-folders of a benchmark root (``SynthLesion/seen``, ``/unseen``, ...) that are datasets."""
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "dataset.json").is_file())


def _load_folder(root: Path) -> list[Case]:
    kits = sorted(p for p in root.glob("case_*") if (p / "imaging.nii.gz").exists())
    if kits:
        return [Case(p.name, p / "imaging.nii.gz", p / "segmentation.nii.gz", label_classes=dict(KITS_TYPES))
                for p in kits if (p / "segmentation.nii.gz").exists()]
    cases = []
    reports = _read_reports(root / "reports.csv") if (root / "reports.csv").is_file() else {}
    for img, lab, json_split in _msd_pairs(root):
        lesions = reports.get(_case_id(img), [])
        splits = {l.split for l in lesions if l.split}
        parts = {l.part for l in lesions if l.part}
        case_split = json_split or (splits.pop() if len(splits) == 1 else "")
        cases.append(Case(_case_id(img), img, lab, lesions, case_split, part=parts.pop() if len(parts) == 1 else ""))
    return cases


def load_cases(data_dir: str | Path, split: str | None = None, part: str | None = None) -> list[Case]:
    """Every case of a dataset folder (MSD/SynthLesion, KiTS23) or of a benchmark root holding one
    dataset per split (``textlesionseg synth --benchmark``), optionally only ``split`` / ``part``.

    A case belongs to ``split`` when the case's own split or any of its lesions' splits equals it;
    with a split, only the lesions of that split are kept (others remain in the label map and
    count as "other lesions" for text sensitivity). ``part`` ("train"/"test") keeps the cases the
    dataset assigns to that part; cases without a part are kept.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise InputError(f"data folder not found: {root}")
    if (root / "dataset.json").is_file() or (root / "imagesTr").is_dir() or any(root.glob("case_*")):
        cases = _load_folder(root)
    else:
        folders = _benchmark_folders(root)
        if split and (root / split).is_dir():
            folders = [root / split]
        cases = [c for f in folders for c in _load_folder(f)]
    if not cases:
        raise InputError(f"{root}: no cases found (expected MSD imagesTr/labelsTr + dataset.json, or KiTS23 case_*/)")
    if part and part != "all":
        cases = [c for c in cases if not c.part or c.part == part]
        if not cases:
            raise InputError(f"{root}: no case in part '{part}'")
    if split:
        wanted = split.lower()
        picked = []
        for case in cases:
            if case.split.lower() == wanted:
                picked.append(case)
            elif any(l.split == wanted for l in case.lesions):
                case.lesions = [l for l in case.lesions if l.split == wanted]
                picked.append(case)
        if not picked:
            raise InputError(f"{root}: no case in split '{split}'")
        cases = picked
    return cases
