"""The remote engine: a real ``textlesionseg serve`` on 127.0.0.1, started once for this file.

Its models are the worker's tiny real segmenter (``worker.testing``), so each test takes
seconds: round trip against the local engine, token, limits, two clients at once, per-client
cancel, malformed requests, another client version, and the command line's ``--server``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from TextLesionSegLib.errors import ServerError
from TextLesionSegLib.worker import protocol
from TextLesionSegLib.worker import remote
from TextLesionSegLib.worker import testing as tiny
from TextLesionSegLib.worker.remote import RemoteClient, server_info

from server_support import free_port, start_server

TIMEOUT = 120  # generous: the 2 shared CPU cores may be busy
TEXT = "round mass in the right lung"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("server")
    registry = tiny.write_test_registry(folder / "site", {"tiny": {}, "slow": {"sleep_per_window": 0.25,
                                                                              "roi_size": [8, 8, 8]}})
    token_file = folder / "token.txt"
    token_file.write_text("s3cret-token-for-the-test-server\n")
    proc, url = start_server(folder, registry, token_file, "--queue-depth", "2", "--max-upload-mb", "1",
                             "--max-image-mvoxels", "0.2", "--preload", "tiny")
    yield {"folder": folder, "registry": registry, "token": token_file.read_text().strip(), "token_file": token_file,
           "url": url, "image": tiny.write_phantom(folder / "phantom.nrrd"), "proc": proc}
    proc.terminate()
    proc.wait(timeout=30)


def _request(site: dict, model: str = "tiny", text: str = TEXT, **extra) -> dict:
    return {"type": "segment", "image_path": str(site["image"]), "texts": [text], "model": model,
            "settings": {"device": "cpu"}, "output_dir": str(site["folder"] / "out"), **extra}


def _client(site: dict, token: str | None = None) -> RemoteClient:
    return RemoteClient(site["url"], token or site["token"], log_path=site["folder"] / "client.log")


def _accepted(site: dict) -> int:
    return server_info(site["url"], site["token"])["queue"]["accepted"]


def test_handshake_names_version_device_and_models(site):
    info = server_info(site["url"], site["token"])
    assert info["version"] == remote.__version__ and info["device"] == "cpu"
    assert {"tiny", "slow"} <= set(info["models"]) and info["loaded_models"] == ["tiny@cpu"]  # --preload
    assert info["queue"]["depth"] == 2 and info["limits"]["max_upload_bytes"] == 2**20
    line = remote.describe_server(info)
    assert remote.__version__ in line and "cpu" in line and "tiny" in line
    port = site["url"].rsplit(":", 1)[1]
    started = (site["folder"] / f"server-{port}.log").read_text()
    assert f"listening on http://127.0.0.1:{port} (loopback only: other machines cannot connect" in started
    assert "queue depth 2; limits: upload 1 MiB, image 200,000 voxels, job 600 s" in started


def test_segment_round_trip_gives_the_local_engines_mask(site, monkeypatch):
    final = _client(site).request(_request(site, keep_probability=True), TIMEOUT)
    assert final["type"] == "result", final
    assert Path(final["result_path"]).is_file() and final["model"] == "tiny"
    served = protocol.load_result(final["result_path"])
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(site["registry"]))
    from TextLesionSegLib.worker.server import run_request_sync

    local = protocol.load_result(run_request_sync(_request(site, id="local", keep_probability=True))["result_path"])
    assert served.segments[0].name == local.segments[0].name == TEXT
    assert served.segments[0].mask.sum() > 100  # the phantom's sphere
    np.testing.assert_array_equal(served.segments[0].mask, local.segments[0].mask)
    np.testing.assert_array_equal(served.segments[0].probability, local.segments[0].probability)
    assert served.segments[0].lesions == local.segments[0].lesions


def test_missing_or_wrong_token_is_refused_and_does_no_work(site):
    before = _accepted(site)
    with pytest.raises(ServerError, match="refused the token"):
        server_info(site["url"], "wrong-token-of-enough-length")
    final = _client(site, "wrong-token-of-enough-length").request(_request(site), TIMEOUT)
    assert final["type"] == "error" and final["exit_code"] == 5 and "refused the token" in final["message"]
    bare = urllib.request.Request(site["url"] + "/v1/jobs", data=json.dumps(_request(site)).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bare, timeout=10)
    assert refused.value.code == 401 and "needs its token" in json.loads(refused.value.read())["message"]
    assert _accepted(site) == before  # nothing was queued, nothing ran


def test_oversized_upload_and_image_are_refused_each_with_one_line(site):
    big = site["folder"] / "big.nrrd"
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((96, 96, 96), np.int16)), str(big))  # 1.7 MiB, no compression
    final = _client(site).request({**_request(site), "image_path": str(big)}, TIMEOUT)
    assert final["type"] == "error" and final["exit_code"] == 2
    assert final["message"].startswith("the image upload is larger than the server accepts (1 MiB)")
    many = tiny.write_phantom(site["folder"] / "many.nrrd", size=64)  # 262,144 voxels, under 1 MiB compressed
    final = _client(site).request({**_request(site), "image_path": str(many)}, TIMEOUT)
    assert final["type"] == "error" and final["exit_code"] == 2
    assert final["message"] == ("the image has 262,144 voxels, more than the server's limit of 200,000; crop it to "
                                "a region of interest")
    assert server_info(site["url"], site["token"])["queue"]["waiting"] == 0  # the refused jobs are gone


def test_two_clients_at_once_each_get_their_own_answer(site):
    clients = [_client(site), _client(site)]
    texts = ["round mass in the right lung", "hyperdense nodule in the liver"]
    answers: dict[int, dict] = {}

    def run(n: int) -> None:
        answers[n] = clients[n].request(_request(site, text=texts[n], id=f"c{n}"), TIMEOUT)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    for n in range(2):
        assert answers[n]["type"] == "result", answers[n]
        assert protocol.load_result(answers[n]["result_path"]).segments[0].name == texts[n]
    assert answers[0]["result_path"] != answers[1]["result_path"]


def test_cancel_of_one_client_leaves_the_other_running(site):
    slow, other = _client(site), _client(site)
    slow.submit(_request(site, model="slow", id="slow"))
    deadline = time.monotonic() + TIMEOUT
    while not any(m.get("stage", "").startswith("Segmenting") for m in slow.poll()):  # surely running
        assert time.monotonic() < deadline and slow.busy
        time.sleep(0.1)
    before = server_info(site["url"], site["token"])["queue"]["finished"]
    other.submit(_request(site, id="other", text="hyperdense nodule in the liver"))  # waits behind the slow job
    slow.cancel()
    cancelled = slow.poll()
    assert cancelled[-1]["exit_code"] == 130 and not slow.busy
    final = [m for m in other.wait(TIMEOUT) if m["type"] != "progress"][-1]
    assert final["type"] == "result", final
    assert protocol.load_result(final["result_path"]).segments[0].name == "hyperdense nodule in the liver"
    info = server_info(site["url"], site["token"])
    assert info["queue"]["running"] == 0 and info["queue"]["waiting"] == 0
    after = info["queue"]["finished"]  # the slow job ended cancelled mid-run; the other one ran to its result
    assert after.get("cancelled", 0) == before.get("cancelled", 0) + 1
    assert after.get("done", 0) == before.get("done", 0) + 1


def test_malformed_requests_get_one_line_and_the_server_stays_up(site):
    token = {"Authorization": f"Bearer {site['token']}"}
    for body in (b"{not json", b"[1, 2]", json.dumps({"type": "segment", "texts": "x"}).encode(),
                 json.dumps({"type": "shutdown"}).encode(), json.dumps({**_request(site)}).encode(),
                 json.dumps({"type": "segment", "texts": ["a"], "settings": {"treshold": 1}}).encode()):
        call = urllib.request.Request(site["url"] + "/v1/jobs", data=body, headers=token, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(call, timeout=10)
        answer = json.loads(refused.value.read())
        assert refused.value.code == 400 and answer["exit_code"] == 2 and "\n" not in answer["message"], answer
    assert "image_path" in answer["message"] or "treshold" in answer["message"]
    call = urllib.request.Request(site["url"] + "/v1/nowhere", headers=token)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(call, timeout=10)
    assert missing.value.code == 404 and json.loads(missing.value.read())["type"] == "error"
    assert site["proc"].poll() is None and server_info(site["url"], site["token"])["version"]


def test_a_client_of_another_version_gets_one_sentence_naming_both(site, monkeypatch):
    monkeypatch.setattr(remote, "__version__", "0.0.9")
    sentence = (f"This client is TextLesionSeg 0.0.9 but the server at {site['url']} runs TextLesionSeg "
                f"{protocol_version()}; install the same version on both.")
    with pytest.raises(ServerError) as refused:
        server_info(site["url"], site["token"])
    assert str(refused.value) == sentence and refused.value.exit_code == 5
    final = _client(site).request(_request(site), TIMEOUT)  # the server refuses the job with both versions too
    assert final == {"type": "error", "id": final["id"], "message": sentence, "exit_code": 5}


def protocol_version() -> str:
    import TextLesionSegLib

    return TextLesionSegLib.__version__


def test_command_line_server_writes_what_a_local_run_writes(site, monkeypatch, tmp_path):
    from TextLesionSegLib.cli import main

    common = ["segment", str(site["image"]), "--text", TEXT, "--model", "tiny", "--device", "cpu", "--quiet"]
    assert main([*common, "-o", str(tmp_path / "remote.seg.nrrd"), "--report", str(tmp_path / "remote.json"),
                 "--server", site["url"], "--token-file", str(site["token_file"])]) == 0
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(site["registry"]))
    assert main([*common, "-o", str(tmp_path / "local.seg.nrrd"), "--report", str(tmp_path / "local.json")]) == 0
    import slicerio

    remote_seg = slicerio.read_segmentation(str(tmp_path / "remote.seg.nrrd"))
    local_seg = slicerio.read_segmentation(str(tmp_path / "local.seg.nrrd"))
    np.testing.assert_array_equal(remote_seg["voxels"], local_seg["voxels"])
    strip = lambda doc: {k: v for k, v in doc.items() if k != "timings_s"}  # noqa: E731
    assert strip(json.loads((tmp_path / "remote.json").read_text())) == strip(json.loads((tmp_path / "local.json").read_text()))


def test_command_line_names_an_unreachable_server_in_one_line_exit_5(site, tmp_path, capsys):
    from TextLesionSegLib.cli import main

    code = main(["segment", str(site["image"]), "--text", TEXT, "-o", str(tmp_path / "x.seg.nrrd"), "--quiet",
                 "--server", f"http://127.0.0.1:{free_port()}", "--token-file", str(site["token_file"])])
    err = capsys.readouterr().err.strip()
    assert code == 5 and len(err.splitlines()) == 1 and "cannot reach the TextLesionSeg server" in err
    assert not (tmp_path / "x.seg.nrrd").exists()


def test_python_api_server_option_returns_what_a_local_run_returns(site, monkeypatch):
    from TextLesionSegLib.pipeline.io import read_image
    from TextLesionSegLib.pipeline.run import segment
    from TextLesionSegLib.worker.remote_engine import RemoteEngine

    image = read_image(site["image"])
    stages: list = []
    served = segment(image, [TEXT], "tiny", {"device": "cpu"}, lambda stage, fraction: stages.append(stage),
                     server=RemoteEngine(site["url"], token_file=site["token_file"]))
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(site["registry"]))
    local = segment(image, [TEXT], "tiny", {"device": "cpu"})
    assert served.image is image and "Sending the image to the server" in stages
    np.testing.assert_array_equal(served.segments[0].mask, local.segments[0].mask)
    assert served.segments[0].lesions == local.segments[0].lesions and served.warnings == local.warnings


def test_a_progress_callback_that_cancels_stops_the_servers_job(site):
    from TextLesionSegLib.errors import CancelledError
    from TextLesionSegLib.pipeline.io import read_image
    from TextLesionSegLib.pipeline.run import segment
    from TextLesionSegLib.worker.remote_engine import RemoteEngine

    def progress(stage: str, fraction) -> None:
        if stage.startswith("Segmenting"):
            raise CancelledError("stop")

    before = server_info(site["url"], site["token"])["queue"]["finished"].get("cancelled", 0)
    with pytest.raises(CancelledError):
        segment(read_image(site["image"]), [TEXT], "slow", None, progress, server=RemoteEngine(site["url"], site["token"]))
    deadline = time.monotonic() + TIMEOUT
    while server_info(site["url"], site["token"])["queue"]["finished"].get("cancelled", 0) == before:
        assert time.monotonic() < deadline, "the server's job was not cancelled"
        time.sleep(0.2)


def test_a_full_queue_answers_busy_with_its_depth(site):
    token = {"Authorization": f"Bearer {site['token']}", "Content-Type": "application/json"}
    body = json.dumps({"type": "segment", "texts": [TEXT], "model": "tiny"}).encode()
    jobs = []
    for _ in range(2):  # jobs waiting for their image hold their place in the line
        call = urllib.request.Request(site["url"] + "/v1/jobs", data=body, headers=token, method="POST")
        with urllib.request.urlopen(call, timeout=10) as answer:
            jobs.append(json.loads(answer.read())["job"])
    final = _client(site).request(_request(site), TIMEOUT)
    assert final["exit_code"] == 5 and final["message"].startswith("the server is busy: its queue of 2 jobs is full")
    for job in jobs:
        urllib.request.urlopen(urllib.request.Request(f"{site['url']}/v1/jobs/{job}", headers=token, method="DELETE"),
                               timeout=10)
    assert server_info(site["url"], site["token"])["queue"]["waiting"] == 0
    assert _client(site).request(_request(site), TIMEOUT)["type"] == "result"  # the places are free again


def slow_job_in_process(site, monkeypatch, tmp_path, done, asking: bool, **config):
    """One slow job on an in-process ``JobQueue`` over the worker's own handler, until ``done(queue, job)``;
    ``asking``: its client keeps asking for it, as a ``RemoteClient`` does."""
    from TextLesionSegLib.server.jobs import JobQueue, ServerConfig
    from TextLesionSegLib.worker.server import WorkerState

    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(site["registry"]))
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "admins-file.txt").write_text("not the server's")
    queue = JobQueue(ServerConfig(token="x" * 16, work_dir=tmp_path / "jobs", **config), WorkerState().handle)
    queue.start()
    try:
        job = queue.create({**_request(site, model="slow"), "output_dir": str(tmp_path / "out")}, needs_image=False)
        deadline = time.monotonic() + TIMEOUT
        while not done(queue, job):
            assert time.monotonic() < deadline
            if asking:
                queue.get(job.id)
            time.sleep(0.1)
    finally:
        queue.close()
    assert [p.name for p in (tmp_path / "jobs").iterdir()] == ["admins-file.txt"]  # only its own folder went
    return queue, job


def test_a_job_past_the_time_limit_ends_with_one_line_exit_5(site, monkeypatch, tmp_path):
    _, job = slow_job_in_process(site, monkeypatch, tmp_path, lambda queue, job: job.final, True, job_timeout_s=1.0)
    assert job.state == "error" and job.reply["exit_code"] == 5
    assert job.reply["message"] == "the job ran longer than the server's limit of 1 s; nothing was changed"


def test_serve_refuses_to_start_without_a_usable_token_or_port(site, tmp_path, capsys):
    from TextLesionSegLib.cli import main
    from TextLesionSegLib.server.main import create_token, is_loopback

    assert main(["serve", "--token-file", str(tmp_path / "absent.txt")]) == 2
    assert "token file not found (add --create-token to write a random one)" in capsys.readouterr().err
    (tmp_path / "short.txt").write_text("abc")
    assert main(["serve", "--token-file", str(tmp_path / "short.txt")]) == 2
    assert "at least 16 characters" in capsys.readouterr().err
    port = site["url"].rsplit(":", 1)[1]  # the test server's port: taken
    assert main(["serve", "--token-file", str(site["token_file"]), "--port", port]) == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in capsys.readouterr().err
    assert create_token(tmp_path / "new.txt") and not create_token(tmp_path / "new.txt")  # never overwritten
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o600
    assert len(remote.read_token(tmp_path / "new.txt")) >= 40
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


def test_a_job_whose_client_went_away_is_cancelled_and_its_files_deleted(site, monkeypatch, tmp_path):
    queue, job = slow_job_in_process(site, monkeypatch, tmp_path, lambda queue, job: job.id not in queue.jobs, False,
                                     abandon_s=1.0)
    assert job.state == "cancelled" and job.stop_reason == "its client stopped asking"
    assert queue.finished == {"cancelled": 1} and not job.folder.exists()


def test_what_the_engine_refuses_comes_back_as_the_local_engines_own_line(site, monkeypatch):
    from TextLesionSegLib.errors import TextLesionSegError
    from TextLesionSegLib.pipeline.geometry import Image
    from TextLesionSegLib.pipeline.io import read_image
    from TextLesionSegLib.pipeline.run import find_lesions, segment
    from TextLesionSegLib.worker.remote_engine import RemoteEngine

    server = RemoteEngine(site["url"], token_file=site["token_file"])
    ct = read_image(site["image"])
    not_ct = Image(array=np.random.default_rng(0).uniform(0, 900, (24, 24, 24)).astype(np.float32), spacing=(1.0, 1.0, 1.0))
    calls = [lambda **kw: find_lesions(ct, "tiny", {"device": "cpu"}, **kw),  # the tiny model has no prompt-free mode
             lambda **kw: segment(not_ct, [TEXT], "tiny", {"device": "cpu"}, **kw)]  # not a CT
    for call in calls:
        with pytest.raises(TextLesionSegError) as served:
            call(server=server)
        monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(site["registry"]))
        with pytest.raises(TextLesionSegError) as local:
            call()
        monkeypatch.delenv("TEXTLESIONSEG_EXTRA_REGISTRY")
        assert (str(served.value), served.value.exit_code) == (str(local.value), local.value.exit_code)
        assert served.value.exit_code in (2, 3)


def test_https_with_a_certificate_from_the_sites_own_authority(site, tmp_path, monkeypatch):
    """serve --tls-cert/--tls-key: a client that trusts the certificate (SSL_CERT_FILE) gets the
    handshake over HTTPS; one that does not gets one line saying what to install."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    proc, url = start_server(tmp_path, site["registry"], site["token_file"], "--tls-cert", str(cert),
                             "--tls-key", str(key), scheme="https")
    try:
        assert url.startswith("https://") and server_info(url, site["token"])["version"] == remote.__version__
        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(ServerError) as untrusted:
            server_info(url, site["token"])
        assert str(untrusted.value).startswith(f"the TLS connection to {url} failed (CERTIFICATE_VERIFY_FAILED): ")
        assert "install that CA certificate or name it in SSL_CERT_FILE" in str(untrusted.value)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_server_that_dies_mid_job_is_one_line_exit_5_never_a_hang(site, tmp_path):
    proc, url = start_server(tmp_path, site["registry"], site["token_file"], "--work-dir", str(tmp_path / "jobs"))
    client = RemoteClient(url, site["token"], log_path=tmp_path / "client.log")
    try:
        client.submit(_request(site, model="slow"))
        deadline = time.monotonic() + TIMEOUT
        while not any(m.get("stage", "").startswith("Segmenting") for m in client.poll()):
            assert time.monotonic() < deadline and client.busy
            time.sleep(0.1)
        proc.kill()  # as the OOM killer or a power cut would
        final = [m for m in client.wait(TIMEOUT) if m["type"] != "progress"][-1]
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert final["type"] == "error" and final["exit_code"] == 5
    assert final["message"].startswith(f"cannot reach the TextLesionSeg server at {url} (")
    assert "\n" not in final["message"] and "cannot reach" in client.log_tail(1)


def test_job_folders_of_a_killed_server_are_deleted_by_the_next_one(tmp_path):
    """A SIGKILLed server cannot clean up: the next one deletes its job folders (uploaded scans must
    not outlive a crash), and nothing else — not a live server's folder, not the admin's files."""
    import subprocess
    import sys

    from TextLesionSegLib.server.jobs import FOLDER_PREFIX, JobQueue, ServerConfig
    from TextLesionSegLib.worker.server import WorkerState

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    work = tmp_path / "jobs"
    stale = work / f"{FOLDER_PREFIX}{gone.pid}-abc123"
    (stale / "job1").mkdir(parents=True)
    (stale / "job1" / "image.nrrd").write_bytes(b"a patient's scan")
    live = work / f"{FOLDER_PREFIX}1-def456"  # pid 1 always runs
    live.mkdir()
    others = [work / f"{FOLDER_PREFIX}notapid-x", work / "admins-notes.txt"]
    others[0].mkdir()
    others[1].write_text("keep")
    queue = JobQueue(ServerConfig(token="x" * 16, work_dir=work), WorkerState().handle)
    try:
        assert not stale.exists()
        assert live.is_dir() and all(p.exists() for p in others)
        assert queue.folder.name.startswith(f"{FOLDER_PREFIX}{os.getpid()}-")
    finally:
        queue.close()
    assert sorted(p.name for p in work.iterdir()) == sorted([live.name, *(p.name for p in others)])
