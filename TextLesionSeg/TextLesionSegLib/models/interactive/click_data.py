"""Click-model data beyond SynthLesion: the large lesions users click, in real-CT and thick-slice hosts.

SynthLesion's training lesions are small (median 4.5 mL, 6 of 118 above 30 mL; lung cancer is drawn
at 18-45 mm) and mostly in the abdomen phantom, so a click model trained on them learns a small
lesion's blob as its answer to one click (card of ``interactive-demo``). A *large-lesion set* is
random cases of one lesion each whose nominal diameter is drawn from ``size_mm`` (default 30-70 mm),
in CTChest4 (real CT, on its own 3 mm grid and resampled to 0.74 mm with 5 mm slices), in the chest
phantom on the same thick-slice grid and in the abdomen phantom; half of them "closely related"
(a lung mass touching the pleura or chest wall, an abdominal mass bowing its neighbour).

    python -m TextLesionSegLib.models.interactive.click_data --out LARGE --count 60 --seed 7

Each case is seeded by ``(seed, index)`` like ``textlesionseg synth``: the same seed gives the same
bytes; a lesion that finds no room at its size is drawn again smaller (the synthesizer's own retry
shrinks it by a quarter) and, failing that, on the next host kind.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: host kinds of a large-lesion set, drawn uniformly: real CT on its own grid and at 5 mm slices, the
#: chest phantom at 5 mm slices, the abdomen phantom [chosen: what lung2-like users click]
LARGE_HOSTS: tuple[str, ...] = ("ctchest4", "ctchest4-lung2like", "chest-lung2like", "abdomen")
#: lesion types that grow this large, per organ group of the hosts
LARGE_TYPES: dict[str, tuple[str, ...]] = {
    "lung": ("lung cancer",),
    "abdomen": ("hepatocellular carcinoma", "renal cell carcinoma", "liver metastasis", "colorectal cancer"),
}
#: nominal long diameter (mm) of a large lesion [chosen: 3-7 cm masses]
LARGE_SIZE_MM: tuple[float, float] = (30.0, 70.0)


def plan_large_case(seed: int, index: int, hosts: Sequence[str] = LARGE_HOSTS,
                    size_mm: tuple[float, float] = LARGE_SIZE_MM) -> dict[str, Any]:
    """Host and the one lesion spec of case ``index`` (the plan ``generate.make_case`` builds)."""
    rng = np.random.default_rng([int(seed), int(index)])
    host = hosts[int(rng.integers(len(hosts)))]
    types = LARGE_TYPES["abdomen" if host == "abdomen" else "lung"]
    long_d = float(rng.uniform(*size_mm))
    spec = {"lesion_type": types[int(rng.integers(len(types)))], "described": True,
            "size_mm": [round(long_d, 1), round(long_d * float(rng.uniform(0.75, 0.95)), 1)],
            "relation": "closely related" if rng.random() < 0.5 else "not closely related"}
    return {"host": host, "grid": None, "specs": [spec], "rng": rng}


def generate_large_set(out: Path, count: int, seed: int, hosts: Sequence[str] = LARGE_HOSTS,
                       size_mm: tuple[float, float] = LARGE_SIZE_MM, progress: bool = True) -> Path:
    """Write ``count`` large-lesion cases (training layout, instance labels) to ``out``."""
    from ...training.data.generate import _progress, make_case
    from ...training.data.msd import msd_output

    with msd_output(out, "ClickLarge", f"{count} large-lesion cases, seed {seed}") as writer:
        for i in _progress(range(count), count, "large lesions", progress):
            plan = plan_large_case(seed, i, hosts, size_mm)
            fallback = [h for h in hosts if (h == "abdomen") == (plan["host"] == "abdomen")]
            writer.add(make_case(plan, f"large_{i:05d}", fallback), "train")
        writer.close({"seed": seed, "hosts": list(hosts), "size_mm": list(size_mm)})
    return Path(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module doc."""
    p = argparse.ArgumentParser(prog="python -m TextLesionSegLib.models.interactive.click_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist or be empty)")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hosts", nargs="+", default=list(LARGE_HOSTS), help="host kinds, drawn uniformly")
    p.add_argument("--size-mm", type=float, nargs=2, default=list(LARGE_SIZE_MM), metavar=("MIN", "MAX"))
    args = p.parse_args(argv)
    generate_large_set(args.out, args.count, args.seed, args.hosts, tuple(args.size_mm))
    print(f"wrote {args.count} large-lesion cases to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
