"""Result -> segmentation node with real MRML (slicer-core): names, colours, terminology, tags,
geometry, the user's segments untouched, Segmentations-logic import/export, .seg.nrrd files."""

from __future__ import annotations

import numpy as np
import pytest

from test_mrml_support import add_volume, oblique_ijk_to_ras, rigid_transform, scene, segment_array, sphere  # noqa: F401

slicer = pytest.importorskip("slicer")
import vtk  # noqa: E402

from TextLesionSegLib.mrml.segmentation import (  # noqa: E402
    TAG_NOT_FOUND,
    TAG_MODEL,
    TAG_MODEL_VERSION,
    TAG_QUERY,
    TAG_SCORE,
    get_tag,
    import_result,
)
from TextLesionSegLib.mrml.terminology import terminology_dict, terminology_string  # noqa: E402
from TextLesionSegLib.mrml.volumes import (  # noqa: E402
    find_probability_volume,
    probability_at_least,
    remove_probability_volumes,
    volume_array,
    volume_to_image,
)
from TextLesionSegLib.pipeline.result import LesionMeasurement, Result, SegmentResult  # noqa: E402
from TextLesionSegLib.query.types import LesionQuery  # noqa: E402

SHAPE = (12, 20, 24)
LIVER_MASS = {
    "contextName": "Segmentation category and type - DICOM master list",
    "category": {"CodingSchemeDesignator": "SCT", "CodeValue": "49755003", "CodeMeaning": "Morphologically Altered Structure"},
    "type": {"CodingSchemeDesignator": "SCT", "CodeValue": "4147007", "CodeMeaning": "Mass"},
    "anatomicRegion": {"CodingSchemeDesignator": "SCT", "CodeValue": "10200004", "CodeMeaning": "Liver"},
}
LUNG_NODULE = {
    "category": ["SCT", "49755003", "Morphologically Altered Structure"],
    "type": ["SCT", "27925004", "Nodule"],
    "anatomicRegion": ["SCT", "39607008", "Lung"],
    "anatomicRegionModifier": ["SCT", "24028007", "Right"],
}


def make_result(volume_node, probability=False) -> Result:
    image = volume_to_image(volume_node)
    first = sphere(SHAPE, (6, 10, 8), 3.5)
    second = sphere(SHAPE, (5, 6, 17), 2.5)
    segments = []
    for text, mask, color, term in [
        ("hypodense mass in the liver", first, (0.8, 0.2, 0.1), LIVER_MASS),
        ("right lung nodule", second, (0.1, 0.5, 0.9), LUNG_NODULE),
    ]:
        prob = np.where(mask > 0, 0.8, 0.2).astype(np.float32) if probability else None
        segments.append(
            SegmentResult(
                name=text, mask=mask, query=LesionQuery(text=text), probability=prob, score=0.87,
                color=color, terminology=term, lesion_type="mass",
                lesions=[LesionMeasurement(1, int(mask.sum()), 1.0, 5.0, 4.0, 6.0, 30.0, 5.0, (0.0, 0.0, 0.0))],
            )
        )
    return Result(image=image, segments=segments, model_name="malenia-demo", model_version="0.1")


@pytest.fixture
def volume(scene):
    ct = np.full(SHAPE, -50, dtype=np.int16)
    return add_volume(scene, ct, oblique_ijk_to_ras(), transform=rigid_transform())


def test_segments_have_names_colours_terminology_tags_and_geometry(volume):
    result = make_result(volume)
    imported = import_result(result, volume)
    node = imported.segmentation_node
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 2
    for segment_id, segment_result in zip(imported.segment_ids, result.segments):
        segment = segmentation.GetSegment(segment_id)
        assert segment.GetName() == segment_result.name
        assert np.allclose(segment.GetColor(), segment_result.color)
        assert get_tag(segment, TAG_QUERY) == segment_result.name
        assert get_tag(segment, TAG_MODEL) == "malenia-demo"
        assert get_tag(segment, TAG_MODEL_VERSION) == "0.1"
        assert float(get_tag(segment, TAG_SCORE)) == pytest.approx(0.87)
        # voxels land on the volume's own grid, through the same parent transform
        assert np.array_equal(segment_array(node, segment_id, volume), segment_result.mask)
    liver = segmentation.GetSegment(imported.segment_ids[0]).GetTerminology()
    assert liver == (
        "Segmentation category and type - DICOM master list~SCT^49755003^Morphologically Altered Structure"
        "~SCT^4147007^Mass~^^~Anatomic codes - DICOM master list~SCT^10200004^Liver~^^"
    )
    lung = terminology_dict(segmentation.GetSegment(imported.segment_ids[1]).GetTerminology())
    assert lung["type"] == ["SCT", "27925004", "Nodule"]
    assert lung["anatomicRegionModifier"] == ["SCT", "24028007", "Right"]
    assert node.GetTransformNodeID() == volume.GetTransformNodeID()
    role = slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()
    assert node.GetNodeReferenceID(role) == volume.GetID()


def test_existing_user_segments_are_kept_and_names_never_clash(scene, volume):
    user = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "mine")
    user.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    user.SetAndObserveTransformNodeID(volume.GetTransformNodeID())
    user_id = user.GetSegmentation().AddEmptySegment("liver_user", "hypodense mass in the liver", [0.0, 1.0, 0.0])
    user_mask = sphere(SHAPE, (6, 10, 8), 5)  # overlaps the generated segment on purpose
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(user_id)
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "user labelmap")
    labelmap.SetAndObserveImageData(vtk.vtkImageData())
    from TextLesionSegLib.mrml.segmentation import labelmap_from_mask

    oriented = labelmap_from_mask(user_mask, volume)
    assert slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(oriented, user, user_id)
    before = segment_array(user, user_id, volume)

    imported = import_result(make_result(volume), volume, segmentation_node=user)
    imported_again = import_result(make_result(volume), volume, segmentation_node=user)
    segmentation = user.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 5
    names = [segmentation.GetNthSegment(i).GetName() for i in range(5)]
    assert names == [
        "hypodense mass in the liver",
        "hypodense mass in the liver (2)",
        "right lung nodule",
        "hypodense mass in the liver (3)",
        "right lung nodule (2)",
    ]
    assert segmentation.GetSegment(user_id).GetColor() == (0.0, 1.0, 0.0)
    assert np.array_equal(segment_array(user, user_id, volume), before)
    assert len(set(imported.segment_ids + imported_again.segment_ids + [user_id])) == 5


def test_a_user_node_under_another_transform_gets_segments_in_the_right_place(scene, volume):
    from test_mrml_support import matrix

    other = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "other")
    shift = np.eye(4)
    shift[:3, 3] = [40.0, -25.0, 7.0]
    other.SetMatrixTransformToParent(matrix(shift))
    user = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "mine, moved")
    user.SetAndObserveTransformNodeID(other.GetID())
    result = make_result(volume)
    imported = import_result(result, volume, segmentation_node=user)
    image = volume_to_image(volume)
    for segment_id, segment_result in zip(imported.segment_ids, result.segments):
        # compare world positions of the voxels (resampling into the volume through two
        # different transforms would blur the comparison by rounding)
        labelmap = slicer.vtkOrientedImageData()
        assert slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(
            user, segment_id, labelmap, True)
        from vtk.util import numpy_support

        dims, extent = labelmap.GetDimensions(), labelmap.GetExtent()
        values = numpy_support.vtk_to_numpy(labelmap.GetPointData().GetScalars()).reshape(dims[::-1])
        ijk = np.argwhere(values > 0)[:, ::-1] + [extent[0], extent[2], extent[4]]
        m = vtk.vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(m)
        to_world = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
        world = ijk @ to_world[:3, :3].T + to_world[:3, 3]
        expected = image.kji_to_ras(np.argwhere(segment_result.mask > 0).astype(float))
        assert len(world) == len(expected)
        assert np.allclose(np.sort(world, axis=0), np.sort(expected, axis=0), atol=1e-6)


def test_a_failed_import_leaves_the_scene_as_it_was(scene, volume):
    user = import_result(make_result(volume), volume).segmentation_node  # the user's node, 2 segments
    nodes_before = scene.GetNumberOfNodes()
    broken = make_result(volume, probability=True)
    broken.segments[1].mask = np.zeros((3, 3, 3), np.uint8)  # wrong grid: the 2nd segment fails
    for target in (user, None):
        with pytest.raises(ValueError, match="does not match"):
            import_result(broken, volume, segmentation_node=target, keep_probability=True)
        assert user.GetSegmentation().GetNumberOfSegments() == 2
        assert scene.GetNumberOfNodes() == nodes_before


def test_subject_hierarchy_places_the_segmentation_under_the_study(scene, volume):
    shnode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    patient = shnode.CreateSubjectItem(shnode.GetSceneItemID(), "Patient 1")
    study = shnode.CreateStudyItem(patient, "CT chest")
    shnode.CreateItem(study, volume)
    imported = import_result(make_result(volume, probability=True), volume)
    assert shnode.GetItemParent(shnode.GetItemByDataNode(imported.segmentation_node)) == study
    for probability_node in imported.probability_nodes.values():
        assert shnode.GetItemParent(shnode.GetItemByDataNode(probability_node)) == study


def test_probability_volumes_are_kept_per_segment(volume):
    result = make_result(volume, probability=True)
    imported = import_result(result, volume, keep_probability=True)
    for segment_id in imported.segment_ids:
        probability_node = find_probability_volume(imported.segmentation_node, segment_id)
        assert probability_node is imported.probability_nodes[segment_id]
        assert probability_node.GetTransformNodeID() == volume.GetTransformNodeID()
        # hidden from the volume selectors, stored as uint8 (a quarter of float32), and exact to 1/255
        assert probability_node.GetHideFromEditors()
        stored = volume_array(probability_node)
        assert stored.dtype == np.uint8
        kept = result.segments[imported.segment_ids.index(segment_id)].probability
        assert np.abs(stored / 255.0 - kept).max() <= 0.5 / 255 + 1e-6
        for threshold in (0.19, 0.5, 0.81):
            assert np.array_equal(probability_at_least(probability_node, threshold), kept >= threshold)
    skipped = import_result(make_result(volume, probability=True), volume, keep_probability=False)
    assert skipped.probability_nodes == {}
    # the user may drop the maps: the segments stay, the live threshold goes
    node = imported.segmentation_node
    assert remove_probability_volumes(node, imported.segment_ids[:1]) == 1
    assert find_probability_volume(node, imported.segment_ids[0]) is None
    assert find_probability_volume(node, imported.segment_ids[1]) is not None
    assert remove_probability_volumes(node) == 1
    assert node.GetSegmentation().GetNumberOfSegments() == 2


def test_labelmap_import_through_segmentations_logic(scene, volume):
    """The user's path from a labelmap (e.g. the engine's NIfTI) into segments, and back."""
    node = import_result(make_result(volume), volume).segmentation_node
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "all")
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportAllSegmentsToLabelmapNode(node, labelmap)
    fresh = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "from labelmap")
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, fresh)
    assert fresh.GetSegmentation().GetNumberOfSegments() == 2


def test_seg_nrrd_round_trip_through_the_storage_node(scene, volume, tmp_path):
    result = make_result(volume)
    node = import_result(result, volume).segmentation_node
    path = tmp_path / "lesions.seg.nrrd"
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.WriteData(node)
    loaded = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "loaded")
    reader = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(reader)
    reader.SetFileName(str(path))
    assert reader.ReadData(loaded)
    segmentation = loaded.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 2
    for index, segment_result in enumerate(result.segments):
        segment = segmentation.GetNthSegment(index)
        assert segment.GetName() == segment_result.name
        assert np.allclose(segment.GetColor(), segment_result.color, atol=1e-3)
        assert segment.GetTerminology() == terminology_string(segment_result.terminology)
        assert get_tag(segment, TAG_MODEL) == "malenia-demo"
    # slicerio (outside Slicer) reads the same names and terminology
    import slicerio

    seg = slicerio.read_segmentation(str(path), skip_voxels=True)
    assert [s["name"] for s in seg["segments"]] == [s.name for s in result.segments]
    assert seg["segments"][1]["terminology"]["type"] == ["SCT", "27925004", "Nodule"]


def test_engine_seg_nrrd_opens_in_the_storage_node(scene, volume, tmp_path):
    """A file written by the engine (E1's outputs.write_seg_nrrd) read by Slicer's storage node."""
    outputs = pytest.importorskip("TextLesionSegLib.pipeline.outputs", reason="pipeline/outputs.py has not landed")
    result = make_result(volume)
    path = tmp_path / "engine.seg.nrrd"
    outputs.write_seg_nrrd(result, path, overwrite=False)
    loaded = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "engine")
    reader = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(reader)
    reader.SetFileName(str(path))
    assert reader.ReadData(loaded)
    segmentation = loaded.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(result.segments)
    for index, segment_result in enumerate(result.segments):
        segment = segmentation.GetNthSegment(index)
        assert segment.GetName() == segment_result.name
        assert np.allclose(segment.GetColor(), segment_result.color, atol=1e-3)
        term = terminology_dict(segment.GetTerminology())
        assert term["type"] == terminology_dict(terminology_string(segment_result.terminology))["type"]
        # the engine's file sits on the input's world grid: voxels match the volume's
        exported = segment_array(loaded, segmentation.GetNthSegmentID(index), volume)
        assert np.array_equal(exported > 0, segment_result.mask > 0)


def test_a_not_found_answer_is_an_empty_segment_that_says_why(volume):
    """A description whose lesion is not in the scan: the segment exists (the user sees the
    answer), holds no voxel, and carries the reason as a tag; found segments carry none."""
    result = make_result(volume)
    result.segments[1].mask = np.zeros_like(result.segments[1].mask)
    result.segments[1].selection = {"found": False, "message": "not found: best candidate (left, ...) scores 0.05 < 0.40"}
    imported = import_result(result, volume)
    segmentation = imported.segmentation_node.GetSegmentation()
    found, missing = (segmentation.GetSegment(i) for i in imported.segment_ids)
    assert get_tag(missing, TAG_NOT_FOUND).startswith("not found: best candidate")
    assert get_tag(found, TAG_NOT_FOUND) is None
    assert not segment_array(imported.segmentation_node, imported.segment_ids[1], volume).any()
