"""Corrections never damage another segment (issue 17), with real MRML (slicer-core).

Segments share one labelmap layer after a ``.seg.nrrd`` save and reload; every correction
(keep, remove, re-threshold, also onto another segment's voxels) is applied to one segment, and
every other segment's voxels are compared on the volume grid before and after.
"""

from __future__ import annotations

import numpy as np
import pytest

from test_mrml_support import (add_volume, oblique_ijk_to_ras, add_user_segment_and_share_layers, rigid_transform,  # noqa: F401
                               scene, segment_array, sphere)

slicer = pytest.importorskip("slicer")

from TextLesionSegLib.mrml.correction import (  # noqa: E402
    SegmentEditedError,
    lesion_under_point,
    rethreshold_segment,
    rethreshold_segments,
)
from TextLesionSegLib.mrml.segment_voxels import segment_mask, was_edited, write_segment_mask  # noqa: E402
from TextLesionSegLib.mrml.segmentation import import_result  # noqa: E402
from TextLesionSegLib.mrml.volumes import volume_to_image  # noqa: E402
from TextLesionSegLib.pipeline.result import Result, SegmentResult  # noqa: E402
from TextLesionSegLib.query.types import LesionQuery  # noqa: E402

SHAPE = (16, 24, 28)
A1, A2 = (4, 6, 6), (11, 7, 8)  # segment A: two separate balls
B = (8, 16, 18)  # segment B, near enough that A's map at a low threshold spills onto it
USER = (12, 19, 5)  # a segment the user drew


def _distance(centre) -> np.ndarray:
    return np.sqrt(sum((g - c) ** 2 for g, c in zip(np.indices(SHAPE), centre)))


def _probability(*centres, reach: float) -> np.ndarray:
    return np.clip(1.0 - np.min([_distance(c) for c in centres], axis=0) / reach, 0, 1).astype(np.float32)


@pytest.fixture
def shared(scene, tmp_path):
    """Generated segments A, B and a user segment, saved and reloaded so they share a layer."""
    volume = add_volume(scene, np.zeros(SHAPE, np.int16), oblique_ijk_to_ras(), transform=rigid_transform())
    image = volume_to_image(volume)
    result = Result(image=image, model_name="m", model_version="1", segments=[
        SegmentResult(name="A", mask=sphere(SHAPE, A1, 3) | sphere(SHAPE, A2, 3), query=LesionQuery(text="A"),
                      probability=_probability(A1, A2, reach=14.0)),
        SegmentResult(name="B", mask=sphere(SHAPE, B, 3), query=LesionQuery(text="B"),
                      probability=_probability(B, reach=6.0)),
    ])
    imported = import_result(result, volume)
    node = imported.segmentation_node
    ids = add_user_segment_and_share_layers(scene, node, volume, sphere(SHAPE, USER, 2), tmp_path)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 3
    assert segmentation.GetNumberOfLayers() < 3, "precondition: segments share a labelmap layer"
    return volume, image, node, ids


def _snapshot(node, ids, volume) -> dict[str, np.ndarray]:
    return {name: segment_array(node, sid, volume) > 0 for name, sid in ids.items()}


def _assert_others_unchanged(node, ids, volume, before, changed: str) -> None:
    after = _snapshot(node, ids, volume)
    for name in ids:
        if name != changed:
            assert np.array_equal(after[name], before[name]), f"segment {name} changed by a correction of {changed}"


def _world(image, kji):
    return tuple(image.kji_to_ras(np.array(kji, dtype=float)))


def test_reading_a_segment_in_a_shared_layer_gives_only_its_voxels(shared):
    volume, _, node, ids = shared
    for name, expected in (("A", sphere(SHAPE, A1, 3) | sphere(SHAPE, A2, 3)), ("B", sphere(SHAPE, B, 3)),
                           ("user", sphere(SHAPE, USER, 2))):
        mask, _ = segment_mask(node, ids[name])
        assert mask.sum() == expected.sum()


def test_every_correction_of_one_segment_leaves_the_others_unchanged(shared):
    volume, image, node, ids = shared
    original = _snapshot(node, ids, volume)

    # remove the lesion under a click (the old code turned A into a copy of B here)
    assert lesion_under_point(node, ids["A"], _world(image, A1), "remove")
    _assert_others_unchanged(node, ids, volume, original, "A")
    assert np.array_equal(_snapshot(node, ids, volume)["A"], sphere(SHAPE, A2, 3) > 0)

    # keep the lesion under a click
    assert lesion_under_point(node, ids["A"], _world(image, A2), "keep")
    _assert_others_unchanged(node, ids, volume, original, "A")

    # a click on B's voxels is not a click on A: nothing changes
    assert not lesion_under_point(node, ids["A"], _world(image, B), "remove")

    # re-threshold, high and then low enough to cover B's and the user's voxels
    for threshold in (0.8, 0.5, 0.01):
        count = rethreshold_segment(node, ids["A"], threshold, overwrite_edited=True)
        _assert_others_unchanged(node, ids, volume, original, "A")
        assert segment_array(node, ids["A"], volume).astype(bool).sum() == count
    spilled = _snapshot(node, ids, volume)["A"]
    assert spilled[B] and spilled[USER], "the low threshold really reached the other segments' voxels"

    # keep on a weak lesion recovered from the probability map
    rethreshold_segment(node, ids["A"], 1.01, overwrite_edited=True)
    assert lesion_under_point(node, ids["A"], _world(image, A1), "keep")
    _assert_others_unchanged(node, ids, volume, original, "A")

    # and the same for B: its own re-threshold leaves A (as now corrected) and the user's alone
    before_b = _snapshot(node, ids, volume)
    rethreshold_segment(node, ids["B"], 0.2)
    _assert_others_unchanged(node, ids, volume, before_b, "B")


def test_rethreshold_acts_only_on_the_given_segments_and_spares_edits(shared):
    volume, image, node, ids = shared
    assert not was_edited(node, ids["A"]) and not was_edited(node, ids["B"])  # digests survive the reload
    assert was_edited(node, ids["user"])  # no digest: never ours to overwrite
    before = _snapshot(node, ids, volume)

    outcome = rethreshold_segments(node, [ids["B"]], 0.3)
    assert list(outcome.changed) == [ids["B"]] and not outcome.edited
    _assert_others_unchanged(node, ids, volume, before, "B")
    assert not was_edited(node, ids["B"])  # our own write is not an edit

    # the user edits A (keep/remove, or any Segment Editor effect: a replace-mode write)
    assert lesion_under_point(node, ids["A"], _world(image, A1), "remove")
    edited = _snapshot(node, ids, volume)["A"]
    assert was_edited(node, ids["A"])
    outcome = rethreshold_segments(node, [ids["A"], ids["B"], ids["user"]], 0.6)
    assert outcome.edited == [ids["A"]] and outcome.without_map == [ids["user"]]
    assert np.array_equal(_snapshot(node, ids, volume)["A"], edited), "an edited segment was re-thresholded"
    with pytest.raises(SegmentEditedError):
        rethreshold_segment(node, ids["A"], 0.6)

    # a Segment Editor style edit of B: one voxel painted through Slicer's own write
    mask, labelmap = segment_mask(node, ids["B"])
    mask = mask.copy()
    mask.flat[0] = 1
    write_segment_mask(node, ids["B"], mask, labelmap)
    assert was_edited(node, ids["B"])

    # asked explicitly, the edit is overwritten
    outcome = rethreshold_segments(node, [ids["A"]], 0.6, overwrite_edited=True)
    assert list(outcome.changed) == [ids["A"]] and not was_edited(node, ids["A"])


def test_one_undo_state_restores_every_segment(shared):
    volume, image, node, ids = shared
    before = _snapshot(node, ids, volume)
    history = slicer.vtkSegmentationHistory()
    history.SetSegmentation(node.GetSegmentation())
    rethreshold_segments(node, [ids["A"]], 0.01, history=history)
    assert not np.array_equal(_snapshot(node, ids, volume)["A"], before["A"])
    assert history.RestorePreviousState()
    after = _snapshot(node, ids, volume)
    for name in ids:
        assert np.array_equal(after[name], before[name])


def test_accept_is_saved_and_reject_removes_only_that_segment(shared, tmp_path):
    from TextLesionSegLib.mrml.review import ACCEPTED, accept_segment, reject_segment, review_state

    volume, _, node, ids = shared
    before = _snapshot(node, ids, volume)
    accept_segment(node, ids["B"])
    history = slicer.vtkSegmentationHistory()
    history.SetSegmentation(node.GetSegmentation())
    history.SaveState()  # what the widget does before a reject
    reject_segment(node, ids["A"])
    assert node.GetSegmentation().GetSegment(ids["A"]) is None
    remaining = {name: sid for name, sid in ids.items() if name != "A"}
    after = _snapshot(node, remaining, volume)
    assert all(np.array_equal(after[name], before[name]) for name in remaining)
    with pytest.raises(ValueError):
        reject_segment(node, ids["A"])
    assert history.RestorePreviousState()  # Ctrl+Z brings the rejected segment back
    assert np.array_equal(segment_array(node, ids["A"], volume) > 0, before["A"])
    # the decision survives a save and reload
    storage = slicer.vtkMRMLSegmentationStorageNode()
    node.GetScene().AddNode(storage)
    storage.SetFileName(str(tmp_path / "reviewed.seg.nrrd"))
    assert storage.WriteData(node) and storage.ReadData(node)
    assert review_state(node, ids["B"]) == ACCEPTED and review_state(node, ids["A"]) == ""


def test_reject_removes_only_the_rows_lesion_in_a_segment_of_several(shared):
    """A has two lesions: rejecting the row of the second (its centre in RAS) removes that lesion
    only; rejecting A's last lesion removes the segment; B and the user's segment never change."""
    from TextLesionSegLib.mrml.review import reject_lesion

    volume, image, node, ids = shared
    before = _snapshot(node, ids, volume)
    centre_ras = _world(image, A2)
    assert reject_lesion(node, ids["A"], tuple(centre_ras)) == "lesion"
    after = _snapshot(node, ids, volume)
    assert np.array_equal(after["A"], before["A"] & sphere(SHAPE, A1, 3))
    assert all(np.array_equal(after[name], before[name]) for name in ids if name != "A")
    assert reject_lesion(node, ids["A"], tuple(centre_ras)) == "segment"  # the nearest, and last, lesion
    assert node.GetSegmentation().GetSegment(ids["A"]) is None
    with pytest.raises(ValueError):
        reject_lesion(node, ids["A"], tuple(centre_ras))
