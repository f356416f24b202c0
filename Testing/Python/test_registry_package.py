"""The shipped ``registry.json`` itself: well-formed entries, known architectures, weights that verify."""

from __future__ import annotations

import json

import pytest

from TextLesionSegLib.models import registry as reg

REQUIRED = ("name", "architecture", "version", "description", "license", "card", "weights")


def _entries() -> list[dict]:
    return json.loads(reg.REGISTRY_FILE.read_text(encoding="utf-8"))["models"]


def test_registry_file_is_well_formed():
    data = json.loads(reg.REGISTRY_FILE.read_text(encoding="utf-8"))
    assert isinstance(data.get("models"), list)
    names = [e["name"] for e in data["models"]]
    assert len(names) == len(set(names)), "model names must be unique"
    for entry in data["models"]:
        missing = [k for k in REQUIRED if k not in entry]
        assert not missing, f"entry {entry.get('name')} lacks {missing}"
        weights = entry["weights"]
        assert ("path" in weights) != ("url" in weights), f"{entry['name']}: weights need exactly one of path/url"
        assert len(weights.get("sha256", "")) == 64 and int(weights.get("size", 0)) > 0, entry["name"]
        assert entry["architecture"] in reg.ARCHITECTURES, f"{entry['name']}: unknown architecture"
        assert not str(weights.get("path", weights.get("url"))).lower().endswith(reg.PICKLE_SUFFIXES)


@pytest.mark.parametrize("name", [e["name"] for e in _entries() if "path" in e["weights"]])
def test_bundled_weights_verify(name):
    """Bundled weights match their sha256 and size (a model owner forgot to update the entry otherwise)."""
    registry = reg.default_registry()
    entry = registry.get_entry(name)
    status = registry.weights_status(name)
    if status.state == "missing":
        pytest.skip(f"{name}: weights not committed yet ({status.detail})")
    registry.verify(entry, status.path)
    card = registry.model_card(name)
    assert card["card_path"], f"{name}: model card {entry.card} not found"


def test_empty_or_weightless_registry_says_no_trained_model(tmp_path):
    """While nothing is trained, asking for the default model is a clear ModelError (exit 3)."""
    empty = tmp_path / "empty.json"
    empty.write_text('{"models": []}', encoding="utf-8")
    with pytest.raises(reg.ModelError, match="no trained model is available yet") as info:
        reg.default_model_name(reg.Registry([empty], cache_dir=tmp_path / "cache"))
    assert info.value.exit_code == 3
    weightless = tmp_path / "weightless.json"
    weightless.write_text(json.dumps({"models": [{
        "name": "m", "architecture": "malenia", "version": "1", "weights": {"path": "nowhere", "sha256": "0" * 64, "size": 1},
    }]}), encoding="utf-8")
    with pytest.raises(reg.ModelError, match="registered models have no weights"):
        reg.default_model_name(reg.Registry([weightless], cache_dir=tmp_path / "cache"))


def test_default_model_prefers_text_guided_models(tmp_path):
    """With a baseline listed first, the default is still the text-guided model with weights."""
    def entry(name, arch, path):
        return {"name": name, "architecture": arch, "version": "1", "weights": {"path": path, "sha256": "0" * 64, "size": 1}}

    for name in ("have-unet", "have-malenia"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"x")
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"models": [entry("unet-demo", "unet", "have-unet"), entry("lsms-demo", "lsms", "absent"),
                                           entry("malenia-demo", "malenia", "have-malenia")]}), encoding="utf-8")
    assert reg.default_model_name(reg.Registry([path], cache_dir=tmp_path / "c")) == "malenia-demo"
    (tmp_path / "have-lsms").mkdir()
    (tmp_path / "have-lsms" / "model.safetensors").write_bytes(b"x")
    with_lsms = json.loads(path.read_text(encoding="utf-8"))
    with_lsms["models"][1]["weights"]["path"] = "have-lsms"
    (tmp_path / "r2.json").write_text(json.dumps(with_lsms), encoding="utf-8")
    both = reg.Registry([tmp_path / "r2.json"], cache_dir=tmp_path / "c")
    assert reg.default_model_name(both) == "lsms-demo"  # the measured better demo leads
    assert reg.default_model_name(both, prompt_free=True) == "malenia-demo"  # LSMS cannot find lesions unprompted
    data = json.loads(path.read_text(encoding="utf-8"))
    data["models"] = data["models"][:2]
    path.write_text(json.dumps(data), encoding="utf-8")
    assert reg.default_model_name(reg.Registry([path], cache_dir=tmp_path / "c")) == "unet-demo"  # only a baseline left


def test_the_shipped_default_is_text_guided_when_one_is_bundled():
    registry = reg.default_registry()
    usable = [e for e in registry.list_models() if registry.weights_status(e.name).state != "missing"]
    if not any(e.architecture in reg.DEFAULT_PREFERENCE for e in usable):
        pytest.skip("no text-guided model with weights is registered yet")
    assert registry.get_entry(reg.default_model_name(registry)).architecture in reg.DEFAULT_PREFERENCE
