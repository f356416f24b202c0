"""The architecture table points at real segmenter classes, and the registry loads each real model
family from its own ``save_pretrained`` output (untrained tiny configs: this tests loading, not skill)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from TextLesionSegLib.errors import ModelError
from TextLesionSegLib.models.base import LesionSegmenter
from TextLesionSegLib.models.registry import ARCHITECTURES, Registry, sha256_file


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_names_a_loadable_segmenter_class(architecture, tmp_path):
    registry = Registry([], cache_dir=tmp_path)
    cls = registry.segmenter_class(architecture)
    assert issubclass(cls, LesionSegmenter), cls
    assert callable(getattr(cls, "from_pretrained", None)), f"{cls} has no from_pretrained(weights_dir, device)"


def _save_tiny(architecture: str, folder: Path) -> None:
    if architecture == "unet":
        from TextLesionSegLib.models.unet.model import UNetBaseline

        UNetBaseline({"channels": [4, 8], "strides": [2], "num_res_units": 0}).save_pretrained(folder)
    elif architecture == "lsms":
        from TextLesionSegLib.models.lsms.config import tiny_config
        from TextLesionSegLib.models.lsms.model import LSMSModel

        LSMSModel(tiny_config()).save_pretrained(folder)
    elif architecture == "malenia":
        from TextLesionSegLib.models.malenia.config import demo_config
        from TextLesionSegLib.models.malenia.model import MaleniaModel

        cfg = demo_config(roi_size=(32, 32, 32), cnn_channels=(4, 8, 12, 16), hidden_dim=16, mask_dim=8, num_tokens=4,
                          num_heads=2, ffn_dim=32, text_dim=384)
        MaleniaModel(cfg).save_pretrained(folder)
    else:
        pytest.skip(f"no tiny config for {architecture} here")


def _registry_for(architecture: str, tmp_path: Path) -> Path:
    weights = tmp_path / "site" / "weights" / "m"
    _save_tiny(architecture, weights)
    entry = {"name": f"{architecture}-tiny", "architecture": architecture, "version": "0.0.1", "description": "untrained",
             "license": "Apache-2.0", "card": "",
             "weights": {"path": "weights/m", "sha256": sha256_file(weights / "model.safetensors"),
                         "size": (weights / "model.safetensors").stat().st_size}}
    path = tmp_path / "site" / "registry.json"
    path.write_text(json.dumps({"models": [entry]}), encoding="utf-8")
    return path


@pytest.mark.parametrize("architecture", ["unet", "lsms", "malenia"])
def test_registry_loads_each_model_family_and_refuses_a_mismatched_config(architecture, tmp_path):
    path = _registry_for(architecture, tmp_path)
    registry = Registry([path], cache_dir=tmp_path / "cache")
    segmenter = registry.load_segmenter(f"{architecture}-tiny", "cpu")
    assert isinstance(segmenter, LesionSegmenter) and segmenter.name == f"{architecture}-tiny"
    assert len(segmenter.preprocessing.roi_size) == 3
    # A config.json from a different size of model: the family's strict load must refuse it.
    config = path.parent / "weights" / "m" / "config.json"
    data = json.loads(config.read_text(encoding="utf-8"))
    key = {"unet": "channels", "lsms": "embed_dims", "malenia": "hidden_dim"}[architecture]
    holder = data.get("model", data) if key not in data else data
    holder[key] = [2 * c for c in holder[key]] if isinstance(holder[key], list) else 2 * holder[key]
    config.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match="match"):
        Registry([path], cache_dir=tmp_path / "cache").load_segmenter(f"{architecture}-tiny", "cpu")
