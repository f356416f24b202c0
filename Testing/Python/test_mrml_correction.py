"""Interactive correction with real MRML (slicer-core): keep/remove the lesion under a click
(undo through vtkSegmentationHistory), live re-threshold, ROI crop/uncrop, the lesion table."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from test_mrml_support import add_volume, oblique_ijk_to_ras, rigid_transform, scene, sphere  # noqa: F401

slicer = pytest.importorskip("slicer")

from TextLesionSegLib.mrml.correction import lesion_under_point, rethreshold_segment, rethreshold_segments, segment_mask  # noqa: E402
from TextLesionSegLib.mrml.roi import crop_box, crop_image, roi_corners_ras, uncrop_result  # noqa: E402
from TextLesionSegLib.mrml.segmentation import import_result  # noqa: E402
from TextLesionSegLib.mrml.table import COLUMNS, fill_table_node, lesion_rows, table_cells, write_csv  # noqa: E402
from TextLesionSegLib.mrml.volumes import volume_to_image  # noqa: E402
from TextLesionSegLib.pipeline.result import LesionMeasurement, Result, SegmentResult  # noqa: E402
from TextLesionSegLib.query.types import LesionQuery  # noqa: E402

SHAPE = (14, 22, 26)
CENTRE_A = (4, 6, 6)
CENTRE_B = (9, 15, 19)


@pytest.fixture
def two_lesions(scene):
    """A transformed oblique volume and one segment made of two separate balls."""
    volume = add_volume(scene, np.zeros(SHAPE, np.int16), oblique_ijk_to_ras(), transform=rigid_transform())
    mask = sphere(SHAPE, CENTRE_A, 3) | sphere(SHAPE, CENTRE_B, 3)
    probability = np.clip(1.0 - np.minimum(
        np.sqrt(sum((g - c) ** 2 for g, c in zip(np.indices(SHAPE), CENTRE_A))),
        np.sqrt(sum((g - c) ** 2 for g, c in zip(np.indices(SHAPE), CENTRE_B))),
    ) / 6.0, 0, 1).astype(np.float32)
    image = volume_to_image(volume)
    result = Result(image=image, model_name="m", model_version="1", segments=[
        SegmentResult(name="two lesions", mask=mask, query=LesionQuery(text="two lesions"), probability=probability)
    ])
    imported = import_result(result, volume)
    return volume, image, imported


def _world(image, kji):
    return tuple(image.kji_to_ras(np.array(kji, dtype=float)))


@pytest.mark.parametrize("mode", ["keep", "remove"])
def test_lesion_under_click_with_undo(two_lesions, mode):
    volume, image, imported = two_lesions
    node, segment_id = imported.segmentation_node, imported.segment_ids[0]
    before, _ = segment_mask(node, segment_id)
    history = slicer.vtkSegmentationHistory()
    history.SetSegmentation(node.GetSegmentation())
    assert lesion_under_point(node, segment_id, _world(image, CENTRE_A), mode, history=history)
    after, _ = segment_mask(node, segment_id)
    a_only = sphere(SHAPE, CENTRE_A, 3)
    b_only = sphere(SHAPE, CENTRE_B, 3)
    # the segment's labelmap may be cropped to its extent: compare on the volume grid via counts
    expected = a_only.sum() if mode == "keep" else b_only.sum()
    assert after.sum() == expected
    assert before.sum() == a_only.sum() + b_only.sum()
    # undo restores both lesions
    assert history.RestorePreviousState()
    restored, _ = segment_mask(node, segment_id)
    assert restored.sum() == before.sum()


def test_keep_on_a_weak_lesion_recovers_it_from_the_probability_map(two_lesions):
    volume, image, imported = two_lesions
    node, segment_id = imported.segmentation_node, imported.segment_ids[0]
    rethreshold_segment(node, segment_id, 1.01)  # above every probability: the segment is empty
    assert segment_mask(node, segment_id)[0].sum() == 0
    assert lesion_under_point(node, segment_id, _world(image, CENTRE_B), "keep")
    kept, _ = segment_mask(node, segment_id)
    from TextLesionSegLib.mrml.volumes import find_probability_volume, probability_at_least
    from scipy import ndimage

    weak = probability_at_least(find_probability_volume(node, segment_id), 0.25)
    components, _ = ndimage.label(weak, structure=np.ones((3, 3, 3)))
    expected = components == components[CENTRE_B]
    assert kept.sum() == expected.sum() > 0
    assert not lesion_under_point(node, segment_id, _world(image, (0, 21, 0)), "remove")


def test_correction_on_a_user_node_under_another_transform(scene, two_lesions):
    """Probability volume (volume's transform) and segmentation (another one) still line up."""
    from test_mrml_support import matrix

    volume, image, imported = two_lesions
    other = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "other")
    shift = np.eye(4)
    shift[:3, 3] = [30.0, 12.0, -9.0]
    other.SetMatrixTransformToParent(matrix(shift))
    node, segment_id = imported.segmentation_node, imported.segment_ids[0]
    node.SetAndObserveTransformNodeID(other.GetID())  # the user moved the segmentation
    count = rethreshold_segment(node, segment_id, 0.5)
    mask, labelmap = segment_mask(node, segment_id)
    assert mask.sum() == count
    # a click on lesion B's world position still finds lesion B
    assert lesion_under_point(node, segment_id, _world(image, CENTRE_B), "remove")
    assert 0 < segment_mask(node, segment_id)[0].sum() < count


def test_click_outside_any_lesion_changes_nothing(two_lesions):
    volume, image, imported = two_lesions
    node, segment_id = imported.segmentation_node, imported.segment_ids[0]
    before, _ = segment_mask(node, segment_id)
    assert not lesion_under_point(node, segment_id, _world(image, (0, 21, 0)), "remove")
    assert not lesion_under_point(node, segment_id, (1e4, 1e4, 1e4), "keep")
    after, _ = segment_mask(node, segment_id)
    assert np.array_equal(before, after)
    with pytest.raises(ValueError):
        lesion_under_point(node, segment_id, (0, 0, 0), "grow")


def test_live_rethreshold_uses_the_kept_probability(two_lesions):
    volume, image, imported = two_lesions
    node, segment_id = imported.segmentation_node, imported.segment_ids[0]
    counts = [rethreshold_segment(node, segment_id, t) for t in (0.3, 0.5, 0.8)]
    assert counts[0] > counts[1] > counts[2] > 0
    mask, _ = segment_mask(node, segment_id)
    assert mask.sum() == counts[2]
    assert list(rethreshold_segments(node, [segment_id], 0.3).changed) == [segment_id]
    assert segment_mask(node, segment_id)[0].sum() == counts[0]
    other = node.GetSegmentation().AddEmptySegment("user")
    with pytest.raises(ValueError, match="no probability volume"):
        rethreshold_segment(node, other, 0.5)


def test_roi_crop_and_uncrop_keep_world_positions(scene, two_lesions):
    volume, image, _ = two_lesions
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "roi")
    centre = _world(image, CENTRE_B)
    roi.SetCenter(centre)
    roi.SetSize(15.0, 15.0, 15.0)
    box = crop_box(image, roi_corners_ras(roi))
    cropped = crop_image(image, box)
    assert all(s.stop - s.start < n for s, n in zip(box, SHAPE))
    local = np.array(CENTRE_B) - np.array([s.start for s in box])
    assert np.allclose(cropped.kji_to_ras(local), centre, atol=1e-6)
    result = Result(image=cropped, model_name="m", model_version="1", segments=[
        SegmentResult(name="x", mask=np.ones(cropped.array.shape, np.uint8))
    ])
    full = uncrop_result(result, image, box)
    assert full.segments[0].mask.shape == SHAPE
    assert full.segments[0].mask.sum() == cropped.array.size
    assert full.segments[0].mask[tuple(CENTRE_B)] == 1 and full.segments[0].mask[0, 0, 0] == 0


def test_roi_outside_the_volume_is_one_clear_error(scene, two_lesions):
    from TextLesionSegLib.errors import InputError

    _, image, _ = two_lesions
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "far")
    roi.SetCenter(5000.0, 5000.0, 5000.0)
    roi.SetSize(10.0, 10.0, 10.0)
    with pytest.raises(InputError, match="does not overlap"):
        crop_box(image, roi_corners_ras(roi))


def test_lesion_table_rows_csv_and_table_node(scene, tmp_path):
    image = volume_to_image(add_volume(scene, np.zeros((3, 3, 3), np.int16), np.eye(4)))
    lesion = LesionMeasurement(1, 100, 2.345, 21.04, 13.3, 25.0, 38.2, 9.0, (1.0, -2.5, 30.0))
    result = Result(image=image, model_name="m", model_version="1", segments=[
        SegmentResult(name="liver mass", mask=np.zeros((3, 3, 3), np.uint8), query=LesionQuery(text="liver mass"),
                      lesions=[lesion], lesion_type="HCC", score=0.91,
                      predicted_attributes={"density": ("hypodense", 0.8)}),
        SegmentResult(name="not found", mask=np.zeros((3, 3, 3), np.uint8),
                      selection={"found": False, "message": "not found: best candidate scores 0.10 < 0.40"}),
    ])
    rows = lesion_rows(result, ["liver mass (2)", "not found"])
    assert rows[0]["segment"] == "liver mass (2)" and rows[0]["volume_ml"] == 2.35
    assert rows[0]["attributes"] == "density: hypodense" and rows[0]["centroid_ras"] == (1.0, -2.5, 30.0)
    assert rows[1]["volume_ml"] == "" and rows[0]["note"] == ""
    assert rows[1]["note"].startswith("not found: best candidate")  # the panel says why it is empty
    assert table_cells(rows[0])[:4] == ["liver mass", "liver mass (2)", "1", "2.35"]
    path = write_csv(rows, tmp_path / "lesions.csv")
    with path.open(encoding="utf-8") as handle:
        read = list(csv.reader(handle))
    assert read[0] == [header for _, header in COLUMNS]
    centroid = [header for _, header in COLUMNS].index("Centroid RAS (mm)")
    assert read[1][0] == "liver mass" and read[1][3] == "2.35" and read[1][centroid] == "1 -2.5 30"
    assert read[2][-1].startswith("not found")
    table_node = fill_table_node(scene.AddNewNodeByClass("vtkMRMLTableNode", "lesions"), rows)
    assert table_node.GetNumberOfRows() == 2
    assert table_node.GetCellText(0, 1) == "liver mass (2)"
