"""Worker protocol without a process: JSON lines, request checks, result files read back exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from TextLesionSegLib.errors import InputError
from TextLesionSegLib.pipeline.geometry import Image
from TextLesionSegLib.pipeline.result import LesionMeasurement, Result, SegmentResult
from TextLesionSegLib.query.types import LesionQuery
from TextLesionSegLib.worker import protocol


def _result(with_probability: bool = True) -> Result:
    rng = np.random.default_rng(0)
    theta = np.deg2rad(20)
    direction = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, -1.0]])
    image = Image(array=rng.integers(-1000, 400, (6, 7, 8)).astype(np.int16), spacing=(0.7, 0.8, 2.5),
                  origin=np.array([-10.0, 20.5, 3.0]), direction=direction, metadata={"modality": "CT", "path": "x.nrrd"})
    mask = np.zeros((6, 7, 8), np.uint8)
    mask[2:4, 3:5, 4:7] = 1
    lesion = LesionMeasurement(label=1, voxel_count=12, volume_ml=0.0168, longest_axial_mm=2.4, perpendicular_axial_mm=1.6,
                               longest_3d_mm=5.3, mean_hu=np.float32(12.5), sd_hu=3.0, centroid_ras=(1.0, -2.0, 3.5))
    query = LesionQuery(text="round hypodense lesion in the liver", organ="liver", shape="round-like",
                        density="hypodense", specific_features=["cyst"], size_mm=[12.0])
    seg = SegmentResult(name=query.text, mask=mask, query=query,
                        probability=rng.random((6, 7, 8)).astype(np.float32) if with_probability else None,
                        score=0.87, color=(0.1, 0.5, 0.9), terminology={"category": {"CodeValue": "49755003"}},
                        lesions=[lesion], predicted_attributes={"shape": ["round-like", 0.8]}, lesion_type="cyst")
    empty = SegmentResult(name="second", mask=np.zeros_like(mask))
    return Result(image=image, segments=[seg, empty], model_name="m", model_version="1.2",
                  timings={"inference": 1.5}, warnings=["a warning"])


def test_lines_round_trip_and_numpy_values_are_json_safe():
    line = protocol.encode({"type": "progress", "stage": "x", "fraction": np.float32(0.5), "n": np.int64(3)})
    assert line.endswith("\n") and line.count("\n") == 1
    assert protocol.decode(line) == {"type": "progress", "stage": "x", "fraction": 0.5, "n": 3}
    with pytest.raises(ValueError):
        protocol.decode("[1, 2]")
    with pytest.raises(ValueError):
        protocol.decode("not json")


@pytest.mark.parametrize("request_, message", [
    ({"protocol": 99, "type": "segment"}, "worker protocol 99"),
    ({"type": "explode"}, "unknown request type"),
    ({"type": "segment", "texts": ["x"]}, "no image_path"),
    ({"type": "segment", "image_path": "a.nrrd", "texts": []}, "at least one description"),
])
def test_bad_requests_are_input_errors(request_, message):
    with pytest.raises(InputError, match=message):
        protocol.check_request(request_)


def test_result_round_trip_is_exact(tmp_path):
    result = _result()
    path = protocol.save_result(result, tmp_path / "out" / "r1")
    assert path == tmp_path / "out" / "r1.json" and path.with_suffix(".npz").is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["r1.json", "r1.npz"], "no temporary file may remain"
    back = protocol.load_result(path, image=result.image)
    assert back.image is not result.image and back.image.array is result.image.array
    np.testing.assert_allclose(back.image.direction, result.image.direction)
    np.testing.assert_allclose(back.image.origin, result.image.origin)
    assert back.image.spacing == result.image.spacing and back.image.metadata == result.image.metadata
    assert (back.model_name, back.model_version, back.timings, back.warnings) == ("m", "1.2", {"inference": 1.5}, ["a warning"])
    a, b = result.segments[0], back.segments[0]
    assert b.mask.dtype == np.uint8 and np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.probability, b.probability)
    assert (b.name, b.score, b.color, b.terminology, b.lesion_type) == (a.name, a.score, a.color, a.terminology, a.lesion_type)
    assert b.query == a.query and b.lesions[0] == a.lesions[0]
    assert back.segments[1].probability is None and not back.segments[1].mask.any()
    assert json.loads(path.read_text(encoding="utf-8"))["image"]["stored"] is False


def test_voxels_stored_on_request_or_omitted_without_memory(tmp_path):
    result = _result(with_probability=False)
    stored = protocol.load_result(protocol.save_result(result, tmp_path / "a.json", include_image=True))
    assert np.array_equal(stored.image.array, result.image.array)
    omitted = protocol.load_result(protocol.save_result(result, tmp_path / "b.json"))
    assert omitted.image.array.shape == (6, 7, 8) and omitted.image.metadata["voxels_omitted"] is True
    assert omitted.image.array.strides == (0, 0, 0) and not omitted.image.array.flags.writeable
    wrong = Image(array=np.zeros((2, 2, 2), np.int16))
    with pytest.raises(InputError, match="does not match"):
        protocol.load_result(tmp_path / "b.json", image=wrong)


def test_unreadable_result_is_an_input_error(tmp_path):
    (tmp_path / "x.json").write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(InputError, match="cannot read worker result|not a TextLesionSeg result"):
        protocol.load_result(tmp_path / "x.json")
    with pytest.raises(InputError, match="cannot read worker result"):
        protocol.load_result(tmp_path / "missing.json")


def test_worker_popen_options_hide_the_console_on_windows_only():
    """PythonSlicer is a console program: without CREATE_NO_WINDOW a black window pops up on Windows."""
    import subprocess

    from TextLesionSegLib.worker.client import popen_options

    windows = popen_options("win32")
    assert set(windows) == {"creationflags"}  # start_new_session is POSIX-only
    assert windows["creationflags"] & 0x08000000  # CREATE_NO_WINDOW
    assert windows["creationflags"] & 0x00000200  # CREATE_NEW_PROCESS_GROUP (kept from before)
    if hasattr(subprocess, "CREATE_NO_WINDOW"):  # on Windows: the constants are the real ones
        assert windows["creationflags"] == subprocess.CREATE_NO_WINDOW | subprocess.CREATE_NEW_PROCESS_GROUP
    for posix in ("linux", "darwin"):
        assert popen_options(posix) == {"start_new_session": True}  # cancel kills the whole group
