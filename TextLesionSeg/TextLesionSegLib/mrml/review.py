"""Accept or reject a generated lesion, as a radiologist reviews the lesion table.

Accept records the decision as a segment tag (saved in ``.seg.nrrd`` files and scenes, so the
review survives a reload); reject removes the segment, or with :func:`reject_lesion` only the
lesion of one table row when the segment holds several. Both act on one segment, found by ID;
the widget saves an undo state first, so Ctrl+Z in the Segment Editor brings a rejected segment
back. The kept probability map of a rejected segment stays (hidden) so that undo restores the
live threshold too; "Drop probability maps" removes it.
"""

from __future__ import annotations

from typing import Any

#: Segment tag holding the reviewer's decision ("accepted").
TAG_REVIEW = "TextLesionSeg.Review"
ACCEPTED = "accepted"


def accept_segment(segmentation_node: Any, segment_id: str) -> None:
    """Mark a segment as reviewed and accepted.

    Raises:
        ValueError: the node has no such segment.
    """
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    if segment is None:
        raise ValueError(f"segmentation has no segment '{segment_id}'")
    segment.SetTag(TAG_REVIEW, ACCEPTED)


def reject_segment(segmentation_node: Any, segment_id: str) -> None:
    """Remove a segment the reviewer rejected (no other segment changes).

    Raises:
        ValueError: the node has no such segment.
    """
    segmentation = segmentation_node.GetSegmentation()
    if segmentation.GetSegment(segment_id) is None:
        raise ValueError(f"segmentation has no segment '{segment_id}'")
    segmentation.RemoveSegment(segment_id)


def review_state(segmentation_node: Any, segment_id: str) -> str:
    """"accepted", or "" when not reviewed (or the segment is gone)."""
    import vtk

    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    value = vtk.reference("")
    return str(value) if segment is not None and segment.GetTag(TAG_REVIEW, value) else ""


def reject_lesion(segmentation_node: Any, segment_id: str, ras: tuple[float, float, float]) -> str:
    """Remove the lesion of a lesion-table row: the connected lesion of the segment nearest to the
    row's centre ``ras`` (world RAS; a crescent's centre may lie outside it), or the whole segment
    when that is its only lesion. No other segment's voxels change.

    Returns "lesion" or "segment": what was removed.

    Raises:
        ValueError: the node has no such segment.
    """
    import numpy as np

    from ..pipeline.postprocess import label_components
    from .correction import world_to_kji
    from .segment_voxels import segment_mask, write_segment_mask

    if segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
        raise ValueError(f"segmentation has no segment '{segment_id}'")
    mask, labelmap = segment_mask(segmentation_node, segment_id)
    components, count = label_components(mask > 0) if mask.size else (mask, 0)
    if count <= 1:
        reject_segment(segmentation_node, segment_id)
        return "segment"
    point = world_to_kji(labelmap, segmentation_node, tuple(ras))
    voxels = np.argwhere(components > 0)
    nearest = voxels[np.argmin(((voxels - point) ** 2).sum(axis=1))]
    write_segment_mask(segmentation_node, segment_id, (components > 0) & (components != components[tuple(nearest)]),
                       labelmap)
    return "lesion"
