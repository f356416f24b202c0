"""Model registry: safe weights (bundled, downloaded from file://, imported), refusals with the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from TextLesionSegLib.errors import ModelError
from TextLesionSegLib.models import registry as reg
from TextLesionSegLib.models.registry import CACHE_MARKER, Registry
from TextLesionSegLib.worker import testing as tiny


@pytest.fixture()
def tiny_registry(tmp_path: Path) -> tuple[Path, Path]:
    """A registry file with one bundled tiny model, and an empty cache folder."""
    path = tiny.write_test_registry(tmp_path / "site", {"tiny": {}})
    return path, tmp_path / "cache"


def _rewrite(path: Path, **changes) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    entry = data["models"][0]
    for key, value in changes.items():
        if key.startswith("weights."):
            entry["weights"][key.split(".", 1)[1]] = value
        else:
            entry[key] = value
    path.write_text(json.dumps(data), encoding="utf-8")


def _url_entry(tmp_path: Path, registry_path: Path, sha256: str | None = None) -> Path:
    """Move the tiny weights out of the registry folder and register them by file:// URL."""
    data = json.loads(registry_path.read_text(encoding="utf-8"))
    entry = data["models"][0]
    served = tmp_path / "server"
    served.mkdir()
    source = registry_path.parent / entry["weights"]["path"]
    (served / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    entry["weights"] = {
        "url": (served / "model.safetensors").as_uri(),
        "sha256": sha256 or entry["weights"]["sha256"],
        "size": entry["weights"]["size"],
        "config": config,
    }
    out = tmp_path / "url_registry.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


def test_bundled_model_loads_and_predicts(tiny_registry):
    import torch

    path, cache = tiny_registry
    registry = Registry([path], cache_dir=cache)
    assert [e.name for e in registry.list_models()] == ["tiny"]
    assert registry.weights_status("tiny").state == "bundled"
    segmenter = registry.load_segmenter("tiny", "cpu")
    assert isinstance(segmenter, tiny.TinySegmenter) and segmenter.name == "tiny"
    volume = torch.zeros(1, 1, 8, 20, 20)
    volume[..., 2:6, 5:12, 5:12] = 1.0
    prob = segmenter.predict(volume, ["a", "b"], tiny.InferenceSettings())
    assert prob.shape == (2, 8, 20, 20)
    assert prob[0, 4, 8, 8] > 0.9 and prob[0, 0, 0, 0] < 0.1
    assert not cache.exists(), "a bundled model must not write to the cache"


def test_download_from_file_url_with_progress_then_cache_deletion(tmp_path, tiny_registry):
    path, cache = tiny_registry
    registry = Registry([_url_entry(tmp_path, path)], cache_dir=cache)
    assert registry.weights_status("tiny").state == "downloadable"
    seen: list[float | None] = []
    segmenter = registry.load_segmenter("tiny", "cpu", progress=lambda stage, f: seen.append(f))
    assert isinstance(segmenter, tiny.TinySegmenter)
    assert seen and seen[-2] == pytest.approx(1.0)  # download reached 100 %, then "Loading model"
    status = registry.weights_status("tiny")
    assert status.state == "cached" and status.path == cache / "tiny-v0.0.1"
    assert sorted(p.name for p in status.path.iterdir()) == [CACHE_MARKER, "config.json", "model.safetensors"]
    removed = registry.clear_cache("tiny")
    assert removed == [cache / "tiny-v0.0.1"] and not removed[0].exists()
    assert registry.weights_status("tiny").state == "downloadable"
    registry.ensure_weights("tiny")
    assert registry.clear_cache() == [cache / "tiny-v0.0.1"]


def test_download_with_wrong_sha256_is_refused_and_leaves_nothing(tmp_path, tiny_registry):
    path, cache = tiny_registry
    registry = Registry([_url_entry(tmp_path, path, sha256="0" * 64)], cache_dir=cache)
    with pytest.raises(ModelError, match="sha256 check; refused"):
        registry.load_segmenter("tiny", "cpu")
    assert not cache.exists() or not any(cache.rglob("*")), "no partial download may remain"


def test_unreachable_url_names_the_offline_fix(tmp_path, tiny_registry):
    path, cache = tiny_registry
    url_registry = _url_entry(tmp_path, path)
    (tmp_path / "server" / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="models --import"):
        Registry([url_registry], cache_dir=cache).ensure_weights("tiny")
    assert not cache.exists() or not any(cache.rglob("*"))


def test_tampered_and_truncated_weights_are_refused(tiny_registry):
    path, cache = tiny_registry
    weights = path.parent / "weights" / "tiny" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, one bit pattern changed in the tensor data
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 mismatch.*altered"):
        Registry([path], cache_dir=cache).load_segmenter("tiny")
    weights.write_bytes(bytes(data[:-10]))
    with pytest.raises(ModelError, match="truncated or altered"):
        Registry([path], cache_dir=cache).load_segmenter("tiny")


def test_pickled_checkpoints_are_refused(tmp_path, tiny_registry):
    import torch

    path, cache = tiny_registry
    registry = Registry([path], cache_dir=cache)
    pickled = tmp_path / "model.pt"
    torch.save(tiny.build_module(tiny.DEFAULT_CONFIG).state_dict(), pickled)
    with pytest.raises(ModelError, match="pickled PyTorch checkpoint"):
        registry.import_local_weights("tiny", pickled)
    # A pickle renamed to .safetensors is recognised by its content, before any hashing.
    (path.parent / "weights" / "tiny" / "model.safetensors").write_bytes(pickled.read_bytes())
    with pytest.raises(ModelError, match="pickled PyTorch checkpoint"):
        registry.load_segmenter("tiny")


def test_weights_not_matching_config_name_the_fix(tiny_registry):
    path, cache = tiny_registry
    config = path.parent / "weights" / "tiny" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text(encoding="utf-8")), "channels": 5}))
    with pytest.raises(ModelError, match="do not match its config.json.*re-download"):
        Registry([path], cache_dir=cache).load_segmenter("tiny")


def test_incompatible_entry_and_unknown_names(tiny_registry):
    path, cache = tiny_registry
    _rewrite(path, min_engine_version="99.1")
    with pytest.raises(ModelError, match=r"needs TextLesionSeg >= 99.1 .*update the extension"):
        Registry([path], cache_dir=cache).load_segmenter("tiny")
    _rewrite(path, min_engine_version=None, architecture="transformer-2031")
    with pytest.raises(ModelError, match="architecture 'transformer-2031', unknown"):
        Registry([path], cache_dir=cache).load_segmenter("tiny")
    with pytest.raises(ModelError, match=r"unknown model 'nope' \(known models: tiny\)"):
        Registry([path], cache_dir=cache).get_entry("nope")


def test_missing_weights_and_empty_registry_say_no_trained_model(tmp_path, tiny_registry):
    path, cache = tiny_registry
    _rewrite(path, **{"weights.path": "weights/never-trained"})
    registry = Registry([path], cache_dir=cache)
    assert registry.weights_status("tiny").state == "missing"
    with pytest.raises(ModelError, match="no trained weights for model 'tiny'.*--import tiny"):
        registry.load_segmenter("tiny")
    empty = tmp_path / "empty.json"
    empty.write_text('{"models": []}', encoding="utf-8")
    with pytest.raises(ModelError, match="no trained model is registered yet"):
        Registry([empty], cache_dir=cache).load_segmenter("malenia-demo")


def test_import_local_weights_for_offline_sites(tmp_path, tiny_registry):
    path, cache = tiny_registry
    url_registry = _url_entry(tmp_path, path)
    registry = Registry([url_registry], cache_dir=cache)
    target = registry.import_local_weights("tiny", tmp_path / "server" / "model.safetensors")
    assert target == cache / "tiny-v0.0.1" and registry.weights_status("tiny").state == "cached"
    registry.load_segmenter("tiny")
    other = tiny.make_weights(tmp_path / "other", channels=3)
    with pytest.raises(ModelError, match="sha256 differs"):
        registry.import_local_weights("tiny", other / "model.safetensors")


def test_extra_registry_from_environment(monkeypatch, tiny_registry):
    path, cache = tiny_registry
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(path))
    monkeypatch.setenv("TEXTLESIONSEG_CACHE", str(cache))
    assert "tiny" in [e.name for e in reg.list_models()]
    assert reg.default_registry().cache_dir == cache
    assert isinstance(reg.load_segmenter("tiny", "cpu"), tiny.TinySegmenter)


def test_cache_is_per_user_never_the_install_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("TEXTLESIONSEG_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert reg.default_cache_dir() == tmp_path / "xdg" / "textlesionseg" / "models"
    package = Path(reg.__file__).resolve().parents[1]
    assert package not in reg.default_cache_dir().resolve().parents


def test_a_download_killed_midway_leaves_no_lasting_debris(tmp_path, tiny_registry):
    """A cancel kills the worker during a download: its .part file is removed by the next download."""
    import subprocess
    import sys

    path, cache = tiny_registry
    registry = Registry([_url_entry(tmp_path, path)], cache_dir=cache)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    target = registry.cached_dir(registry.get_entry("tiny"))
    target.mkdir(parents=True)
    stale = target / f"model.safetensors.{int(dead.stdout)}.part"
    stale.write_bytes(b"half a download")
    registry.ensure_weights("tiny")
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
