"""One segmentation run as the Slicer module drives it, without Qt: prepare -> worker -> import.

:func:`prepare_run` turns the panel's inputs into a worker request (the volume written to a
private temporary NRRD in world geometry, cropped to the ROI if one is given);
the worker (``TextLesionSegLib.worker``) runs it in another process; :func:`finish_run` reads
the result back, pastes it into the full grid and adds the segments. The Slicer Logic is a thin
shell around these, so the whole path is tested with pytest and real MRML.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from ..pipeline.geometry import Image
from ..pipeline.result import Result
from .roi import crop_box, crop_image, roi_corners_ras, uncrop_result
from .segmentation import ImportedResult, import_result
from .table import lesion_rows
from .volumes import volume_to_image

#: Engine stage names (``pipeline.run``) -> the words the panel shows; others are shown capitalised.
STAGE_WORDS = {
    "parsing": "Reading the descriptions",
    "validating": "Checking the image",
    "inference": "Segmenting",
    "back to input grid": "Postprocessing",
}


@dataclass
class RunContext:
    """What :func:`finish_run` needs to place a result: the volume, grids and temporary files."""

    volume_node: Any
    image: Image  # the whole volume in world geometry
    sent_image: Image  # what the worker got (cropped to the ROI or the whole volume)
    box: tuple[slice, slice, slice] | None
    work_dir: Path
    keep_probability: bool
    request: dict[str, Any] = field(default_factory=dict)


def clean_texts(text: str | Sequence[str]) -> list[str]:
    """One description per non-blank line (surrounding whitespace dropped)."""
    lines = text.splitlines() if isinstance(text, str) else list(text)
    return [line.strip() for line in lines if line and line.strip()]


def prepare_run(
    volume_node: Any,
    texts: str | Sequence[str],
    model: str,
    settings: dict[str, Any] | None = None,
    roi_node: Any | None = None,
    keep_probability: bool = True,
    work_dir: str | Path | None = None,
) -> tuple[dict[str, Any], RunContext]:
    """The worker request for a volume node and descriptions, and the context to import it.

    Raises:
        InputError: no volume, no description, a non-linear transform, or an ROI off the volume.
    """
    from ..pipeline.io import write_image

    if volume_node is None:
        raise InputError("select an input volume")
    descriptions = clean_texts(texts)
    if not descriptions:
        raise InputError("type at least one lesion description (one per line)")
    image = volume_to_image(volume_node)
    box = crop_box(image, roi_corners_ras(roi_node)) if roi_node is not None else None
    sent = crop_image(image, box) if box is not None else image
    folder = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="textlesionseg-run-"))
    folder.mkdir(parents=True, exist_ok=True)
    # uncompressed: this runs on Slicer's UI thread, and gzip of a CT takes seconds
    input_path = write_image(sent, folder / "input.nrrd", overwrite=True, compress=False)
    request = {
        "type": "segment",
        "image_path": str(input_path),
        "texts": descriptions,
        "model": model,
        "settings": dict(settings or {}),
        "keep_probability": bool(keep_probability),
        "output_dir": str(folder),
    }
    context = RunContext(volume_node, image, sent, box, folder, bool(keep_probability), request)
    return request, context


def load_worker_result(context: RunContext, result_path: str | Path) -> Result:
    """The worker's result on the full volume grid."""
    from ..worker.protocol import load_result

    result = load_result(result_path, image=context.sent_image)
    if context.box is not None:
        result = uncrop_result(result, context.image, context.box)
    return result


def finish_run(
    context: RunContext, result_path: str | Path, segmentation_node: Any | None = None
) -> tuple[ImportedResult, list[dict[str, Any]], Result]:
    """Add the worker's result to the scene; returns (what was added, lesion rows, result)."""
    result = load_worker_result(context, result_path)
    imported = import_result(result, context.volume_node, segmentation_node, context.keep_probability)
    segmentation = imported.segmentation_node.GetSegmentation()
    names = [segmentation.GetSegment(segment_id).GetName() for segment_id in imported.segment_ids]
    return imported, lesion_rows(result, names), result


def discard_run(context: RunContext | None) -> None:
    """Delete the run's temporary files (input copy and worker result)."""
    if context is not None:
        shutil.rmtree(context.work_dir, ignore_errors=True)


def progress_state(message: dict[str, Any]) -> tuple[str, int | None]:
    """(state text, percent or ``None`` for a busy bar) of a worker progress message."""
    raw = str(message.get("stage") or "working")
    head, _, tail = raw.partition(" ")
    # "inference 2/3" -> "Segmenting 2/3": keep any counter the engine appends
    stage = STAGE_WORDS.get(raw) or (f"{STAGE_WORDS[head]} {tail}" if head in STAGE_WORDS and tail else None)
    stage = stage or raw[:1].upper() + raw[1:]
    fraction = message.get("fraction")
    percent = None if fraction is None else max(0, min(100, int(round(float(fraction) * 100))))
    return stage, percent
