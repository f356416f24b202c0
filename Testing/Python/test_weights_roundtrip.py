"""Every bundled weights folder loads through the one save/load (``models.weights_io``) and
survives a save and a load unchanged: the same tensors and header as shipped, the same state dict,
the same configuration, and a second save writes the same files as the first (``config.json``
byte for byte; ``model.safetensors`` tensor for tensor: safetensors writes a header with several
metadata keys in no fixed order, so Malenia's header bytes may differ between two saves)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from TextLesionSegLib.models import registry
from TextLesionSegLib.models.weights_io import DictConfigWeights

BUNDLED = [e["name"] for e in json.loads(registry.REGISTRY_FILE.read_text(encoding="utf-8"))["models"]
           if e.get("weights", {}).get("path")]
#: keys ``transformers`` writes on its own (its version; ``dtype`` inside CLIPSeg's sub-configs)
TRANSFORMERS_OWN = {"transformers_version", "text_config", "vision_config"}


def _tensors_and_metadata(folder: Path) -> tuple[dict[str, bytes], dict[str, str] | None]:
    """Every tensor's dtype, shape and bytes, and the header metadata, of ``model.safetensors``."""
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        tensors = {k: (str(f.get_tensor(k).dtype), tuple(f.get_tensor(k).shape), f.get_tensor(k).numpy().tobytes())
                   for k in f.keys()}
        return tensors, f.metadata()


@pytest.mark.parametrize("name", BUNDLED)
def test_a_bundled_folder_loads_and_round_trips_through_the_shared_save_load(name, tmp_path):
    reg = registry.Registry([registry.REGISTRY_FILE], cache_dir=tmp_path / "cache")
    shipped = reg.ensure_weights(name)  # sha256-verified
    cls = reg.segmenter_class(reg.get_entry(name).architecture)
    first = cls.from_pretrained(shipped, "cpu")
    assert isinstance(first.model, DictConfigWeights), f"{name}: {type(first.model).__name__} has its own save/load"

    once = first.model.save_pretrained(tmp_path / "once")
    assert _tensors_and_metadata(once) == _tensors_and_metadata(shipped), f"{name}: weights file changed"
    second = cls.from_pretrained(once, "cpu")
    a, b = first.model.state_dict(), second.model.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a), name
    assert second.model.config == first.model.config
    assert second.preprocessing == first.preprocessing and second.min_scores == first.min_scores

    twice = second.model.save_pretrained(tmp_path / "twice")
    assert _tensors_and_metadata(twice) == _tensors_and_metadata(once)
    for file in sorted(p.name for p in once.iterdir() if p.name != "model.safetensors"):
        assert (twice / file).read_bytes() == (once / file).read_bytes(), f"{name}: {file} changes on a second save"

    old, new = (json.loads((d / "config.json").read_text(encoding="utf-8")) for d in (shipped, once))
    kept = {k: v for k, v in old.items() if k not in TRANSFORMERS_OWN}
    assert {k: new.get(k) for k in kept} == kept, f"{name}: a shipped config.json key changed"
    # keys added since the folder shipped are later config fields at their defaults (same config loaded)
    assert registry.architecture_of(once) == registry.architecture_of(shipped) == reg.get_entry(name).architecture
