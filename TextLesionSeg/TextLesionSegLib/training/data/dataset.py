"""One dataset interface over every layout ``adapters.LAYOUTS`` names: image, instances, attributes.

    ds = LesionDataset("data/SynthLesion/seen")   # or MSD, KiTS23, ReXGroundingCT, CVPR-BiomedSegFM, a cache
    case = ds[0]
    case.image        # pipeline.geometry.Image (HU, KJI array + LPS geometry)
    case.label        # (K, J, I) int32 instance map: 0 background, lesion_id elsewhere
    case.lesions      # [LesionRecord(lesion_id, attributes, report, described, voxels, split)]
    case.lesions[0].query()   # the same lesion as a query.types.LesionQuery

Real datasets label lesion classes; connected components become instances (largest first).
Attributes of real lesions come from an attribute table (``attributes=`` a Malenia CSV/XLSX,
joined by case id: a case's rows go to its lesions in decreasing size); otherwise from what the
label says (organ, lesion type, side from the patient's LPS x). A folder with a ``reports.csv``
lists its lesions before any image is read (:meth:`LesionDataset.listed_lesions`). Datasets that
describe their own masks (ReXGroundingCT's findings, CVPR-BiomedSegFM's class prompts; :mod:`.public`)
give each mask its sentence as report and the attributes the query parser reads in it; a prepared
cache (:mod:`.cache`) gives back the records it stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ...errors import InputError
from ...pipeline.geometry import Image
from .adapters import CaseSource, list_cases, read_attribute_table, read_reports
from .report import location_phrase

#: components smaller than this (voxels) are label noise, not lesions [chosen]
MIN_LESION_VOXELS = 10
#: organs that come in pairs: a lesion's side is read from its position
PAIRED = ("kidney", "lung")


@dataclass
class LesionRecord:
    """One lesion of a case.

    Attributes:
        lesion_id: its value in the instance label map.
        attributes: canonical attribute dict (keys of ``query.types.LesionQuery``; None = unknown).
        report: a sentence describing it ("" if none is known).
        described: False for the distractors of a referring case (their report is not the text).
        voxels: voxel count in the label map (0 until the label is read).
        split: benchmark split of the lesion (``reports.csv``: seen/unseen/referring; "" if none).
    """

    lesion_id: int
    attributes: dict[str, Any]
    report: str
    described: bool = True
    voxels: int = 0
    split: str = ""

    @property
    def lesion_type(self) -> str:
        """The lesion's type, "lesion" where the data does not say."""
        return str(self.attributes.get("lesion_type") or "lesion")

    def as_row(self) -> dict[str, str]:
        """This lesion as a ``reports.csv``-style row of strings (lists joined with ``;``), so real
        and synthetic lesions reach the models' phrase builders through one format."""
        row = {k: "" if v is None else ";".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
               for k, v in self.attributes.items()}
        row.update(report=self.report, lesion_id=str(self.lesion_id))
        return row

    def query(self):
        """This lesion as a :class:`~TextLesionSegLib.query.types.LesionQuery` (text = report)."""
        from ...query.types import LesionQuery

        data = {k: v for k, v in self.attributes.items() if v not in (None, "")}
        data["specific_features"] = list(self.attributes.get("specific_features") or [])
        return LesionQuery.from_dict({**data, "text": self.report})


@dataclass
class LesionCase:
    """One case: image, instance label map, lesions (and host organs for synthetic data)."""

    case_id: str
    image: Image
    label: np.ndarray
    lesions: list[LesionRecord]
    part: str = "train"  # "train" also where the folder names no part (see adapters.CaseSource)
    organs: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _read(path: Path) -> Image:
    from ...pipeline.io import read_image

    return read_image(path)


def instances_from_classes(label: np.ndarray, classes: dict[int, str], min_voxels: int = MIN_LESION_VOXELS
                           ) -> tuple[np.ndarray, list[tuple[int, str, int]]]:
    """Instance map from a class label map: each connected component (26-neighbourhood) of a
    lesion class is one lesion, numbered 1..K by decreasing size. Returns (map, [(id, type, voxels)])."""
    from scipy import ndimage

    comps: list[tuple[int, str, np.ndarray]] = []
    for value, ltype in classes.items():
        lab, n = ndimage.label(label == value, structure=np.ones((3, 3, 3), bool))
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())[1:]
        for i in np.flatnonzero(sizes >= min_voxels):
            comps.append((int(sizes[i]), ltype, lab == (i + 1)))
    comps.sort(key=lambda c: -c[0])
    out = np.zeros(label.shape, np.int32)
    info = []
    for k, (size, ltype, mask) in enumerate(comps, start=1):
        out[mask] = k
        info.append((k, ltype, size))
    return out, info


def side_of(image: Image, mask: np.ndarray) -> str:
    """"left" or "right" (the patient's) from the mask centroid's LPS x against the body midline."""
    body = np.argwhere(image.array > -500)
    mid_x = float(np.median(image.kji_to_lps(body[:: max(1, len(body) // 100000)])[:, 0])) if len(body) else 0.0
    x = float(image.kji_to_lps(np.argwhere(mask).mean(0))[0])
    return "left" if x > mid_x else "right"


class LesionDataset(Sequence[LesionCase]):
    """Cases of a dataset folder, loaded on access (see the module docstring).

    Args:
        data_dir: synthetic (``textlesionseg synth``), MSD task or KiTS23 folder.
        part: "train", "test" or "all".
        layout: force one of ``adapters.LAYOUTS`` (default: detected).
        attributes: optional Malenia-format attribute table (CSV/XLSX) joined by case id.
        described_only: drop lesions not described (referring distractors stay in ``label``
            but not in ``lesions``) when True.
        min_voxels: smallest component kept as a lesion for real datasets.
    """

    def __init__(self, data_dir: str | Path, part: str = "train", layout: str | None = None,
                 attributes: str | Path | None = None, described_only: bool = False,
                 min_voxels: int = MIN_LESION_VOXELS) -> None:
        if part not in ("train", "test", "all"):
            raise InputError(f"part must be train, test or all, not '{part}'")
        self.root = Path(data_dir)
        self.layout, cases = list_cases(self.root, layout)
        self.reports = read_reports(self.root / "reports.csv") if self.layout == "synthetic" else {}
        # the reports' part column states a case's part, also where dataset.json lists only "training"
        cases = [replace(c, part=_stated_part(self.reports.get(c.case_id, {})) or c.part) for c in cases]
        # a case whose part is not stated is labelled data, i.e. training data
        self.sources: list[CaseSource] = [c for c in cases if part == "all" or (c.part or "train") == part]
        self.sources = [c for c in self.sources if c.label is not None and c.label.exists()]
        if not self.sources:
            raise InputError(f"{self.root}: no labelled {'' if part == 'all' else part + ' '}cases")
        self.table = read_attribute_table(attributes) if attributes else {}
        self.described_only = described_only
        self.min_voxels = min_voxels

    @property
    def case_ids(self) -> list[str]:
        """Case ids in order."""
        return [c.case_id for c in self.sources]

    def __len__(self) -> int:
        return len(self.sources)

    def __iter__(self) -> Iterator[LesionCase]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int) -> LesionCase:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("LesionDataset does not slice; index one case at a time")
        src = self.sources[index]
        if src.reader:
            return self._read_described(src)
        image = _read(src.image)
        raw = _read(src.label).array
        if raw.shape != image.array.shape:
            raise InputError(f"{src.label}: label grid {raw.shape} differs from image grid {image.array.shape}")
        organs = _read(src.organs).array if src.organs is not None and src.organs.exists() else None
        if src.lesion_classes:
            label, info = instances_from_classes(raw, src.lesion_classes, self.min_voxels)
            lesions = self._real_lesions(src, image, label, info)
        else:
            label = raw.astype(np.int32)
            lesions = self._counted(self.listed_lesions(index) or [], label)
        if self.described_only:
            lesions = [l for l in lesions if l.described]
        return LesionCase(src.case_id, image, label, lesions, src.part or "train", organs, {"layout": self.layout})

    def _read_described(self, src: CaseSource) -> LesionCase:
        """A case of a cache or of a public dataset that describes its own masks (:mod:`.public`)."""
        if src.reader == "cache":
            from .cache import read_cached

            image, label, lesions, meta = read_cached(src, self.root)
        else:
            from .public import read_public

            image, label, found = read_public(src)
            lesions = [LesionRecord(k, described_attributes(text, src.organ), text, True, voxels)
                       for k, text, voxels in found if voxels >= self.min_voxels]
            meta = {"layout": self.layout}
        if self.described_only:
            lesions = [l for l in lesions if l.described]
        return LesionCase(src.case_id, image, label, lesions, src.part or "train", None, meta)

    def listed_lesions(self, index: int) -> list[LesionRecord] | None:
        """The lesions ``reports.csv`` lists for case ``index``, without reading any image
        (``voxels`` 0); None for real datasets, whose lesions are the label's components."""
        if self.layout != "synthetic":
            return None
        out = []
        for lesion_id, row in sorted(self.reports.get(self.sources[index].case_id, {}).items()):
            attrs = {k: (v if v != "" else None) for k, v in row.items()
                     if k not in ("case_id", "lesion_id", "report", "described", "part", "split", "host")
                     and not k.startswith("measured_")}
            out.append(LesionRecord(lesion_id, attrs, row.get("report", ""), bool(row["described"]), 0,
                                    row.get("split", "")))
        return out

    @staticmethod
    def _counted(records: list[LesionRecord], label: np.ndarray) -> list[LesionRecord]:
        """``records`` with their voxel counts; a listed lesion absent from the label is dropped."""
        counts = np.bincount(label.ravel())
        for rec in records:
            rec.voxels = int(counts[rec.lesion_id]) if 0 <= rec.lesion_id < len(counts) else 0
        return [rec for rec in records if rec.voxels]

    def _real_lesions(self, src: CaseSource, image: Image, label: np.ndarray,
                      info: list[tuple[int, str, int]]) -> list[LesionRecord]:
        rows = list(self.table.get(src.case_id, []))
        out = []
        for k, ltype, voxels in info:
            attrs: dict[str, Any] = {"lesion_type": ltype, "organ": src.organ, "side": None, "sub_location": None}
            if src.organ in PAIRED:
                attrs["side"] = side_of(image, label == k)
            report = ""
            if rows:  # the table describes the case's main lesions, largest first, cysts as cysts
                cyst = "cyst" in ltype
                row = rows.pop(next((n for n, r in enumerate(rows) if ("cyst" in str(r.get("lesion_type") or "")) == cyst), 0))
                report = row.pop("report", "")
                attrs.update({key: v for key, v in row.items() if v not in (None, "")})
            if not report:
                kind = ltype[0].upper() + ltype[1:]
                report = f"{kind} in {location_phrase(attrs)}."
            out.append(LesionRecord(k, attrs, report, True, voxels))
        return out


#: the attributes a description's parse states (the rest stays unknown: None)
STATED = ("lesion_type", "organ", "side", "sub_location", "shape", "density", "density_variation", "surface",
          "enhancement", "relation", "related_organ", "specific_features", "size_mm")


def described_attributes(text: str, organ: str | None) -> dict[str, Any]:
    """The attributes a dataset's own sentence states, as the query parser reads them (what a user's
    words would give at inference); ``organ`` where the sentence names none."""
    from ...query import parse_text

    queries = parse_text(text).queries
    attrs: dict[str, Any] = {k: None for k in STATED}
    if queries:
        attrs.update({k: getattr(queries[0], k, None) for k in STATED})
    attrs["organ"] = attrs["organ"] or organ
    attrs["specific_features"] = list(attrs["specific_features"] or [])
    return attrs


def _stated_part(rows: dict[int, dict[str, Any]]) -> str:
    """The part a case's report rows agree on ("" when they name none or disagree)."""
    parts = {row.get("part", "") for row in rows.values()} - {""}
    return parts.pop() if len(parts) == 1 else ""


def is_dataset_folder(path: Path) -> bool:
    """True when ``path`` itself is a dataset (any of ``adapters.LAYOUTS``), not a folder of them."""
    from .public import segfm_prompts_file

    path = Path(path)
    return (path / "imagesTr").is_dir() or (path / "dataset.json").exists() or any(path.glob("case_*")) \
        or (path / "cache.json").is_file() or segfm_prompts_file(path) is not None


def lesion_datasets(data_dir: str | Path, part: str = "train", attributes: str | Path | None = None,
                    layout: str | None = None) -> list[LesionDataset]:
    """The datasets of ``data_dir``: the folder itself when it is one (MSD / synthetic / KiTS23),
    else each sub-folder that holds ``part`` cases (e.g. ``DATA/chest`` + ``DATA/SynthLesion/seen``
    trained together, or a SynthLesion benchmark root). InputError when none does."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"training data folder {data_dir} does not exist (run: textlesionseg synth)")
    if layout or is_dataset_folder(data_dir):
        return [LesionDataset(data_dir, part=part, layout=layout, attributes=attributes)]
    found = []
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        try:
            found.append(LesionDataset(folder, part=part, attributes=attributes))
        except InputError:
            continue  # a sub-folder without labelled cases of this part
    if not found:
        raise InputError(f"{data_dir}: no labelled {'' if part == 'all' else part + ' '}cases in it or in its "
                         "sub-folders (expected imagesTr/ + labelsTr/ + dataset.json as MSD or `textlesionseg synth` "
                         "write them, or KiTS23 case_* folders)")
    return found
