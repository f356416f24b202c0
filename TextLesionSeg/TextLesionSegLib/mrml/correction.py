"""Interactive correction of a generated segment: lesion under a click, live re-threshold.

Both operations read the segment's binary labelmap, change it with numpy/scipy, and write it
back with ``vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment`` (replace mode), the
call Slicer's own effects end in. Undo: pass the Segment Editor's ``vtkSegmentationHistory``
(or any history bound to the segmentation) and the state is saved *before* the change, so
Ctrl+Z in the Segment Editor restores it; the widget calls ``saveStateForUndo()`` instead.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..pipeline.postprocess import label_components
from .volumes import _matrix_to_numpy, _numpy_to_matrix, find_probability_volume, transform_to_world, volume_array


def segment_mask(segmentation_node: Any, segment_id: str) -> tuple[np.ndarray, Any]:
    """(KJI uint8 mask, ``vtkOrientedImageData`` it came from) of a segment, in the node's frame."""
    from vtk.util import numpy_support

    import slicer

    labelmap = slicer.vtkOrientedImageData()
    ok = slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(
        segmentation_node, segment_id, labelmap, False
    )
    if not ok:
        raise ValueError(f"segment '{segment_id}' has no binary labelmap")
    dims = labelmap.GetDimensions()
    scalars = labelmap.GetPointData().GetScalars()
    if scalars is None or 0 in dims:
        return np.zeros((0, 0, 0), dtype=np.uint8), labelmap
    values = numpy_support.vtk_to_numpy(scalars).reshape(dims[2], dims[1], dims[0])
    return (values > 0).astype(np.uint8), labelmap


def write_segment_mask(
    segmentation_node: Any, segment_id: str, mask: np.ndarray, like: Any, history: Any = None
) -> None:
    """Replace a segment's voxels by ``mask`` (KJI) laid on the grid of ``like`` (oriented image).

    Only the mask's bounding box is written (replace mode clears the rest of the segment), so
    a live threshold on a large CT moves kilobytes, not the whole grid.
    """
    from vtk.util import numpy_support

    import slicer

    if history is not None:
        history.SaveState()
    present = [np.flatnonzero(np.any(mask, axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    low = [int(p[0]) for p in present] if present[0].size else [0, 0, 0]
    high = [int(p[-1]) for p in present] if present[0].size else [0, 0, 0]
    crop = mask[low[0]: high[0] + 1, low[1]: high[1] + 1, low[2]: high[2] + 1]
    start = like.GetExtent()[0::2]  # I, J, K of the array's first voxel
    labelmap = slicer.vtkOrientedImageData()
    labelmap.SetOrigin(like.GetOrigin())
    labelmap.SetSpacing(like.GetSpacing())
    labelmap.CopyDirections(like)
    labelmap.SetExtent(start[0] + low[2], start[0] + high[2], start[1] + low[1], start[1] + high[1],
                       start[2] + low[0], start[2] + high[0])
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(crop > 0, dtype=np.uint8).ravel(), deep=True)
    labelmap.GetPointData().SetScalars(scalars)
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    if not logic.SetBinaryLabelmapToSegment(labelmap, segmentation_node, segment_id, logic.MODE_REPLACE):
        raise RuntimeError(f"could not update segment '{segment_id}'")


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
    new_mask = lesion if mode == "keep" else (mask > 0) & ~lesion
    write_segment_mask(segmentation_node, segment_id, new_mask, labelmap, history)
    return True


def rethreshold_segment(
    segmentation_node: Any,
    segment_id: str,
    threshold: float,
    probability_node: Any | None = None,
    history: Any = None,
) -> int:
    """Replace a segment by its kept probability map thresholded at ``threshold``.

    No model is run: the map saved at import time is re-used, so a slider can call this on
    every move. Returns the number of voxels in the new segment.

    Raises:
        ValueError: the segment has no kept probability volume.
    """
    probability_node = probability_node or find_probability_volume(segmentation_node, segment_id)
    if probability_node is None:
        raise ValueError(f"segment '{segment_id}' has no probability volume (run with 'keep probability')")
    mask = volume_array(probability_node, copy=False) >= float(threshold)
    like = _labelmap_like(probability_node, segmentation_node)
    write_segment_mask(segmentation_node, segment_id, mask, like, history)
    return int(mask.sum())


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
    probability = volume_array(probability_node, copy=False)
    if np.any(index < 0) or np.any(index >= probability.shape):
        return False
    components, _ = label_components(probability >= floor)
    picked = components[tuple(index)]
    if picked == 0:
        return False
    write_segment_mask(segmentation_node, segment_id, components == picked, labelmap, history)
    return True


def rethreshold_all(segmentation_node: Any, threshold: float, history: Any = None) -> int:
    """Re-threshold every segment of the node that has a kept probability map; returns how many."""
    count = 0
    for segment_id in segmentation_node.GetSegmentation().GetSegmentIDs():
        probability_node = find_probability_volume(segmentation_node, segment_id)
        if probability_node is not None:
            rethreshold_segment(segmentation_node, segment_id, threshold, probability_node, history)
            count += 1
    return count
