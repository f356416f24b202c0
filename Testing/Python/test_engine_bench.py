"""The engine benchmark script runs end to end (numbers themselves go to docs/BENCHMARKS.md)."""

from __future__ import annotations

from TextLesionSegLib.pipeline import bench_engine


def test_bench_runs_on_real_ct(ctchest_path):
    out = bench_engine.run(ctchest_path, None, repeat=1, spacing=3.0)
    assert list(out["stages"]) == ["read", "validate", "preprocess", "back to input grid", "postprocess", "measure",
                                   "write .seg.nrrd", "write labelmap", "write report", "write overlay"]
    assert all(r["seconds"] >= 0 and r["peak_extra_mib"] >= 0 for r in out["stages"].values())
    assert out["size_ijk"] == [128, 128, 34]
    assert out["lesions"] and out["lesions"][0]["volume_ml"] > 1.0  # bone above 200 HU


def test_back_to_input_benchmark_compares_equal_outputs(ctchest_path):
    from TextLesionSegLib.pipeline import bench_back_to_input
    from TextLesionSegLib.pipeline.io import read_image

    row = bench_back_to_input.compare(read_image(ctchest_path), None, repeat=1)
    assert row["input"] == "128x128x34" and row["max_abs_difference"] < 1e-6
    assert row["before_full_grid_s"] > 0 and row["after_support_box_s"] > 0
