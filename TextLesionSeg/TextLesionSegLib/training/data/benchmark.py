"""The SynthLesion benchmark: seen / unseen / referring splits from ``synthlesion.yaml``.

Every case is planned from ``(benchmark seed, split, index)`` alone, so any case can be
regenerated on its own and the whole benchmark is reproducible byte for byte.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .catalog import LESION_TYPES

DEFINITION = Path(__file__).with_name("synthlesion.yaml")
SPLITS = ("seen", "unseen", "referring")


def load_definition(path: Path | None = None) -> dict[str, Any]:
    """The benchmark definition (YAML) as a dict."""
    import yaml

    with open(path or DEFINITION, encoding="utf-8") as f:
        return yaml.safe_load(f)


def split_rng(definition: dict[str, Any], split: str, part: str, index: int) -> np.random.Generator:
    """The generator of one case: a function of the benchmark seed, split, part and index only."""
    key = zlib.crc32(f"{split}/{part}".encode())
    return np.random.default_rng([int(definition["seed"]), key, index])


def _types_for(organ: str) -> list[str]:
    return [n for n, t in LESION_TYPES.items() if t.organ == organ]


def plan_split_case(definition: dict[str, Any], split: str, part: str, index: int) -> dict[str, Any]:
    """Host and lesion specs of one benchmark case.

    Returns ``{"host": name, "grid": preset, "specs": [...], "rng": Generator}``; the same
    generator then drives the synthesis.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}' (choose from {', '.join(SPLITS)})")
    sdef = definition["splits"][split]
    rng = split_rng(definition, split, part, index)
    lo, hi = sdef.get("lesions_per_case", [1, 1])
    n = int(rng.integers(lo, hi + 1))
    if split == "referring":
        organ = str(rng.choice(sdef["organs"]))
        variants = sdef["variants"][organ]
        picks = rng.choice(len(variants), size=min(n, len(variants)), replace=False)
        target = int(rng.integers(len(picks)))
        specs = []
        for j, v in enumerate(picks):
            density, shape = variants[int(v)]
            ltypes = [t for t in _types_for(organ)
                      if density in LESION_TYPES[t].priors["density"] and shape in LESION_TYPES[t].priors["shape"]]
            ltypes = ltypes or _types_for(organ)
            spec = {"lesion_type": str(rng.choice(ltypes)), "density": density, "shape": shape,
                    "described": j == target}
            if density == "mixed":
                spec["density_variation"] = "heterogeneous"
            specs.append(spec)
    else:
        combos = sdef["combos"]
        first = combos[index % len(combos)]  # every combination appears, in turn
        organ = LESION_TYPES[first["lesion_type"]].organ
        same_organ = [c for c in combos if LESION_TYPES[c["lesion_type"]].organ == organ]
        specs = [dict(first)] + [dict(same_organ[int(rng.integers(len(same_organ)))]) for _ in range(n - 1)]
        for s in specs:
            s["described"] = True
    hosts = definition["hosts"][organ]
    return {"host": str(hosts[int(rng.integers(len(hosts)))]), "grid": definition.get("grid"), "specs": specs,
            "rng": rng, "organ": organ}


def split_parts(definition: dict[str, Any], split: str) -> list[tuple[str, int]]:
    """(part, number of cases) of a split: part is "train" or "test"."""
    sdef = definition["splits"][split]
    return [(p, int(sdef.get(f"{p}_cases", 0))) for p in ("train", "test") if int(sdef.get(f"{p}_cases", 0)) > 0]
