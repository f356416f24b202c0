"""The worker's ``refine`` request: checked like every request, runs a click model on the region
around the clicks from the segment's current voxels, and reads the image once per correction."""

from __future__ import annotations

import numpy as np
import pytest

from test_clicks_pipeline import LEFT_AT, RIGHT_AT, _dice, _ras, _two_balls
from TextLesionSegLib.errors import InputError
from TextLesionSegLib.models import registry
from TextLesionSegLib.models.interactive.region_grow import RegionGrowSegmenter
from TextLesionSegLib.pipeline.io import write_image
from TextLesionSegLib.worker import protocol
from TextLesionSegLib.worker.server import WorkerState


@pytest.mark.parametrize("request_, message", [
    ({"type": "refine", "image_path": "ct.nrrd"}, "needs include_points"),
    ({"type": "refine", "image_path": "ct.nrrd", "include_points": [[1, 2]]}, "include_points[0]' must be [R, A, S]"),
    ({"type": "refine", "image_path": "ct.nrrd", "include_points": [[1, 2, float("nan")]]}, "three finite"),
    ({"type": "refine", "image_path": "ct.nrrd", "include_points": "1,2,3"}, "must be a list"),
    ({"type": "refine", "image_path": "ct.nrrd", "include_points": [[1, 2, 3]], "exclude_points": [[True, 2, 3]]},
     "exclude_points[0]"),
    ({"type": "refine", "image_path": "ct.nrrd", "include_points": [[1, 2, 3]], "prior_path": 5}, "'prior_path' must be"),
])
def test_malformed_refine_requests_are_refused(request_, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        protocol.check_request(request_)


class _Loader:
    """The registry's loading replaced by a region-growing click model (the rest is the worker's own)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def load_segmenter(self, name, device="cpu", progress=None):
        self.names.append(name)
        return RegionGrowSegmenter()


def test_refine_corrects_the_current_mask_and_reads_the_image_once(tmp_path, monkeypatch):
    loader = _Loader()
    monkeypatch.setattr(registry, "default_registry", lambda: loader)
    img, upper, lower = _two_balls("oblique")
    path = write_image(img, tmp_path / "ct.nrrd")
    np.save(tmp_path / "both.npy", (upper | lower).astype(np.uint8))
    state = WorkerState()
    base = {"protocol": 1, "type": "refine", "image_path": str(path), "output_dir": str(tmp_path / "out")}
    reply = state.handle({**base, "id": "c1", "include_points": [list(_ras(LEFT_AT))],
                          "exclude_points": [list(_ras(RIGHT_AT))], "prior_path": str(tmp_path / "both.npy")},
                         lambda m: None)
    assert reply["type"] == "result", reply
    first = state._image[1]
    mask = protocol.load_result(reply["result_path"]).segments[0].mask
    assert _dice(mask, upper) > 0.8 and not (mask & lower).any()
    # the next click of the same correction: same image object, model loaded once
    reply = state.handle({**base, "id": "c2", "include_points": [list(_ras(RIGHT_AT))]}, lambda m: None)
    assert reply["type"] == "result" and state._image[1] is first
    assert loader.names == ["interactive-demo"] and reply["model_reused"]
    mask = protocol.load_result(reply["result_path"]).segments[0].mask
    assert _dice(mask, lower) > 0.8
    # a current mask of another shape is one line, exit code 2
    np.save(tmp_path / "bad.npy", np.zeros((3, 3, 3), np.uint8))
    reply = state.handle({**base, "id": "c3", "include_points": [list(_ras(LEFT_AT))],
                          "prior_path": str(tmp_path / "bad.npy")}, lambda m: None)
    assert reply["type"] == "error" and reply["exit_code"] == 2 and "shape" in reply["message"]
    reply = state.handle({**base, "id": "c4", "include_points": [[0.0, 0.0, 900.0]]}, lambda m: None)
    assert reply["type"] == "error" and reply["exit_code"] == 2 and "outside the image" in reply["message"]


def test_a_segment_request_with_a_click_overrules_the_words_in_the_worker(tmp_path, monkeypatch):
    from test_engine_run import ThresholdSegmenter

    class Loader(_Loader):
        def load_segmenter(self, name, device="cpu", progress=None):
            self.names.append(name)
            return RegionGrowSegmenter() if name == "interactive-demo" else ThresholdSegmenter()

    loader = Loader()
    monkeypatch.setattr(registry, "default_registry", lambda: loader)
    img, upper, lower = _two_balls("oblique")
    path = write_image(img, tmp_path / "ct.nrrd")
    reply = WorkerState().handle({"protocol": 1, "id": "s1", "type": "segment", "image_path": str(path),
                                  "texts": ["round mass in the right lung"], "model": "threshold-test",
                                  "include_points": [list(_ras(LEFT_AT))], "output_dir": str(tmp_path / "out")},
                                 lambda m: None)
    assert reply["type"] == "result", reply
    assert loader.names == ["threshold-test", "interactive-demo"]
    mask = protocol.load_result(reply["result_path"]).segments[0].mask
    assert _dice(mask, upper) > 0.8 and not (mask & lower).any()
