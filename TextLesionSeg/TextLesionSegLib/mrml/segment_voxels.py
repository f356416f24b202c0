"""One segment's voxels, read and written without touching any other segment.

Segments of a node may share one labelmap *layer* (after any save, reload or
``CollapseBinaryLabelmaps``): the layer's image then holds segment A as label 1, B as label 2,
and reading "the layer > 0" as A's mask would hand B's voxels to A. Everything here goes through
Slicer's per-segment calls instead:

* read: ``vtkMRMLSegmentationNode.GetBinaryLabelmapRepresentation(segmentID, image)``, which
  extracts only that segment's label value as a 0/1 image;
* write: ``vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment`` in replace mode, which
  clears only that segment's label and moves an overlapped segment to a layer of its own.

A *generated-mask digest* (a segment tag) records the mask as TextLesionSeg last wrote it (import
or re-threshold). A segment whose voxels no longer match it was edited — by a keep/remove click
or in the Segment Editor — and a re-threshold leaves it alone unless the user asks.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

#: Segment tag: digest of the mask as TextLesionSeg last wrote it (see :func:`mask_digest`).
TAG_GENERATED_DIGEST = "TextLesionSeg.GeneratedMaskDigest"
#: Segment tag: the probability threshold that produced the current generated mask.
TAG_THRESHOLD = "TextLesionSeg.Threshold"


def segment_mask(segmentation_node: Any, segment_id: str) -> tuple[np.ndarray, Any]:
    """(KJI uint8 0/1 mask of this segment only, the ``vtkOrientedImageData`` it lies on).

    The image is in the segmentation node's local frame (no parent transform applied).
    """
    from vtk.util import numpy_support

    import slicer

    labelmap = slicer.vtkOrientedImageData()
    if segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
        raise ValueError(f"segmentation has no segment '{segment_id}'")
    if not segmentation_node.GetBinaryLabelmapRepresentation(segment_id, labelmap):
        raise ValueError(f"segment '{segment_id}' has no binary labelmap")
    dims = labelmap.GetDimensions()
    scalars = labelmap.GetPointData().GetScalars()
    if scalars is None or 0 in dims:
        return np.zeros((0, 0, 0), dtype=np.uint8), labelmap
    values = numpy_support.vtk_to_numpy(scalars).reshape(dims[2], dims[1], dims[0])
    return (values > 0).astype(np.uint8), labelmap


def _bounding_box(mask: np.ndarray) -> tuple[list[int], list[int]] | None:
    """(low, high) KJI corners of the non-zero voxels, or ``None`` for an empty mask.

    Per-axis projections: far cheaper than ``np.nonzero`` on a whole CT grid.
    """
    present = [np.flatnonzero(np.any(mask, axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    if not present[0].size:
        return None
    return [int(p[0]) for p in present], [int(p[-1]) for p in present]


def write_segment_mask(
    segmentation_node: Any, segment_id: str, mask: np.ndarray, like: Any, history: Any = None
) -> None:
    """Replace one segment's voxels by ``mask`` (KJI) laid on the grid of ``like``.

    Other segments keep every voxel, also when they share this segment's layer. Only the
    mask's bounding box is sent, so a live threshold on a large CT moves kilobytes. With a
    ``history`` (``vtkSegmentationHistory``) the state before the change is saved for undo.
    """
    from vtk.util import numpy_support

    import slicer

    if history is not None:
        history.SaveState()
    box = _bounding_box(mask)
    low, high = box if box is not None else ([0, 0, 0], [0, 0, 0])
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


def mask_digest(mask: np.ndarray, labelmap: Any) -> str:
    """A digest of a mask *in physical space*: the same lesion voxels give the same digest
    whatever the labelmap's extent (a reload or a shared layer changes extents, not voxels).

    Hashes the world position of the bounding box's first voxel and the grid axes (rounded to
    1 µm), the box's shape and its packed bits.
    """
    import vtk

    box = _bounding_box(mask)
    if box is None:
        return "empty"
    low, high = box
    crop = np.ascontiguousarray(mask[low[0]: high[0] + 1, low[1]: high[1] + 1, low[2]: high[2] + 1] > 0)
    matrix = vtk.vtkMatrix4x4()
    labelmap.GetImageToWorldMatrix(matrix)
    m = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    extent = labelmap.GetExtent()
    first_ijk = np.array([extent[0] + low[2], extent[2] + low[1], extent[4] + low[0], 1.0])
    geometry = np.round(np.concatenate([(m @ first_ijk)[:3], m[:3, :3].ravel()]), 3) + 0.0  # no "-0.0"
    digest = hashlib.sha1()
    digest.update(geometry.tobytes())
    digest.update(np.array(crop.shape, dtype=np.int64).tobytes())
    digest.update(np.packbits(crop).tobytes())
    return digest.hexdigest()


def mark_generated(
    segmentation_node: Any, segment_id: str, threshold: float | None = None,
    mask: np.ndarray | None = None, like: Any = None,
) -> None:
    """Record the segment's current voxels as TextLesionSeg's own (after import or re-threshold).

    ``mask`` and ``like`` (the mask just written and its grid) save reading the segment back.
    """
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    if mask is None or like is None:
        mask, like = segment_mask(segmentation_node, segment_id)
    segment.SetTag(TAG_GENERATED_DIGEST, mask_digest(mask, like))
    if threshold is not None:
        segment.SetTag(TAG_THRESHOLD, f"{float(threshold):.4f}")


def was_edited(segmentation_node: Any, segment_id: str) -> bool:
    """True when the segment's voxels differ from what TextLesionSeg last wrote.

    A segment without a digest (made by the user, or by a version that kept none) counts as
    edited: nothing is overwritten on a guess.
    """
    import vtk

    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    recorded = vtk.reference("")
    if segment is None or not segment.GetTag(TAG_GENERATED_DIGEST, recorded):
        return True
    mask, labelmap = segment_mask(segmentation_node, segment_id)
    return mask_digest(mask, labelmap) != str(recorded)
