"""Adapters for the data users have: MSD task folders, KiTS23, Malenia attribute tables.

Each adapter lists cases as :class:`CaseSource` (paths + how to turn the label map into lesion
instances); :mod:`.dataset` loads them. Real datasets label lesion *classes*; each connected
component of a lesion class becomes one instance, numbered 1..K by decreasing size.

* MSD (Medical Segmentation Decathlon): ``dataset.json`` + ``imagesTr/`` + ``labelsTr/``.
  Lesion classes per task: Task03 Liver 2 (tumour), Task06 Lung 1 (tumour), Task07 Pancreas 2
  (tumour), Task08 HepaticVessel 2 (tumour), Task10 Colon 1 (cancer).
* KiTS23: ``case_XXXXX/imaging.nii.gz`` + ``segmentation.nii.gz`` (1 kidney, 2 tumour, 3 cyst).
* Attribute tables in the Malenia format (CSV or XLSX: lesion_type, organ, case_id,
  enhancement, location, shape, density, density_variation, surface, relation, report), or the
  authors' published workbook as downloaded (one sheet per lesion type, numbered Chinese headers),
  joined to cases by id; codes become canonical values (:data:`catalog.MALENIA_CODES`).
* Synthetic folders (``textlesionseg synth``), and any MSD-layout folder with a ``reports.csv``:
  instance labels, one report row per lesion (lesion id = its value in the label map).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InputError
from .catalog import MALENIA_CODES, MALENIA_LOCATION

#: MSD task number -> (organ, lesion classes {label value: lesion type}, organ label values)
MSD_TASKS: dict[int, tuple[str, dict[int, str], tuple[int, ...]]] = {
    3: ("liver", {2: "liver tumor"}, (1, 2)),
    6: ("lung", {1: "lung cancer"}, ()),
    7: ("pancreas", {2: "pancreatic tumor"}, (1, 2)),
    8: ("liver", {2: "liver tumor"}, ()),
    10: ("colon", {1: "colorectal cancer"}, ()),
}
MSD_NAMES = {"liver": 3, "lung": 6, "pancreas": 7, "hepaticvessel": 8, "colon": 10}
KITS_CLASSES: dict[int, str] = {2: "renal tumor", 3: "renal cyst"}


@dataclass
class CaseSource:
    """Where one case's files are and how its labels read.

    Attributes:
        case_id: id used to join attribute tables and reports.
        image: image path.
        label: label path (None for unlabelled test images).
        lesion_classes: label value -> lesion type when labels are semantic (real datasets);
            empty when the label map already holds instances (synthetic data).
        organ: organ of the dataset's lesions (None: per lesion, from reports).
        part: "train" or "test" where the folder says so (a ``reports.csv`` part column, a
            dataset.json "test" entry); "" where it does not: an MSD "training" list holds every
            labelled case and KiTS23 names no parts, so neither marks a case as unfit for testing.
        organs: optional path of a host-part label map (synthetic data).
        reader: "" (image and label files SimpleITK reads), or the public dataset whose own reader
            loads the case (:mod:`.public`: "rexgroundingct", "biomedsegfm").
        texts: label value -> descriptions, where the dataset itself describes its masks.
        instance_label: every label value is one instance of class 1 (CVPR-BiomedSegFM).
    """

    case_id: str
    image: Path
    label: Path | None
    lesion_classes: dict[int, str] = field(default_factory=dict)
    organ: str | None = None
    part: str = ""
    organs: Path | None = None
    reader: str = ""
    texts: dict[int, list[str]] = field(default_factory=dict)
    instance_label: bool = False


def case_id_of(path: str | Path) -> str:
    """Case id from a file or folder name: ``liver_3.nii.gz`` -> ``liver_3``, ``x_0000.nii`` -> ``x``."""
    name = Path(path).name
    for ext in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return name[:-5] if name.endswith("_0000") else name


#: every layout a dataset folder may have (``--format``)
LAYOUTS = ("synthetic", "msd", "kits23", "rexgroundingct", "biomedsegfm", "cache")


def detect_layout(root: Path) -> str:
    """One of :data:`LAYOUTS` for a dataset folder.

    Raises:
        InputError: the folder is missing or in none of these layouts.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"data folder not found: {root}")
    from .public import rex_metadata, segfm_prompts_file

    if (root / "cache.json").is_file():
        return "cache"
    if rex_metadata(root) is not None:  # before MSD: it also has a dataset.json
        return "rexgroundingct"
    if segfm_prompts_file(root) is not None:
        return "biomedsegfm"
    if any((p / "imaging.nii.gz").exists() for p in root.glob("case_*")):
        return "kits23"
    if (root / "dataset.json").exists() or (root / "imagesTr").is_dir():
        # reports.csv rows name lesions by their label value, so its labels are instances
        return "synthetic" if (root / "reports.csv").exists() else "msd"
    raise InputError(f"{root}: not an MSD folder (dataset.json, imagesTr/), a KiTS23 folder (case_*/imaging.nii.gz) "
                     "a synthetic dataset (textlesionseg synth), ReXGroundingCT (dataset.json + segmentations/), "
                     "CVPR-BiomedSegFM (CVPR25_TextSegFMData_with_class.json + 3D_train_npz_*/) or a cache "
                     "(textlesionseg prepare)")


def msd_task(root: Path) -> int:
    """MSD task number from the folder name (``Task03_Liver``) or dataset.json ``name``."""
    m = re.match(r"Task0*(\d+)", Path(root).name)
    if m and int(m.group(1)) in MSD_TASKS:
        return int(m.group(1))
    meta_path = Path(root) / "dataset.json"
    name = json.loads(meta_path.read_text(encoding="utf-8")).get("name", "") if meta_path.exists() else ""
    key = re.sub(r"[^a-z]", "", str(name).lower())
    if key in MSD_NAMES:
        return MSD_NAMES[key]
    raise InputError(f"{root}: unknown MSD task (folder TaskNN_Name or dataset.json name among "
                     f"{', '.join(sorted(MSD_NAMES))}); supported tasks: {sorted(MSD_TASKS)}")


def _msd_entries(root: Path) -> list[tuple[Path, Path | None, str, Path | None]]:
    meta_path = root / "dataset.json"
    out: list[tuple[Path, Path | None, str, Path | None]] = []
    if meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        for item in meta.get("training", []) or []:
            organs = root / item["organs"] if isinstance(item, dict) and item.get("organs") else None
            out.append((root / item["image"], root / item["label"], "", organs))
        for item in meta.get("test", []) or []:
            if isinstance(item, dict):
                lab = root / item["label"] if item.get("label") else None
                out.append((root / item["image"], lab, "test",
                            root / item["organs"] if item.get("organs") else None))
            else:  # MSD lists test images as plain paths, without labels
                out.append((root / item, None, "test", None))
    else:
        for img in sorted((root / "imagesTr").glob("*.nii*")):
            if img.name.startswith("._"):  # macOS resource forks, shipped inside the MSD tarballs
                continue
            out.append((img, root / "labelsTr" / img.name.replace("_0000", ""), "", None))
    return out


def list_cases(root: Path, layout: str | None = None) -> tuple[str, list[CaseSource]]:
    """The layout and every case of a dataset folder (train and test parts)."""
    root = Path(root)
    layout = layout or detect_layout(root)
    if layout == "rexgroundingct":
        from .public import rex_cases

        cases = rex_cases(root)
    elif layout == "biomedsegfm":
        from .public import segfm_cases

        cases = segfm_cases(root)
    elif layout == "cache":
        from .cache import cache_cases

        cases = cache_cases(root)
    elif layout == "kits23":
        cases = [CaseSource(p.name, p / "imaging.nii.gz",
                            p / "segmentation.nii.gz" if (p / "segmentation.nii.gz").exists() else None,
                            dict(KITS_CLASSES), "kidney")
                 for p in sorted(root.glob("case_*")) if (p / "imaging.nii.gz").exists()]
    elif layout == "synthetic":
        cases = [CaseSource(case_id_of(img), img, lab, {}, None, part, organs)
                 for img, lab, part, organs in _msd_entries(root)]
    elif layout == "msd":
        organ, classes, _ = MSD_TASKS[msd_task(root)]
        cases = [CaseSource(case_id_of(img), img, lab, dict(classes), organ, part)
                 for img, lab, part, _ in _msd_entries(root)]
    else:
        raise InputError(f"unknown layout '{layout}' ({', '.join(LAYOUTS)})")
    missing = [str(c.image) for c in cases if not c.image.exists()]
    if missing:
        raise InputError(f"{root}: {len(missing)} listed image(s) missing, e.g. {missing[0]}")
    if not cases:
        raise InputError(f"{root}: no cases found")
    return layout, cases


#: other names of ``reports.csv`` columns in hand-made tables -> the synthetic writer's names
REPORT_ALIASES = {
    "case": "case_id", "caseid": "case_id", "id": "case_id", "image_id": "case_id",
    "lesion": "lesion_id", "label": "lesion_id", "instance": "lesion_id", "label_value": "lesion_id",
    "type": "lesion_type", "lesion_class": "lesion_type", "class": "lesion_type",
    "text": "report", "description": "report", "sentence": "report",
    "subset": "split", "group": "split", "benchmark_split": "split",
}


def _report_row(raw: dict[str, Any]) -> dict[str, Any]:
    """One row with lower-case canonical column names (an alias only fills a missing column)."""
    row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k}
    for alias, name in REPORT_ALIASES.items():
        if alias in row and not row.get(name):
            row[name] = row.pop(alias)
    return row


def read_reports(path: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """A ``reports.csv``: case id -> lesion id -> row (attribute values canonical).

    ``split`` and ``part`` are lower-cased; rows without a case id or an integer lesion id are
    skipped (they name no lesion of the label map).
    """
    table: dict[str, dict[int, dict[str, Any]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in map(_report_row, csv.DictReader(f)):
            if not row.get("case_id") or not row.get("lesion_id", "").lstrip("-").isdigit():
                continue
            row["specific_features"] = [s.strip() for s in (row.get("specific_features") or "").split(";") if s.strip()]
            row["size_mm"] = [float(v) for v in re.findall(r"[\d.]+", row.get("size_mm") or "")] or None
            row["described"] = row.get("described", "1").lower() not in ("0", "false", "no")
            row["split"], row["part"] = row.get("split", "").lower(), row.get("part", "").lower()
            table.setdefault(case_id_of(row["case_id"]), {})[int(row["lesion_id"])] = row
    return table


#: sheets of the authors' published workbooks (``annotations_of_lesion_descriptions.xlsx`` and its
#: Chinese twin): one per lesion type, named in Chinese -> (lesion type, organ)
MALENIA_SHEETS: dict[str, tuple[str, str]] = {
    "肾癌": ("renal cell carcinoma", "kidney"), "肾囊肿": ("renal cyst", "kidney"),
    "肝癌": ("hepatocellular carcinoma", "liver"), "胰腺癌": ("pancreatic cancer", "pancreas"),
    "胰腺囊肿": ("pancreatic cyst", "pancreas"), "结肠癌": ("colorectal cancer", "colon"), "肺癌": ("lung cancer", "lung"),
}
#: their numbered column headers ("1) 增强情况: ...") -> our column names; "ID" is the case id, the
#: last column the report
MALENIA_NUMBERED = ("enhancement", "location", "shape", "density", "density_variation", "surface", "relation")


def _published_sheet(name: str, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows of one sheet of the published workbook, in the flat table's columns; its example rows
    ("Example 1", "示例1", bare numbers) name no case and are dropped."""
    header = [str(h or "").strip() for h in rows[0]]
    columns = {}
    for n, h in enumerate(header):
        m = re.match(r"(\d)\)", h)
        if m and 1 <= int(m.group(1)) <= len(MALENIA_NUMBERED):
            columns[n] = MALENIA_NUMBERED[int(m.group(1)) - 1]
    columns[0], columns[len(header) - 1] = "case_id", "report"
    lesion_type, organ = MALENIA_SHEETS.get(name.strip(), ("", ""))
    out = []
    for r in rows[1:]:
        row = {col: ("" if r[n] is None else str(r[n])) for n, col in columns.items() if n < len(r)}
        case = row.get("case_id", "").strip()
        if not case or case.isdigit() or case.lower().startswith("example") or case.startswith("示例"):
            continue
        out.append({**row, "lesion_type": lesion_type, "organ": organ})
    return out


def _table_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a flat table (CSV, or an XLSX whose first sheet has a ``case_id`` header), or of every
    sheet of the authors' published workbook (header ``ID``, sheets named by lesion type)."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises zipfile/KeyError/ValueError on damaged files
            raise InputError(f"cannot read {path}: {exc}") from exc
        sheets = [(ws.title, list(ws.iter_rows(values_only=True))) for ws in book.worksheets]
        sheets = [(name, rows) for name, rows in sheets if rows]
        if sheets and str(sheets[0][1][0][0] or "").strip().upper() == "ID":
            return [row for name, rows in sheets for row in _published_sheet(name, rows)]
        rows = sheets[0][1] if sheets else []
        header = [str(h).strip() if h is not None else "" for h in rows[0]] if rows else []
        return [{h: ("" if v is None else str(v)) for h, v in zip(header, r)} for r in rows[1:]]
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [dict(r) for r in csv.DictReader(f)]


def read_attribute_table(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """A Malenia-format attribute table (CSV/XLSX) -> case id -> canonical attribute dicts.

    Codes are mapped with :data:`catalog.MALENIA_CODES`; ``location`` becomes side and
    sub-location per organ. Missing or unknown codes become None (real tables have gaps).

    Raises:
        InputError: unreadable file or no ``case_id`` column.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"attribute table not found: {path}")
    rows = _table_rows(path)
    if not rows or "case_id" not in rows[0]:
        raise InputError(f"{path}: expected the Malenia columns (case_id, organ, lesion_type, shape, density, ...)")
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        organ = (r.get("organ") or "").strip().lower() or None
        attrs: dict[str, Any] = {"lesion_type": (r.get("lesion_type") or "").strip() or None, "organ": organ,
                                 "report": (r.get("report") or "").strip()}
        for key, codes in MALENIA_CODES.items():
            raw = str(r.get(key, "")).strip()
            value = raw if raw in codes.values() else codes.get(raw.split(".")[0])
            attrs[key] = value
        loc = str(r.get("location", "")).strip().split("、")[0].split(".")[0]
        side, sub = MALENIA_LOCATION.get(organ or "", {}).get(loc, (None, None))
        attrs["side"], attrs["sub_location"] = side, sub
        attrs["specific_features"] = []
        out.setdefault(case_id_of(str(r["case_id"]).strip()), []).append(attrs)
    return out
