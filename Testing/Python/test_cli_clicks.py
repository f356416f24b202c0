"""``textlesionseg segment --include-point/--exclude-point``: RAS points (negative numbers with
``=``), points alone segment the clicked lesion, bad points exit 2 with one line and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from test_cli_segment import _fails
from test_engine_helpers import add_ellipsoid, grid_image
from TextLesionSegLib.cli import main
from TextLesionSegLib.models import registry
from TextLesionSegLib.models.interactive.region_grow import RegionGrowSegmenter
from TextLesionSegLib.pipeline.io import write_image

LESION_LPS = np.array([6.0, 4.0, 2.0])  # RAS (-6, -4, 2): the point starts with a minus sign
OTHER_LPS = np.array([-8.0, -6.0, -4.0])


@pytest.fixture(scope="module")
def ct_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ct")
    img = grid_image((24, 48, 48), (0.9, 0.9, 2.0), np.diag([-1.0, 1.0, 1.0]), (0, 0, 0), fill=-1000.0)
    add_ellipsoid(img, (0, 0, 0), (20, 20, 60), 0.0)
    add_ellipsoid(img, LESION_LPS, (6, 6, 6), 200.0)
    add_ellipsoid(img, OTHER_LPS, (4, 4, 4), 200.0)
    return write_image(img.with_array(img.array.astype(np.int16)), d / "ct.nrrd")


@pytest.fixture
def loaded(monkeypatch):
    names: list[str] = []

    def load(name, device="cpu", progress=None):
        names.append(name)
        return RegionGrowSegmenter()

    monkeypatch.setattr(registry, "load_segmenter", load)
    return names


def test_points_alone_write_the_clicked_lesion(ct_file, tmp_path, loaded, capsys):
    out, report = tmp_path / "o.seg.nrrd", tmp_path / "o.json"
    rc = main(["segment", str(ct_file), "--include-point=-6,-4,2", "--exclude-point", "8,6,-4",
               "--output", str(out), "--report", str(report), "-q"])
    assert rc == 0, capsys.readouterr().err
    assert loaded == ["interactive-demo"]  # the default click model was asked for
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    data = json.loads(report.read_text(encoding="utf-8"))
    assert [s["name"] for s in data["segments"]] == ["Clicked lesion"]
    lesion = data["segments"][0]["lesions"][0]
    # 6 mm ball: about 0.9 mL, centred at the clicked RAS point
    assert 0.6 < lesion["volume_ml"] < 1.2 and seg.any()
    np.testing.assert_allclose(lesion["centroid_ras"], [-6.0, -4.0, 2.0], atol=1.5)


@pytest.mark.parametrize("argv, match", [
    (["--include-point", "1,2"], "is not R,A,S"),
    (["--include-point=a,b,c"], "is not R,A,S"),
    (["--include-point=0,0,500"], "lies outside the image"),
    (["--include-point=-6,-4,2", "--exclude-point=0,900,0"], "lies outside the image"),
    (["--exclude-point=8,6,-4"], "needs an --include-point"),
    (["--include-point", "-6,-4,2"], "expected one argument"),  # argparse: write --include-point=-6,...
    (["--include-point=-6,-4,2", "--find-lesions"], "prompt-free"),
])
def test_bad_points_exit_2_with_one_line_and_write_nothing(ct_file, tmp_path, loaded, capsys, argv, match):
    out = tmp_path / "o.seg.nrrd"
    _fails(capsys, ["segment", str(ct_file), "--output", str(out), *argv], match)
    assert not out.exists() and loaded == []


def test_without_registered_click_weights_points_exit_3_saying_so(ct_file, tmp_path, capsys, monkeypatch):
    """A site whose registry lacks the default click model (or a version before one shipped)."""
    real = registry.default_registry

    def without_click_model():
        reg = real()
        reg.entries.pop("interactive-demo", None)
        return reg

    monkeypatch.setattr(registry, "default_registry", without_click_model)
    out = tmp_path / "o.seg.nrrd"
    _fails(capsys, ["segment", str(ct_file), "--include-point=-6,-4,2", "--output", str(out)],
           "no click model is registered", code=3)
    assert not out.exists()


def test_a_weights_folder_is_a_model_and_a_click_model(ct_file, tmp_path, monkeypatch, capsys):
    """An unregistered weights folder (a training run's best/) loads by its path wherever a model is
    named: ``--click-model``, ``--model``, the Python API; a registry name wins over a folder of that name."""
    from TextLesionSegLib.models.interactive.model import InteractiveNet
    from TextLesionSegLib.models.interactive.segmenter import InteractiveSegmenter

    folder = tmp_path / "run" / "best"
    InteractiveNet({"channels": [4, 8], "strides": [2]}).save_pretrained(folder)
    model = registry.load_segmenter(str(folder))
    assert isinstance(model, InteractiveSegmenter) and model.name == "run-best"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lsms-demo").mkdir()  # a folder named like a registered model: the registry's model loads
    assert registry.load_segmenter("lsms-demo").name == "lsms-demo"
    out = tmp_path / "o.seg.nrrd"
    rc = main(["segment", str(ct_file), "--include-point=-6,-4,2", "--click-model", str(folder), "-o", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err  # an untrained net may find nothing; it loaded and ran
