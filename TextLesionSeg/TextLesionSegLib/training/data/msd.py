"""Write synthetic cases in the Medical Segmentation Decathlon layout, plus ``reports.csv``.

Layout (one folder per dataset)::

    imagesTr/<case>.nii.gz   CT in HU (int16)           labelsTr/<case>.nii.gz  lesion instances (uint8)
    imagesTs/<case>.nii.gz   (test cases, if any)       labelsTs/<case>.nii.gz
    organsTr|organsTs/<case>.nii.gz  host part labels (optional; names in dataset.json "organ_labels")
    dataset.json             MSD fields + "label_semantics": "instance"
    reports.csv              one row per lesion: case_id, lesion_id (= label value), split
                             (seen/unseen/referring/random), part (train/test), attributes, report

The folder is written next to its final place and renamed into it at the end, so an interrupted
run leaves no half-written dataset, and an existing non-empty folder is never overwritten.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ...errors import InputError
from .synthesize import SynthCase

#: reports.csv columns, in order; ``measured_*`` columns follow
REPORT_COLUMNS: tuple[str, ...] = (
    "case_id", "lesion_id", "split", "part", "described", "host", "lesion_type", "organ", "side", "sub_location",
    "shape", "density", "density_variation", "surface", "enhancement", "relation", "related_organ",
    "specific_features", "size_mm", "report",
)
MEASURED_COLUMNS: tuple[str, ...] = ("core_mean_hu", "reference_hu", "shape_index", "sphericity", "volume_ml")


def prepare_output(out: Path) -> Path:
    """A fresh staging folder beside ``out``; ``out`` must not exist or be empty.

    Raises:
        InputError: ``out`` is a file or a non-empty folder (nothing is overwritten).
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"output '{out}' exists and is not empty; choose a new --out folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; the dataset is an ordinary folder
    return staging


def commit_output(staging: Path, out: Path) -> None:
    """Move the finished staging folder into place."""
    if out.exists():
        out.rmdir()  # empty (checked in prepare_output)
    os.replace(staging, out)


def abandon_output(staging: Path) -> None:
    """Remove a staging folder after a failure (it only ever holds our own files)."""
    shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def msd_output(out: Path, name: str, description: str, organ_masks: bool = False,
               split: str = "random") -> Iterator["MSDWriter"]:
    """An :class:`MSDWriter` on a staging folder beside ``out`` (:func:`prepare_output`): the block
    adds the cases and calls ``close(meta)``; when it ends without error the folder becomes ``out``,
    on any error (Ctrl+C too) it is removed. Every case or none."""
    out = Path(out)
    staging = prepare_output(out)
    try:
        yield MSDWriter(staging, name, description, organ_masks, split)
        commit_output(staging, out)
    except BaseException:
        abandon_output(staging)
        raise


def write_volume(array: np.ndarray, case: SynthCase, path: Path) -> None:
    """Write an array on the case's grid as compressed NIfTI (gzip without timestamp: same bytes each run)."""
    import SimpleITK as sitk

    sitk.WriteImage(case.image.to_sitk(array), str(path), True)


def report_row(case: SynthCase, lesion, split: str, part: str) -> dict[str, Any]:
    """One ``reports.csv`` row: ``split`` is the benchmark split (seen/unseen/referring, or
    "random"), ``part`` is train or test."""
    a = lesion.attributes
    row = {
        "case_id": case.case_id, "lesion_id": lesion.lesion_id, "split": split, "part": part,
        "described": int(lesion.described),
        "host": case.host.name, "lesion_type": a["lesion_type"], "organ": a["organ"], "side": a.get("side") or "",
        "sub_location": a.get("sub_location") or "", "shape": a["shape"], "density": a["density"],
        "density_variation": a["density_variation"], "surface": a["surface"], "enhancement": a["enhancement"],
        "relation": a["relation"], "related_organ": a.get("related_organ") or "",
        "specific_features": "; ".join(a.get("specific_features", [])),
        "size_mm": " x ".join(f"{v:g}" for v in a["size_mm"]), "report": lesion.report,
    }
    for key in MEASURED_COLUMNS:
        row[f"measured_{key}"] = lesion.measured.get(key, "")
    return row


class MSDWriter:
    """Accumulates cases into a staging folder; :meth:`close` writes dataset.json and reports.csv."""

    def __init__(self, staging: Path, name: str, description: str, organ_masks: bool = False,
                 split: str = "random") -> None:
        self.root = Path(staging)
        self.split = split
        self.name = name
        self.description = description
        self.organ_masks = organ_masks
        self.entries: dict[str, list[dict[str, str]]] = {"training": [], "test": []}
        self.rows: list[dict[str, Any]] = []
        self.organ_labels: dict[str, str] = {}

    def add(self, case: SynthCase, part: str = "train") -> None:
        """Write one case: image (int16 HU), instance labels, optional organ parts, report rows."""
        tag = "Tr" if part == "train" else "Ts"
        for sub in (f"images{tag}", f"labels{tag}") + ((f"organs{tag}",) if self.organ_masks else ()):
            (self.root / sub).mkdir(exist_ok=True)
        name = f"{case.case_id}.nii.gz"
        hu = np.clip(np.rint(case.image.array), -1024, 3071).astype(np.int16)
        write_volume(hu, case, self.root / f"images{tag}" / name)
        write_volume(case.label, case, self.root / f"labels{tag}" / name)
        entry = {"image": f"./images{tag}/{name}", "label": f"./labels{tag}/{name}"}
        if self.organ_masks:
            write_volume(case.parts, case, self.root / f"organs{tag}" / name)
            entry["organs"] = f"./organs{tag}/{name}"
            for v, p in case.host.part_table.items():
                self.organ_labels.setdefault(f"{case.host.name}:{v}", p.name)
        self.entries["training" if part == "train" else "test"].append(entry)
        self.rows.extend(report_row(case, lesion, self.split, part) for lesion in case.lesions)

    def close(self, extra: dict[str, Any] | None = None) -> None:
        """Write ``dataset.json`` and ``reports.csv``."""
        meta: dict[str, Any] = {
            "name": self.name, "description": self.description, "tensorImageSize": "3D",
            "reference": "TextLesionSeg synthetic lesions (textlesionseg synth)", "licence": "CC-BY-4.0",
            "release": "1.0", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "lesion"},
            "label_semantics": "instance: each lesion has its own value = lesion_id in reports.csv",
            "numTraining": len(self.entries["training"]), "numTest": len(self.entries["test"]),
            "training": self.entries["training"], "test": self.entries["test"],
        }
        if self.organ_masks:
            meta["organ_labels"] = dict(sorted(self.organ_labels.items()))
        meta.update(extra or {})
        (self.root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        write_reports(self.root / "reports.csv", self.rows)


def write_reports(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write report rows with the standard columns first."""
    rows = list(rows)
    columns = list(REPORT_COLUMNS) + [f"measured_{k}" for k in MEASURED_COLUMNS]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
