"""Volume nodes -> engine images with real MRML (slicer-core): geometry, transforms, CT check."""

from __future__ import annotations

import numpy as np
import pytest

from test_mrml_support import add_volume, oblique_ijk_to_ras, rigid_transform, scene  # noqa: F401

slicer = pytest.importorskip("slicer")
import vtk  # noqa: E402

from TextLesionSegLib.errors import InputError  # noqa: E402
from TextLesionSegLib.mrml.volumes import (  # noqa: E402
    add_volume_like,
    ct_warning,
    volume_array,
    volume_to_image,
)


def _slicer_world_ras(node, ijk) -> np.ndarray:
    """Where Slicer itself draws voxel ``ijk``: IJKToRAS, then the parent transform to world."""
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    local = m.MultiplyPoint([*map(float, ijk), 1.0])[:3]
    parent = node.GetParentTransformNode()
    if parent is None:
        return np.array(local)
    to_world = vtk.vtkGeneralTransform()
    parent.GetTransformToWorld(to_world)
    return np.array(to_world.TransformPoint(local))


@pytest.mark.parametrize("with_transform", [False, True])
def test_voxel_lands_at_the_same_ras_point(scene, with_transform):
    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1000, size=(7, 9, 11)).astype(np.int16)
    node = add_volume(scene, array, oblique_ijk_to_ras(), transform=rigid_transform() if with_transform else None)
    image = volume_to_image(node)
    assert np.array_equal(image.array, array)
    for kji in [(0, 0, 0), (6, 8, 10), (3, 2, 7)]:
        expected = _slicer_world_ras(node, kji[::-1])
        assert np.allclose(image.kji_to_ras(np.array(kji)), expected, atol=1e-6)
        # and back: the engine finds the same voxel from the RAS point
        assert np.allclose(image.ras_to_kji(expected), kji, atol=1e-6)


def test_image_back_to_a_volume_node_keeps_the_geometry(scene):
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    node = add_volume(scene, array, oblique_ijk_to_ras(), transform=rigid_transform())
    image = volume_to_image(node)
    back = add_volume(scene, image.array, image.ijk_to_ras(), name="back")  # world grid, no transform
    for ijk in [(0, 0, 0), (5, 4, 3), (2, 1, 0)]:
        assert np.allclose(_slicer_world_ras(back, ijk), _slicer_world_ras(node, ijk), atol=1e-6)
    assert np.array_equal(volume_array(back), array)


def test_non_linear_parent_transform_is_refused_with_one_line(scene):
    node = add_volume(scene, np.zeros((3, 3, 3), np.int16), np.eye(4))
    grid = scene.AddNewNodeByClass("vtkMRMLGridTransformNode", "warp")
    grid.SetAndObserveTransformToParent(vtk.vtkGridTransform())
    node.SetAndObserveTransformNodeID(grid.GetID())
    with pytest.raises(InputError, match="harden"):
        volume_to_image(node)


def test_multi_component_volume_is_refused(scene):
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "rgb")
    data = vtk.vtkImageData()
    data.SetDimensions(2, 2, 2)
    data.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 3)
    node.SetAndObserveImageData(data)
    with pytest.raises(InputError, match="3 components"):
        volume_to_image(node)
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InputError, match="no voxels"):
        volume_to_image(empty)


def test_ct_warning_tells_ct_from_mr(scene, ctchest_path):
    import SimpleITK as sitk

    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(ctchest_path)))
    ct_node = add_volume(scene, ct, np.eye(4), name="ct")
    assert ct_warning(ct_node) is None
    mr_like = np.clip(ct.astype(np.float32) + 1024, 0, None) * 0.3  # MR-like: no negative values
    mr_node = add_volume(scene, mr_like, np.eye(4), name="mr")
    assert "air" in ct_warning(mr_node)
    ct_node.SetAttribute("DICOM.Modality", "MR")
    assert "modality tag is MR" in ct_warning(ct_node)


def test_volume_like_shares_grid_and_transform(scene):
    node = add_volume(scene, np.zeros((4, 5, 6), np.int16), oblique_ijk_to_ras(), transform=rigid_transform())
    probability = np.random.default_rng(1).random((4, 5, 6)).astype(np.float32)
    twin = add_volume_like(node, probability, "p")
    assert twin.GetTransformNodeID() == node.GetTransformNodeID()
    assert np.allclose(volume_to_image(twin).ijk_to_ras(), volume_to_image(node).ijk_to_ras())
    assert np.array_equal(volume_array(twin), probability)


@pytest.mark.parametrize("name", ["ctchest", "lung2"])
def test_slicer_reader_and_engine_reader_agree_on_real_ct(scene, ctchest_path, request, name):
    """A real CT loaded by Slicer's own storage node gives the same engine Image (voxels and
    geometry) as the engine's SimpleITK reader: Slicer's RAS and the engine's LPS meet exactly."""
    from TextLesionSegLib.pipeline.geometry import same_grid
    from TextLesionSegLib.pipeline.io import read_image

    path = ctchest_path if name == "ctchest" else request.getfixturevalue("shared_data") / "lung2_image.nrrd"
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    from_slicer = volume_to_image(node)
    from_engine = read_image(path)
    assert same_grid(from_slicer, from_engine, tol=1e-4)
    assert np.array_equal(from_slicer.array, from_engine.array)
