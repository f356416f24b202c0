"""Time the synthesis of one case (``python -m TextLesionSegLib.training.data.speed``).

Reports wall and CPU seconds per case for phantom hosts on a 256x256x128 grid (preset
"large") and for CTChest4, split into host construction, lesion insertion (with measured
verification) and writing the NIfTI pair. Run with ``OMP_NUM_THREADS=1`` (and ``taskset -c 0``
where available) for the one-core figure in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> int:
    """Print a table of timings; returns 0."""
    from .generate import plan_case
    from .hosts import make_host
    from .msd import MSDWriter
    from .synthesize import synthesize_case

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--lesions", type=int, default=2)
    args = p.parse_args(argv)
    make_host("ctchest4", np.random.default_rng(0))  # warm caches and imports
    print("host      grid   shape            host_s(wall/cpu)  lesions_s(wall/cpu)  write_s(wall/cpu)")
    for host_name, grid, types in (("abdomen", "large", ["hepatocellular carcinoma", "renal cell carcinoma"]),
                                   ("chest", "large", ["lung cancer", "lung nodule"]),
                                   ("ctchest4", None, ["lung cancer", "lung nodule"])):
        rows = []
        for r in range(args.repeats):
            rng = np.random.default_rng([7, r])
            host, hw, hc = _timed(lambda: make_host(host_name, rng, grid=grid))
            specs = [{"lesion_type": types[i % len(types)]} for i in range(args.lesions)]
            case, lw, lc = _timed(lambda: synthesize_case(host, specs, rng, f"bench_{r}"))
            with tempfile.TemporaryDirectory() as tmp:
                writer = MSDWriter(Path(tmp), "bench", "timing")
                _, ww, wc = _timed(lambda: writer.add(case, "train"))
            rows.append((hw, hc, lw, lc, ww, wc))
        m = np.median(np.asarray(rows), axis=0)
        shape = "x".join(str(s) for s in host.image.array.shape[::-1])
        print(f"{host_name:9s} {str(grid):6s} {shape:16s} {m[0]:6.2f}/{m[1]:5.2f}       {m[2]:6.2f}/{m[3]:5.2f}"
              f"          {m[4]:6.2f}/{m[5]:5.2f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
