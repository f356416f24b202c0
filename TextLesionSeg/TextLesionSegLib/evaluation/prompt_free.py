"""Prompt-free evaluation: every lesion a model finds on its own, against every reference lesion.

A prompt-free model (Malenia) is given no text: ``pipeline.run.find_lesions`` returns one segment
per lesion it finds, with the attribute values and lesion type it predicts. Each case's segments
are matched one-to-one to *all* its reference lesions (described or not: prompt-free should find
every lesion) by Hungarian assignment on IoU ≥ ``min_iou`` (``detection.match_labels``, the matching
the text-guided detection uses). Measured:

- detection precision / recall / F1 over segments and lesions;
- Dice / NSD / HD95 of each matched pair; a missed lesion scores Dice 0 (empty prediction);
- attribute accuracy on matched lesions: predicted value vs the reference attribute of
  ``reports.csv``; location at organ + side level ("left lung" vs organ lung, side left; the side
  only for paired organs), specific features correct when the predicted feature is one of the
  reference's, lesion type vs ``lesion_type``. Attributes the reference leaves empty are skipped;
  an attribute the model does not answer counts as wrong;
- chance: accuracy of always answering the reference's most frequent value on the same lesions,
  the best any constant answer can do, so a model that reads nothing from the image shows up.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..core.types import InferenceSettings
from ..errors import ModelError
from ..query.types import ATTRIBUTE_NAMES
from .cases import Case
from .detection import DetectionCounts, match_labels
from .metrics import segmentation_metrics, summarize
from .runner import EvalOptions, EvaluationRecords, each_case, group_records, group_summary, metric_summary

if TYPE_CHECKING:
    from ..models.base import LesionSegmenter

#: attributes scored, in report order; "lesion_type" is the knowledge-table type, scored alike
SCORED_ATTRIBUTES: tuple[str, ...] = tuple(ATTRIBUTE_NAMES) + ("lesion_type",)


def has_prompt_free(model: Any) -> bool:
    """True when the model's class provides its own ``find_lesions`` (the base one only raises)."""
    from ..models.base import LesionSegmenter

    method = getattr(type(model), "find_lesions", None)
    return callable(method) and method is not LesionSegmenter.find_lesions


def _value(predicted: Any) -> str | None:
    """The value of a predicted attribute given as ``(value, similarity)`` or as a bare value."""
    if isinstance(predicted, (tuple, list)) and predicted:
        predicted = predicted[0]
    return None if predicted is None or str(predicted).strip() == "" else str(predicted).strip()


def _norm(value: Any) -> str:
    return str(value).strip().lower()


def organ_side(location: str | None) -> tuple[str | None, str | None]:
    """(organ, side) a location phrase names: "right upper lobe of the lung" → ("lung", "right")."""
    if not location:
        return None, None
    from ..query.extract import extract
    from ..query.vocabulary import normalise

    values = extract(normalise(location)).values
    return values.get("organ"), values.get("side")  # type: ignore[return-value]


def reference_value(attribute: str, attrs: dict[str, Any]) -> str | list[str] | None:
    """The reference answer for ``attribute`` from a lesion's attributes; None when it is empty.

    Location is the coarse "side organ" text (side only for paired organs, where the paper's
    prompt-free read-out stops); specific features are a list (``;``-joined in ``reports.csv``).
    """
    from ..query import location_text
    from ..query.vocabulary import PAIRED_ORGANS

    if attribute == "location":
        organ = attrs.get("organ")
        if not organ:
            return None
        side = attrs.get("side") if organ in PAIRED_ORGANS else None
        return location_text(organ, side or None)
    raw = attrs.get(attribute)
    if attribute == "specific_features":
        feats = raw if isinstance(raw, (list, tuple)) else str(raw or "").split(";")
        return [f.strip() for f in feats if str(f).strip()] or None
    if raw is None or str(raw).strip() == "" or (attribute == "lesion_type" and raw == "lesion"):
        return None  # "lesion" is the dataset's "type unknown"
    return str(raw).strip()


def is_correct(attribute: str, predicted: str | None, reference: str | list[str]) -> bool:
    """Whether a predicted value answers the reference (see the module docstring for the rules)."""
    if predicted is None:
        return False
    if attribute == "location":
        ref_organ, ref_side = organ_side(str(reference))
        organ, side = organ_side(predicted)
        return organ == ref_organ and (ref_side is None or side == ref_side)
    if isinstance(reference, list):
        return _norm(predicted) in {_norm(r) for r in reference}
    return _norm(predicted) == _norm(reference)


def score_attributes(predicted: dict[str, Any], lesion_type: str | None,
                     attrs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{attribute: {predicted, reference, correct}}`` for every attribute the reference states."""
    out: dict[str, dict[str, Any]] = {}
    for attribute in SCORED_ATTRIBUTES:
        ref = reference_value(attribute, attrs)
        if ref is None:
            continue
        pred = _value(lesion_type) if attribute == "lesion_type" else _value(predicted.get(attribute))
        out[attribute] = {"predicted": pred, "reference": ref, "correct": is_correct(attribute, pred, ref)}
    return out


def attribute_accuracy(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per attribute: lesions scored, answered, accuracy, and the majority-answer chance level.

    Chance is the accuracy of always answering the reference value that the most scored lesions
    accept (computed on the same lesions, so it bounds every constant answer from above).
    """
    out: dict[str, dict[str, Any]] = {}
    for attribute in SCORED_ATTRIBUTES:
        scored = [r["attributes"][attribute] for r in records if attribute in r.get("attributes", {})]
        if not scored:
            continue
        accepts: Counter[str] = Counter()
        for s in scored:
            ref = s["reference"]
            accepts.update({_norm(v) for v in (ref if isinstance(ref, list) else [ref])})
        majority, hits = accepts.most_common(1)[0]
        n = len(scored)
        out[attribute] = {"n": n, "n_answered": sum(s["predicted"] is not None for s in scored),
                          "accuracy": sum(s["correct"] for s in scored) / n,
                          "chance": hits / n, "majority_value": majority}
    return out


def match_segments(masks: Sequence[np.ndarray], instances: np.ndarray, min_iou: float) -> DetectionCounts:
    """One-to-one Hungarian matching of found segments to every reference lesion on IoU.

    Unlike ``detection.match_lesions`` the predictions are segments, not components of one mask:
    two touching lesions the model reported apart stay apart. Where segments overlap, the earlier
    one keeps the shared voxels (the IoU matrix needs one label per voxel).
    """
    labels = np.zeros(instances.shape, dtype=np.int32)
    for n, mask in enumerate(masks, start=1):
        labels[np.asarray(mask, bool) & (labels == 0)] = n
    return match_labels(labels, len(masks), instances, min_iou)


@dataclass
class PromptFreeEvaluation(EvaluationRecords):
    """Everything measured for one model in prompt-free mode; :meth:`to_dict` is its JSON section.

    ``skipped`` holds the reason when the model has no prompt-free mode (nothing else is measured).
    """

    skipped: str = ""
    #: every segment found (at threshold 0): its score and whether it matched a reference lesion
    segment_scores: list[tuple[float, bool]] = field(default_factory=list)
    #: the model's own calibrated prompt-free threshold
    min_score: float = 0.0

    def operating_point(self, min_score: float) -> dict[str, Any]:
        """Precision and recall when segments scoring below ``min_score`` are dropped (matches of
        the kept segments are kept: the Hungarian assignment is not redone)."""
        n_ref = len(self.lesions)
        tp = sum(1 for s, m in self.segment_scores if m and s >= min_score)
        fp = sum(1 for s, m in self.segment_scores if not m and s >= min_score)
        return {"min_score": round(float(min_score), 4), "tp": tp, "fp": fp,
                "precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
                "recall": round(tp / n_ref, 3) if n_ref else 1.0,
                "f1": round(2 * tp / (2 * tp + fp + (n_ref - tp)), 3) if n_ref + fp else 1.0}

    def calibrated_min_score(self) -> float:
        """The threshold of best F1 among the observed scores (ties: the lower one)."""
        points = [self.operating_point(t) for t in sorted({0.0} | {s for s, _ in self.segment_scores})]
        return max(points, key=lambda p: (p["f1"], -p["min_score"]))["min_score"] if points else 0.0

    def _groups(self, key: str) -> dict[str, Any]:
        # recall per group is exact (every reference lesion has a type and split); precision is
        # not, since a false-positive segment belongs to no reference group
        summary = group_summary(self.lesions, key)
        for name, recs in group_records(self.lesions, key).items():
            summary[name]["recall"] = sum(r["matched"] for r in recs) / len(recs)
            summary[name]["attributes"] = attribute_accuracy([r for r in recs if r["matched"]])
        return summary

    def to_dict(self) -> dict[str, Any]:
        """Detection, segmentation summaries, attribute accuracy (overall, per type, per split), records."""
        matched = [r for r in self.lesions if r["matched"]]
        return {
            "model": self.model, "version": self.version, "mode": "prompt-free", "skipped": self.skipped,
            "n_lesions": len(self.lesions), "n_matched": len(matched),
            "detection": self.detection.to_dict(),
            "overall": metric_summary(self.lesions),
            "matched_only": metric_summary(matched),
            "attributes": attribute_accuracy(matched),
            "per_lesion_type": self._groups("lesion_type"),
            "per_split": self._groups("split"),
            "at_threshold_0": self.operating_point(0.0),
            "at_model_threshold": self.operating_point(self.min_score),
            "calibrated_min_score": self.calibrated_min_score(),
            "at_calibrated": self.operating_point(self.calibrated_min_score()),
            "segment_scores": [[round(float(sc), 4), bool(m)] for sc, m in self.segment_scores],
            "seconds_per_case": summarize(self.seconds),
            "errors": self.errors,
            "lesions": self.lesions,
        }


def _case_records(case: Case, instances: np.ndarray, segments: Sequence[Any], counts: DetectionCounts,
                  spacing: Sequence[float], tolerance_mm: float) -> list[dict[str, Any]]:
    """One record per reference lesion of the case: its match, scores and attribute answers."""
    # every listed lesion, not only those of a --split selection: prompt-free asks for all of them
    listed = {l.lesion_id: l for l in (case.dataset.listed_lesions(case.index) or [])}
    listed.update({l.lesion_id: l for l in case.lesions})
    by_ref = {ref: (seg, iou) for ref, seg, iou in counts.matches}
    out = []
    for lesion_id in (int(v) for v in np.unique(instances) if v != 0):
        rec = listed.get(lesion_id)
        attrs = dict(rec.attributes) if rec is not None else {}
        ref = instances == lesion_id
        seg, iou = by_ref.get(lesion_id, (0, 0.0))
        found = segments[seg - 1] if seg else None
        pred = found.mask.astype(bool) if found is not None else np.zeros_like(ref)
        scores = segmentation_metrics(pred, ref, spacing, tolerance_mm)
        out.append({
            "case_id": case.case_id, "lesion_id": lesion_id, "lesion_type": rec.lesion_type if rec else "lesion",
            "split": (rec.split if rec else "") or case.split, "described": bool(rec.described) if rec else False,
            "matched": found is not None, "iou": iou, **scores.to_dict(),
            "predicted_type": found.lesion_type if found is not None else None,
            "attributes": score_attributes(found.predicted_attributes, found.lesion_type, attrs)
            if found is not None else {},
        })
    return out


def evaluate_prompt_free(model: LesionSegmenter, cases: Sequence[Case], settings: InferenceSettings | None = None,
                         options: EvalOptions | None = None,
                         progress: Callable[[str], None] | None = None) -> PromptFreeEvaluation:
    """Run ``pipeline.run.find_lesions`` on every case and measure it (see the module docstring).

    A model without a prompt-free mode is not an error of the evaluation: the result comes back
    with ``skipped`` set and nothing measured. A ``ModelError`` raised by the model also stops it
    (it concerns the model, not one case); other failures are recorded per case.
    """
    from ..pipeline.run import find_lesions

    settings = settings or InferenceSettings(device="cpu")
    options = options or EvalOptions()
    result = PromptFreeEvaluation(model=str(model.name), version=str(model.version),
                                  min_score=model.min_score("prompt_free") if hasattr(model, "min_score") else 0.0)
    # every segment is kept here (threshold 0) and scored: the operating points say what each
    # threshold would give; detection and Dice above are at threshold 0
    settings = replace(settings, extra={**(settings.extra or {}), "prompt_free_min_score": 0.0})
    if not has_prompt_free(model):
        result.skipped = f"model '{model.name}' has no prompt-free mode (find_lesions); only text-guided evaluation applies"
        return result
    for case in each_case(cases, options, f"{model.name} (prompt-free)", progress):
        start = time.perf_counter()
        image, instances = case.load()
        try:
            found = find_lesions(image, model, settings)
        except ModelError as exc:
            if not result.lesions:
                result.skipped = f"model '{model.name}': {exc}"
                return result
            result.errors.append(f"{case.case_id}: ModelError: {exc}")
            break
        except Exception as exc:  # noqa: BLE001 - one failing case must not hide the others' scores
            result.errors.append(f"{case.case_id}: {type(exc).__name__}: {exc}")
            continue
        counts = match_segments([s.mask for s in found.segments], instances, options.min_iou)
        result.detection = result.detection + counts
        matched = {seg for _, seg, _ in counts.matches}
        result.segment_scores += [(float(s.score), n + 1 in matched) for n, s in enumerate(found.segments)]
        result.lesions += _case_records(case, instances, found.segments, counts, image.spacing, options.tolerance_mm)
        result.seconds.append(time.perf_counter() - start)
    return result
