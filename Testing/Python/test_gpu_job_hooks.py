"""The GPU bundle asks each model's trainer (declared in its ``ModelSpec``) how to fine-tune from
a weights folder and how to shrink a full config for a dry run, instead of naming architectures."""

from __future__ import annotations

import importlib

import pytest

from TextLesionSegLib.cli.bundle import model_section
from TextLesionSegLib.cli.train import resolve_config
from TextLesionSegLib.models import registry
from TextLesionSegLib.models.spec import model_spec
from TextLesionSegLib.training.gpu_job import _shrunk
from TextLesionSegLib.training.trainer import load_config


@pytest.mark.parametrize("name, arch", [("lsms-demo", "lsms"), ("malenia-demo", "malenia")])
def test_the_model_section_of_a_shipped_folder_rebuilds_every_parameter_of_its_network(name, arch):
    weights = registry.default_registry().ensure_weights(name)
    section = model_section(weights, arch)
    assert ("preset" in section) == (arch == "lsms")  # LSMS's defaults for keys a folder predates: the demo's
    built = dict(importlib.import_module(model_spec(arch).trainer).build_model({"model": section}).named_parameters())
    shipped = dict(registry.load_segmenter(name).model.named_parameters())  # buffers such as a phrase bank may differ
    assert {k: tuple(v.shape) for k, v in built.items()} == {k: tuple(v.shape) for k, v in shipped.items()}


def test_a_dry_run_shrinks_each_full_config_as_its_trainer_says():
    malenia = _shrunk("malenia", load_config(resolve_config("malenia-full")), load_config(resolve_config("malenia-demo")))
    demo_roi = load_config(resolve_config("malenia-demo"))["model"].get("roi_size", [32, 32, 32])
    assert malenia["model"]["roi_size"] == demo_roi and malenia["model"]["feature_size"] <= 12
    lsms = _shrunk("lsms", load_config(resolve_config("lsms-full")), load_config(resolve_config("lsms-demo")))
    assert lsms["model"]["slice_size"] == 64
    assert malenia["train"]["batch_size"] == lsms["train"]["batch_size"] == 1
