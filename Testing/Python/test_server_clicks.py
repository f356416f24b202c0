"""Clicks on the remote engine: a real ``textlesionseg serve`` on 127.0.0.1 answers the worker's
``refine`` (the image and the segment's current voxels uploaded) and ``segment`` with points
exactly as the local engine does; a prior that is no mask of the image is refused in one line.

The click model is the worker's tiny real segmenter (``worker.testing``, which takes clicks)
registered as ``tiny-clicks`` and made the site's default click model ($TEXTLESIONSEG_CLICK_MODEL,
for the server and the local runs alike), so each test takes seconds.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from server_support import start_server
from TextLesionSegLib.cli import main
from TextLesionSegLib.pipeline.geometry import lps_to_ras
from TextLesionSegLib.pipeline.io import read_image
from TextLesionSegLib.worker import protocol
from TextLesionSegLib.worker import testing as tiny
from TextLesionSegLib.worker.remote import RemoteClient, server_info

TIMEOUT = 120  # generous: the 2 shared CPU cores may be busy
TEXT = "round mass in the right lung"
CLICKS = "tiny-clicks"  # the site's click model here


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("server-clicks")
    registry = tiny.write_test_registry(folder / "site", {"tiny": {}, CLICKS: {}})
    before = os.environ.get("TEXTLESIONSEG_CLICK_MODEL")
    os.environ["TEXTLESIONSEG_CLICK_MODEL"] = CLICKS  # the server inherits it; local runs read it too
    token_file = folder / "token.txt"
    token_file.write_text("s3cret-token-for-the-click-server\n")
    proc, url = start_server(folder, registry, token_file, "--queue-depth", "2")
    image_path = tiny.write_phantom(folder / "phantom.nrrd")
    image = read_image(image_path)
    lesion = np.argwhere(image.array > 100).mean(axis=0)  # the phantom's bright sphere, KJI
    yield {"folder": folder, "registry": registry, "token": token_file.read_text().strip(), "token_file": token_file,
           "url": url, "image": image_path, "proc": proc, "shape": image.array.shape,
           "on_lesion": [float(c) for c in lps_to_ras(image.kji_to_lps(lesion))],
           "off_lesion": [float(c) for c in lps_to_ras(image.kji_to_lps(np.array([4.0, 4.0, 4.0])))]}
    proc.terminate()
    proc.wait(timeout=30)
    if before is None:
        os.environ.pop("TEXTLESIONSEG_CLICK_MODEL", None)
    else:
        os.environ["TEXTLESIONSEG_CLICK_MODEL"] = before


def _client(site: dict) -> RemoteClient:
    return RemoteClient(site["url"], site["token"], log_path=site["folder"] / "client.log")


def _refine(site: dict, prior: Path, **extra) -> dict:
    return {"type": "refine", "image_path": str(site["image"]), "include_points": [site["on_lesion"]],
            "exclude_points": [site["off_lesion"]], "prior_path": str(prior), "settings": {"device": "cpu"},
            "output_dir": str(site["folder"] / "out"), **extra}


def test_a_refine_round_trip_gives_the_local_workers_mask(site, tmp_path, monkeypatch):
    prior = np.zeros(site["shape"], np.uint8)
    prior[15:17, 15:17, 11:22] = 1  # the segment now: a bar from the lesion's centre out beyond it
    np.save(tmp_path / "prior.npy", prior, allow_pickle=False)
    final = _client(site).request(_refine(site, tmp_path / "prior.npy"), TIMEOUT)
    assert final["type"] == "result", final
    assert final["model"] == CLICKS and final["segments"] == ["Clicked lesion"]
    served = protocol.load_result(final["result_path"]).segments[0].mask
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(site["registry"]))
    from TextLesionSegLib.worker.server import run_request_sync

    local = run_request_sync({**_refine(site, tmp_path / "prior.npy"), "id": "local", "output_dir": str(tmp_path)})
    assert local["type"] == "result", local
    local_mask = protocol.load_result(local["result_path"]).segments[0].mask
    assert served.sum() > 100 and served.shape == site["shape"]  # the sphere
    assert served[15:17, 15:17, 18:22].all()  # the bar beyond the sphere: the current voxels reached the server
    np.testing.assert_array_equal(served, local_mask)


@pytest.mark.parametrize("prior, message", [
    (np.zeros((3, 3, 3), np.uint8), "the uploaded prior has shape (3, 3, 3), the image's voxel grid (K, J, I) is "
                                    "(32, 32, 32): send the segment's voxels on the image's grid; nothing was run"),
    (np.array([{"a": 1}], dtype=object), "the uploaded prior is not a readable .npy array"),
    (np.zeros((32, 32, 32), "U1"), "the uploaded prior must be an array of numbers"),
    (np.zeros((64, 64, 64), np.float64), "the prior upload is larger than the server accepts (327,680 bytes)"),
])
def test_a_prior_that_is_no_mask_of_the_image_is_refused_in_one_line(site, tmp_path, prior, message):
    np.save(tmp_path / "prior.npy", prior, allow_pickle=prior.dtype == object)
    final = _client(site).request(_refine(site, tmp_path / "prior.npy"), TIMEOUT)
    assert final["type"] == "error" and final["exit_code"] == 2, final
    assert final["message"].startswith(message) and "\n" not in final["message"]
    info = server_info(site["url"], site["token"])  # still up, and the refused job is gone
    assert info["queue"]["waiting"] == 0 and site["proc"].poll() is None


def _post(site: dict, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(site["url"] + "/v1/jobs", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {site['token']}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("body, message", [
    ({"type": "refine", "include_points": [[0, 0, 0]], "prior_path": "/etc/passwd"}, "carries no 'prior_path'"),
    ({"type": "segment", "texts": [TEXT], "prior": True}, "only a refine request has a prior"),
    ({"type": "refine", "include_points": [[0, 0, 0]], "prior": "yes"}, "'prior' must be true"),
    ({"type": "refine"}, "a refine request needs include_points"),
])
def test_a_malformed_click_request_is_refused_before_any_upload(site, body, message):
    before = server_info(site["url"], site["token"])["queue"]["accepted"]
    status, answer = _post(site, body)
    assert status == 400 and answer["exit_code"] == 2 and message in answer["message"]
    assert server_info(site["url"], site["token"])["queue"]["accepted"] == before


@pytest.mark.parametrize("texts", [[TEXT], []], ids=["with-text", "clicks-alone"])
def test_segment_with_points_via_server_equals_the_local_answer(site, tmp_path, monkeypatch, capsys, texts):
    argv = ["segment", str(site["image"]), *(a for t in texts for a in ("--text", t)), "--model", "tiny",
            "--include-point=" + ",".join(map(str, site["on_lesion"])),
            "--exclude-point=" + ",".join(map(str, site["off_lesion"])), "--device", "cpu", "-q"]
    if not texts:  # clicks alone: the click model segments
        argv[argv.index("tiny")] = CLICKS
    served, local = tmp_path / "served.seg.nrrd", tmp_path / "local.seg.nrrd"
    assert main([*argv, "--output", str(served), "--server", site["url"], "--token-file", str(site["token_file"])]) == 0
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(site["registry"]))
    assert main([*argv, "--output", str(local)]) == 0, capsys.readouterr().err
    served_array, local_array = (sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in (served, local))
    assert served_array.any()
    np.testing.assert_array_equal(served_array, local_array)


def test_a_click_model_beside_descriptions_is_refused_with_a_server_in_one_line(site, tmp_path, capsys):
    out = tmp_path / "o.seg.nrrd"
    rc = main(["segment", str(site["image"]), "--text", TEXT, "--include-point=" + ",".join(map(str, site["on_lesion"])),
               "--click-model", CLICKS, "--output", str(out), "--server", site["url"],
               "--token-file", str(site["token_file"]), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not out.exists() and len(err.splitlines()) == 1
    assert f"takes the clicks beside descriptions with its own {CLICKS}" in err
