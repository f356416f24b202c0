"""The one engine pipeline: image + descriptions + model -> :class:`Result` on the input grid.

Slicer's Logic, the worker, the CLI and Python users all call :func:`segment` (or
:func:`find_lesions` for the prompt-free mode), so what the tests prove here holds everywhere.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np

from ..core.types import InferenceSettings, ProgressCallback
from ..errors import InputError
from ..query.types import LesionQuery
from .answer import Answer, answer_queries, working_hu
from .geometry import Image
from .measure import measure_lesions
from .names import clean_name, name_note
from .outputs import segment_color, terminology_for_segment
from .postprocess import DEFAULT_MIN_VOLUME_MM3, postprocess
from .preprocess import to_working_grid
from .result import Result, SegmentResult
from .validate import validate_image

if TYPE_CHECKING:  # the seam is only named here: the pipeline stays below the models
    from ..models.base import LesionSegmenter

#: longest segment name kept (the full text stays in the query and the tags)
MAX_NAME_CHARS = 120
_COUNT_SENTENCE = re.compile(r"^\s*\d+ lesions? described\.\s*")


class _Timer:
    """Seconds per stage, reported through the progress callback as the stage starts."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress is not None:
            self.progress(name, None)  # may raise CancelledError: nothing is written yet
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 4)


def parse_queries(texts: Sequence[str]) -> tuple[list[LesionQuery], list[str]]:
    """Descriptions -> queries (one or more per text) and messages for the user.

    Uses ``query.parse_text`` when the query package provides it, else one plain
    :class:`LesionQuery` per text. Empty texts are an InputError.
    """
    texts = [t for t in (texts or [])]
    if not texts:
        raise InputError("no description given: add --text \"...\" (or use --find-lesions)")
    try:
        from ..query import parse_text  # provided by the query package
    except ImportError:
        parse_text = None
    queries: list[LesionQuery] = []
    messages: list[str] = []
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise InputError("a description is empty; describe the lesion, e.g. --text \"round mass in the right lung\"")
        if parse_text is None:
            queries.append(LesionQuery(text=" ".join(text.split())))
            continue
        parsed = parse_text(text)
        message = str(getattr(parsed, "message", "") or "")
        # "1 lesion described." is no news; what follows it (truncation, contradictions,
        # unknown organs) and why a text gave no lesion at all are worth a warning.
        detail = _COUNT_SENTENCE.sub("", message).strip()
        if not parsed.queries or detail:
            short = text if len(text) <= 60 else text[:59] + "…"
            messages.append(f"'{short}': {detail or message or 'no lesion described'}")
        queries.extend(parsed.queries)
    if not queries:
        raise InputError("no lesion to segment in the description(s): " + ("; ".join(messages) or "nothing asserted"))
    return queries, messages


def _resolve_model(model: LesionSegmenter | str, settings: InferenceSettings) -> LesionSegmenter:
    if isinstance(model, str):
        from ..models.registry import load_segmenter
        from .inference import resolve_device

        return load_segmenter(model, str(resolve_device(settings.device)))
    return model


def _segment_name(query: LesionQuery) -> str:
    """The segment's name: the description cleaned (:func:`names.clean_name`: line breaks ->
    space, other control characters -> U+FFFD, visibly) and shortened to :data:`MAX_NAME_CHARS`
    with a visible '…' (the whole text stays in the query, the report and the Query tag)."""
    name = clean_name(query.text)
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"


def _mask_and_measure(image: Image, prob: np.ndarray, settings: InferenceSettings) -> tuple[np.ndarray, float, list]:
    min_mm3 = float(settings.extra.get("min_lesion_mm3", DEFAULT_MIN_VOLUME_MM3))
    mask = postprocess(prob, image.spacing, threshold=settings.threshold, min_volume_mm3=min_mm3)
    score = float(prob[mask > 0].mean()) if mask.any() else float(prob.max(initial=0.0))
    return mask, score, measure_lesions(image, mask)


def segment(
    image: Image,
    texts: Sequence[str],
    model: LesionSegmenter | str,
    settings: InferenceSettings | Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    keep_probability: bool = False,
    server: Any = None,
    include_points: Sequence[Any] | None = None,
    exclude_points: Sequence[Any] | None = None,
    click_model: LesionSegmenter | str | None = None,
) -> Result:
    """Segment one lesion per description on ``image``, or the lesion clicked.

    Args:
        image: the CT (HU) with its geometry.
        texts: free-text descriptions; each may yield one or more queries.
        model: a loaded segmenter or a registry name.
        settings: device, overlap, threshold... ``settings.extra`` may hold
            ``allow_non_ct`` (bool) and ``min_lesion_mm3`` (float); or a plain dict of the same
            keys (``{"threshold": 0.4, "selection": "network"}``). Checked against
            ``core.settings.SETTINGS`` first: an unknown key, a wrong type or a value out of
            range is an ``InputError`` naming the setting and its range.
        progress: ``progress(stage, fraction)``; may raise CancelledError.
        keep_probability: keep each probability map (input grid, float32) in the result.
        server: a ``worker.remote_engine.RemoteEngine``: run this same request on that server
            instead of here (the image is sent to it, and the clicks; ``model`` is a name of its
            registry). With descriptions the server takes the clicks with its default click
            model, so a ``click_model`` is refused; clicks alone run ``click_model or model``.
        include_points / exclude_points: clicks on / off the lesion, each ``(R, A, S)`` in mm
            (Slicer's world coordinates) or the text ``"R,A,S"``. Without ``texts`` they define
            one lesion; with texts a click overrules the words (``pipeline.clicks``).
        click_model: the model that takes the clicks (default: ``model`` when it takes clicks,
            else ``interactive-demo``).

    Returns:
        A :class:`Result` whose masks lie on ``image``'s own voxel grid.
    """
    from .clicks import as_points

    include = as_points(include_points, "include point")
    exclude = as_points(exclude_points, "exclude point")
    if server is not None:
        return _segment_on_server(server, image, texts, model, settings, progress, keep_probability, include, exclude,
                                  click_model)
    settings = InferenceSettings.coerce(settings)  # InputError naming a bad setting and its range
    if include or exclude:
        return _segment_with_clicks(image, texts, model, settings, progress, keep_probability, include, exclude,
                                    click_model)
    timer = _Timer(progress)
    with timer.stage("parsing"):
        queries, messages = parse_queries(texts)
    seg_model = _resolve_model(model, settings)
    with timer.stage("validating"):
        warnings = validate_image(
            image, seg_model.preprocessing, allow_non_ct=bool(settings.extra.get("allow_non_ct", False)),
            n_queries=len(queries), low_memory=settings.low_memory,
        )
    warnings = messages + warnings
    with timer.stage("preprocessing"):
        volume, grid = to_working_grid(image, seg_model.preprocessing)
        hu = working_hu(image, grid)
    # Low-memory mode runs the model one query at a time, so only one map is held at once.
    chunk = 1 if settings.low_memory else len(queries)
    notes: list[str] = []
    settings.extra["notes"] = notes
    segments: list[SegmentResult] = []
    answers: list[Answer] = []
    for n, query in enumerate(queries):
        if n % chunk == 0:
            with timer.stage("inference"):
                answers = answer_queries(seg_model, volume, queries[n : n + chunk], settings, hu,
                                         grid.working.spacing, grid.working.direction, progress)
        answer = answers[n % chunk]
        with timer.stage("back to input grid"):
            prob = grid.to_input_grid(answer.probability[None])[0]
        with timer.stage("postprocessing"):
            mask, score, lesions = _mask_and_measure(image, prob, settings)
        chosen = [c for c in answer.selection.candidates if c["label"] in answer.selection.labels]
        seg = SegmentResult(
            name=_segment_name(query), mask=mask, query=query, probability=prob if keep_probability else None,
            score=max(c["score"] for c in chosen) if chosen else 0.0, color=segment_color(n),
            lesions=lesions, lesion_type=query.lesion_type, selection=answer.selection.to_dict(),
        )
        seg.terminology = terminology_for_segment(seg)
        note = name_note(query.text, seg.name, n + 1)
        if note is not None:  # every caller (Slicer, worker, CLI) gets the same clean name, and is told
            warnings.append(note)
        if not answer.selection.found and answer.selection.candidates:  # candidates, none named by the words
            warnings.append(f"'{seg.name}': {answer.selection.message}")
        elif not mask.any():
            warnings.append(f"no lesion found for '{seg.name}' at threshold {settings.threshold:g}")
        segments.append(seg)
    settings.extra.pop("notes", None)
    warnings += [str(note) for note in notes]
    return Result(
        image=image, segments=segments, model_name=seg_model.name, model_version=str(seg_model.version),
        timings=timer.timings, warnings=warnings,
    )


def _segment_on_server(server: Any, image: Image, texts: Sequence[str], model: Any, settings: Any,
                       progress: ProgressCallback | None, keep_probability: bool, include: list, exclude: list,
                       click_model: Any) -> Result:
    """The same request on a remote engine: the worker's ``segment`` (clicks beside descriptions)
    or, for clicks alone, its ``refine`` without a prior (which is what clicks alone run here)."""
    from .clicks import default_click_model

    if not (include or exclude):
        return server.run("segment", image, texts, model, settings, progress, keep_probability)
    if not texts and not include:
        raise InputError("clicks need at least one --include-point on the lesion (exclude points only correct it)")
    if texts and click_model is not None:
        raise InputError(f"a remote engine takes the clicks beside descriptions with its own {default_click_model()}: "
                         "leave out the click model (--click-model), or run locally")
    kind, model = ("segment", model) if texts else ("refine", click_model or model)
    return server.run(kind, image, texts, model, settings, progress, keep_probability, include, exclude)


def _segment_with_clicks(image: Image, texts: Sequence[str], model: LesionSegmenter | str, settings: InferenceSettings,
                         progress: ProgressCallback | None, keep_probability: bool, include: list, exclude: list,
                         click_model: LesionSegmenter | str | None) -> Result:
    """Clicks alone (one segment) or correcting the answer to the descriptions (``pipeline.clicks``)."""
    from .clicks import apply_clicks, check_points, default_click_model, segment_from_clicks

    check_points(image, include, exclude)  # InputError before any model runs
    if not texts:
        clicker = _resolve_model(click_model or model, settings)
        if "clicks" not in clicker.capabilities and click_model is None:  # a text model named: clicks need theirs
            clicker = _resolve_model(default_click_model(), settings)
        timer = _Timer(progress)
        with timer.stage("validating"):
            warnings = validate_image(image, clicker.preprocessing,
                                      allow_non_ct=bool(settings.extra.get("allow_non_ct", False)),
                                      low_memory=settings.low_memory)
        with timer.stage("clicks"):
            seg = segment_from_clicks(image, include, exclude, clicker, settings, keep_probability)
        if not seg.mask.any():
            warnings.append(f"'{seg.name}': {seg.selection['message']}")
        return Result(image=image, segments=[seg], model_name=clicker.name, model_version=str(clicker.version),
                      timings=timer.timings, warnings=warnings)
    seg_model = _resolve_model(model, settings)
    if click_model is None:
        click_model = seg_model if "clicks" in seg_model.capabilities else default_click_model()
    clicker = _resolve_model(click_model, settings)
    result = segment(image, texts, seg_model, settings, progress, keep_probability)
    t0 = time.perf_counter()
    apply_clicks(result, include, exclude, clicker, settings)
    result.timings["clicks"] = round(time.perf_counter() - t0, 4)
    result.model_name = f"{result.model_name} + {clicker.name}"
    return result


def find_lesions(
    image: Image,
    model: LesionSegmenter | str,
    settings: InferenceSettings | Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    keep_probability: bool = False,
    server: Any = None,
) -> Result:
    """Prompt-free mode: every lesion the model finds, with its predicted attributes and type.

    ``server``: as in :func:`segment`, run on that remote engine instead of here.
    """
    if server is not None:
        return server.run("find_lesions", image, None, model, settings, progress, keep_probability)
    settings = InferenceSettings.coerce(settings)  # InputError naming a bad setting and its range
    timer = _Timer(progress)
    seg_model = _resolve_model(model, settings)
    with timer.stage("validating"):
        warnings = validate_image(
            image, seg_model.preprocessing, allow_non_ct=bool(settings.extra.get("allow_non_ct", False)),
            low_memory=settings.low_memory,
        )
    with timer.stage("preprocessing"):
        volume, grid = to_working_grid(image, seg_model.preprocessing)
    with timer.stage("inference"):
        found: list[dict[str, Any]] = seg_model.find_lesions(volume, settings, progress)
    # lesions the model is less sure of than its calibrated prompt-free threshold are not reported
    min_score = settings.extra.get("prompt_free_min_score")
    min_score = seg_model.min_score("prompt_free") if min_score is None else float(min_score)
    found = [item for item in found if float(item.get("score", 1.0)) >= min_score]
    segments = []
    for n, item in enumerate(found):
        with timer.stage("back to input grid"):
            prob = grid.to_input_grid(item["probability"])
        with timer.stage("postprocessing"):
            mask, score, lesions = _mask_and_measure(image, prob, settings)
        if not mask.any():
            continue
        ltype = item.get("lesion_type")
        name = f"Lesion {len(segments) + 1}" + (f": {ltype}" if ltype else "")
        seg = SegmentResult(
            name=name, mask=mask, probability=prob if keep_probability else None,
            score=float(item.get("score", score)), color=segment_color(n), lesions=lesions,
            predicted_attributes=dict(item.get("attributes", {})), lesion_type=ltype,
        )
        # terminology from the predicted type (the segment itself has no query)
        seg.terminology = terminology_for_segment(
            SegmentResult(name=name, mask=mask, query=LesionQuery(text=name, lesion_type=ltype))
        )
        segments.append(seg)
    if not segments:
        warnings.append("no lesion found")
    return Result(
        image=image, segments=segments, model_name=seg_model.name, model_version=str(seg_model.version),
        timings=timer.timings, warnings=warnings,
    )
