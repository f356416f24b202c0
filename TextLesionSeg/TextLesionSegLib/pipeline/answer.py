"""Descriptions -> the chosen lesion of each, on the model's working grid.

The one place where a model's maps become answers, used by ``pipeline.run.segment``, the
evaluation runner and the referring evaluation alike, so every number measures what users get:
``model.candidate_maps`` (every candidate the network sees for the words, with its own score)
(and, in the ``measured`` mode, the components of the model's text-free lesion map that touch
none of the words' map, when it has one: a lesion the words' map missed is still a candidate) -> :func:`candidates.find_candidates` (3D
components, measured on the CT in HU) ->
:func:`selection.choose` (network score, optionally times measured agreement; "not found" below
the model's calibrated threshold) -> the probability map restricted to the chosen components.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .body_frame import body_frame, body_level
from .candidates import cut_map, find_candidates
from .postprocess import DEFAULT_MIN_VOLUME_MM3
from .selection import MODES, Selection, choose

if TYPE_CHECKING:
    import torch

    from ..core.types import InferenceSettings, ProgressCallback
    from ..models.base import LesionSegmenter
    from .geometry import Image
    from .preprocess import WorkingGrid


@dataclass
class Answer:
    """One description's answer on the working grid: the probability of the chosen lesion(s)
    (zero elsewhere), how it was chosen, and the candidates' label map (``selection.candidates``
    name their labels)."""

    probability: np.ndarray
    selection: Selection
    labels: np.ndarray | None = None


def working_hu(image: "Image", grid: "WorkingGrid") -> np.ndarray:
    """The CT in HU on the working grid (linear; air outside the input's field of view)."""
    return grid.to_working_image(image.with_array(np.asarray(image.array, dtype=np.float32)), default=-1000.0)


def hu_from_volume(volume: np.ndarray, hu_window: Sequence[float]) -> np.ndarray:
    """HU recovered from a 0..1 working volume (exact inside the model's window, clipped outside):
    for callers that hold only a working tensor (tests, Python users on working grids)."""
    lo, hi = float(hu_window[0]), float(hu_window[1])
    return np.asarray(volume, dtype=np.float32) * (hi - lo) + lo


def selection_mode(settings: "InferenceSettings") -> str:
    """``settings.extra["selection"]`` ("measured" by default); ValueError for anything else."""
    mode = str((settings.extra or {}).get("selection", "measured"))
    if mode not in MODES:
        raise ValueError(f"selection must be one of {', '.join(MODES)}, not '{mode}'")
    return mode


def answer_queries(model: "LesionSegmenter", volume: "torch.Tensor", queries: Sequence[Any],
                   settings: "InferenceSettings", hu: np.ndarray | None = None,
                   spacing_ijk: Sequence[float] | None = None, direction: np.ndarray | None = None,
                   progress: "ProgressCallback | None" = None) -> list[Answer]:
    """Answer each query on the working grid (see the module docstring).

    ``hu``: the CT in HU on the working grid (:func:`working_hu`; default: recovered from
    ``volume``); ``spacing_ijk``/``direction``: the working grid's (default: the model's spacing,
    identity). ``settings.extra`` may hold ``selection`` ("network"/"measured"), ``min_score``
    (overrides the model's calibrated one) and ``min_lesion_mm3``.
    """
    maps = model.candidate_maps(volume, queries, settings, progress)
    return answers_from_maps(model, volume, maps, queries, settings, hu, spacing_ijk, direction)


def answers_from_maps(model: "LesionSegmenter", volume: "torch.Tensor", maps: tuple[Any, Any], queries: Sequence[Any],
                      settings: "InferenceSettings", hu: np.ndarray | None = None,
                      spacing_ijk: Sequence[float] | None = None, direction: np.ndarray | None = None,
                      mode: str | None = None) -> list[Answer]:
    """The selection step of :func:`answer_queries` on maps already computed (``model.candidate_maps``),
    so one inference can be read in both modes (``mode`` overrides ``settings``)."""
    mode = mode or selection_mode(settings)
    vol = volume[0, 0].detach().cpu().numpy()
    if hu is None:
        hu = hu_from_volume(vol, model.preprocessing.hu_window)
    spacing = tuple(spacing_ijk or model.preprocessing.spacing or (1.0, 1.0, 1.0))
    frame = body_frame(vol, body_level(model.preprocessing.hu_window))
    prob, score, lesions = (m.detach().cpu().numpy() if hasattr(m, "detach") else (None if m is None else np.asarray(m))
                            for m in (*maps, None)[:3])
    if mode != "measured":  # the network alone: only what it answers to the words
        lesions = None
    extra = settings.extra or {}
    min_score = float(extra["min_score"]) if extra.get("min_score") is not None else model.min_score(mode)
    min_mm3 = float(extra.get("min_lesion_mm3", DEFAULT_MIN_VOLUME_MM3))
    answers = []
    for q, query in enumerate(queries):
        shown = cut_map(prob[q], lesions, settings.threshold)  # the description's map when no lesion map
        labels, cands = find_candidates(shown, None if score is None else score[q], hu, frame, spacing,
                                        settings.threshold, min_mm3, direction, lesions, prob[q])
        sel = choose(cands, query, mode, min_score, model.keep_ratio, model.lesion_prior)
        answers.append(Answer(_restrict(shown, labels, sel.labels), sel, labels))
    return answers


def _restrict(prob: np.ndarray, labels: np.ndarray, chosen: Sequence[int]) -> np.ndarray:
    """``prob`` on the chosen components only (grown by one voxel, so soft edges survive)."""
    from scipy import ndimage

    if not chosen:
        return np.zeros_like(prob)
    keep = ndimage.binary_dilation(np.isin(labels, list(chosen)), iterations=1)
    return np.where(keep, prob, 0.0).astype(prob.dtype, copy=False)
