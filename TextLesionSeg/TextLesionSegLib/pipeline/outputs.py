"""Result -> files Slicer and people read: .seg.nrrd, NIfTI labelmap, JSON report, PNG overlay.

Every writer refuses an existing file unless ``overwrite`` (InputError, exit 2) and writes
through :func:`io.write_with` (temporary file in the same folder, then ``os.replace``), so a
failure never leaves a partial file and never touches the user's existing one.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .io import write_with
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


#: longest tag value written (a 100,000-character description must not bloat every header)
MAX_TAG_CHARS = 2000


def _tag_text(value: Any) -> str:
    # '|' separates tags in the NRRD header; newlines would end the header line
    text = " ".join(str(value).replace("|", "/").split())
    return text if len(text) <= MAX_TAG_CHARS else text[: MAX_TAG_CHARS - 1] + "…"


def segment_tags(result: Result, seg: SegmentResult) -> dict[str, str]:
    """Tags kept with a segment: the query text, model, version and score."""
    tags = {
        "TextLesionSeg.Query": _tag_text(seg.query.text if seg.query is not None else seg.name),
        "TextLesionSeg.Model": _tag_text(result.model_name),
        "TextLesionSeg.ModelVersion": _tag_text(result.model_version),
        "TextLesionSeg.Score": f"{seg.score:.4f}",
    }
    if not seg.found:  # an empty segment on purpose: say why, in Slicer too
        tags["TextLesionSeg.NotFound"] = _tag_text(str(seg.selection.get("message") or "not found"))
    if seg.lesion_type:
        tags["TextLesionSeg.LesionType"] = _tag_text(seg.lesion_type)
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
                "name": _tag_text(seg.name) or f"Lesion {n + 1}",
                "color": [float(c) for c in seg.color],
                "terminology": to_slicerio_terminology(terminology_for_segment(seg)),
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


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN -> None, numpy -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
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
                    "name": s.name,
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
                for s in result.segments
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

    return write_with(path, lambda tmp: render_overlay(result, tmp), overwrite)
