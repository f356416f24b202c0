"""``textlesionseg segment``: every bad input exits 2 with one line, no traceback, nothing written;
a good run (with a deterministic test segmenter standing in for a registered model) writes
outputs Slicer reads; no model -> exit 3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from test_engine_helpers import add_ellipsoid, grid_image
from test_engine_run import ThresholdSegmenter
from TextLesionSegLib.cli import main
from TextLesionSegLib.models import registry
from TextLesionSegLib.pipeline.io import write_image

TEXT = "round hyperdense mass in the right lung"


@pytest.fixture(scope="module")
def ct_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ct")
    img = grid_image((24, 48, 48), (0.9, 0.9, 2.0), np.eye(3), (0, 0, 0), fill=-1000.0)
    add_ellipsoid(img, (0, 0, 0), (20, 20, 60), 0.0)
    add_ellipsoid(img, (-5, 4, 2), (7, 7, 7), 200.0)
    return write_image(img.with_array(img.array.astype(np.int16)), d / "ct.nrrd")


@pytest.fixture
def test_model(monkeypatch):
    model = ThresholdSegmenter()
    monkeypatch.setattr(registry, "load_segmenter", lambda name, device="cpu", progress=None: model)
    monkeypatch.setattr(registry, "default_model_name", lambda *a, **k: "threshold-test")
    return model


def _fails(capsys, argv, match, code=2):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse usage errors exit from parse_args
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]


def _outputs(tmp_path):
    return ["--output", str(tmp_path / "o.seg.nrrd"), "--labelmap", str(tmp_path / "o.nii.gz"),
            "--report", str(tmp_path / "o.json"), "--overlay", str(tmp_path / "o.png")]


def _bad_images(tmp_path) -> dict[str, tuple[Path, str]]:
    out = {}
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    out["not an image"] = (tmp_path / "notes.txt", "not an image")
    out["missing"] = (tmp_path / "nope.nrrd", "no such file")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((20, 30), np.int16)), str(tmp_path / "two.nrrd"))
    out["2D"] = (tmp_path / "two.nrrd", "2D image")
    vol = sitk.GetImageFromArray(np.zeros((4, 20, 30), np.int16))
    sitk.WriteImage(sitk.JoinSeries([vol, vol]), str(tmp_path / "four.nrrd"))
    out["4D"] = (tmp_path / "four.nrrd", "4D image")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 20, 30, 3), np.uint8), isVector=True), str(tmp_path / "rgb.mha"))
    out["RGB"] = (tmp_path / "rgb.mha", "RGB")
    const = grid_image((8, 20, 20), (1, 1, 1), np.eye(3), (0, 0, 0), fill=-1000.0)
    out["constant"] = (write_image(const, tmp_path / "const.nrrd"), "constant")
    nan = grid_image((8, 20, 20), (1, 1, 1), np.eye(3), (0, 0, 0), fill=np.nan)
    out["all NaN"] = (write_image(nan, tmp_path / "nan.nrrd"), "NaN")
    mr = grid_image((8, 20, 20), (1, 1, 1), np.eye(3), (0, 0, 0), fill=0.0)
    mr.array[:] = np.random.default_rng(0).uniform(0, 800, mr.array.shape)
    out["MR-like"] = (write_image(mr, tmp_path / "mr.nrrd"), "trained on CT")
    good = write_image(grid_image((20, 30, 30), (1, 1, 1), np.eye(3), (0, 0, 0)), tmp_path / "g.nrrd")
    (tmp_path / "trunc.nrrd").write_bytes(good.read_bytes()[:300])
    out["truncated"] = (tmp_path / "trunc.nrrd", "truncated")
    (np.arange(1000) - 500).astype("<i2").tofile(tmp_path / "shear.raw")
    (tmp_path / "shear.nhdr").write_text(
        "NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 10 10 10\n"
        "space directions: (1,0,0) (0.5,1,0) (0,0,1)\nspace origin: (0,0,0)\nendian: little\nencoding: raw\n"
        "data file: shear.raw\n")
    out["sheared"] = (tmp_path / "shear.nhdr", "not orthonormal")
    return out


def test_bad_images_exit_2_nothing_written(tmp_path, capsys, test_model):
    outdir = tmp_path / "out"
    outdir.mkdir()
    for label, (path, match) in _bad_images(tmp_path).items():
        _fails(capsys, ["segment", str(path), "--text", TEXT] + _outputs(outdir), match)
        assert list(outdir.iterdir()) == [], label
    assert test_model.windows == 0  # the model never ran


def test_bad_options_exit_2(tmp_path, capsys, ct_file, test_model):
    out = ["--output", str(tmp_path / "o.seg.nrrd")]
    img = str(ct_file)
    _fails(capsys, ["segment", img] + out, "no description")
    _fails(capsys, ["segment", img, "--text", "   "] + out, "empty")
    _fails(capsys, ["segment", img, "--text", "no lesion"] + out, "no lesion")
    _fails(capsys, ["segment", img, "--text-file", str(tmp_path / "none.txt")] + out, "not found")
    _fails(capsys, ["segment", img, "--text", TEXT, "--output", str(tmp_path / "o.nrrd")], ".seg.nrrd")
    _fails(capsys, ["segment", img, "--text", TEXT, "--output", str(tmp_path / "no" / "o.seg.nrrd")], "does not exist")
    _fails(capsys, ["segment", img, "--text", TEXT, "--threshold", "1.5"] + out, "--threshold")
    _fails(capsys, ["segment", img, "--text", TEXT, "--device", "tpu"] + out, "unknown device")
    _fails(capsys, ["segment", img, "--text", TEXT, "--labelmap", str(tmp_path / "o.seg.nrrd")] + out, "same file")
    _fails(capsys, ["segment", img, "--find-lesions", "--text", TEXT] + out, "prompt-free")
    _fails(capsys, ["segment", img, "--text", TEXT, "--bogus"] + out, "unrecognized arguments")
    (tmp_path / "o.seg.nrrd").write_bytes(b"user data")
    _fails(capsys, ["segment", img, "--text", TEXT] + out, "exists")
    assert (tmp_path / "o.seg.nrrd").read_bytes() == b"user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.seg.nrrd"]
    assert test_model.windows == 0


def test_good_run_writes_everything(tmp_path, capsys, ct_file, test_model):
    import slicerio

    (tmp_path / "texts.txt").write_text("cyst in the left kidney\n\n", encoding="utf-8")
    rc = main(["segment", str(ct_file), "--text", TEXT, "--text-file", str(tmp_path / "texts.txt"), "--device", "cpu",
               "--quiet"] + _outputs(tmp_path))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert test_model.windows > 0
    seg = slicerio.read_segmentation(str(tmp_path / "o.seg.nrrd"))
    assert [s["name"] for s in seg["segments"]] == [TEXT, "cyst in the left kidney"]
    rep = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))
    lesion = rep["segments"][0]["lesions"][0]
    assert abs(lesion["volume_ml"] - 4 / 3 * np.pi * 7**3 / 1000) < 0.25 * 4 / 3 * np.pi * 7**3 / 1000
    assert (tmp_path / "o.png").stat().st_size > 1000 and (tmp_path / "o.nii.gz").exists()
    assert TEXT in captured.out
    # the same command again refuses to overwrite, then --overwrite replaces
    _fails(capsys, ["segment", str(ct_file), "--text", TEXT, "--quiet"] + _outputs(tmp_path), "exists")
    assert main(["segment", str(ct_file), "--text", TEXT, "--quiet", "--overwrite"] + _outputs(tmp_path)) == 0


def test_write_failure_removes_new_outputs(tmp_path, capsys, ct_file, test_model, monkeypatch):
    from TextLesionSegLib.pipeline import outputs

    def broken(result, path, overwrite=False):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_report", broken)
    rc = main(["segment", str(ct_file), "--text", TEXT, "--quiet"] + _outputs(tmp_path))
    assert rc != 0
    assert list(tmp_path.iterdir()) == []


def test_non_ct_needs_flag(tmp_path, capsys, test_model):
    mr = grid_image((8, 30, 30), (1, 1, 1), np.eye(3), (0, 0, 0), fill=0.0)
    mr.array[:] = np.random.default_rng(0).uniform(0, 800, mr.array.shape)
    path = write_image(mr, tmp_path / "mr.nrrd")
    out = ["--output", str(tmp_path / "o.seg.nrrd"), "--quiet"]
    _fails(capsys, ["segment", str(path), "--text", TEXT] + out, "--allow-non-ct")
    rc = main(["segment", str(path), "--text", TEXT, "--allow-non-ct"] + out)
    assert rc == 0 and "trained on CT" in capsys.readouterr().err


def test_brain_mr_refused(shared_data, tmp_path, capsys, test_model):
    _fails(capsys, ["segment", str(shared_data / "brain1_image.nrrd"), "--text", TEXT, "--output",
                    str(tmp_path / "o.seg.nrrd")], "models were trained on CT")
    assert list(tmp_path.iterdir()) == []


def test_no_model_exit_3(tmp_path, ct_file):
    """Real console script, no monkeypatching: an unknown model is a model problem (exit 3)."""
    proc = subprocess.run([sys.executable, "-m", "TextLesionSegLib.cli", "segment", str(ct_file), "--text", TEXT,
                           "--model", "no-such-model", "--output", str(tmp_path / "o.seg.nrrd")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and "no-such-model" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_not_enough_memory_exit_4(tmp_path, capsys, ct_file, test_model, monkeypatch):
    from TextLesionSegLib.pipeline import validate

    monkeypatch.setattr(validate, "available_memory_bytes", lambda: 64 * 2**20)
    _fails(capsys, ["segment", str(ct_file), "--text", TEXT, "--output", str(tmp_path / "o.seg.nrrd")],
           "GiB is available", code=4)
    assert list(tmp_path.iterdir()) == [] and test_model.windows == 0


def test_dicom_folder_with_two_series(tmp_path, capsys, test_model):
    from test_engine_io import write_dicom_series

    rng = np.random.default_rng(3)
    for uid, z in (("1.2.826.0.1.3680043.8.498.11", 0.0), ("1.2.826.0.1.3680043.8.498.22", 100.0)):
        ct = rng.integers(-1000, 300, size=(8, 32, 32)).astype(np.int16)
        write_dicom_series(tmp_path / "dicom", ct, (1.0, 1.0, 2.0), (0.0, 0.0, z), uid)
    out = ["--output", str(tmp_path / "o.seg.nrrd"), "--quiet"]
    _fails(capsys, ["segment", str(tmp_path / "dicom"), "--text", TEXT] + out, "2 DICOM series")
    rc = main(["segment", str(tmp_path / "dicom"), "--series-uid", "1.2.826.0.1.3680043.8.498.22", "--text", TEXT] + out)
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "o.seg.nrrd").exists()
