"""A :class:`~TextLesionSegLib.pipeline.result.Result` -> segments of a segmentation node.

Rules (issue 8, "Output"):

* one segment per description, added *beside* existing segments: nothing of the user's is
  removed or overwritten, and a name already taken gets a new unique name ("liver lesion (2)");
* each segment carries its own binary labelmap layer on the input volume's voxel grid when it
  is added (a later save or reload may put segments in one shared layer: everything that
  changes a segment afterwards goes through :mod:`.segment_voxels`, per segment);
* name = the description, colour from the result, Slicer ``TerminologyEntry`` string, and tags
  with the query text, model, version, score, lesion type and predicted attributes — tags are
  saved in ``.seg.nrrd`` files and scenes;
* reference geometry = the input volume (set on a new node, or on a node without one), the
  volume's parent transform is shared, and the node is placed beside the volume in the
  subject hierarchy (under its study).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..pipeline.result import Result, SegmentResult
from .segment_voxels import mark_generated
from .terminology import set_segment_terminology
from .volumes import _matrix_to_numpy, _numpy_to_matrix, add_probability_volume, remove_with_display, transform_to_world

#: Segment tags written for every generated segment (custom tags are kept in .seg.nrrd files).
TAG_QUERY = "TextLesionSeg.Query"
TAG_MODEL = "TextLesionSeg.Model"
TAG_MODEL_VERSION = "TextLesionSeg.ModelVersion"
TAG_SCORE = "TextLesionSeg.Score"
TAG_LESION_TYPE = "TextLesionSeg.LesionType"
TAG_ATTRIBUTES = "TextLesionSeg.PredictedAttributes"
TAG_NOT_FOUND = "TextLesionSeg.NotFound"


@dataclass
class ImportedResult:
    """What :func:`import_result` added to the scene."""

    segmentation_node: Any
    segment_ids: list[str]
    probability_nodes: dict[str, Any] = field(default_factory=dict)


def get_tag(segment: Any, name: str) -> str | None:
    """A segment tag's value, or ``None`` when the segment has no such tag."""
    import vtk

    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else None


def unique_segment_name(segmentation: Any, name: str) -> str:
    """``name``, or ``name (2)``, ``name (3)``, ... when a segment already has that name."""
    taken = {
        segmentation.GetNthSegment(index).GetName()
        for index in range(segmentation.GetNumberOfSegments())
    }
    if name not in taken:
        return name
    number = 2
    while f"{name} ({number})" in taken:
        number += 1
    return f"{name} ({number})"


def labelmap_from_mask(mask: np.ndarray, volume_node: Any, segmentation_node: Any | None = None) -> Any:
    """A ``vtkOrientedImageData`` of a KJI mask on ``volume_node``'s voxel grid.

    Only the mask's bounding box is stored (its extent on the volume's grid, as Slicer's own
    effects store segments): a small lesion in a 500-slice CT costs kilobytes, not the
    whole grid. The labelmap is expressed in ``segmentation_node``'s local frame: the volume's
    ``IJKToRAS`` alone when both share a parent transform (so they move together), composed
    with the two transforms to world otherwise (a user's node under another transform).
    """
    import vtk
    from vtk.util import numpy_support

    import slicer

    dims = volume_node.GetImageData().GetDimensions()
    if tuple(mask.shape) != (dims[2], dims[1], dims[0]):
        raise ValueError(
            f"mask shape {mask.shape} does not match volume '{volume_node.GetName()}' "
            f"(KJI {dims[2]}x{dims[1]}x{dims[0]})"
        )
    # bounding box from per-axis projections: far cheaper than np.nonzero on a whole CT grid
    present = [np.flatnonzero(np.any(mask, axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    if present[0].size:
        low = [int(p[0]) for p in present]
        high = [int(p[-1]) for p in present]
    else:
        low = high = [0, 0, 0]  # an empty segment: one background voxel
    crop = np.ascontiguousarray(
        mask[low[0]: high[0] + 1, low[1]: high[1] + 1, low[2]: high[2] + 1] > 0, dtype=np.uint8
    )
    labelmap = slicer.vtkOrientedImageData()
    labelmap.SetExtent(low[2], high[2], low[1], high[1], low[0], high[0])  # I, J, K
    labelmap.GetPointData().SetScalars(numpy_support.numpy_to_vtk(crop.ravel(), deep=True))
    ijk_to_ras = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(ijk_to_ras)
    if segmentation_node is not None and segmentation_node.GetTransformNodeID() != volume_node.GetTransformNodeID():
        to_node = np.linalg.inv(transform_to_world(segmentation_node)) @ transform_to_world(volume_node)
        ijk_to_ras = _numpy_to_matrix(to_node @ _matrix_to_numpy(ijk_to_ras))
    labelmap.SetImageToWorldMatrix(ijk_to_ras)
    return labelmap


def place_in_subject_hierarchy(node: Any, beside: Any) -> None:
    """Put ``node`` under the same subject-hierarchy parent (study) as ``beside``."""
    import slicer

    scene = node.GetScene()
    shnode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if shnode is None:
        return
    beside_item = shnode.GetItemByDataNode(beside)
    if not beside_item:
        return  # the volume is not in the hierarchy (scripted scenes): nothing to follow
    parent = shnode.GetItemParent(beside_item)
    item = shnode.GetItemByDataNode(node)
    if item:
        shnode.SetItemParent(item, parent)
    else:
        shnode.CreateItem(parent, node)


def prepare_segmentation_node(
    volume_node: Any, segmentation_node: Any | None = None, name: str | None = None
) -> Any:
    """The node to add segments to: ``segmentation_node``, or a new one named after the volume.

    Reference geometry and parent transform are taken from the volume only for a new node or
    a node without a reference geometry, so a user's existing set-up is never changed.
    """
    import slicer

    scene = volume_node.GetScene()
    created = segmentation_node is None
    if created:
        base = name or f"{volume_node.GetName()} lesions"
        segmentation_node = scene.AddNewNodeByClass(
            "vtkMRMLSegmentationNode", scene.GenerateUniqueName(base)
        )
        segmentation_node.CreateDefaultDisplayNodes()
        segmentation_node.SetAndObserveTransformNodeID(volume_node.GetTransformNodeID())
    role = slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()
    # A user's node with a reference volume or with segments already has its geometry.
    has_geometry = bool(segmentation_node.GetNodeReferenceID(role)) or (
        segmentation_node.GetSegmentation().GetNumberOfSegments() > 0
    )
    if created or not has_geometry:
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
        # The node reference is what DICOM SEG export and the Segment Editor look for.
        segmentation_node.SetNodeReferenceID(role, volume_node.GetID())
    if created:
        place_in_subject_hierarchy(segmentation_node, volume_node)
    return segmentation_node


def set_segment_metadata(
    segment: Any, segment_result: SegmentResult, model_name: str, model_version: str
) -> None:
    """Colour, terminology and TextLesionSeg tags of one generated segment."""
    segment.SetColor(*[float(c) for c in segment_result.color])
    set_segment_terminology(segment, segment_result.terminology)
    query_text = segment_result.query.text if segment_result.query else segment_result.name
    segment.SetTag(TAG_QUERY, query_text)
    segment.SetTag(TAG_MODEL, model_name)
    segment.SetTag(TAG_MODEL_VERSION, str(model_version))
    segment.SetTag(TAG_SCORE, f"{float(segment_result.score):.4f}")
    if segment_result.lesion_type:
        segment.SetTag(TAG_LESION_TYPE, segment_result.lesion_type)
    if segment_result.predicted_attributes:
        segment.SetTag(TAG_ATTRIBUTES, json.dumps(segment_result.predicted_attributes, default=str))
    if not segment_result.found:  # empty on purpose: the described lesion is not in the scan
        segment.SetTag(TAG_NOT_FOUND, str(segment_result.selection.get("message") or "not found"))


def add_segment(
    segmentation_node: Any,
    segment_result: SegmentResult,
    volume_node: Any,
    model_name: str,
    model_version: str,
) -> str:
    """Add one segment (own labelmap layer) for ``segment_result``; return its segment ID."""
    import slicer

    segmentation = segmentation_node.GetSegmentation()
    segment = slicer.vtkSegment()
    segment.SetName(unique_segment_name(segmentation, segment_result.name))
    segment.SetNameAutoGenerated(False)
    segment.SetColorAutoGenerated(False)
    set_segment_metadata(segment, segment_result, model_name, model_version)
    segment.AddRepresentation(
        slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(),
        labelmap_from_mask(segment_result.mask, volume_node, segmentation_node),
    )
    segment_id = segmentation.GenerateUniqueSegmentID(segment.GetName())
    if not segmentation.AddSegment(segment, segment_id):
        raise RuntimeError(f"Slicer refused to add segment '{segment.GetName()}'")
    mark_generated(segmentation_node, segment_id)  # so later edits are told apart from our own writes
    return segment_id


def import_result(
    result: Result,
    volume_node: Any,
    segmentation_node: Any | None = None,
    keep_probability: bool = True,
) -> ImportedResult:
    """Add every segment of ``result`` to a segmentation node (new, or the given one).

    ``result`` must be on ``volume_node``'s voxel grid (the engine guarantees it: outputs
    land on the input grid). Probability maps, when the result carries them and
    ``keep_probability`` is set, become hidden-by-default volumes for live re-thresholding.
    """
    scene = volume_node.GetScene()
    created = segmentation_node is None
    node = prepare_segmentation_node(volume_node, segmentation_node)
    imported = ImportedResult(segmentation_node=node, segment_ids=[])
    try:
        for segment_result in result.segments:
            segment_id = add_segment(
                node, segment_result, volume_node, result.model_name, result.model_version
            )
            imported.segment_ids.append(segment_id)
            if keep_probability and segment_result.probability is not None:
                imported.probability_nodes[segment_id] = add_probability_volume(
                    node, segment_id, segment_result.probability, volume_node
                )
    except Exception:
        # All or nothing: a failed import leaves the scene as it was.
        for probability_node in imported.probability_nodes.values():
            remove_with_display(scene, probability_node)
        if created:
            remove_with_display(scene, node)
        else:
            for segment_id in imported.segment_ids:
                node.GetSegmentation().RemoveSegment(segment_id)
        raise
    return imported
