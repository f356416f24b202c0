"""Model and weights faults, end to end through ``textlesionseg segment``: exit 3, one line naming
the fix, nothing written. The real registry is used (a site registry file named in the
environment), no function is patched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from TextLesionSegLib.cli import main
from TextLesionSegLib.worker import testing as tiny

TEXT = "round hyperdense mass in the right lung"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("robust")
    return {"site": tiny.write_test_registry(folder / "site", {"tiny": {}}).parent,
            "ct": tiny.write_phantom(folder / "ct.nrrd", size=24)}


@pytest.fixture()
def site(pristine, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the site registry for each fault, named in the environment."""
    copy = shutil.copytree(pristine["site"], tmp_path / "site")
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(copy / "test_registry.json"))
    monkeypatch.setenv("TEXTLESIONSEG_CACHE", str(tmp_path / "cache"))
    return copy


def _entry(site: Path, **changes) -> None:
    path = site / "test_registry.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["models"][0].update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def _weights(site: Path) -> Path:
    return site / "weights" / "tiny" / "model.safetensors"


def _tamper(site: Path) -> None:
    data = bytearray(_weights(site).read_bytes())
    data[-3] ^= 0x55
    _weights(site).write_bytes(bytes(data))


def _pickle(site: Path) -> None:
    import torch

    torch.save(tiny.build_module(tiny.DEFAULT_CONFIG).state_dict(), _weights(site))


FAULTS = {
    "missing weights": (lambda s: _weights(s).unlink(), "no trained weights for model 'tiny'"),
    "sha256 mismatch": (_tamper, "sha256 mismatch"),
    "truncated file": (lambda s: _weights(s).write_bytes(_weights(s).read_bytes()[:-100]), "truncated or altered"),
    "pickled checkpoint": (_pickle, "pickled PyTorch checkpoint"),
    "weights not matching config": (
        lambda s: (s / "weights/tiny/config.json").write_text(json.dumps({**tiny.DEFAULT_CONFIG, "channels": 7}), encoding="utf-8"),
        "do not match its config.json"),
    "incompatible registry entry": (lambda s: _entry(s, min_engine_version="42.0"), "needs TextLesionSeg >= 42.0"),
    "unknown architecture": (lambda s: _entry(s, architecture="future-net"), "unknown to TextLesionSeg"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_segment_refuses_bad_weights_with_exit_3(fault, site, pristine, tmp_path, capsys):
    damage, message = FAULTS[fault]
    damage(site)
    out = tmp_path / "out"
    out.mkdir()
    rc = main(["segment", str(pristine["ct"]), "--text", TEXT, "--model", "tiny", "--device", "cpu",
               "--output", str(out / "o.seg.nrrd"), "--report", str(out / "o.json")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 3, err
    assert len(lines) == 1 and "Traceback" not in err and message in lines[0], err
    assert list(out.iterdir()) == [], "nothing may be written when the model cannot load"


def test_the_same_site_registry_works_before_damage(site, pristine, tmp_path, capsys):
    """Control: the undamaged copy segments (so the refusals above are caused by the faults)."""
    rc = main(["segment", str(pristine["ct"]), "--text", TEXT, "--model", "tiny", "--device", "cpu",
               "--output", str(tmp_path / "o.seg.nrrd")])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "o.seg.nrrd").is_file()
