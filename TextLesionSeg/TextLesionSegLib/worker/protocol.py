"""The worker's wire format: JSON lines both ways, and results as ``.json`` + ``.npz`` files.

Requests (one JSON object per line on the worker's stdin)::

    {"protocol": 1, "id": "r1", "type": "segment", "image_path": "ct.nrrd", "texts": ["..."],
     "model": "malenia-demo", "settings": {"device": "auto", "threshold": 0.5, ...},
     "keep_probability": false, "output_dir": null}
    {"protocol": 1, "id": "r2", "type": "find_lesions", "image_path": ..., "model": ..., "settings": {...}}
    {"protocol": 1, "id": "r3", "type": "status"}        # loaded models, load counts, memory
    {"protocol": 1, "id": "r6", "type": "load", "model": "malenia-demo", "settings": {"device": "auto"}}
                                                         # load ahead of Apply (answers with status + compute)
    {"protocol": 1, "id": "r4", "type": "unload"}        # drop loaded models (frees GPU memory)
    {"protocol": 1, "id": "r5", "type": "shutdown"}

Messages (one JSON object per line on the worker's stdout)::

    {"type": "ready", "protocol": 1, "pid": 1234}                 # once, at start
    {"type": "progress", "id": "r1", "stage": "Loading model", "fraction": null}
    {"type": "result", "id": "r1", "result_path": "/tmp/.../result.json", "model_load_count": 1, ...}
    {"type": "status", "id": "r3", "loaded_models": [...], "load_counts": {...}, "rss_bytes": ...,
     "compute": {"installed": true, "version": "2.5.1", "cuda": [{"index": 0, "name": "...",
                 "free_gb": 20.1, "total_gb": 24.0}], "message": "PyTorch 2.5.1, CUDA: ...",
                 "choices": ["auto", "cuda:0", "cpu"]}}
    {"type": "error", "id": "r1", "message": "one line", "exit_code": 2}

``compute`` (``pipeline.devices.compute_status``) comes with the reply to a ``status`` request
only (not ``load``/``unload``/``shutdown``): it is the torch and CUDA state *of the worker*, so
Slicer fills its device selector without importing torch itself. Without torch it is
``{"installed": false, "version": null, "cuda": [], "choices": ["auto", "cpu"], ...}``, and
asking for it imports nothing; with torch, the first ``status`` of a fresh worker waits for the
warm-up imports (seconds), later ones answer at once.

``exit_code`` follows the CLI: 2 bad input, 3 model problem, 4 memory, 1 internal, 130 cancelled.
This module imports numpy only (no torch), so Slicer can read results without the model stack.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

PROTOCOL_VERSION = 1
REQUEST_TYPES = ("segment", "find_lesions", "load", "status", "unload", "shutdown")
RESULT_FORMAT = "textlesionseg-result/1"


def encode(message: dict[str, Any]) -> str:
    """One message as a single JSON line (numpy scalars and paths made JSON-safe)."""
    return json.dumps(message, default=_json_default, separators=(",", ":")) + "\n"


def decode(line: str) -> dict[str, Any]:
    """Parse one line; raises ``ValueError`` when it is not a JSON object."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a protocol line must be a JSON object")
    return message


def check_request(request: dict[str, Any]) -> None:
    """Refuse requests of another protocol version or unknown type (``InputError``)."""
    from ..errors import InputError

    version = request.get("protocol", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise InputError(
            f"request uses worker protocol {version}, this worker speaks {PROTOCOL_VERSION}; "
            "restart Slicer after updating the extension"
        )
    if request.get("type") not in REQUEST_TYPES:
        raise InputError(f"unknown request type {request.get('type')!r} (known: {', '.join(REQUEST_TYPES)})")
    if request["type"] in ("segment", "find_lesions") and not request.get("image_path"):
        raise InputError("request has no image_path")
    if request["type"] == "segment" and not request.get("texts"):
        raise InputError("a segment request needs at least one description in 'texts'")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def save_result(result: Any, path: str | Path, include_image: bool = False) -> Path:
    """Write a :class:`~..pipeline.result.Result` as ``path`` (JSON) + ``path.with_suffix('.npz')``.

    Masks (uint8) and, when present, probabilities (float32) go into the npz; names, scores,
    colours, terminology, measurements, queries and the image geometry into the JSON. The
    image's voxels are stored only with ``include_image`` (the caller usually has them).
    Both files are written under temporary names and renamed, so a reader never sees half.
    Returns the JSON path.
    """
    path = Path(path)
    if path.suffix != ".json":
        path = path.with_suffix(".json")
    npz_path = path.with_suffix(".npz")
    image = result.image
    arrays: dict[str, np.ndarray] = {}
    segments = []
    for n, seg in enumerate(result.segments):
        arrays[f"mask_{n}"] = np.asarray(seg.mask, dtype=np.uint8)
        if seg.probability is not None:
            arrays[f"probability_{n}"] = np.asarray(seg.probability, dtype=np.float32)
        segments.append({
            "name": seg.name, "score": float(seg.score), "color": list(seg.color),
            "terminology": seg.terminology, "lesions": [asdict(m) for m in seg.lesions],
            "predicted_attributes": seg.predicted_attributes, "lesion_type": seg.lesion_type,
            "query": seg.query.to_dict() if seg.query is not None else None,
            "has_probability": seg.probability is not None, "selection": seg.selection,
        })
    if include_image:
        arrays["image"] = np.asarray(image.array)
    doc = {
        "format": RESULT_FORMAT,
        "model_name": result.model_name, "model_version": result.model_version,
        "timings": result.timings, "warnings": list(result.warnings),
        "image": {
            "shape": list(image.array.shape), "dtype": str(image.array.dtype),
            "spacing": list(image.spacing), "origin": list(image.origin),
            "direction": np.asarray(image.direction).tolist(), "metadata": image.metadata,
            "stored": include_image,
        },
        "segments": segments,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(npz_path, lambda f: np.savez_compressed(f, **arrays))
    _atomic_write(path, lambda f: f.write(json.dumps(doc, default=_json_default, indent=1).encode("utf-8")))
    return path


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_result(path: str | Path, image: Any = None) -> Any:
    """Read a result written by :func:`save_result` back into a ``Result``.

    ``image``: the input :class:`~..pipeline.geometry.Image` when the file does not store its
    voxels (the default); its shape must match. Without either, the result's image carries a
    read-only all-zero array view of the right shape (no memory used), flagged in
    ``image.metadata["voxels_omitted"]``.
    """
    from ..errors import InputError
    from ..pipeline.geometry import Image
    from ..pipeline.result import LesionMeasurement, Result, SegmentResult
    from ..query.types import LesionQuery

    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        arrays = np.load(path.with_suffix(".npz"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read worker result {path}: {exc}") from exc
    if doc.get("format") != RESULT_FORMAT:
        raise InputError(f"{path} is not a TextLesionSeg result ({doc.get('format')!r})")
    geo = doc["image"]
    shape = tuple(geo["shape"])
    if geo.get("stored"):
        voxels, meta = arrays["image"], dict(geo["metadata"])
    elif image is not None:
        if tuple(image.array.shape) != shape:
            raise InputError(f"result grid {shape} does not match the given image {image.array.shape}")
        voxels, meta = image.array, dict(geo["metadata"])
    else:
        voxels = np.broadcast_to(np.zeros((), dtype=geo["dtype"]), shape)
        meta = {**geo["metadata"], "voxels_omitted": True}
    result_image = Image(array=voxels, spacing=tuple(geo["spacing"]), origin=np.array(geo["origin"]),
                         direction=np.array(geo["direction"]), metadata=meta)
    names = {f.name for f in fields(LesionMeasurement)}
    segments = []
    for n, seg in enumerate(doc["segments"]):
        lesions = []
        for m in seg["lesions"]:
            values = {k: v for k, v in m.items() if k in names}
            values["centroid_ras"] = tuple(values.get("centroid_ras", (0.0, 0.0, 0.0)))
            lesions.append(LesionMeasurement(**values))
        segments.append(SegmentResult(
            name=seg["name"], mask=arrays[f"mask_{n}"],
            query=LesionQuery.from_dict(seg["query"]) if seg.get("query") else None,
            probability=arrays[f"probability_{n}"] if seg.get("has_probability") else None,
            score=seg["score"], color=tuple(seg["color"]), terminology=seg["terminology"],
            lesions=lesions, predicted_attributes=seg["predicted_attributes"], lesion_type=seg["lesion_type"],
            selection=seg.get("selection") or {},
        ))
    return Result(image=result_image, segments=segments, model_name=doc["model_name"],
                  model_version=doc["model_version"], timings=doc["timings"], warnings=doc["warnings"])
