"""``textlesionseg models``: listing, JSON, card path, download/import/clear, hash, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from TextLesionSegLib.cli import main
from TextLesionSegLib.models.registry import sha256_file
from TextLesionSegLib.worker import testing as tiny


@pytest.fixture()
def site(tmp_path: Path, monkeypatch) -> Path:
    """A site registry with a bundled model (with a card) and a file:// one, via the environment."""
    path = tiny.write_test_registry(tmp_path / "site", {"tiny": {}, "remote": {}})
    data = json.loads(path.read_text(encoding="utf-8"))
    (path.parent / "tiny.md").write_text("# tiny\n[chosen] a mean filter, not a lesion model\n", encoding="utf-8")
    data["models"][0]["card"] = "tiny.md"
    remote = data["models"][1]
    source = path.parent / remote["weights"].pop("path")
    remote["weights"]["url"] = (source / "model.safetensors").as_uri()
    remote["weights"]["config"] = json.loads((source / "config.json").read_text(encoding="utf-8"))
    path.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(path))
    monkeypatch.setenv("TEXTLESIONSEG_CACHE", str(tmp_path / "cache"))
    return path


def test_list_shows_state_licence_size_and_card(site, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    tiny_line = next(line for line in out.splitlines() if line.startswith("tiny "))
    assert "Apache-2.0" in tiny_line and "weights: bundled" in tiny_line and "kB" in tiny_line
    assert f"card: {(site.parent / 'tiny.md').resolve()}" in out
    assert "weights: downloadable" in next(line for line in out.splitlines() if line.startswith("remote "))
    assert main(["models", "tiny"]) == 0
    assert "[chosen] a mean filter" in capsys.readouterr().out


def test_json_download_clear_and_import(site, tmp_path, capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert rows["remote"]["weights"] == "downloadable" and rows["tiny"]["weights"] == "bundled"
    assert rows["tiny"]["size"] == (site.parent / "weights/tiny/model.safetensors").stat().st_size
    assert main(["models", "--download", "remote"]) == 0
    capsys.readouterr()
    assert main(["models", "--json", "remote"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["weights"] == "cached"
    assert main(["models", "--clear-cache"]) == 0
    assert "deleted 1 downloaded" in capsys.readouterr().out
    assert not (tmp_path / "cache" / "remote-v0.0.1").exists()
    assert main(["models", "--import", "remote", str(site.parent / "weights/remote/model.safetensors")]) == 0
    assert (tmp_path / "cache" / "remote-v0.0.1" / "model.safetensors").is_file()


def test_hash_prints_the_entry_fields(site, capsys):
    weights = site.parent / "weights" / "tiny"
    assert main(["models", "--hash", str(weights), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"sha256": sha256_file(weights / "model.safetensors"), "size": (weights / "model.safetensors").stat().st_size}


def test_errors_are_one_line_with_exit_codes(site, tmp_path, capsys):
    assert main(["models", "no-such-model"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "known models: " in err and "tiny, remote)" in err
    assert main(["models", "--hash", str(tmp_path / "absent")]) == 2
    pickled = tmp_path / "w.pth"
    pickled.write_bytes(b"\x80\x04junk")
    assert main(["models", "--import", "tiny", str(pickled)]) == 3
    assert "pickled PyTorch checkpoint" in capsys.readouterr().err
