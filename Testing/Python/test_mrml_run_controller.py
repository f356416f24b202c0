"""The panel's Qt-free run controller with a real worker process and real MRML (slicer-core):
start and progress, preload then Apply, cancel, a crashed worker, "not found"."""

from __future__ import annotations

import time

import numpy as np
import pytest

from test_mrml_support import add_volume, oblique_ijk_to_ras, scene  # noqa: F401

slicer = pytest.importorskip("slicer")
testing = pytest.importorskip("TextLesionSegLib.worker.testing")

from TextLesionSegLib.errors import InputError  # noqa: E402
from TextLesionSegLib.mrml.run_controller import ComputeStatus, Failed, Finished, Progress, RunController  # noqa: E402
from TextLesionSegLib.worker.client import WorkerClient  # noqa: E402

SHAPE = (24, 28, 32)
CENTRE = (12, 14, 16)


def ct_volume(scene, with_lesion: bool = True):
    """A CT-like volume (water body in air), with or without one bright ball."""
    k, j, i = np.indices(SHAPE)
    ct = np.full(SHAPE, -1000, np.int16)
    ct[2:-2, 2:-2, 2:-2] = 20
    if with_lesion:
        ct[(k - CENTRE[0]) ** 2 + (j - CENTRE[1]) ** 2 + (i - CENTRE[2]) ** 2 <= 16] = 400
    return add_volume(scene, ct, oblique_ijk_to_ras(spacing=(1.0, 1.0, 1.0)))


@pytest.fixture
def registry(tmp_path):
    return testing.write_test_registry(tmp_path / "registry", {
        "tiny-demo": {}, "tiny-slow": {"sleep_per_window": 0.5}, "tiny-crash": {"crash_after_windows": 0}})


@pytest.fixture
def controller(registry, tmp_path):
    made = []

    def factory():
        made.append(WorkerClient(env={"TEXTLESIONSEG_EXTRA_REGISTRY": str(registry)}, log_path=tmp_path / "worker.log"))
        return made[-1]

    run = RunController(factory)
    yield run
    run.stop()


def drain(controller, until, timeout: float = 120.0) -> list:
    """Poll as the panel's timer does until an event of type ``until`` arrives."""
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += controller.poll()
        if any(isinstance(event, until) for event in events):
            return events
        time.sleep(0.05)
    raise AssertionError(f"no {until} within {timeout} s; got {events}")


def scene_node_ids(scene) -> set:
    return {scene.GetNthNode(n).GetID() for n in range(scene.GetNumberOfNodes())}


def test_start_reports_progress_and_adds_segments_and_a_table(scene, controller):
    volume = ct_volume(scene)
    controller.start(volume, "bright ball in the liver", "tiny-demo", {"device": "cpu"})
    assert controller.busy
    work_dir = controller._context.work_dir
    events = drain(controller, Finished)
    assert any(isinstance(event, Progress) for event in events)
    finished = next(event for event in events if isinstance(event, Finished))
    segmentation = finished.imported.segmentation_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 1 and not finished.not_found
    assert finished.table_node.GetNumberOfRows() == len(finished.rows) >= 1
    assert finished.summary().startswith("Done: 1 segment(s) added.")
    assert not controller.busy and not work_dir.exists()
    with pytest.raises(InputError):  # bad input: one clear error, nothing started
        controller.start(volume, "  \n ", "tiny-demo", {"device": "cpu"})
    assert not controller.busy


def test_preload_while_typing_then_apply_loads_the_model_once(scene, controller):
    assert controller.preload("tiny-demo", "cpu")
    volume = ct_volume(scene)
    controller.start(volume, "bright ball in the liver", "tiny-demo", {"device": "cpu"})  # during the preload
    events = drain(controller, Finished)
    statuses = [event for event in events if isinstance(event, ComputeStatus)]
    assert statuses and statuses[0].compute["choices"][0] == "auto" and statuses[0].compute["choices"][-1] == "cpu"
    assert controller.compute == statuses[0].compute
    status = controller.client.request({"type": "status"}, timeout=60)
    assert status["load_counts"] == {"tiny-demo@cpu": 1}  # Apply reused the preloaded model
    assert controller.request_compute_status()
    assert drain(controller, ComputeStatus)


def test_cancel_mid_run_adds_nothing_and_the_next_run_works(scene, controller):
    volume = ct_volume(scene)
    before = scene_node_ids(scene)
    controller.start(volume, "bright ball in the liver", "tiny-slow", {"device": "cpu"})
    work_dir = controller._context.work_dir
    drain(controller, Progress)
    started = time.monotonic()
    controller.cancel()
    assert time.monotonic() - started < 5
    assert not controller.busy and not work_dir.exists()
    time.sleep(0.3)
    assert not any(isinstance(event, (Finished, Failed)) for event in controller.poll())  # nothing late
    assert scene_node_ids(scene) == before
    controller.start(volume, "bright ball in the liver", "tiny-demo", {"device": "cpu"})
    assert drain(controller, Finished)


def test_a_crashed_worker_is_one_failure_naming_the_log_and_the_next_run_restarts_it(scene, controller):
    volume = ct_volume(scene)
    before = scene_node_ids(scene)
    controller.start(volume, "bright ball in the liver", "tiny-crash", {"device": "cpu"})
    failed = next(event for event in drain(controller, Failed) if isinstance(event, Failed))
    assert failed.crashed and "\n" not in failed.message and failed.log_path.endswith("worker.log")
    assert not controller.busy and scene_node_ids(scene) == before
    controller.start(volume, "bright ball in the liver", "tiny-demo", {"device": "cpu"})
    assert drain(controller, Finished)
    assert controller.client.starts == 2


def test_a_lesion_that_is_not_there_is_an_answer_not_an_error(scene, controller):
    volume = ct_volume(scene, with_lesion=False)
    controller.start(volume, "bright ball in the liver", "tiny-demo", {"device": "cpu"})
    finished = next(event for event in drain(controller, Finished) if isinstance(event, Finished))
    assert finished.not_found == ["bright ball in the liver"]
    assert "Not found in this scan: bright ball in the liver" in finished.summary()
    segment_id = finished.imported.segment_ids[0]
    from test_mrml_support import segment_array

    assert not segment_array(finished.imported.segmentation_node, segment_id, volume).any()
    notes = [row["note"] for row in finished.rows]
    assert notes and all(note.startswith("not found") for note in notes), notes


@pytest.mark.slow
def test_a_click_runs_in_the_warm_worker_and_replaces_only_its_segment(scene, controller):
    from TextLesionSegLib.mrml.click_correction import ClickCorrection
    from TextLesionSegLib.mrml.run_controller import Refined
    from TextLesionSegLib.mrml.volumes import volume_to_image

    volume = ct_volume(scene)
    controller.start(volume, "bright ball in the liver", "tiny-demo", {"device": "cpu"})
    finished = next(e for e in drain(controller, Finished) if isinstance(e, Finished))
    node = finished.imported.segmentation_node
    ball_id = finished.imported.segment_ids[0]
    other_id = node.GetSegmentation().AddEmptySegment("other")
    correction = ClickCorrection(node, ball_id, volume)
    before = correction.current_mask()
    assert before.sum() > 0
    centre_ras = tuple(volume_to_image(volume).kji_to_ras(np.array(CENTRE, float)))
    correction.add_click(centre_ras, False)  # "−" on the ball: the model removes it
    controller.start_refine(correction, "tiny-demo", {"device": "cpu"})
    assert controller.busy
    refined = next(e for e in drain(controller, Refined) if isinstance(e, Refined))
    assert refined.correction is correction and not controller.busy
    assert correction.current_mask().sum() == 0
    assert ClickCorrection(node, other_id, volume).current_mask().sum() == 0  # untouched
    assert correction.undo() and np.array_equal(correction.current_mask(), before) and correction.clicks == []
    correction.add_click(centre_ras, True)  # "+" on the ball, in the same warm worker: the ball again
    controller.start_refine(correction, "tiny-demo", {"device": "cpu"})
    drain(controller, Refined)
    after = correction.current_mask()
    assert 2 * (after & before).sum() / (after.sum() + before.sum()) > 0.9
    correction.close()
    assert correction._input is None
