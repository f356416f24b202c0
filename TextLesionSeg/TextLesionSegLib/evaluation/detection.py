"""Lesion-wise detection: connected components of a prediction matched to reference lesions.

A predicted component and a reference lesion *match* when their intersection over union is at
least ``min_iou`` [chosen: 0.1, lenient because small lesions shift by a voxel easily]; matching is
one-to-one (Hungarian assignment on IoU via scipy), so one blob covering two lesions detects one
of them and two blobs on one lesion count one true and one false positive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

#: lenient IoU floor for a match [chosen]
DEFAULT_MIN_IOU = 0.1


@dataclass
class DetectionCounts:
    """True/false positives and false negatives, with the matched pairs (ref id, pred id, IoU)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    matches: list[tuple[int, int, float]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was predicted (no false alarm was raised)."""
        return self.tp / (self.tp + self.fp) if (self.tp + self.fp) else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when there was nothing to find."""
        return self.tp / (self.tp + self.fn) if (self.tp + self.fn) else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall, from the counts (2TP / (2TP + FP + FN))."""
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else 1.0

    def __add__(self, other: "DetectionCounts") -> "DetectionCounts":
        return DetectionCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.matches + other.matches)

    def to_dict(self) -> dict[str, float | int]:
        """Counts and rates, without the per-pair list."""
        d = asdict(self)
        d.pop("matches")
        d.update(precision=self.precision, recall=self.recall, f1=self.f1)
        return d


def connected_components(mask: np.ndarray, connectivity: int = 3) -> tuple[np.ndarray, int]:
    """Label the connected components of a binary 3D mask (``connectivity`` 1, 2 or 3 as in scipy)."""
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(3, connectivity)
    labels, n = ndimage.label(np.asarray(mask, dtype=bool), structure=structure)
    return labels, int(n)


def _iou_matrix(ref_labels: np.ndarray, ref_ids: list[int], pred_labels: np.ndarray, n_pred: int) -> np.ndarray:
    """IoU of every reference lesion (rows) with every predicted component (columns)."""
    iou = np.zeros((len(ref_ids), n_pred), dtype=float)
    if not ref_ids or n_pred == 0:
        return iou
    pred_sizes = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)
    for row, rid in enumerate(ref_ids):
        in_ref = ref_labels == rid
        ref_size = int(in_ref.sum())
        overlap = np.bincount(pred_labels[in_ref], minlength=n_pred + 1)
        for col in np.nonzero(overlap[1:])[0]:
            inter = overlap[col + 1]
            iou[row, col] = inter / (ref_size + pred_sizes[col + 1] - inter)
    return iou


def match_labels(pred_labels: np.ndarray, n_pred: int, ref_instances: np.ndarray,
                 min_iou: float = DEFAULT_MIN_IOU) -> DetectionCounts:
    """Detection counts of labelled predictions (1..``n_pred``, 0 = background) against an
    instance label map: one-to-one Hungarian assignment on IoU, pairs below ``min_iou`` dropped."""
    from scipy.optimize import linear_sum_assignment

    ref = np.asarray(ref_instances)
    ref_ids = [int(v) for v in np.unique(ref) if v != 0]
    iou = _iou_matrix(ref, ref_ids, pred_labels, n_pred)
    matches: list[tuple[int, int, float]] = []
    if iou.size:
        rows, cols = linear_sum_assignment(-iou)
        matches = [(ref_ids[r], int(c) + 1, float(iou[r, c])) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]
    tp = len(matches)
    return DetectionCounts(tp=tp, fp=n_pred - tp, fn=len(ref_ids) - tp, matches=matches)


def match_lesions(
    pred_mask: np.ndarray,
    ref_instances: np.ndarray,
    min_iou: float = DEFAULT_MIN_IOU,
    connectivity: int = 3,
) -> DetectionCounts:
    """Detection counts of a binary prediction against an instance label map (0 = background).

    The reference is an *instance* map (one id per lesion, as SynthLesion/KiTS-style label maps
    hold), so touching lesions stay separate; the prediction is split into connected components.
    """
    pred_labels, n_pred = connected_components(pred_mask, connectivity)
    return match_labels(pred_labels, n_pred, ref_instances, min_iou)


def instances_from_binary(mask: np.ndarray, connectivity: int = 3) -> np.ndarray:
    """An instance map from a binary reference (for datasets whose labels are not instance maps)."""
    return connected_components(mask, connectivity)[0]
