"""``textlesionseg info``: geometry (LPS and IJK->RAS), HU statistics, CT or not."""

from __future__ import annotations

import json

import numpy as np

from test_engine_helpers import DIRECTIONS, grid_image
from TextLesionSegLib.cli import main
from TextLesionSegLib.pipeline.io import write_image


def test_info_lung2(shared_data, capsys):
    assert main(["info", str(shared_data / "lung2_image.nrrd"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["size_ijk"] == [512, 512, 61]
    np.testing.assert_allclose(info["spacing_mm"], [0.627, 0.627, 5.0], atol=1e-3)
    assert info["looks_like_ct"] is True
    m = np.array(info["ijk_to_ras"])
    np.testing.assert_allclose(np.diag(m)[:3], [-0.627, -0.627, 5.0], atol=1e-3)
    assert main(["info", str(shared_data / "lung2_image.nrrd")]) == 0
    text = capsys.readouterr().out
    assert "512 x 512 x 61" in text and "0.627 x 0.627 x 5 mm" in text and "looks like CT: yes" in text


def test_info_brain_is_not_ct(shared_data, capsys):
    assert main(["info", str(shared_data / "brain1_image.nrrd"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["looks_like_ct"] is False


def test_info_ctchest(ctchest_path, capsys):
    assert main(["info", str(ctchest_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["size_ijk"] == [128, 128, 34] and info["looks_like_ct"] is True
    assert info["intensity"]["min"] < -900


def test_info_oblique_matrix(tmp_path, capsys):
    img = grid_image((5, 6, 7), (0.5, 0.7, 3.0), DIRECTIONS["oblique"], (10, 20, 30), fill=-1000.0)
    img.array[2, 3, 3] = 100
    path = write_image(img, tmp_path / "o.nii.gz")
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(np.array(info["ijk_to_ras"]), img.ijk_to_ras(), atol=1e-4)
    np.testing.assert_allclose(np.array(info["direction_lps"]), img.direction, atol=1e-5)


def test_info_missing_file(tmp_path, capsys):
    assert main(["info", str(tmp_path / "none.nrrd")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
