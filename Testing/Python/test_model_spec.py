"""One declaration per model (``models.spec.ModelSpec``): what each declares is what it is, and a
model declared in its own package alone reaches the registry, the default choice, training,
cache preparation and the benchmark, without importing torch to read it."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from TextLesionSegLib.models.spec import CAPABILITIES, ModelSpec, model_spec, model_specs

LIB = Path(__file__).resolve().parents[2] / "TextLesionSeg" / "TextLesionSegLib"
SHIPPED = {"clipseg", "interactive", "lsms", "malenia", "unet"}


def test_every_shipped_architecture_is_declared_once_in_its_own_package():
    specs = model_specs()
    assert set(specs) == SHIPPED
    for name, spec in specs.items():
        assert spec.segmenter.startswith(f"TextLesionSegLib.models.{name}."), spec.segmenter
        assert model_spec(name) is spec
    with pytest.raises(KeyError, match="not declared"):
        model_spec("no-such-model")


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_declaration_matches_the_code_it_names(name):
    from TextLesionSegLib.cli.benchmark import config_path

    from TextLesionSegLib.models.base import LesionSegmenter

    spec = model_spec(name)
    assert spec.segmenter_class().capabilities == spec.capabilities <= CAPABILITIES
    assert spec.segmenter_class().from_pretrained.__func__ is not LesionSegmenter.from_pretrained.__func__
    if spec.trainer:
        module = importlib.import_module(spec.trainer)
        assert all(callable(getattr(module, f, None)) for f in ("build_model", "build_datasets", "evaluate_batch"))
        if spec.writes_cache:
            assert callable(module.preprocessing) and callable(module.text_features)
    assert not spec.writes_cache or spec.trainer
    for config in spec.benchmark_configs:
        assert config_path(config) is not None, f"{name}: benchmark config {config} is not shipped"


def test_a_declaration_refuses_unknown_capabilities_and_a_segmenter_without_its_class():
    with pytest.raises(ValueError, match="capabilities"):
        ModelSpec("x", "pkg.mod:Cls", capabilities={"telepathy"})
    with pytest.raises(ValueError, match="capabilities"):
        ModelSpec("x", "pkg.mod:Cls", capabilities=set())
    with pytest.raises(ValueError, match="module:Class"):
        ModelSpec("x", "pkg.mod.Cls")


def test_a_model_declared_in_its_own_package_reaches_every_table(tmp_path):
    """A new package under ``models/`` with a ``SPEC`` is all it takes; reading the tables imports no torch."""
    package = tmp_path / "models_extra" / "toy"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent("""
        from TextLesionSegLib.models.spec import ModelSpec

        SPEC = ModelSpec(architecture="toy", segmenter="TextLesionSegLib.models.toy.seg:ToySegmenter",
                         capabilities={"text", "prompt_free"}, preference=-1,
                         trainer="TextLesionSegLib.models.toy.train", writes_cache=True,
                         benchmark_configs=("toy-demo", "toy-full"))
    """), encoding="utf-8")
    code = textwrap.dedent(f"""
        import sys
        import TextLesionSegLib.models as models
        models.__path__.append({str(tmp_path / 'models_extra')!r})
        from TextLesionSegLib.models import registry
        from TextLesionSegLib.cli import benchmark, prepare, train
        assert registry.ARCHITECTURES["toy"] == "TextLesionSegLib.models.toy.seg:ToySegmenter"
        assert "toy" in registry.Registry([], cache_dir={str(tmp_path / 'cache')!r}).architectures
        assert registry.DEFAULT_PREFERENCE == ("toy", "lsms", "malenia"), registry.DEFAULT_PREFERENCE
        assert registry.PROMPT_FREE_PREFERENCE == ("toy", "malenia", "lsms"), registry.PROMPT_FREE_PREFERENCE
        assert train.TRAINABLE["toy"] == "TextLesionSegLib.models.toy.train"
        assert "toy" in prepare.PREPARABLE
        assert ("toy", "toy-demo") in benchmark.DEMO_CONFIGS and ("toy", "toy-full") in benchmark.FULL_CONFIGS
        heavy = sorted(m for m in ("torch", "monai", "transformers") if m in sys.modules)
        assert not heavy, heavy
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_no_table_outside_the_declarations_names_an_architecture():
    """The tables that used to list architectures by hand (registry, train, prepare, benchmark,
    GPU job) now read the declarations: none of them spells a module path of a model."""
    for rel in ("models/registry.py", "cli/train.py", "cli/prepare.py", "cli/benchmark.py", "training/gpu_job.py"):
        text = (LIB / rel).read_text(encoding="utf-8")
        for name in SHIPPED:
            assert f"TextLesionSegLib.models.{name}" not in text, f"{rel} names {name}'s module"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "clipseg" else n  # transformers import
                                  for n in sorted(SHIPPED)])
def test_a_declared_trainer_builds_a_model_whose_saved_folder_names_and_loads_its_architecture(name, tmp_path):
    """What ``benchmark`` and ``train`` do with a declaration: build the demo config's network,
    save it, and load the folder back by the architecture its ``config.json`` names."""
    from TextLesionSegLib.cli.benchmark import config_path
    from TextLesionSegLib.models.registry import architecture_of
    from TextLesionSegLib.training.trainer import load_config

    spec = model_spec(name)
    config = load_config(config_path(spec.benchmark_configs[0] if spec.benchmark_configs else f"{name}-demo"))
    folder = importlib.import_module(spec.trainer).build_model(config).save_pretrained(tmp_path / name)
    assert architecture_of(folder) == name
    segmenter = model_specs()[architecture_of(folder)].segmenter_class().from_pretrained(folder, "cpu")
    assert segmenter.capabilities == spec.capabilities and segmenter.name == name
