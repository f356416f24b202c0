"""The benchmark's machinery: per-stage records, FLOP counting, the CLI report (no timing asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from TextLesionSegLib.cli import main
from TextLesionSegLib.evaluation import benchmark as bm
from TextLesionSegLib.evaluation.benchmark_inputs import procedural_body
from TextLesionSegLib.models.unet.model import UNetBaseline, UNetSegmenter
from TextLesionSegLib.pipeline.io import write_image

TINY_UNET_YAML = """model:
  architecture: unet
  channels: [4, 8]
  strides: [2]
  num_res_units: 0
  roi_size: [96, 96, 96]
"""


def test_flop_counter_counts_a_known_linear_layer():
    layer = torch.nn.Linear(64, 32, bias=False)
    gflops, out = bm.count_gflops(lambda: layer(torch.zeros(10, 64)))
    assert out.shape == (10, 32)
    assert gflops * 1e9 == pytest.approx(2 * 10 * 64 * 32)
    assert bm.matmul_gflops("cpu", n=128, repeats=1) > 0


def test_run_pipeline_records_every_stage(tmp_path):
    image = procedural_body((40, 64, 64), (1.5, 1.5, 1.5))
    assert image.array.min() == pytest.approx(-1000, abs=60) and np.percentile(image.array, 99) > 0
    path = write_image(image, tmp_path / "v.nrrd")
    torch.manual_seed(0)
    seg = UNetSegmenter(UNetBaseline({"channels": [4, 8], "strides": [2], "num_res_units": 0, "roi_size": [32, 32, 32]}))
    rec = bm.run_pipeline(seg, path, ["a round hypodense lesion in the liver"], "cpu", "small", matmul_rate=10.0)
    assert list(rec.stages) == list(bm.STAGES)
    assert all(s.seconds >= 0 and s.peak_mib > 0 for s in rec.stages.values())
    assert rec.shape_kji == (40, 64, 64) and len(rec.working_shape_kji) == 3
    assert rec.total_s >= sum(s.seconds for s in rec.stages.values()) * 0.99
    assert rec.gflops > 0 and rec.floor_s == pytest.approx(rec.gflops / 10.0)


def test_benchmark_cli_writes_json_and_markdown(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_UNET_YAML, encoding="utf-8")
    out = tmp_path / "bench"
    argv = ["benchmark", "--models", f"unet@{cfg}", "--inputs", "cube128", "--no-peer", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "benchmark.json").read_text(encoding="utf-8"))
    (run,) = report["runs"]
    assert run["input"] == "cube128" and run["shape_kji"] == [128, 128, 128]
    assert run["model"] == "tiny (random weights)" and run["gflops"] > 0
    md = (out / "benchmark.md").read_text(encoding="utf-8")
    assert "| tiny (random weights) | cube128 |" in md and "ESTIMATE" in md
    assert main(argv) == 2  # refuses to overwrite


def test_benchmark_cli_rejects_unknown_architecture(tmp_path):
    assert main(["benchmark", "--models", "nope@x.yaml", "--inputs", "cube128", "--no-peer",
                 "--out", str(tmp_path / "b")]) == 2


def test_the_default_benchmark_times_the_registered_models_that_are_here():
    """Without --models it times every registered model whose weights are bundled or cached (it
    read a status field that does not exist, so it timed random-weight configs only)."""
    from TextLesionSegLib.cli.benchmark import _default_models
    from TextLesionSegLib.models import registry

    quick = _default_models(quick=True)
    here = [e.name for e in registry.list_models() if registry.weights_status(e.name).state in ("bundled", "cached")]
    assert here and quick == here and "lsms-demo" in quick
