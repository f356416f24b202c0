"""Result -> files Slicer and people read: .seg.nrrd, NIfTI labelmap, JSON report, PNG overlay.

Every writer refuses an existing file unless ``overwrite`` (InputError, exit 2) and writes
through :func:`io.write_with` (temporary file in the same folder, then ``os.replace``), so a
failure never leaves a partial file and never touches the user's existing one. :func:`write_all`
writes the files of one run together: all under temporary names first, renamed only when every
one is written, so a failure on the third leaves none of them (and the user's old files intact).

Segment names and tags are cleaned and escaped for the NRRD header by :mod:`names` (why: there).
The JSON report keeps real UTF-8, and so does the labelmap's sidecar
``NAME.labels.csv`` (a Slicer color table, :func:`write_label_names`), whose reader (VTK's)
un-escapes backslashes, so only '\\' and '"' get one (:func:`csv_text`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import InputError
from .commit import commit_all, temporary_beside
from .io import check_writable, write_with
from .names import header_name, header_text, replace_surrogates, sanitize_names, segment_name, tag_text
from .result import Result, SegmentResult

#: distinct segment colors (RGB 0..1), picked to differ from each other and from grey CT
PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.90, 0.30, 0.30),
    (0.25, 0.65, 0.95),
    (0.35, 0.80, 0.35),
    (0.95, 0.75, 0.20),
    (0.70, 0.40, 0.90),
    (0.20, 0.85, 0.80),
    (0.95, 0.50, 0.75),
    (0.60, 0.45, 0.25),
    (0.55, 0.90, 0.15),
    (0.15, 0.35, 0.80),
)

#: fallback terminology when the query package offers none [chosen]: SNOMED CT "Morphologically
#: altered structure" / "Mass", as Slicer's DICOM master list has them.
DEFAULT_TERMINOLOGY: dict[str, Any] = {
    "contextName": "Segmentation category and type - DICOM master list",
    "category": {"CodingSchemeDesignator": "SCT", "CodeValue": "49755003", "CodeMeaning": "Morphologically Altered Structure"},
    "type": {"CodingSchemeDesignator": "SCT", "CodeValue": "4147007", "CodeMeaning": "Mass"},
}


def segment_color(index: int) -> tuple[float, float, float]:
    """The ``index``-th distinct color."""
    return PALETTE[index % len(PALETTE)]


def terminology_for_segment(segment: SegmentResult) -> dict[str, Any]:
    """The segment's own terminology, else the query package's, else :data:`DEFAULT_TERMINOLOGY`."""
    if segment.terminology:
        return segment.terminology
    try:
        from ..query import terminology_for  # built by the query package; optional here
    except ImportError:
        return dict(DEFAULT_TERMINOLOGY)
    try:
        term = terminology_for(segment.query)
    except Exception:  # noqa: BLE001 - a terminology lookup must never lose the segmentation
        term = None
    return term or dict(DEFAULT_TERMINOLOGY)


def _code_list(code: Any) -> list[str]:
    """slicerio wants codes as [scheme, value, meaning]; accept the dict form too."""
    if isinstance(code, dict):
        return [str(code.get("CodingSchemeDesignator", "")), str(code.get("CodeValue", "")), str(code.get("CodeMeaning", ""))]
    return [str(c) for c in code]


def to_slicerio_terminology(term: dict[str, Any]) -> dict[str, Any]:
    """Terminology dict (codes as dicts or lists) in slicerio's form (codes as lists)."""
    out: dict[str, Any] = {}
    for key, value in term.items():
        out[key] = value if key in ("contextName", "anatomicContextName") else _code_list(value)
    return out


def _header_terminology(term: dict[str, Any]) -> dict[str, Any]:
    """slicerio's terminology with every string header-safe ('~', '^', '|' delimit its fields)."""
    def safe(value: Any) -> Any:
        if isinstance(value, list):
            return [safe(v) for v in value]
        return header_text(replace_surrogates(str(value)), also="~^|")

    return {key: safe(value) for key, value in to_slicerio_terminology(term).items()}


#: longest tag value written, in characters before escaping (a 100,000-character description
#: must not bloat every header; the JSON report keeps the whole text)

def segment_tags(result: Result, seg: SegmentResult) -> dict[str, str]:
    """Tags kept with a segment: the query text, model, version and score."""
    tags = {
        "TextLesionSeg.Query": tag_text(seg.query.text if seg.query is not None else seg.name),
        "TextLesionSeg.Model": tag_text(result.model_name),
        "TextLesionSeg.ModelVersion": tag_text(result.model_version),
        "TextLesionSeg.Score": f"{seg.score:.4f}",
    }
    if not seg.found:  # an empty segment on purpose: say why, in Slicer too
        tags["TextLesionSeg.NotFound"] = tag_text(str(seg.selection.get("message") or "not found"))
    if seg.lesion_type:
        tags["TextLesionSeg.LesionType"] = tag_text(seg.lesion_type)
    return tags


def pack_layers(masks: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Pack masks into as few labelmap layers as possible (as Slicer's "collapse labelmaps").

    A mask goes into the first layer it does not overlap, with the next free label value there,
    so 50 separate lesions cost one layer, not 50. Returns ``(layers (L, K, J, I) uint8,
    [(layer, label_value) per mask])``.
    """
    layers: list[np.ndarray] = []
    where: list[tuple[int, int]] = []
    next_value: list[int] = []
    for mask in masks:
        m = np.asarray(mask) > 0
        for n, layer in enumerate(layers):
            if next_value[n] < 255 and not np.any(layer[m]):
                break
        else:
            layers.append(np.zeros(m.shape, dtype=np.uint8))
            next_value.append(1)
            n = len(layers) - 1
        layers[n][m] = next_value[n]
        where.append((n, next_value[n]))
        next_value[n] += 1
    return np.stack(layers), where


def slicerio_segmentation(result: Result) -> dict[str, Any]:
    """The slicerio segmentation dict of ``result``; overlapping segments go to separate layers."""
    if not result.segments:
        raise ValueError("result has no segments to write")
    layers, where = pack_layers([s.mask for s in result.segments])
    # slicerio writes Fortran order: arrays indexed (layer,) I, J, K; ours are K, J, I.
    voxels = layers[0].transpose(2, 1, 0) if len(layers) == 1 else layers.transpose(0, 3, 2, 1)
    segments = []
    for n, (seg, (layer, value)) in enumerate(zip(result.segments, where)):
        segments.append(
            {
                "id": f"Segment_{n + 1}",
                "labelValue": value,
                "layer": layer,
                "name": header_name(seg.name, n + 1),
                "color": [float(c) for c in seg.color],
                "terminology": _header_terminology(terminology_for_segment(seg)),
                "status": "completed",
                "tags": segment_tags(result, seg),
            }
        )
    return {
        "voxels": voxels,
        "ijkToLPS": result.image.ijk_to_lps(),
        "encoding": "gzip",
        "masterRepresentation": "Binary labelmap",
        "containedRepresentationNames": ["Binary labelmap"],
        "segments": segments,
    }


def write_seg_nrrd(result: Result, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``result`` as a Slicer ``.seg.nrrd`` (names, colors, terminology, tags)."""
    import slicerio

    seg = slicerio_segmentation(result)
    return write_with(path, lambda tmp: slicerio.write_segmentation(str(tmp), seg), overwrite)


def write_labelmap(result: Result, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a NIfTI/NRRD labelmap (value n = segment n, later segments win where they overlap)."""
    from .io import write_image

    label = np.zeros(result.image.array.shape[:3], dtype=np.uint8 if len(result.segments) < 255 else np.uint16)
    for n, seg in enumerate(result.segments, start=1):
        label[np.asarray(seg.mask) > 0] = n
    return write_image(result.image.with_array(label), path, overwrite=overwrite)


#: what :func:`label_names_path` puts in place of the labelmap's suffix; Slicer reads
#: ``*.labels.csv`` as a color table (a plain ``.csv`` would load as a table)
LABEL_NAMES_SUFFIX = ".labels.csv"
_LABELMAP_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Slicer's CSV color table columns: label value, name, color 0..255, then terminology codes
_TERMINOLOGY_COLUMNS = (("Category", "category"), ("Type", "type"), ("TypeModifier", "typeModifier"),
                        ("Region", "anatomicRegion"), ("RegionModifier", "anatomicRegionModifier"))


def label_names_path(labelmap: str | os.PathLike) -> Path:
    """The sidecar that names the labelmap's values: ``o.nii.gz`` -> ``o.labels.csv``."""
    path = Path(labelmap)
    name = path.name
    for suffix in _LABELMAP_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + LABEL_NAMES_SUFFIX)


def csv_text(text: str) -> str:
    """``text`` for a quoted field of Slicer's CSV color table: real UTF-8 (Slicer reads any
    script and any length) with '\\' and '"' preceded by a backslash, because VTK's CSV reader
    un-escapes backslash sequences (``\\"`` -> '"', ``\\\\`` -> '\\', ``\\b`` -> backspace) and
    cannot hold a bare or doubled quote. Python reads it back with ``csv.reader(f, escapechar="\\\\")``."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


def label_names_rows(result: Result) -> list[list[Any]]:
    """The rows of the labelmap's sidecar (header first): value n is segment n, as in
    :func:`write_labelmap` and the report's ``label_value``."""
    header: list[Any] = ["LabelValue", "Name", "Color_R", "Color_G", "Color_B", "Color_A"]
    for column, _ in _TERMINOLOGY_COLUMNS:
        header += [f"{column}_CodingScheme", f"{column}_CodeValue", f"{column}_CodeMeaning"]
    rows = [header]
    for n, seg in enumerate(result.segments, start=1):
        term = to_slicerio_terminology(terminology_for_segment(seg))
        row: list[Any] = [n, segment_name(seg.name, n)] + [int(round(255 * float(c))) for c in seg.color[:3]] + [255]
        for _, key in _TERMINOLOGY_COLUMNS:
            code = list(term.get(key) or ["", "", ""])[:3]
            row += code + [""] * (3 - len(code))
        rows.append(row)
    return rows


def write_label_names(result: Result, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """The labelmap's sidecar (:func:`label_names_path`): a Slicer CSV color table naming each
    label value (UTF-8, no BOM; every text field quoted, so commas are kept; :func:`csv_text`)."""
    def render(tmp: Path) -> None:
        lines = []
        for row in label_names_rows(result):
            lines.append(",".join(str(v) if isinstance(v, int) else '"' + csv_text(replace_surrogates(str(v))) + '"'
                                  for v in row))
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")

    return write_with(path, render, overwrite)


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN -> None, numpy -> Python, lone surrogates (not encodable as UTF-8)
    -> U+FFFD. Every other character stays as it is (control characters are JSON-escaped)."""
    if isinstance(value, dict):
        return {_clean(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return replace_surrogates(value)
    return value


def report_dict(result: Result) -> dict[str, Any]:
    """The JSON report's content: input geometry, segments with measurements, warnings, timings."""
    img = result.image
    return _clean(
        {
            "textlesionseg_version": __version__,
            "model": {"name": result.model_name, "version": result.model_version},
            "input": {
                "path": img.metadata.get("source_path"),
                "size_ijk": list(img.size_ijk),
                "spacing_mm": list(img.spacing),
                "origin_lps": img.origin.tolist(),
                "direction_lps": img.direction.tolist(),
                "ijk_to_ras": img.ijk_to_ras().tolist(),
            },
            "segments": [
                {
                    "name": segment_name(s.name, n),
                    "label_value": n,  # the segment's value in the labelmap
                    "query": s.query.to_dict() if s.query is not None else None,
                    "score": s.score,
                    "found": s.found,
                    "selection": s.selection,
                    "color": list(s.color),
                    "terminology": terminology_for_segment(s),
                    "lesion_type": s.lesion_type,
                    "predicted_attributes": s.predicted_attributes,
                    "voxel_count": int(np.count_nonzero(s.mask)),
                    "volume_ml": float(np.count_nonzero(s.mask) * np.prod(img.spacing) / 1000.0),
                    "lesions": [asdict(m) for m in s.lesions],
                }
                for n, s in enumerate(result.segments, start=1)
            ],
            "warnings": list(result.warnings),
            "timings_s": dict(result.timings),
        }
    )


def write_report(result: Result, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the JSON report (measurements, predicted attributes, warnings, timings)."""
    text = json.dumps(report_dict(result), indent=2, ensure_ascii=False)
    return write_with(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"), overwrite)


def write_overlay_png(result: Result, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """PNG: axial slice through the largest lesion and a coronal view, segment contours on the CT."""
    from .overlay import render_overlay

    # matplotlib reads '$...$' as math ("$$" or "$\\frac$" raise at savefig): escape every '$'
    named = [replace(s, name=segment_name(s.name, n).replace("$", "\\$")) for n, s in enumerate(result.segments, 1)]
    shown = replace(result, segments=named)

    def render(tmp: Path) -> None:
        with warnings.catch_warnings():  # a glyph the font lacks is drawn as a box, not a warning line
            warnings.filterwarnings("ignore", message="Glyph .* missing from")
            render_overlay(shown, tmp)

    return write_with(path, render, overwrite)


#: the files :func:`write_all` writes, in order: keyword -> writer name in this module
WRITERS: tuple[tuple[str, str], ...] = (
    ("output", "write_seg_nrrd"), ("labelmap", "write_labelmap"), ("label_names", "write_label_names"),
    ("report", "write_report"), ("overlay", "write_overlay_png"),
)



def write_all(result: Result, output: str | os.PathLike | None = None, labelmap: str | os.PathLike | None = None,
              report: str | os.PathLike | None = None, overlay: str | os.PathLike | None = None,
              overwrite: bool = False) -> list[Path]:
    """Write the outputs of one run together: all of them or none.

    Names are cleaned first (:func:`sanitize_names`; its warnings reach the report). Each file is
    written under a temporary name beside its target; only when every one is written are they
    renamed onto the targets. A failure while writing removes every temporary; a failure while
    renaming puts back what was there (an overwritten file returns, a new one goes). A labelmap
    comes with its sidecar naming its values (:func:`write_label_names`). Returns the paths
    written, in the order output, labelmap, its sidecar, report, overlay.
    """
    # writers are looked up at call time, so a test can make one of them fail
    targets = {"output": output, "labelmap": labelmap, "report": report, "overlay": overlay,
               "label_names": None if labelmap is None else label_names_path(labelmap)}
    plan = [(globals()[writer], Path(targets[key])) for key, writer in WRITERS if targets[key] is not None]
    for _, target in plan:
        check_writable(target, overwrite)
    sanitize_names(result)
    temps: list[Path] = []
    try:
        for writer, target in plan:
            try:
                tmp = temporary_beside(target, "part")
            except OSError as exc:
                raise InputError(f"{target}: cannot write: {exc.strerror or exc}") from None
            temps.append(tmp)
            try:
                writer(result, tmp, overwrite=True)
            except OSError as exc:
                raise InputError(f"{target}: cannot write: {exc.strerror or exc}") from None
            except InputError as exc:  # write_with names the temporary; the user knows the target
                raise InputError(str(exc).replace(str(tmp), str(target))) from None
        commit_all([(tmp, target) for tmp, (_, target) in zip(temps, plan)], overwrite)
    finally:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return [target for _, target in plan]
