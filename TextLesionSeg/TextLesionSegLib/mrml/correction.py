"""Interactive correction of a generated segment: lesion under a click, live re-threshold.

Every operation reads and writes *one* segment through :mod:`.segment_voxels` (Slicer's
per-segment extraction and replace-mode write), so no correction ever changes another
segment's voxels, also when segments share a labelmap layer. Undo: pass the Segment Editor's
``vtkSegmentationHistory`` (or any history bound to the segmentation) and the state is saved
*before* the change, so Ctrl+Z in the Segment Editor restores it; the widget calls
``saveStateForUndo()`` instead.

A re-threshold replaces the segment by its kept probability map; a segment the user edited
since TextLesionSeg last wrote it (keep/remove, Segment Editor) is left alone unless
``overwrite_edited`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

import numpy as np

from ..pipeline.postprocess import label_components
from .segment_voxels import mark_generated, segment_mask, was_edited, write_segment_mask
from .volumes import (
    _matrix_to_numpy,
    _numpy_to_matrix,
    find_probability_volume,
    probability_at_least,
    transform_to_world,
)

__all__ = ["lesion_under_point", "rethreshold_segment", "rethreshold_segments", "RethresholdOutcome",
           "SegmentEditedError", "segment_mask", "world_to_kji"]


class SegmentEditedError(ValueError):
    """The segment was edited since TextLesionSeg last wrote it; re-thresholding would undo the edit."""


def world_to_kji(labelmap: Any, node: Any, ras: tuple[float, float, float]) -> np.ndarray:
    """Continuous KJI array index (relative to the labelmap's extent) of a world RAS point.

    ``node`` is the transformable node whose local frame the labelmap is in.
    """
    import vtk

    world_to_node = np.linalg.inv(transform_to_world(node))
    local = world_to_node @ np.array([*ras, 1.0])
    image_to_world = vtk.vtkMatrix4x4()
    labelmap.GetImageToWorldMatrix(image_to_world)
    m = np.array([[image_to_world.GetElement(r, c) for c in range(4)] for r in range(4)])
    ijk = (np.linalg.inv(m) @ local)[:3]
    extent = labelmap.GetExtent()
    ijk = ijk - np.array([extent[0], extent[2], extent[4]])
    return ijk[::-1]


def lesion_under_point(
    segmentation_node: Any,
    segment_id: str,
    ras: tuple[float, float, float],
    mode: Literal["keep", "remove"],
    history: Any = None,
    weak_floor: float = 0.25,
) -> bool:
    """Keep only, or remove, the connected lesion of a segment under a world RAS point.

    When the click misses the segment but the segment has a kept probability map, "keep"
    takes the connected region of ``probability >= weak_floor`` under the click instead: a
    lesion the model saw only weakly (below the threshold) is recovered with one click.

    Returns ``False`` (and changes nothing) when no lesion is under the point.
    """
    if mode not in ("keep", "remove"):
        raise ValueError(f"mode must be 'keep' or 'remove', not {mode!r}")
    mask, labelmap = segment_mask(segmentation_node, segment_id)
    picked = 0
    if mask.size:
        index = np.round(world_to_kji(labelmap, segmentation_node, ras)).astype(int)
        if np.all(index >= 0) and np.all(index < mask.shape):
            components, _ = label_components(mask)
            picked = components[tuple(index)]
    if picked == 0:
        if mode == "keep":
            return _keep_weak_lesion(segmentation_node, segment_id, ras, weak_floor, history)
        return False
    lesion = components == picked
    new_mask = lesion if mode == "keep" else (mask > 0) & ~lesion  # this segment's voxels only
    write_segment_mask(segmentation_node, segment_id, new_mask, labelmap, history)
    return True


def rethreshold_segment(
    segmentation_node: Any,
    segment_id: str,
    threshold: float,
    probability_node: Any | None = None,
    history: Any = None,
    overwrite_edited: bool = False,
) -> int:
    """Replace a segment by its kept probability map thresholded at ``threshold``.

    No model is run: the map saved at import time is re-used, so a slider can call this on
    every move. Returns the number of voxels in the new segment.

    Raises:
        ValueError: the segment has no kept probability volume.
        SegmentEditedError: the segment was edited since it was generated (and
            ``overwrite_edited`` is not set); nothing is changed.
    """
    probability_node = probability_node or find_probability_volume(segmentation_node, segment_id)
    if probability_node is None:
        raise ValueError(f"segment '{segment_id}' has no probability volume (run with 'keep probability')")
    if not overwrite_edited and was_edited(segmentation_node, segment_id):
        raise SegmentEditedError(f"segment '{segment_id}' was edited since it was generated")
    mask = probability_at_least(probability_node, threshold)
    like = _labelmap_like(probability_node, segmentation_node)
    write_segment_mask(segmentation_node, segment_id, mask, like, history)
    mark_generated(segmentation_node, segment_id, threshold, mask, like)
    return int(mask.sum())


@dataclass
class RethresholdOutcome:
    """What :func:`rethreshold_segments` did: voxel counts of the changed segments, and the
    segments it left alone (edited by the user, or without a kept probability map)."""

    changed: dict[str, int] = field(default_factory=dict)
    edited: list[str] = field(default_factory=list)
    without_map: list[str] = field(default_factory=list)


def rethreshold_segments(
    segmentation_node: Any,
    segment_ids: Iterable[str],
    threshold: float,
    overwrite_edited: bool = False,
    history: Any = None,
) -> RethresholdOutcome:
    """Re-threshold the given segments (the selected or ticked ones, never all by default).

    One history state is saved before the first change, so one Ctrl+Z undoes the lot.
    """
    outcome = RethresholdOutcome()
    for segment_id in segment_ids:
        probability_node = find_probability_volume(segmentation_node, segment_id)
        if probability_node is None:
            outcome.without_map.append(segment_id)
            continue
        try:
            outcome.changed[segment_id] = rethreshold_segment(
                segmentation_node, segment_id, threshold, probability_node,
                history if not outcome.changed else None, overwrite_edited)
        except SegmentEditedError:
            outcome.edited.append(segment_id)
    return outcome


def _labelmap_like(volume_node: Any, segmentation_node: Any) -> Any:
    """A geometry-only ``vtkOrientedImageData`` of a volume's grid, in the segmentation
    node's frame (the two may sit under different parent transforms)."""
    import vtk

    import slicer

    labelmap = slicer.vtkOrientedImageData()
    labelmap.SetDimensions(volume_node.GetImageData().GetDimensions())
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    if segmentation_node.GetTransformNodeID() != volume_node.GetTransformNodeID():
        to_node = np.linalg.inv(transform_to_world(segmentation_node)) @ transform_to_world(volume_node)
        matrix = _numpy_to_matrix(to_node @ _matrix_to_numpy(matrix))
    labelmap.SetImageToWorldMatrix(matrix)
    return labelmap


def _keep_weak_lesion(
    segmentation_node: Any, segment_id: str, ras: tuple[float, float, float], floor: float, history: Any
) -> bool:
    """"Keep" on a click outside the segment: the weak lesion of the probability map there."""
    probability_node = find_probability_volume(segmentation_node, segment_id)
    if probability_node is None:
        return False
    labelmap = _labelmap_like(probability_node, segmentation_node)
    index = np.round(world_to_kji(labelmap, segmentation_node, ras)).astype(int)
    weak = probability_at_least(probability_node, floor)
    if np.any(index < 0) or np.any(index >= weak.shape):
        return False
    components, _ = label_components(weak)
    picked = components[tuple(index)]
    if picked == 0:
        return False
    write_segment_mask(segmentation_node, segment_id, components == picked, labelmap, history)
    return True
