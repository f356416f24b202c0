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
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import InputError
from .geometry import Image, ras_to_lps

if TYPE_CHECKING:
    from ..core.types import InferenceSettings
    from ..models.base import LesionSegmenter
    from .result import Result, SegmentResult

#: the click model used when none is named (a site may name another in $TEXTLESIONSEG_CLICK_MODEL)
DEFAULT_CLICK_MODEL = "interactive-demo"


def default_click_model() -> str:
    """The click model used when none is named: ``$TEXTLESIONSEG_CLICK_MODEL``, else
    :func:`default_click_model`. Read at each call, so the worker and the server follow it too."""
    return os.environ.get("TEXTLESIONSEG_CLICK_MODEL", "").strip() or DEFAULT_CLICK_MODEL
Point = tuple[float, float, float]


@dataclass(frozen=True)
class Click:
    """One click as a model sees it: voxel index (k, j, i) on its working grid, and whether it
    marks lesion. (Defined here, below the models and the training code that simulate clicks.)"""

    kji: tuple[int, int, int]
    positive: bool


def load_click_model(name: str | None, device: str = "cpu") -> "LesionSegmenter":
    """The registered click model ``name`` (default :func:`default_click_model`); when the default
    is not registered, a ``ModelError`` that says so and how to name another."""
    from ..errors import ModelError
    from ..models import registry

    try:
        return registry.load_segmenter(name or default_click_model(), device)
    except ModelError as exc:
        if name or default_click_model() in registry.default_registry().entries:
            raise
        raise ModelError(f"no click model is registered ({default_click_model()} is missing from this installation's "
                         "registry, see docs/models/interactive-demo.md); register one, or name one or its weights "
                         "folder with --click-model") from exc


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


def check_points(image: Image, include: Sequence[Point], exclude: Sequence[Point]) -> None:
    """InputError (naming the option) for the first include or exclude point outside ``image``:
    checked before any model loads or runs."""
    for option, points in (("--include-point", include), ("--exclude-point", exclude)):
        for point in points:
            input_voxel(image, point, option)


def working_clicks(grid: Any, include: Sequence[Point], exclude: Sequence[Point]) -> list[Click]:
    """Clicks on the working grid (``preprocess.WorkingGrid``) of points checked against the input
    (:func:`input_voxel`); a point beyond the working grid (far from the region the model runs
    on, or in air cropped away) is not a click the model can see, and is left out."""
    shape = np.asarray(grid.working.array.shape)
    clicks = []
    for points, positive in ((include, True), (exclude, False)):
        for ras in points:
            kji = np.round(grid.working.lps_to_kji(ras_to_lps(np.asarray(ras, float))))
            if np.any(kji < 0) or np.any(kji >= shape):
                continue
            clicks.append(Click(tuple(int(v) for v in kji), positive))  # type: ignore[arg-type]
    return clicks


def region_of_clicks(image: Image, include: Sequence[Point], exclude: Sequence[Point], prior: np.ndarray | None,
                     model: "LesionSegmenter") -> tuple[slice, slice, slice]:
    """The input-grid KJI box holding the model's region (``preprocessing.roi_size`` working
    voxels, an LPS-aligned cube) around the clicks: only this box is preprocessed and run, so a
    click costs the same on a 512² CT as on a small one. Centred like the model's own region
    (positive clicks, else the prior, else every click)."""
    cfg = model.preprocessing
    spacing = np.asarray(cfg.spacing if cfg.spacing is not None else image.spacing, float)
    if include:
        centre = ras_to_lps(np.mean(np.asarray(include, float), axis=0))
    elif prior is not None and np.any(prior):
        centre = image.kji_to_lps(np.argwhere(prior).mean(axis=0))
    else:
        centre = ras_to_lps(np.mean(np.asarray(exclude, float), axis=0))
    half = np.asarray(cfg.roi_size[::-1], float) * spacing / 2 + spacing  # IJK = LPS axes on the working grid
    corners = centre + np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    kji = image.lps_to_kji(corners)
    shape = np.asarray(image.array.shape[:3])
    lo = np.clip(np.floor(kji.min(axis=0)).astype(int) - 1, 0, shape)
    hi = np.clip(np.ceil(kji.max(axis=0)).astype(int) + 2, 0, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))  # type: ignore[return-value]


def sub_image(image: Image, box: tuple[slice, slice, slice]) -> Image:
    """The voxels of ``box`` (KJI) as an image of their own, at their true place in space."""
    start = np.array([b.start for b in box], float)
    return Image(array=image.array[box], spacing=image.spacing, origin=image.kji_to_lps(start),
                 direction=image.direction, metadata=dict(image.metadata))


def click_probability(image: Image, include: Sequence[Point], exclude: Sequence[Point], model: "LesionSegmenter",
                      prior: np.ndarray | None = None) -> np.ndarray:
    """The click model's probability of the clicked lesion on ``image``'s grid (``prior``: the
    current mask on that grid, or None); zero outside the region around the clicks."""
    from .preprocess import to_working_grid

    if "clicks" not in model.capabilities:
        raise InputError(f"model '{model.name}' cannot take clicks; use a click model such as {default_click_model()}")
    box = region_of_clicks(image, include, exclude, prior, model)
    region = sub_image(image, box)
    volume, grid = to_working_grid(region, model.preprocessing)
    clicks = working_clicks(grid, include, exclude)
    prior_w = None
    if prior is not None and np.any(prior[box]):
        prior_w = grid.to_working_image(region.with_array(np.asarray(prior[box], np.uint8)), nearest=True) > 0
    out = np.zeros(image.array.shape[:3], np.float32)
    out[box] = grid.to_input_grid(model.refine(volume, clicks, prior_w))
    return out


def clicked_mask(image: Image, prob: np.ndarray, include: Sequence[Point], settings: "InferenceSettings") -> np.ndarray:
    """Postprocessed mask of the lesion the include points mark: the connected pieces holding an
    include point (the largest piece when none does: a click on the lesion's edge)."""
    from .postprocess import DEFAULT_MIN_VOLUME_MM3, label_components, postprocess

    min_mm3 = float(settings.extra.get("min_lesion_mm3", DEFAULT_MIN_VOLUME_MM3))
    mask = postprocess(prob, image.spacing, threshold=settings.threshold, min_volume_mm3=min_mm3)
    present = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    if not present[0].size:
        return mask
    box = tuple(slice(int(p[0]), int(p[-1]) + 1) for p in present)  # labelling a 512² CT costs 0.25 s
    labels, n = label_components(mask[box])
    if n <= 1:
        return mask
    starts = np.array([b.start for b in box])
    hit = set()
    for point in include:
        kji = np.asarray(input_voxel(image, point)) - starts
        if np.all(kji >= 0) and np.all(kji < labels.shape):
            hit.add(int(labels[tuple(kji)]))
    hit -= {0}
    if not hit:
        hit = {int(np.argmax(np.bincount(labels.ravel())[1:])) + 1}
    out = np.zeros_like(mask)
    out[box] = np.isin(labels, sorted(hit))
    return out


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
                        settings: "InferenceSettings", keep_probability: bool = False,
                        prior: np.ndarray | None = None) -> "SegmentResult":
    """Points alone: one segment, "Clicked lesion", of the lesion the include points mark,
    corrected from ``prior`` (its current mask on ``image``'s grid) when there is one."""
    from ..query.types import LesionQuery
    from .outputs import segment_color, terminology_for_segment
    from .result import SegmentResult

    if not include and (prior is None or not np.any(prior)):
        raise InputError("clicks need at least one --include-point on the lesion (exclude points only correct it)")
    prob = click_probability(image, include, exclude, model, prior)
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
    # what the words' answer was warned about ("no lesion found for 'name'") no longer holds
    result.warnings = [w for w in result.warnings if f"'{seg.name}'" not in w]
    if not mask.any():
        result.warnings.append(f"'{seg.name}': the click model found no lesion at the clicks")
    if not holds:
        result.warnings.append(f"'{seg.name}': the click lies outside the lesion the words chose; "
                               "the clicked lesion replaces it")


def read_prior(prior: "np.ndarray | str | None", image: Image) -> np.ndarray | None:
    """A current mask given as an array or a ``.npy`` file (KJI on ``image``'s grid, no pickles)."""
    if prior is None or isinstance(prior, np.ndarray):
        array = prior
    else:
        try:
            array = np.load(str(prior), allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the current mask {prior}: {exc}") from None
    if array is not None and tuple(array.shape) != tuple(image.array.shape[:3]):
        raise InputError(f"the current mask has shape {tuple(array.shape)}, the image {tuple(image.array.shape[:3])}")
    return None if array is None else (np.asarray(array) > 0).astype(np.uint8)


def refine_lesion(image: Image, include: Sequence[Any], exclude: Sequence[Any], model: "LesionSegmenter",
                  settings: "InferenceSettings | None" = None, prior: "np.ndarray | str | None" = None,
                  keep_probability: bool = False) -> "Result":
    """One click round of a correction (Slicer's "+"/"-" points, the worker's ``refine``): every
    click given so far and the segment's current voxels (``prior``) -> its new voxels, as a
    :class:`Result` of one segment. Unlike clicks beside a description, a click outside the
    current mask extends this lesion: the prior is always kept as the starting point."""
    from ..core.types import InferenceSettings
    from .result import Result

    settings = InferenceSettings.coerce(settings)
    include, exclude = as_points(include, "include point"), as_points(exclude, "exclude point")
    for option, points in (("include point", include), ("exclude point", exclude)):
        for point in points:
            input_voxel(image, point, option)
    seg = segment_from_clicks(image, include, exclude, model, settings, keep_probability, read_prior(prior, image))
    warnings = [] if seg.mask.any() else [f"'{seg.name}': {seg.selection.get('message', 'no lesion left')}"]
    return Result(image=image, segments=[seg], model_name=model.name, model_version=str(model.version),
                  warnings=warnings)
