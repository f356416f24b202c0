"""Before/after of mapping a sparse probability map back onto the input grid.

    python -m TextLesionSegLib.pipeline.bench_back_to_input [LUNG2_IMAGE LUNG2_LABEL] [--repeat 3]

"Before" resamples the whole input grid (what ``WorkingGrid.to_input_grid`` did until it learnt to
resample only the box where the map is non-zero); "after" is ``to_input_grid`` itself. Both run in
the same process on one SimpleITK thread; the largest difference between their outputs is printed
too. Inputs: lung2 with its tumour label as the map (when given) and the 512 x 512 x 300 synthetic
abdomen of the benchmark with a 4 cm blob. Numbers go into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np


def compare(image: Any, label: Any | None, repeat: int) -> dict[str, Any]:
    """Seconds of the full-grid and support-box resampling of one map, and their largest difference."""
    import SimpleITK as sitk

    from ..core.types import PreprocessingConfig
    from .bench_engine import measure_stage
    from .preprocess import _resample, to_working_grid

    _, grid = to_working_grid(image, PreprocessingConfig())
    if label is not None:
        work = grid.to_working_image(label.with_array((label.array > 0).astype(np.float32)))
    else:  # a lesion-sized blob (about 4 cm) in the middle of the working grid
        work = np.zeros(grid.working.array.shape, np.float32)
        c = np.array(work.shape) // 2
        work[c[0] - 13 : c[0] + 13, c[1] - 13 : c[1] + 13, c[2] - 13 : c[2] + 13] = 0.9

    def full_grid() -> np.ndarray:
        src = grid.working.to_sitk(np.ascontiguousarray(work))
        return sitk.GetArrayFromImage(_resample(src, grid.input, sitk.sitkLinear, 0.0, src.GetPixelID()))

    diff = float(np.abs(full_grid() - grid.to_input_grid(work[None])[0]).max())
    return {"input": "x".join(map(str, image.array.shape[::-1])), "before_full_grid_s": round(measure_stage(full_grid, repeat)[1], 3),
            "after_support_box_s": round(measure_stage(lambda: grid.to_input_grid(work[None]), repeat)[1], 3),
            "max_abs_difference": diff}


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line per input."""
    import SimpleITK as sitk

    from ..evaluation.benchmark_inputs import abdomen512
    from .io import read_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", help="a CT (e.g. lung2_image.nrrd)")
    parser.add_argument("label", nargs="?", help="its lesion label, used as the map")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    inputs = [(abdomen512(), None)]
    if args.image:
        inputs.insert(0, (read_image(args.image), read_image(args.label) if args.label else None))
    for image, label in inputs:
        print(json.dumps(compare(image, label, args.repeat)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
