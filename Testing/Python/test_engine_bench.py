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
