"""Scalar volume nodes <-> engine images, with the volume's parent transform honoured.

A volume's voxels are placed in the world by ``IJKToRAS`` and then by its parent transform.
The engine works in world coordinates (the CT's physical space), so a *linear* parent
transform is composed into the image geometry here; a non-linear (warping) one cannot be
expressed as a grid geometry and is refused with a one-line :class:`InputError` asking the
user to harden it first (as Slicer's own modules do).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..pipeline.geometry import Image

#: Attribute set on probability volumes: the segment they belong to.
PROBABILITY_SEGMENT_ATTRIBUTE = "TextLesionSeg.SegmentID"
#: Node reference role from a probability volume to its segmentation node.
PROBABILITY_SEGMENTATION_ROLE = "textLesionSegSegmentation"
#: Attribute on probability volumes: stored value of probability 1.0 (absent: float maps of
#: older scenes, stored as 0..1).
PROBABILITY_SCALE_ATTRIBUTE = "TextLesionSeg.ProbabilityScale"
#: Probability maps are stored as uint8 0..255: a quarter of float32 (15 MB instead of 61 MB
#: on a 512x512x58 CT), and 1/255 steps are finer than any threshold a slider sets.
PROBABILITY_SCALE = 255


def _matrix_to_numpy(matrix: Any) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _numpy_to_matrix(array: np.ndarray) -> Any:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def transform_to_world(node: Any) -> np.ndarray:
    """4x4 matrix from ``node``'s local coordinates to world RAS (identity without a parent).

    Raises:
        InputError: the parent transform is not linear (harden it first).
    """
    parent = node.GetParentTransformNode()
    if parent is None:
        return np.eye(4)
    if not parent.IsTransformToWorldLinear():
        raise InputError(
            f"'{node.GetName()}' is under a non-linear transform; harden it "
            "(Data module: right-click > Harden transform) and try again"
        )
    import vtk

    matrix = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(matrix)
    return _matrix_to_numpy(matrix)


def ijk_to_world_matrix(volume_node: Any) -> np.ndarray:
    """IJK -> world RAS: the node's ``IJKToRAS`` followed by its parent transform."""
    import vtk

    ijk_to_ras = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(ijk_to_ras)
    return transform_to_world(volume_node) @ _matrix_to_numpy(ijk_to_ras)


def volume_array(volume_node: Any, copy: bool = True) -> np.ndarray:
    """The voxels of a single-component scalar volume as a KJI numpy array.

    ``copy=False`` returns a read-only view of the node's memory (valid while the node lives).
    """
    from vtk.util import numpy_support

    image_data = volume_node.GetImageData() if volume_node is not None else None
    if image_data is None or image_data.GetPointData().GetScalars() is None:
        name = volume_node.GetName() if volume_node is not None else "(none)"
        raise InputError(f"volume '{name}' has no voxels")
    if image_data.GetNumberOfScalarComponents() != 1:
        raise InputError(
            f"volume '{volume_node.GetName()}' has {image_data.GetNumberOfScalarComponents()} "
            "components per voxel; select a single-component (grey-level) CT volume"
        )
    dims = image_data.GetDimensions()
    scalars = numpy_support.vtk_to_numpy(image_data.GetPointData().GetScalars())
    array = scalars.reshape(dims[2], dims[1], dims[0])
    if copy:
        return array.copy()
    array.flags.writeable = False
    return array


def volume_to_image(volume_node: Any) -> Image:
    """An engine :class:`Image` of a scalar volume node, placed in world coordinates.

    The node's ``IJKToRAS`` and any linear parent transform are composed, so a point of the
    returned image lies at the RAS position where Slicer draws that voxel.
    """
    array = volume_array(volume_node)
    metadata: dict[str, Any] = {"source": f"Slicer volume '{volume_node.GetName()}'"}
    modality = volume_node.GetAttribute("DICOM.Modality")
    if modality:
        metadata["modality"] = modality
    return Image.from_ijk_to_ras(array, ijk_to_world_matrix(volume_node), **metadata)


def ct_warning(volume_node: Any) -> str | None:
    """A one-line warning when a volume does not look like a CT, else ``None``.

    Uses the engine's own check (``pipeline.validate.ct_verdict``: the DICOM modality Slicer's
    DICOM import recorded, else the Hounsfield distribution), so the panel and the CLI agree.
    The run is still allowed: the user may know better.
    """
    from ..pipeline.validate import ct_verdict

    try:
        verdict = ct_verdict(volume_to_image(volume_node))
    except InputError as error:
        return str(error)
    if verdict.looks_like_ct:
        return None
    return f"This does not look like a CT ({verdict.reason}); the models were trained on CT only."


def add_volume_like(
    reference_node: Any, array: np.ndarray, name: str, node_class: str = "vtkMRMLScalarVolumeNode"
) -> Any:
    """Add a volume node holding ``array`` (KJI) on ``reference_node``'s grid and transform."""
    import vtk
    from vtk.util import numpy_support

    scene = reference_node.GetScene()
    node = scene.AddNewNodeByClass(node_class, scene.GenerateUniqueName(name))
    matrix = vtk.vtkMatrix4x4()
    reference_node.GetIJKToRASMatrix(matrix)
    node.SetIJKToRASMatrix(matrix)
    image_data = vtk.vtkImageData()
    k, j, i = array.shape
    image_data.SetDimensions(i, j, k)
    contiguous = np.ascontiguousarray(array)
    vtk_array = numpy_support.numpy_to_vtk(contiguous.ravel(), deep=True)
    image_data.GetPointData().SetScalars(vtk_array)
    node.SetAndObserveImageData(image_data)
    node.SetAndObserveTransformNodeID(reference_node.GetTransformNodeID())
    return node


def add_fixed_range_display(node: Any, low: float, high: float) -> Any:
    """A grey display node with a fixed window (no automatic window/level).

    ``CreateDefaultDisplayNodes`` would compute a histogram of the whole volume for the
    automatic window (about 2 s for a 50 M-voxel float map); a probability map's range is known.
    """
    scene = node.GetScene()
    display = scene.AddNewNodeByClass("vtkMRMLScalarVolumeDisplayNode")
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(low, high)
    grey = scene.GetNodeByID("vtkMRMLColorTableNodeGrey")
    if grey is not None:
        display.SetAndObserveColorNodeID(grey.GetID())
    node.SetAndObserveDisplayNodeID(display.GetID())
    return display


def add_probability_volume(
    segmentation_node: Any, segment_id: str, probability: np.ndarray, reference_node: Any
) -> Any:
    """Keep a segment's probability map (0..1) as a hidden uint8 volume for re-thresholding.

    Hidden from the volume selectors (``HideFromEditors``): it is the segment's data, not an
    image to segment. The volume records its segment in an attribute and its segmentation in a
    node reference, both saved with the scene, so the live threshold works after a reload.
    """
    name = f"{segmentation_node.GetSegmentation().GetSegment(segment_id).GetName()} probability"
    stored = np.rint(np.clip(probability, 0.0, 1.0) * PROBABILITY_SCALE).astype(np.uint8)
    node = add_volume_like(reference_node, stored, name)
    node.SetHideFromEditors(True)
    add_fixed_range_display(node, 0.0, float(PROBABILITY_SCALE))
    node.SetAttribute(PROBABILITY_SEGMENT_ATTRIBUTE, segment_id)
    node.SetAttribute(PROBABILITY_SCALE_ATTRIBUTE, str(PROBABILITY_SCALE))
    node.SetNodeReferenceID(PROBABILITY_SEGMENTATION_ROLE, segmentation_node.GetID())
    from .segmentation import place_in_subject_hierarchy  # late: segmentation imports this module

    place_in_subject_hierarchy(node, reference_node)
    return node


def probability_at_least(probability_node: Any, threshold: float) -> np.ndarray:
    """KJI boolean mask of ``probability >= threshold`` of a kept probability volume.

    Compared in stored units (no float copy of the grid); a stored value ``v`` stands for
    ``v / scale``, so ``v >= ceil(threshold * scale)`` is the same test, to 1/255.
    """
    stored = volume_array(probability_node, copy=False)
    scale = float(probability_node.GetAttribute(PROBABILITY_SCALE_ATTRIBUTE) or 1.0)
    if scale == 1.0:
        return stored >= float(threshold)
    return stored >= np.ceil(float(threshold) * scale - 1e-6)


def remove_with_display(scene: Any, node: Any) -> None:
    """Remove a node and its display nodes (MRML keeps orphaned display nodes otherwise)."""
    displays = [node.GetNthDisplayNode(n) for n in range(node.GetNumberOfDisplayNodes())]
    scene.RemoveNode(node)
    for display in displays:
        if display is not None:
            scene.RemoveNode(display)


def remove_probability_volumes(segmentation_node: Any, segment_ids: Any = None) -> int:
    """Drop the kept probability volumes of a segmentation node (of ``segment_ids``, or all);
    returns how many. The segments stay; only the live threshold is lost for them."""
    scene = segmentation_node.GetScene()
    ids = None if segment_ids is None else set(segment_ids)
    removed = 0
    for node in probability_volumes(segmentation_node):
        if ids is None or node.GetAttribute(PROBABILITY_SEGMENT_ATTRIBUTE) in ids:
            remove_with_display(scene, node)
            removed += 1
    return removed


def probability_volumes(segmentation_node: Any) -> list[Any]:
    """Every probability volume kept for a segmentation node's segments."""
    scene = segmentation_node.GetScene()
    nodes = scene.GetNodesByClass("vtkMRMLScalarVolumeNode")
    found = []
    for index in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(index)
        if (node.GetAttribute(PROBABILITY_SEGMENT_ATTRIBUTE)
                and node.GetNodeReferenceID(PROBABILITY_SEGMENTATION_ROLE) == segmentation_node.GetID()):
            found.append(node)
    return found


def find_probability_volume(segmentation_node: Any, segment_id: str) -> Any | None:
    """The probability volume kept for a segment, or ``None`` (the newest when several)."""
    found = [node for node in probability_volumes(segmentation_node)
             if node.GetAttribute(PROBABILITY_SEGMENT_ATTRIBUTE) == segment_id]
    return found[-1] if found else None
