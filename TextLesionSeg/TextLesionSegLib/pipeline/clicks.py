"""Clicks in the pipeline: include/exclude points (RAS mm) -> one lesion from a click model.

Points are Slicer's world coordinates (RAS millimetres), what the CLI's ``--include-point R,A,S``
and the Python API's ``include_points=[(r, a, s)]`` take. ``pipeline.geometry`` maps them to
the input grid (to check they lie in the image) and to the model's working grid (to place the
clicks); nothing here flips a sign itself.

Points alone define one lesion. With descriptions, a click overrules the words: the segment
whose mask holds an include point is corrected from its own mask; when no segment holds one,
the words chose another lesion, and the first description's segment is replaced by the clicked
lesion, segmented afresh.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import InputError
from ..training.clicks import Click
from .geometry import Image, ras_to_lps

if TYPE_CHECKING:
    from ..models.base import InferenceSettings, LesionSegmenter
    from .result import Result, SegmentResult

#: the click model used when none is named
DEFAULT_CLICK_MODEL = "interactive-demo"
Point = tuple[float, float, float]


def parse_point(text: str, option: str = "--include-point") -> Point:
    """``"R,A,S"`` (mm, spaces allowed, negative numbers too) -> a finite 3-tuple; else InputError."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise InputError(f"{option} '{text}' is not R,A,S: give three numbers in millimetres, e.g. {option}=-54.6,97.5,-250")
    return values  # type: ignore[return-value]


def as_points(points: Sequence[Any] | None, option: str) -> list[Point]:
    """Points from the Python API or the CLI: each ``"R,A,S"`` or three numbers."""
    out = []
    for p in points or ():
        if isinstance(p, str):
            out.append(parse_point(p, option))
            continue
        try:
            values = tuple(float(v) for v in p)
        except (TypeError, ValueError):
            values = ()
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise InputError(f"{option} {p!r} is not three finite numbers (R, A, S in millimetres)")
        out.append(values)  # type: ignore[arg-type]
    return out


def input_voxel(image: Image, ras: Point, option: str = "point") -> tuple[int, int, int]:
    """The KJI voxel of ``image`` holding the RAS point; InputError when it lies outside the image."""
    kji = image.ras_to_kji(np.asarray(ras, float))
    shape = np.asarray(image.array.shape[:3])
    if np.any(kji < -0.5) or np.any(kji > shape - 0.5):
        raise InputError(f"{option} {','.join(f'{v:g}' for v in ras)} (RAS mm) lies outside the image")
    return tuple(int(v) for v in np.clip(np.round(kji), 0, shape - 1))  # type: ignore[return-value]


def working_clicks(grid: Any, include: Sequence[Point], exclude: Sequence[Point]) -> list[Click]:
    """Clicks on the working grid (``preprocess.WorkingGrid``) of points checked against the input."""
    shape = np.asarray(grid.working.array.shape)
    clicks = []
    for points, positive in ((include, True), (exclude, False)):
        for ras in points:
            kji = np.round(grid.working.lps_to_kji(ras_to_lps(np.asarray(ras, float))))
            if np.any(kji < 0) or np.any(kji >= shape):
                raise InputError(f"point {','.join(f'{v:g}' for v in ras)} (RAS mm) lies outside the body "
                                 "(in the air the model never sees)")
            clicks.append(Click(tuple(int(v) for v in kji), positive))  # type: ignore[arg-type]
    return clicks


def click_probability(image: Image, include: Sequence[Point], exclude: Sequence[Point], model: "LesionSegmenter",
                      prior: np.ndarray | None = None) -> np.ndarray:
    """The click model's probability of the clicked lesion on ``image``'s grid (``prior``: the
    current mask on that grid, or None)."""
    from .preprocess import to_working_grid

    if "clicks" not in model.capabilities:
        raise InputError(f"model '{model.name}' cannot take clicks; use a click model such as {DEFAULT_CLICK_MODEL}")
    volume, grid = to_working_grid(image, model.preprocessing)
    clicks = working_clicks(grid, include, exclude)
    prior_w = None
    if prior is not None and np.any(prior):
        prior_w = grid.to_working_image(image.with_array(np.asarray(prior, np.uint8)), nearest=True) > 0
    return grid.to_input_grid(model.refine(volume, clicks, prior_w))


def clicked_mask(image: Image, prob: np.ndarray, include: Sequence[Point], settings: "InferenceSettings") -> np.ndarray:
    """Postprocessed mask of the lesion the include points mark: the connected pieces holding an
    include point (the largest piece when none does: a click on the lesion's edge)."""
    from .postprocess import DEFAULT_MIN_VOLUME_MM3, label_components, postprocess

    min_mm3 = float(settings.extra.get("min_lesion_mm3", DEFAULT_MIN_VOLUME_MM3))
    mask = postprocess(prob, image.spacing, threshold=settings.threshold, min_volume_mm3=min_mm3)
    labels, n = label_components(mask)
    if n <= 1:
        return mask
    hit = {int(labels[input_voxel(image, p)]) for p in include} - {0}
    if not hit:
        hit = {int(np.argmax(np.bincount(labels.ravel())[1:])) + 1}
    return np.isin(labels, sorted(hit)).astype(np.uint8)


def _with_click_mask(seg: "SegmentResult", image: Image, prob: np.ndarray, mask: np.ndarray,
                     include: Sequence[Point], exclude: Sequence[Point]) -> None:
    from .measure import measure_lesions

    seg.mask = mask
    seg.lesions = measure_lesions(image, mask)
    seg.score = float(prob[mask > 0].mean()) if mask.any() else 0.0
    if seg.probability is not None:
        seg.probability = prob
    seg.selection = {**seg.selection, "found": bool(mask.any()), "mode": "clicks",
                     "clicks": {"include": [list(p) for p in include], "exclude": [list(p) for p in exclude]}}


def segment_from_clicks(image: Image, include: Sequence[Point], exclude: Sequence[Point], model: "LesionSegmenter",
                        settings: "InferenceSettings", keep_probability: bool = False) -> "SegmentResult":
    """Points alone: one segment, "Clicked lesion", of the lesion the include points mark."""
    from ..query.types import LesionQuery
    from .outputs import segment_color, terminology_for_segment
    from .result import SegmentResult

    if not include:
        raise InputError("clicks need at least one --include-point on the lesion (exclude points only correct it)")
    prob = click_probability(image, include, exclude, model)
    query = LesionQuery(text="Clicked lesion")
    seg = SegmentResult(name="Clicked lesion", mask=np.zeros(image.array.shape[:3], np.uint8), query=query,
                        probability=prob if keep_probability else None, color=segment_color(0))
    _with_click_mask(seg, image, prob, clicked_mask(image, prob, include, settings), include, exclude)
    seg.terminology = terminology_for_segment(seg)
    if not seg.mask.any():
        seg.selection["message"] = "the click model found no lesion at the clicks"
    return seg


def apply_clicks(result: "Result", include: Sequence[Point], exclude: Sequence[Point], model: "LesionSegmenter",
                 settings: "InferenceSettings") -> None:
    """Text and clicks: the clicks correct one segment of ``result`` in place (see the module doc);
    the other segments are not touched."""
    image = result.image
    voxels = [input_voxel(image, p, "--include-point") for p in include]
    excluded = [input_voxel(image, p, "--exclude-point") for p in exclude]
    holds = [n for n, s in enumerate(result.segments) if any(s.mask[v] for v in voxels)]
    if not holds and not include:
        holds = [n for n, s in enumerate(result.segments) if any(s.mask[v] for v in excluded)]
    n = holds[0] if holds else 0
    seg = result.segments[n]
    prior = seg.mask if holds else None  # no segment holds the click: the words chose another lesion
    if prior is None and not include:
        raise InputError("the exclude points lie in no segment; add an --include-point on the lesion")
    prob = click_probability(image, include, exclude, model, prior)
    mask = clicked_mask(image, prob, include, settings)
    _with_click_mask(seg, image, prob, mask, include, exclude)
    if not holds:
        result.warnings.append(f"'{seg.name}': the click lies outside the lesion the words chose; "
                               "the clicked lesion replaces it")
