"""Time and peak memory of the engine's stages (no model) on a real CT.

    python -m TextLesionSegLib.pipeline.bench_engine IMAGE [--label LABEL] [--repeat 3]

Stages: read, validate, preprocess (default PreprocessingConfig), back to the input grid (one
map), postprocess + measure (the label used as a probability map, or a 200 HU threshold),
and writing .seg.nrrd / labelmap / report / overlay. Peak memory is the process's resident
set size sampled every 5 ms during the stage, minus the size when the stage began.
The numbers go into docs/BENCHMARKS.md ("Engine").
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * 4096


class _PeakRss:
    """Samples RSS in a thread; ``peak - start`` is the stage's extra memory."""

    def __enter__(self) -> "_PeakRss":
        self.start = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def measure_stage(fn: Callable[[], Any], repeat: int) -> tuple[Any, float, float]:
    """Run ``fn`` ``repeat`` times: (last value, median seconds, max extra RSS MiB)."""
    times, peaks, value = [], [], None
    for _ in range(repeat):
        with _PeakRss() as mem:
            t0 = time.perf_counter()
            value = fn()
            times.append(time.perf_counter() - t0)
        peaks.append((mem.peak - mem.start) / 2**20)
    times.sort()
    return value, times[len(times) // 2], max(peaks)


def run(image_path: Path, label_path: Path | None, repeat: int, spacing: float | None = None) -> dict[str, Any]:
    """Benchmark every stage (working spacing ``spacing`` mm, default the model default); JSON-ready dict."""
    import numpy as np

    from ..core.types import PreprocessingConfig
    from ..query.types import LesionQuery
    from . import outputs
    from .io import read_image
    from .measure import measure_lesions
    from .postprocess import postprocess
    from .preprocess import to_working_grid
    from .result import Result, SegmentResult
    from .validate import validate_image

    cfg = PreprocessingConfig() if spacing is None else PreprocessingConfig(spacing=(spacing,) * 3)
    rows: dict[str, dict[str, float]] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        value, seconds, mib = measure_stage(fn, repeat)
        rows[name] = {"seconds": round(seconds, 3), "peak_extra_mib": round(mib, 1)}
        return value

    image = stage("read", lambda: read_image(image_path))
    stage("validate", lambda: validate_image(image, cfg))
    tensor, grid = stage("preprocess", lambda: to_working_grid(image, cfg))
    if label_path is not None:
        label = read_image(label_path)
        work = grid.to_working_image(label.with_array((label.array > 0).astype(np.float32)))
    else:
        # no label: voxels above 200 HU (inside the default window, whose top is 250 HU)
        work = (tensor[0, 0].numpy() > (200 - cfg.hu_window[0]) / (cfg.hu_window[1] - cfg.hu_window[0])).astype(np.float32)
    prob = stage("back to input grid", lambda: grid.to_input_grid(work[None])[0])
    mask = stage("postprocess", lambda: postprocess(prob, image.spacing))
    lesions = stage("measure", lambda: measure_lesions(image, mask))
    result = Result(image=image, segments=[SegmentResult(name="lesion", mask=mask, query=LesionQuery(text="lesion"),
                                                         lesions=lesions, color=outputs.segment_color(0))],
                    model_name="none", model_version="0")
    with tempfile.TemporaryDirectory() as tmp:
        for name, writer, suffix in [("write .seg.nrrd", outputs.write_seg_nrrd, "o.seg.nrrd"),
                                     ("write labelmap", outputs.write_labelmap, "o.nii.gz"),
                                     ("write report", outputs.write_report, "o.json"),
                                     ("write overlay", outputs.write_overlay_png, "o.png")]:
            stage(name, lambda: writer(result, Path(tmp) / suffix, overwrite=True))
    return {
        "image": str(image_path),
        "size_ijk": list(image.size_ijk),
        "spacing_mm": [round(s, 4) for s in image.spacing],
        "working_shape_kji": list(tensor.shape[2:]),
        "repeat": repeat,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "stages": rows,
        "total_seconds": round(sum(r["seconds"] for r in rows.values()), 3),
        "lesions": [{"volume_ml": round(m.volume_ml, 2), "longest_axial_mm": m.longest_axial_mm,
                     "perpendicular_axial_mm": m.perpendicular_axial_mm, "longest_3d_mm": m.longest_3d_mm,
                     "mean_hu": round(m.mean_hu, 1)} for m in lesions[:3]],
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints a Markdown table and the JSON."""
    p = argparse.ArgumentParser(prog="python -m TextLesionSegLib.pipeline.bench_engine")
    p.add_argument("image", type=Path)
    p.add_argument("--label", type=Path, help="label map used as the probability map (else a 200 HU threshold)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--spacing", type=float, help="working spacing in mm (default: PreprocessingConfig's)")
    args = p.parse_args(argv)
    out = run(args.image, args.label, args.repeat, args.spacing)
    print("| stage | median s | peak extra RSS MiB |\n|---|---:|---:|")
    for name, r in out["stages"].items():
        print(f"| {name} | {r['seconds']:.3f} | {r['peak_extra_mib']:.0f} |")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
