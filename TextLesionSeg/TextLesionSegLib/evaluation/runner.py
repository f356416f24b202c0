"""Evaluate one model on a dataset: per-lesion accuracy, detection, text sensitivity.

Each case is preprocessed once (``pipeline.preprocess.to_working_grid``); the model answers every
condition of the case in one call of the engine's own ``pipeline.answer.answer_queries`` (each
lesion's description, its attribute-swapped variant, empty text; the shared selection in the mode
``settings.extra["selection"]`` names, "measured" by default); each map goes back to the input
grid and through the engine's own ``postprocess`` (threshold, speck removal, hole filling), so
the scores are those of what a user gets from ``textlesionseg segment``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from ..core.types import InferenceSettings
from ..query.types import LesionQuery
from ..training.data.dataset import LesionRecord
from .cases import Case
from .detection import DEFAULT_MIN_IOU, DetectionCounts, match_lesions
from .metrics import DEFAULT_NSD_TOLERANCE_MM, segmentation_metrics, summarize
from .published import published_metrics
from .text_sensitivity import has_swappable, score_lesion, summarize_sensitivity, swap_attributes

if TYPE_CHECKING:
    from ..models.base import LesionSegmenter


@dataclass
class EvalOptions:
    """What to measure; defaults are the project's reporting conventions."""

    tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM
    min_iou: float = DEFAULT_MIN_IOU
    text_sensitivity: bool = True
    max_cases: int | None = None
    #: descriptions of lesions a case does not hold, asked per case (0: none)
    absent_per_case: int = 2


@dataclass
class CaseView:
    """A 2D view kept for the best/worst overlays: CT slice, reference and prediction masks."""

    case_id: str
    text: str
    dice: float
    ct: np.ndarray
    ref: np.ndarray
    pred: np.ndarray
    aspect: float = 1.0


@dataclass
class EvaluationRecords:
    """What every evaluation of one model collects: per-lesion records, detection, time, errors."""

    model: str
    version: str
    lesions: list[dict[str, Any]] = field(default_factory=list)
    detection: DetectionCounts = field(default_factory=DetectionCounts)
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class ModelEvaluation(EvaluationRecords):
    """Everything measured for one model; :meth:`to_dict` is the JSON report's model section."""

    sensitivity_records: list[Any] = field(default_factory=list)
    best: CaseView | None = None
    worst: CaseView | None = None
    selection: str = "measured"
    absent_records: list[dict[str, Any]] = field(default_factory=list)

    def absent_summary(self) -> dict[str, Any]:
        """Descriptions of lesions the case does not hold: how many got no segment."""
        n = len(self.absent_records)
        rejected = sum(1 for r in self.absent_records if r["voxels"] == 0)
        return {"n": n, "rejected": rejected, "rejected_rate": round(rejected / n, 3) if n else None}

    def to_dict(self) -> dict[str, Any]:
        """Summary (overall, per lesion type, per split), detection, text sensitivity, absent
        descriptions, raw records."""
        return {
            "model": self.model,
            "version": self.version,
            "selection": self.selection,
            "absent": {**self.absent_summary(), "records": self.absent_records},
            "n_lesions": len(self.lesions),
            "overall": metric_summary(self.lesions),
            "published": published_metrics(self.lesions),
            "per_lesion_type": group_summary(self.lesions, "lesion_type"),
            "per_split": group_summary(self.lesions, "split"),
            "detection": self.detection.to_dict(),
            "text_sensitivity": summarize_sensitivity(self.sensitivity_records).to_dict(),
            "seconds_per_case": summarize(self.seconds),
            "errors": self.errors,
            "lesions": self.lesions,
        }


def metric_summary(recs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Count and Dice / NSD / HD95 summaries of per-lesion records (``None`` HD95 counts as missed)."""
    hd = [r["hd95_mm"] if r["hd95_mm"] is not None else float("inf") for r in recs]
    return {"n": len(recs), "dice": summarize([r["dice"] for r in recs]),
            "nsd": summarize([r["nsd"] for r in recs]), "hd95_mm": summarize(hd)}


def group_records(recs: Sequence[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by ``rec[key]`` ("-" where it is empty), sorted by group name."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in recs:
        groups.setdefault(str(rec.get(key) or "-"), []).append(rec)
    return dict(sorted(groups.items()))


def group_summary(recs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """:func:`metric_summary` per value of ``key`` (e.g. per lesion type, per split)."""
    return {name: metric_summary(group) for name, group in group_records(recs, key).items()}


def lesion_text(lesion: LesionRecord) -> str:
    """The description used for a lesion: its report, else its type (datasets without reports)."""
    return (lesion.report or "").strip() or (lesion.lesion_type if lesion.lesion_type != "lesion" else "a lesion")


def text_to_query(text: str) -> LesionQuery:
    """One query per description: the language module's first parse, else the plain text."""
    if not text.strip():
        return LesionQuery(text="")
    try:
        from ..query import parse_text
    except ImportError:
        return LesionQuery(text=text)
    parsed = parse_text(text).queries
    if not parsed:
        return LesionQuery(text=text)
    q = parsed[0]
    q.text = text  # keep the whole description (a parser may split off a sentence)
    return q


def each_case(cases: Sequence[Case], options: EvalOptions, label: str,
              progress: Callable[[str], None] | None = None) -> Iterator[Case]:
    """The cases to evaluate (the first ``options.max_cases``), each announced through ``progress``."""
    todo = list(cases)[: options.max_cases] if options.max_cases else list(cases)
    for n_case, case in enumerate(todo):
        if progress:
            progress(f"{label}: case {n_case + 1}/{len(todo)} {case.case_id}")
        yield case


def _view(case_id: str, text: str, dice: float, hu: np.ndarray, ref: np.ndarray, pred: np.ndarray,
          spacing: Sequence[float]) -> CaseView:
    """Axial slice through the reference lesion's largest cross-section."""
    k = int(np.argmax(ref.sum(axis=(1, 2)))) if ref.any() else int(np.argmax(pred.sum(axis=(1, 2))))
    return CaseView(case_id, text, dice, hu[k].astype(np.float32), ref[k].astype(bool), pred[k].astype(bool),
                    aspect=float(spacing[1]) / float(spacing[0]))


def evaluate_model(
    model: LesionSegmenter,
    cases: Sequence[Case],
    settings: InferenceSettings | None = None,
    options: EvalOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> ModelEvaluation:
    """Run ``model`` on every case and measure it in the selection mode ``settings`` names (see the
    module docstring)."""
    from ..pipeline.answer import selection_mode

    settings = settings or InferenceSettings(device="cpu")
    return evaluate_modes(model, cases, [selection_mode(settings)], settings, options, progress)[0]


def _absent_questions(case: Case, index: int, count: int) -> list[tuple[str, int, str]]:
    from ..training.data.descriptions import case_absent_texts

    if count <= 0:
        return []
    rng = np.random.default_rng([17, index])  # the same questions for every model and mode
    return [("absent", n, text) for n, text in enumerate(case_absent_texts(case, rng, count))]


def evaluate_modes(
    model: LesionSegmenter,
    cases: Sequence[Case],
    modes: Sequence[str],
    settings: InferenceSettings | None = None,
    options: EvalOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ModelEvaluation]:
    """:func:`evaluate_model` in several selection modes from one inference per case (the network
    alone and with the measured layer, side by side); one :class:`ModelEvaluation` per mode,
    named "model (mode)" when there are several."""
    from ..pipeline.answer import answers_from_maps, working_hu
    from ..pipeline.postprocess import DEFAULT_MIN_VOLUME_MM3, postprocess
    from ..pipeline.preprocess import to_working_grid

    settings = settings or InferenceSettings(device="cpu")
    options = options or EvalOptions()
    name = str(model.name)
    results = [ModelEvaluation(model=f"{name} ({mode})" if len(modes) > 1 else name, version=str(model.version),
                               selection=mode) for mode in modes]
    min_mm3 = float(settings.extra.get("min_lesion_mm3", DEFAULT_MIN_VOLUME_MM3))
    for n_case, case in enumerate(each_case(cases, options, name, progress)):
        start = time.perf_counter()
        image, instances = case.load()
        ids = [int(v) for v in np.unique(instances) if v != 0]
        lesions = [l for l in case.lesions if l.lesion_id in ids]
        multi = options.text_sensitivity and len(ids) >= 2
        texts = [lesion_text(l) for l in lesions]
        conditions: list[tuple[str, int, str]] = [("own", i, t) for i, t in enumerate(texts)]
        if multi:
            conditions += [("swap", i, swap_attributes(t)) for i, t in enumerate(texts) if has_swappable(t)]
            conditions.append(("empty", -1, ""))
        if not conditions:
            continue
        conditions += _absent_questions(case, n_case, options.absent_per_case)
        volume, grid = to_working_grid(image, model.preprocessing)
        queries = [text_to_query(t) for _, _, t in conditions]
        try:
            maps = model.candidate_maps(volume, queries, settings)
        except Exception as exc:  # noqa: BLE001 - one failing case must not hide the others' scores
            for result in results:
                result.errors.append(f"{case.case_id}: {type(exc).__name__}: {exc}")
            continue
        hu = working_hu(image, grid)
        for mode, result in zip(modes, results):
            answers = answers_from_maps(model, volume, maps, queries, settings, hu, grid.working.spacing,
                                        grid.working.direction, mode=mode)
            masks: dict[tuple[str, int], np.ndarray] = {}
            for q, (kind, idx, _) in enumerate(conditions):
                p = grid.to_input_grid(answers[q].probability[None])[0]
                masks[(kind, idx)] = postprocess(p, image.spacing, threshold=settings.threshold,
                                                 min_volume_mm3=min_mm3).astype(bool)
            _record(result, case, image, instances, lesions, texts, masks, multi, options)
            result.absent_records += [{"case_id": case.case_id, "text": text, "voxels": int(masks[(kind, idx)].sum())}
                                      for kind, idx, text in conditions if kind == "absent"]
            result.seconds.append(time.perf_counter() - start)
    return results


def _record(result: ModelEvaluation, case: Case, image: Any, instances: np.ndarray, lesions: Sequence[LesionRecord],
            texts: Sequence[str], masks: dict[tuple[str, int], np.ndarray], multi: bool, options: EvalOptions) -> None:
    """Per-lesion metrics, best/worst views, text sensitivity and detection of one case."""
    union = np.zeros(instances.shape, bool)
    for i, lesion in enumerate(lesions):
        pred = masks[("own", i)]
        union |= pred
        ref = instances == lesion.lesion_id
        s = segmentation_metrics(pred, ref, image.spacing, options.tolerance_mm)
        result.lesions.append({"case_id": case.case_id, "lesion_id": lesion.lesion_id, "layout": case.dataset.layout,
                               "lesion_type": lesion.lesion_type, "split": lesion.split or case.split,
                               "text": texts[i], **s.to_dict()})
        for attr in ("best", "worst"):
            cur = getattr(result, attr)
            better = cur is None or (s.dice > cur.dice if attr == "best" else s.dice < cur.dice)
            if better:
                setattr(result, attr, _view(case.case_id, texts[i], s.dice, image.array, ref, pred, image.spacing))
        if multi:
            swapped = masks.get(("swap", i))
            result.sensitivity_records.append(score_lesion(
                case.case_id, lesion.lesion_id, instances, texts[i], pred, swapped, masks[("empty", -1)]))
    # only the described lesions are asked for (a referring case describes one of several)
    asked = np.where(np.isin(instances, [l.lesion_id for l in lesions]), instances, 0)
    result.detection = result.detection + match_lesions(union, asked, options.min_iou)
