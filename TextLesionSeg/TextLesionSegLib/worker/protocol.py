"""The worker's wire format: JSON lines both ways, and results as ``.json`` + ``.npz`` files.

Requests (one JSON object per line on the worker's stdin)::

    {"protocol": 1, "id": "r1", "type": "segment", "image_path": "ct.nrrd", "texts": ["..."],
     "model": "malenia-demo", "settings": {"device": "auto", "threshold": 0.5, ...},
     "keep_probability": false, "output_dir": null}
    {"protocol": 1, "id": "r2", "type": "find_lesions", "image_path": ..., "model": ..., "settings": {...}}
    {"protocol": 1, "id": "r7", "type": "refine", "image_path": ..., "model": "interactive-demo",
     "include_points": [[-54.6, 97.5, -250.0]], "exclude_points": [], "prior_path": "mask.npy"}
                                                         # one lesion from clicks (RAS mm), corrected from
                                                         # the segment's current voxels (prior_path: a uint8
                                                         # .npy on the image grid, KJI; null: none)
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

Every request is checked whole before anything runs (:func:`decode`, :func:`check_request`):
shape, types and sizes of every field, unknown fields refused, ``settings`` through the one
settings table (``core.settings``). A malformed request of any kind gets one ``error`` reply
with exit code 2, and the worker goes on to the next line; the reply's ``id`` is the request's
when it is a short string or an integer, else null.
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
REQUEST_TYPES = ("segment", "find_lesions", "refine", "load", "status", "unload", "shutdown")
RESULT_FORMAT = "textlesionseg-result/1"


def encode(message: dict[str, Any]) -> str:
    """One message as a single JSON line (numpy scalars and paths made JSON-safe)."""
    return json.dumps(message, default=_json_default, separators=(",", ":")) + "\n"


#: bounds of a request line and its fields (generous: Slicer sends a few short descriptions)
MAX_LINE_CHARS = 16 * 1024 * 1024  # a longer line is refused before it is parsed
MAX_DEPTH = 16  # a request nests 4 levels deep (request > settings > roi_kji > corner)
MAX_ID_CHARS = 200
MAX_PATH_CHARS = 4096
MAX_MODEL_CHARS = 200
MAX_TEXTS = 256
MAX_TEXT_CHARS = 100_000  # the parser reads the first 20,000 of a text (query.parser.MAX_CHARS)
MAX_ID_INT = 2**53  # integers JSON readers everywhere keep exactly

#: every field a request may hold; any other key is refused (a typo would otherwise be ignored)
REQUEST_FIELDS = ("protocol", "id", "type", "image_path", "texts", "model", "settings", "keep_probability",
                  "output_dir", "include_points", "exclude_points", "prior_path")
#: fields each request type needs
REQUIRED_FIELDS = {"segment": ("image_path", "texts"), "find_lesions": ("image_path",),
                   "refine": ("image_path",)}
MAX_POINTS = 1000


def decode(line: str) -> dict[str, Any]:
    """Parse one line; raises ``ValueError`` when it is not a JSON object, is longer than
    :data:`MAX_LINE_CHARS` or nests deeper than :data:`MAX_DEPTH` (a line nested 100,000 deep,
    which makes ``json.loads`` raise ``RecursionError``, is a ``ValueError`` here too)."""
    if len(line) > MAX_LINE_CHARS:
        raise ValueError(f"a protocol line of {len(line)} characters is longer than the {MAX_LINE_CHARS} allowed")
    try:
        message = json.loads(line)
    except RecursionError:
        raise ValueError(f"a protocol line may nest at most {MAX_DEPTH} levels deep") from None
    if not isinstance(message, dict):
        raise ValueError("a protocol line must be a JSON object")
    if _depth_over(message, MAX_DEPTH):
        raise ValueError(f"a protocol line may nest at most {MAX_DEPTH} levels deep")
    return message


def _depth_over(value: Any, limit: int) -> bool:
    """True when lists/objects inside ``value`` nest deeper than ``limit`` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def request_id(request: Any) -> str | int | None:
    """The request's ``id`` when it is one the reply may echo (a string of at most
    :data:`MAX_ID_CHARS` characters or an integer), else ``None``."""
    rid = request.get("id") if isinstance(request, dict) else None
    if isinstance(rid, str) and len(rid) <= MAX_ID_CHARS:
        return rid
    if isinstance(rid, int) and not isinstance(rid, bool) and abs(rid) <= MAX_ID_INT:
        return rid
    return None


def check_request(request: dict[str, Any]) -> None:
    """Refuse a malformed request with one ``InputError`` line (the worker replies exit code 2).

    Checked: the protocol version, the type, that every key is a known field
    (:data:`REQUEST_FIELDS`; unknown keys are refused, not ignored), the fields each type needs
    (:data:`REQUIRED_FIELDS`) and the type and size of every field present, whatever the type:

    * ``protocol``: the integer :data:`PROTOCOL_VERSION` (absent: this one);
    * ``id``: a string of at most :data:`MAX_ID_CHARS` characters, an integer, or null;
    * ``type``: one of :data:`REQUEST_TYPES`;
    * ``image_path``: a non-empty string of at most :data:`MAX_PATH_CHARS` characters, no NUL;
    * ``texts``: a list of 1 to :data:`MAX_TEXTS` strings of at most :data:`MAX_TEXT_CHARS`
      characters each (blank texts are the pipeline's to refuse);
    * ``model``: a string of at most :data:`MAX_MODEL_CHARS` characters or null (empty or null:
      the default model);
    * ``settings``: an object checked against ``core.settings.SETTINGS`` (unknown keys, wrong
      types, NaN/inf and values out of range refused, naming the setting and its range), or null;
    * ``keep_probability``: true or false;
    * ``output_dir``: a string as ``image_path`` (empty: a temporary folder) or null;
    * ``include_points`` / ``exclude_points`` (``refine``, and ``segment`` with texts): lists of at
      most :data:`MAX_POINTS` ``[R, A, S]`` triples of finite numbers (mm);
    * ``prior_path``: a string as ``image_path`` or null.
    """
    from ..errors import InputError
    from ..core.settings import describe, split_mapping

    if not isinstance(request, dict):
        raise InputError(f"a request must be a JSON object, not {describe(request)}")
    version = request.get("protocol", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise InputError(
            f"request uses worker protocol {describe(version)}, this worker speaks {PROTOCOL_VERSION}; "
            "restart Slicer after updating the extension"
        )
    kind = request.get("type")
    if not isinstance(kind, str) or kind not in REQUEST_TYPES:
        raise InputError(f"unknown request type {describe(kind)} (known: {', '.join(REQUEST_TYPES)})")
    for key in request:
        if key not in REQUEST_FIELDS:
            shown = repr(key) if len(repr(key)) <= 40 else repr(key)[:39] + "…"
            raise InputError(f"unknown request field {shown} (known: {', '.join(REQUEST_FIELDS)})")
    if "id" in request and request["id"] is not None and request_id(request) is None:
        raise InputError(f"request 'id' must be a string of at most {MAX_ID_CHARS} characters or an integer, "
                         f"not {describe(request['id'])}")
    for key in REQUIRED_FIELDS.get(kind, ()):
        if request.get(key) in (None, "", []):
            if key == "texts":
                raise InputError("a segment request needs at least one description in 'texts'")
            raise InputError(f"request has no {key}")
    if kind == "refine" and not request.get("include_points") and request.get("prior_path") in (None, ""):
        raise InputError("a refine request needs include_points on the lesion (or a prior_path to correct)")
    for key in ("include_points", "exclude_points"):
        if key in request:
            _check_points(request[key], key)
    for key in ("image_path", "output_dir", "prior_path"):
        if key in request and not (key in ("output_dir", "prior_path") and request[key] is None):
            _check_string(request[key], key, MAX_PATH_CHARS, path=True)
    if request.get("model") is not None:
        _check_string(request["model"], "model", MAX_MODEL_CHARS)
    if "texts" in request:
        texts = request["texts"]
        if not isinstance(texts, list):
            raise InputError(f"request 'texts' must be a list of descriptions, not {describe(texts)}")
        if len(texts) > MAX_TEXTS:
            raise InputError(f"request 'texts' holds {len(texts)} descriptions, more than the {MAX_TEXTS} allowed")
        for n, text in enumerate(texts):
            _check_string(text, f"texts[{n}]", MAX_TEXT_CHARS, empty_ok=True)
    if "keep_probability" in request and not isinstance(request["keep_probability"], bool):
        raise InputError(f"request 'keep_probability' must be true or false, not {describe(request['keep_probability'])}")
    split_mapping(request.get("settings"))


def _check_points(value: Any, key: str) -> None:
    import math

    from ..errors import InputError
    from ..core.settings import describe

    if not isinstance(value, list) or len(value) > MAX_POINTS:
        raise InputError(f"request '{key}' must be a list of at most {MAX_POINTS} [R, A, S] points, not {describe(value)}")
    for n, point in enumerate(value):
        if not (isinstance(point, list) and len(point) == 3
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in point)):
            raise InputError(f"request '{key}[{n}]' must be [R, A, S], three finite numbers in mm, not {describe(point)}")


def _check_string(value: Any, key: str, limit: int, path: bool = False, empty_ok: bool = False) -> None:
    from ..errors import InputError
    from ..core.settings import describe

    if not isinstance(value, str):
        raise InputError(f"request '{key}' must be a string, not {describe(value)}")
    if len(value) > limit:
        raise InputError(f"request '{key}' has {len(value)} characters, more than the {limit} allowed")
    if path and "\x00" in value:
        raise InputError(f"request '{key}' holds a NUL character")
    if path and not value and key == "image_path" and not empty_ok:
        raise InputError("request has no image_path")


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
