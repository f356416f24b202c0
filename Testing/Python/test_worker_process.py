"""The real worker process: spawn, requests, progress, model reuse, cancel, crash, sync entry point.

One worker is shared by the module (starting Python + torch costs seconds); tests run in file
order and the cancel/crash tests check that the *next* request starts a fresh worker. The models
are the tiny real segmenter of ``worker.testing``, registered through an extra registry file
passed to the worker in ``$TEXTLESIONSEG_EXTRA_REGISTRY``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from TextLesionSegLib.worker import protocol
from TextLesionSegLib.worker import testing as tiny
from TextLesionSegLib.worker.client import WorkerClient

TIMEOUT = 120  # generous: the 2 shared CPU cores may be busy


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("worker")
    registry = tiny.write_test_registry(folder / "site", {
        "tiny": {},
        "slow": {"sleep_per_window": 0.4},
        "crash": {"crash_after_windows": 2},
    })
    return {"registry": registry, "image": tiny.write_phantom(folder / "phantom.nrrd"), "folder": folder}


@pytest.fixture(scope="module")
def client(site):
    worker = WorkerClient(env={"TEXTLESIONSEG_EXTRA_REGISTRY": str(site["registry"])},
                          log_path=site["folder"] / "worker.log")
    yield worker
    worker.stop()
    assert not worker.running


def _request(site, model="tiny", **extra) -> dict:
    return {"type": "segment", "image_path": str(site["image"]), "texts": ["round mass in the right lung"],
            "model": model, "settings": {"device": "cpu"}, "output_dir": str(site["folder"] / "out"),
            **extra}


def test_request_streams_progress_then_a_result_file(client, site):
    rid = client.submit(_request(site, keep_probability=True))
    assert client.busy and client.running
    messages = client.wait(TIMEOUT)
    assert not client.busy
    progress = [m for m in messages if m["type"] == "progress"]
    stages = [m["stage"] for m in progress]
    assert "Loading model tiny" in stages and "Saving result" in stages
    assert stages[0].startswith("Starting the engine")  # the request waited for the warm-up imports
    fractions = [m["fraction"] for m in progress if m["stage"] == "Segmenting"]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    final = messages[-1]
    assert final["type"] == "result" and final["id"] == rid, final
    assert final["model_reused"] is False and final["model_load_count"] == 1
    result = protocol.load_result(final["result_path"])
    seg = result.segments[0]
    assert seg.name == "round mass in the right lung" and seg.probability is not None
    assert len(seg.lesions) == 1 and seg.lesions[0].mean_hu == pytest.approx(150.0)  # the phantom's sphere
    assert result.model_name == "tiny"


def test_second_request_reuses_the_loaded_model(client, site):
    first = client.request(_request(site), TIMEOUT)  # loads the model unless the test above did
    pid, starts = client.pid, client.starts
    started = time.perf_counter()
    final = client.request(_request(site), TIMEOUT)
    assert final["type"] == "result" and final["model_reused"] is True
    assert final["model_load_count"] == first["model_load_count"] == 1
    assert client.pid == pid and client.starts == starts == 1
    status = client.request({"type": "status"}, TIMEOUT)
    assert status["load_counts"] == {"tiny@cpu": 1} and status["loaded_models"] == ["tiny@cpu"]
    assert status["rss_bytes"] > 50e6 and status["warm_up"] == "done"
    assert time.perf_counter() - started < 60


def test_status_carries_the_compute_the_worker_sees(client):
    """Slicer fills its device selector from this reply, so its own process never imports torch."""
    import importlib.metadata

    compute = client.request({"type": "status"}, TIMEOUT)["compute"]
    assert compute["choices"][0] == "auto" and compute["choices"][-1] == "cpu", compute
    assert compute["choices"][1:-1] == [f"cuda:{d['index']}" for d in compute["cuda"]]
    assert compute["installed"] is True and compute["version"] == importlib.metadata.version("torch")
    assert compute["message"].startswith(f"PyTorch {compute['version']}")


def test_soak_runner_on_the_shared_worker(client, site):
    """The soak benchmark's loop (docs/BENCHMARKS.md runs it with 20 requests) on 3 requests."""
    from TextLesionSegLib.worker.soak import soak

    summary = soak(client, _request(site), 3)
    assert [r["request"] for r in summary["rows"]] == [1, 2, 3]
    assert all(r["rss_bytes"] > 50e6 for r in summary["rows"])
    assert summary["model_loads"] == 1  # one load for all three requests
    assert abs(summary["growth_percent"]) < 50


def test_sync_entry_point_gives_the_same_result(client, site, monkeypatch):
    from TextLesionSegLib.worker.client import run_request_sync

    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(site["registry"]))
    seen: list[dict] = []
    sync = run_request_sync(_request(site, id="sync"), seen.append)
    assert sync["type"] == "result", sync
    assert any(m["type"] == "progress" for m in seen)
    worker = client.request(_request(site, id="async"), TIMEOUT)
    a, b = protocol.load_result(sync["result_path"]), protocol.load_result(worker["result_path"])
    assert [s.name for s in a.segments] == [s.name for s in b.segments]
    assert np.array_equal(a.segments[0].mask, b.segments[0].mask) and a.segments[0].mask.any()
    assert a.segments[0].lesions == b.segments[0].lesions


def test_errors_come_back_as_messages_and_the_worker_survives(client, site):
    pid = client.pid
    bad = client.request(_request(site, image_path=str(site["folder"] / "missing.nrrd")), TIMEOUT)
    assert bad["type"] == "error" and bad["exit_code"] == 2, bad
    unknown = client.request(_request(site, model="no-such-model"), TIMEOUT)
    assert unknown["exit_code"] == 3 and "known models" in unknown["message"]
    old = client.request({"type": "status", "protocol": 99}, TIMEOUT)
    assert old["exit_code"] == 2 and "protocol 99" in old["message"]
    prompt_free = client.request({**_request(site), "type": "find_lesions"}, TIMEOUT)
    assert prompt_free["exit_code"] == 3 and "no prompt-free mode" in prompt_free["message"]
    assert client.pid == pid


def test_unavailable_device_is_a_bad_input_not_a_model_error(client, site):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: 'cuda' is a valid device here")
    final = client.request({**_request(site), "settings": {"device": "cuda"}}, TIMEOUT)
    assert final["exit_code"] == 2 and "CUDA is not available" in final["message"]


def test_unload_drops_models_and_load_brings_one_back_ahead_of_a_request(client, site):
    loads = client.request(_request(site), TIMEOUT)["model_load_count"]
    status = client.request({"type": "unload"}, TIMEOUT)
    assert status["loaded_models"] == [] and status["load_counts"] == {"tiny@cpu": loads}
    final = client.request(_request(site), TIMEOUT)
    assert final["model_reused"] is False and final["model_load_count"] == loads + 1
    client.request({"type": "unload"}, TIMEOUT)
    loaded = client.request({"type": "load", "model": "tiny", "settings": {"device": "cpu"}}, TIMEOUT)
    assert loaded["loaded_models"] == ["tiny@cpu"] and loaded["load_counts"] == {"tiny@cpu": loads + 2}
    assert client.request(_request(site), TIMEOUT)["model_reused"] is True  # loaded ahead, not at Apply


def test_a_crash_is_reported_not_a_hang(client, site):
    final = client.request(_request(site, model="crash"), TIMEOUT)
    assert final["type"] == "error" and final.get("crashed") and final["returncode"] == 70, final
    assert "stopped unexpectedly" in final["message"] and str(client.log_path) in final["message"]
    assert not client.busy and not client.running


def test_after_a_crash_the_next_run_starts_fresh_and_cancel_kills_it_within_two_seconds(client, site):
    starts, crashed = client.starts, not client.running  # crashed by the test above (file order)
    client.submit(_request(site, model="slow"))
    assert client.starts == starts + crashed  # a crashed worker is replaced by the next request
    deadline = time.monotonic() + TIMEOUT
    while not any(m.get("stage") == "Segmenting" for m in client.poll()):  # wait until windows run
        assert time.monotonic() < deadline and client.busy
        time.sleep(0.05)
    pid = client.pid
    started = time.perf_counter()
    client.cancel()
    assert time.perf_counter() - started < 2.0
    assert not client.busy and not client.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone (and reaped)
    assert [m["exit_code"] for m in client.poll()] == [130]
    out = Path(site["folder"] / "out")
    files = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert not any(f.startswith(".") for f in files), f"a temporary result file remains: {files}"
    # The next request runs in a fresh worker that has loaded nothing yet.
    status = client.request({"type": "status"}, TIMEOUT)
    assert client.starts == starts + crashed + 1 and status["pid"] != pid and status["load_counts"] == {}


def test_stop_ends_the_process(site):
    worker = WorkerClient(env={"TEXTLESIONSEG_EXTRA_REGISTRY": str(site["registry"])})
    worker.start()
    pid = worker.pid
    worker.stop()
    assert not worker.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)



def test_worker_exits_when_its_client_disappears(site):
    """Slicer crashing closes the worker's stdin: the worker must not linger as an orphan."""
    import subprocess
    import sys

    from TextLesionSegLib.worker.client import PACKAGE_PARENT

    proc = subprocess.Popen([sys.executable, "-m", "TextLesionSegLib.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)})
    assert protocol.decode(proc.stdout.readline())["type"] == "ready"
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
