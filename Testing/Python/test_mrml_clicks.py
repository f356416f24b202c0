"""Correcting a segment by clicking, with real MRML (slicer-core): each click replaces only that
segment's voxels (others unchanged, also in a shared layer after a save and reload), and undo
goes back one click at a time."""

from __future__ import annotations

import numpy as np
import pytest

from test_mrml_support import (add_volume, oblique_ijk_to_ras, add_user_segment_and_share_layers, rigid_transform,  # noqa: F401
                               scene, segment_array, sphere)

slicer = pytest.importorskip("slicer")

from TextLesionSegLib.models.interactive.region_grow import RegionGrowSegmenter  # noqa: E402
from TextLesionSegLib.mrml.click_correction import ClickCorrection  # noqa: E402
from TextLesionSegLib.mrml.segmentation import import_result  # noqa: E402
from TextLesionSegLib.mrml.volumes import volume_to_image  # noqa: E402
from TextLesionSegLib.pipeline.clicks import refine_lesion  # noqa: E402
from TextLesionSegLib.pipeline.result import Result, SegmentResult  # noqa: E402
from TextLesionSegLib.query.types import LesionQuery  # noqa: E402

SHAPE = (24, 32, 32)
BALL1, BALL2 = (8, 10, 10), (16, 22, 22)
USER = (4, 26, 5)


def _dice(a, b) -> float:
    return 2.0 * float(np.sum((a > 0) & (b > 0))) / max(1, int(np.sum(a > 0)) + int(np.sum(b > 0)))


@pytest.fixture
def scene_with_segments(scene, tmp_path):
    """CT with two bright balls; segment A under-covers ball 1, B is ball 2, plus a user segment;
    saved and reloaded so the segments share a labelmap layer."""
    ct = np.full(SHAPE, 20, np.int16)
    ct[:, :, :3] = -1000
    ct[sphere(SHAPE, BALL1, 5) > 0] = 180
    ct[sphere(SHAPE, BALL2, 4) > 0] = 180
    volume = add_volume(scene, ct, oblique_ijk_to_ras(spacing=(1.5, 1.5, 2.0)), transform=rigid_transform())
    image = volume_to_image(volume)
    result = Result(image=image, model_name="m", model_version="1", segments=[
        SegmentResult(name="A", mask=sphere(SHAPE, (9, 11, 11), 2), query=LesionQuery(text="A")),
        SegmentResult(name="B", mask=sphere(SHAPE, BALL2, 4), query=LesionQuery(text="B")),
    ])
    node = import_result(result, volume).segmentation_node
    ids = add_user_segment_and_share_layers(scene, node, volume, sphere(SHAPE, USER, 2), tmp_path)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfLayers() < 3, "precondition: segments share a labelmap layer"
    return volume, image, node, ids


def _click(correction, image, kji, positive, tmp_path):
    correction.add_click(tuple(image.kji_to_ras(np.array(kji, float))), positive)
    fields = correction.request_fields(tmp_path)
    result = refine_lesion(image, fields["include_points"], fields["exclude_points"], RegionGrowSegmenter(),
                           prior=fields["prior_path"])
    correction.apply(result.segments[0].mask)


def test_clicks_replace_only_their_segment_and_undo_one_click_at_a_time(scene_with_segments, tmp_path):
    volume, image, node, ids = scene_with_segments
    snapshot = {name: segment_array(node, sid, volume) > 0 for name, sid in ids.items()}
    ball1, ball2 = sphere(SHAPE, BALL1, 5) > 0, sphere(SHAPE, BALL2, 4) > 0
    correction = ClickCorrection(node, ids["A"], volume)
    np.testing.assert_array_equal(correction.current_mask() > 0, snapshot["A"])

    _click(correction, image, BALL1, True, tmp_path)  # "+" in the lesion: the whole ball
    after_one = segment_array(node, ids["A"], volume) > 0
    assert _dice(after_one, ball1) > 0.85 and not (after_one & ball2).any()
    _click(correction, image, BALL2, True, tmp_path)  # "+" on B's ball: A grows onto it, B keeps its voxels
    after_two = segment_array(node, ids["A"], volume) > 0
    assert _dice(after_two, ball1 | ball2) > 0.85
    for name in ("B", "user"):
        np.testing.assert_array_equal(segment_array(node, ids[name], volume) > 0, snapshot[name])
    assert [positive for _, positive in correction.clicks] == [True, True]

    assert correction.undo()  # one click back: ball 1 only, and the second click is forgotten
    np.testing.assert_array_equal(segment_array(node, ids["A"], volume) > 0, after_one)
    assert len(correction.clicks) == 1
    _click(correction, image, BALL2, False, tmp_path)  # "−" on the other ball: nothing of it joins A
    assert not ((segment_array(node, ids["A"], volume) > 0) & ball2).any()
    assert correction.undo() and correction.undo()  # back to the text model's voxels
    np.testing.assert_array_equal(segment_array(node, ids["A"], volume) > 0, snapshot["A"])
    assert not correction.undo() and not correction.can_undo and correction.clicks == []
    for name in ("B", "user"):
        np.testing.assert_array_equal(segment_array(node, ids[name], volume) > 0, snapshot[name])


def test_a_failed_run_forgets_its_click(scene_with_segments):
    volume, image, node, ids = scene_with_segments
    correction = ClickCorrection(node, ids["A"], volume)
    correction.add_click((1.0, 2.0, 3.0), True)
    correction.discard_click()
    assert correction.clicks == [] and not correction.can_undo
