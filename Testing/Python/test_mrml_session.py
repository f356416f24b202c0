"""The Slicer module's run path without Qt: volume node -> worker request -> a real worker run
(E8's tiny test segmenter, in-process and as a subprocess) -> segments and lesion rows."""

from __future__ import annotations

import numpy as np
import pytest

from test_mrml_support import add_volume, oblique_ijk_to_ras, rigid_transform, scene  # noqa: F401

slicer = pytest.importorskip("slicer")

from TextLesionSegLib.errors import InputError  # noqa: E402
from TextLesionSegLib.mrml.segmentation import TAG_MODEL, get_tag  # noqa: E402
from TextLesionSegLib.mrml.session import clean_texts, discard_run, finish_run, prepare_run, progress_state  # noqa: E402
from TextLesionSegLib.mrml.volumes import find_probability_volume  # noqa: E402

testing = pytest.importorskip("TextLesionSegLib.worker.testing", reason="E8's worker test model has not landed")

SHAPE = (24, 28, 32)
CENTRE = (12, 14, 16)


def phantom(scene):
    """A CT-like volume (air around a water body) with one bright ball, oblique + transformed."""
    k, j, i = np.indices(SHAPE)
    ct = np.full(SHAPE, -1000, np.int16)
    ct[2:-2, 2:-2, 2:-2] = 20
    ct[(k - CENTRE[0]) ** 2 + (j - CENTRE[1]) ** 2 + (i - CENTRE[2]) ** 2 <= 16] = 400
    return add_volume(scene, ct, oblique_ijk_to_ras(spacing=(1.0, 1.0, 1.0)), transform=rigid_transform())


@pytest.fixture
def tiny_registry(tmp_path, monkeypatch):
    path = testing.write_test_registry(tmp_path / "registry", {"tiny-demo": {}})
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(path))
    return path


def test_texts_and_inputs_are_checked(scene, tmp_path):
    assert clean_texts("  liver mass \n\n right lung nodule\n") == ["liver mass", "right lung nodule"]
    volume = phantom(scene)
    with pytest.raises(InputError, match="description"):
        prepare_run(volume, " \n ", "tiny-demo", work_dir=tmp_path)
    with pytest.raises(InputError, match="volume"):
        prepare_run(None, "mass", "tiny-demo", work_dir=tmp_path)
    assert progress_state({"stage": "inference", "fraction": 0.5}) == ("Segmenting", 50)
    assert progress_state({"stage": "inference 1/2", "fraction": 1.0}) == ("Segmenting 1/2", 100)
    assert progress_state({"stage": "preprocessing", "fraction": None}) == ("Preprocessing", None)
    assert progress_state({"stage": "Loading model", "fraction": None}) == ("Loading model", None)


def test_whole_run_in_process_lands_on_the_volume(scene, tmp_path, tiny_registry):
    from TextLesionSegLib.worker.server import run_request_sync

    volume = phantom(scene)
    request, context = prepare_run(volume, "bright ball in the liver\nnodule in the right lung", "tiny-demo",
                                   {"device": "cpu", "threshold": 0.5}, keep_probability=True, work_dir=tmp_path / "run")
    seen = []
    message = run_request_sync(request, seen.append)
    assert message["type"] == "result", message
    assert any(m["type"] == "progress" for m in seen)
    imported, rows, result = finish_run(context, message["result_path"])
    segmentation = imported.segmentation_node.GetSegmentation()
    assert [segmentation.GetSegment(s).GetName() for s in imported.segment_ids] == [
        "bright ball in the liver", "nodule in the right lung"]
    assert get_tag(segmentation.GetSegment(imported.segment_ids[0]), TAG_MODEL) == "tiny-demo"
    mask = result.segments[0].mask
    assert mask.shape == SHAPE and mask[CENTRE] == 1 and mask[0, 0, 0] == 0
    assert find_probability_volume(imported.segmentation_node, imported.segment_ids[0]) is not None
    assert rows and rows[0]["segment"] == "bright ball in the liver"
    discard_run(context)
    assert not (tmp_path / "run").exists()


def test_roi_restricted_run_pastes_back_in_place(scene, tmp_path, tiny_registry):
    """An ROI crop sent to the worker (in-process: the subprocess path is E8's test_worker_*),
    and the answer pasted back in place."""
    from TextLesionSegLib.worker.server import run_request_sync

    volume = phantom(scene)
    image_centre = __import__("TextLesionSegLib.mrml.volumes", fromlist=["x"]).volume_to_image(volume).kji_to_ras(
        np.array(CENTRE, float))
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "roi")
    roi.SetCenter(*image_centre)
    roi.SetSize(14.0, 14.0, 14.0)
    request, context = prepare_run(volume, "bright ball in the liver", "tiny-demo", {"device": "cpu"}, roi_node=roi,
                                   keep_probability=False, work_dir=tmp_path / "run")
    assert context.sent_image.array.size < context.image.array.size
    final = run_request_sync(request)
    assert final["type"] == "result", final
    imported, rows, result = finish_run(context, final["result_path"])
    assert result.segments[0].mask.shape == SHAPE and result.segments[0].mask[CENTRE] == 1
    assert imported.probability_nodes == {}


def test_module_self_test_flow_with_a_bundled_demo_model(scene, tmp_path):
    """What TextLesionSegTest does inside Slicer, here with slicer-core: a synthetic CT, the first
    bundled demo model, synchronous run, segments and lesion rows (skips until a model is bundled)."""
    from TextLesionSegLib.models.registry import default_model_name, list_models, weights_status
    from TextLesionSegLib.worker.server import run_request_sync

    bundled = [m.name for m in list_models() if weights_status(m.name).state == "bundled"]
    if not bundled:
        pytest.skip("no bundled demo model in the registry yet")
    if default_model_name() in bundled:  # the model the panel offers first (Malenia when present)
        bundled.insert(0, default_model_name())
    k, j, i = np.indices((48, 64, 64))
    ct = np.full((48, 64, 64), -1000, np.int16)
    ct[4:-4, 6:-6, 6:-6] = 30
    ct[(k - 24) ** 2 + (j - 32) ** 2 + (i - 36) ** 2 <= 36] = 150
    volume = add_volume(scene, ct, np.diag([-1.5, -1.5, 2.0, 1.0]))
    request, context = prepare_run(volume, "round hyperdense lesion in the liver", bundled[0], {"device": "cpu"},
                                   keep_probability=True, work_dir=tmp_path / "run")
    message = run_request_sync(request)
    assert message["type"] == "result", message
    imported, rows, result = finish_run(context, message["result_path"])
    segmentation = imported.segmentation_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 1
    assert segmentation.GetNthSegment(0).GetName() == "round hyperdense lesion in the liver"
    assert segmentation.GetNthSegment(0).GetTerminology().count("~") == 6
    assert rows and result.segments[0].mask.shape == ct.shape


def test_cancel_mid_run_leaves_the_scene_and_disk_clean(scene, tmp_path, monkeypatch):
    """Apply then Cancel, as the panel does it: a real worker process (E8's WorkerClient) on a slow
    tiny model is killed mid-run; no node is added and the run's temporary files are gone."""
    import time

    from TextLesionSegLib.worker.client import WorkerClient

    registry = testing.write_test_registry(tmp_path / "registry", {"tiny-slow": {"sleep_per_window": 0.5}})
    volume = phantom(scene)
    nodes_before = scene.GetNumberOfNodes()
    request, context = prepare_run(volume, "bright ball in the liver", "tiny-slow", {"device": "cpu"},
                                   work_dir=tmp_path / "run")
    client = WorkerClient(env={"TEXTLESIONSEG_EXTRA_REGISTRY": str(registry)})
    try:
        client.submit(request)
        deadline = time.monotonic() + 120
        seen = []
        while not any(m.get("stage") == "inference" for m in seen):  # the model is running
            assert time.monotonic() < deadline, seen
            assert client.busy, seen  # it must not have finished or failed
            seen += client.poll()
            time.sleep(0.1)
        started = time.monotonic()
        client.cancel()
        assert time.monotonic() - started < 2.5
        discard_run(context)
        final = client.poll()
    finally:
        client.stop()
    assert [m["exit_code"] for m in final if m["type"] == "error"] == [130]
    assert not client.busy and scene.GetNumberOfNodes() == nodes_before
    assert not (tmp_path / "run").exists()
