"""Shared set-up of the MRML tests (real Slicer MRML classes from ``slicer-core``, no Qt).

Imported by the ``test_mrml_*`` files; holds no tests of its own except a check that the
converter rules are registered as the Slicer application registers them.
"""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core (Slicer's MRML on PyPI) is not installed")
import vtk  # noqa: E402  (slicer-core brings vtk)

#: The rules qSlicerSegmentationsModule::setup() registers at Slicer start-up.
CONVERTER_RULES = (
    "vtkBinaryLabelmapToClosedSurfaceConversionRule",
    "vtkClosedSurfaceToBinaryLabelmapConversionRule",
    "vtkClosedSurfaceToFractionalLabelmapConversionRule",
    "vtkFractionalLabelmapToClosedSurfaceConversionRule",
)


def register_converter_rules() -> None:
    """Register the segmentation converter rules once per process, as Slicer does."""
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    have = {factory.GetConverterRules()[i].GetClassName() for i in range(len(factory.GetConverterRules()))}
    for name in CONVERTER_RULES:
        if name not in have:
            factory.RegisterConverterRule(getattr(slicer, name)())


@pytest.fixture
def scene():
    """A fresh MRML scene with the converter rules registered."""
    register_converter_rules()
    mrml_scene = slicer.vtkMRMLScene()
    yield mrml_scene
    mrml_scene.Clear(True)


def matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    """vtkMatrix4x4 of a 4x4 numpy array."""
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(array[r, c]))
    return m


def oblique_ijk_to_ras(spacing=(0.8, 1.2, 2.5), origin=(12.0, -30.0, 45.0)) -> np.ndarray:
    """A flipped, permuted and rotated IJK-to-RAS matrix with anisotropic spacing."""
    angle = np.deg2rad(23.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    permute_flip = np.array([[0, -1, 0], [1, 0, 0], [0, 0, -1]], dtype=float)
    m = np.eye(4)
    m[:3, :3] = rotation @ permute_flip @ np.diag(spacing)
    m[:3, 3] = origin
    return m


def add_volume(scene, array: np.ndarray, ijk_to_ras: np.ndarray, name: str = "CT", transform: np.ndarray | None = None):
    """A scalar volume node holding ``array`` (KJI) with the given geometry and parent transform."""
    from vtk.util import numpy_support

    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    image_data = vtk.vtkImageData()
    k, j, i = array.shape
    image_data.SetDimensions(i, j, k)
    image_data.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True))
    node.SetAndObserveImageData(image_data)
    node.SetIJKToRASMatrix(matrix(ijk_to_ras))
    if transform is not None:
        transform_node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "moved")
        transform_node.SetMatrixTransformToParent(matrix(transform))
        node.SetAndObserveTransformNodeID(transform_node.GetID())
    return node


def rigid_transform() -> np.ndarray:
    """A rotation about an oblique axis plus a translation."""
    axis = np.array([1.0, 2.0, 0.5]) / np.linalg.norm([1.0, 2.0, 0.5])
    angle = np.deg2rad(31.0)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = [5.0, -7.0, 11.0]
    return m


def sphere(shape, center_kji, radius) -> np.ndarray:
    """uint8 ball mask (KJI)."""
    grid = np.indices(shape)
    distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, center_kji)))
    return (distance <= radius).astype(np.uint8)


def segment_array(segmentation_node, segment_id, reference_node) -> np.ndarray:
    """Export one segment through Slicer's Segmentations logic onto the reference grid (KJI)."""
    from vtk.util import numpy_support

    scene = segmentation_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "export")
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        segmentation_node, ids, labelmap, reference_node
    )
    dims = labelmap.GetImageData().GetDimensions()
    values = numpy_support.vtk_to_numpy(labelmap.GetImageData().GetPointData().GetScalars())
    scene.RemoveNode(labelmap)
    return values.reshape(dims[2], dims[1], dims[0]).copy()


def test_converter_rules_are_registered(scene):
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    names = {factory.GetConverterRules()[i].GetClassName() for i in range(len(factory.GetConverterRules()))}
    assert set(CONVERTER_RULES) <= names



def add_user_segment_and_share_layers(scene, node, volume, user_mask, folder) -> dict:
    """Add a segment "user" drawn by hand (``user_mask`` on ``volume``'s grid), save ``node`` as
    .seg.nrrd and read it back (Slicer's reader puts the segments in shared layers); returns
    segment IDs by name."""
    from TextLesionSegLib.mrml.segmentation import labelmap_from_mask

    user = slicer.vtkSegment()
    user.SetName("user")
    user.AddRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(),
                           labelmap_from_mask(user_mask, volume, node))
    node.GetSegmentation().AddSegment(user, "user")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(folder / "lesions.seg.nrrd"))
    assert storage.WriteData(node)
    assert storage.ReadData(node)
    segmentation = node.GetSegmentation()
    return {segmentation.GetNthSegment(n).GetName(): segmentation.GetNthSegmentID(n)
            for n in range(segmentation.GetNumberOfSegments())}
