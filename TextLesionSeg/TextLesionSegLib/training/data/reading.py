"""Synthetic scenes that force reading: 2-4 lesions of one organ whose values contrast.

In SynthLesion's training data a window rarely holds two lesions, and when it does they seldom
differ in side or density, so a model can score well without reading a word (issue 16). A
*reading scene* is planned so that the words are needed [chosen]:

- each lesion after the first copies an earlier one and changes one or two of side, density,
  shape, size and margin, so lesions differ in exactly the values a description names;
- a lesion on the same side as an earlier one is placed within :data:`NEAR_MM` of it where the
  organ leaves room, so several share a model window (64-96 voxels at 1.5 mm);
- every value is still measured on the synthesised image (``synthesize._check``): what the
  report says is true of the voxels.

``textlesionseg synth --reading --count N --seed S --out DIR`` writes them in the usual layout
(``reports.csv`` with every lesion described); descriptions and absent descriptions for training
come from :mod:`.descriptions` at load time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .catalog import LESION_TYPES

#: organs of reading scenes and how often each is drawn (the chest is the demo's domain)
ORGANS: dict[str, float] = {"lung": 0.5, "kidney": 0.25, "liver": 0.25}
#: hosts per organ
HOSTS: dict[str, tuple[str, ...]] = {"lung": ("chest", "ctchest4", "chest-lung2like", "ctchest4-lung2like"),
                                     "kidney": ("abdomen",), "liver": ("abdomen",)}
#: values each organ's lesions may take (what the synthesiser can make and measure there)
VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "lung": {"density": ("isodense", "hyperdense", "hypodense", "mixed"), "shape": ("round-like", "irregular"),
             "surface": ("well-defined", "ill-defined")},
    "kidney": {"density": ("hypodense", "hyperdense", "isodense"), "shape": ("round-like", "irregular"),
               "surface": ("well-defined", "ill-defined")},
    "liver": {"density": ("hypodense", "hyperdense", "isodense"), "shape": ("round-like", "irregular"),
              "surface": ("well-defined", "ill-defined")},
}
#: small and large diameters (mm) per organ: a size contrast is one of each
SIZES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "lung": ((10.0, 15.0), (28.0, 42.0)), "kidney": ((12.0, 18.0), (30.0, 42.0)), "liver": ((12.0, 18.0), (30.0, 45.0))}
#: same-side lesions are placed within this distance of the lesion they copy, where room allows
NEAR_MM = 45.0
#: how often each value is the one changed between two lesions
CHANGES = (("side", 0.35), ("density", 0.3), ("shape", 0.15), ("size", 0.12), ("surface", 0.08))


def _draw(rng: np.random.Generator, options: Sequence[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _lesion_type(organ: str, density: str, shape: str, rng: np.random.Generator) -> str:
    types = [n for n, t in LESION_TYPES.items() if t.organ == organ
             and density in t.priors["density"] and shape in t.priors["shape"]]
    types = types or [n for n, t in LESION_TYPES.items() if t.organ == organ]
    return _draw(rng, types)


def _size(organ: str, large: bool, rng: np.random.Generator) -> list[float]:
    lo, hi = SIZES[organ][int(large)]
    d = float(rng.uniform(lo, hi))
    return [round(d, 1), round(d * float(rng.uniform(0.75, 0.95)), 1)]


def _key(v: dict[str, Any]) -> tuple:
    return (v["side"], v["density"], v["shape"], v["large"], v["surface"])


def plan_reading_case(seed: int, index: int, attempt: int = 0) -> dict[str, Any]:
    """Host and lesion specs of reading scene ``index`` (``attempt`` > 0: a fresh draw after a
    scene the synthesiser could not place)."""
    rng = np.random.default_rng([int(seed), int(index), int(attempt), 16])
    organs = list(ORGANS)
    organ = organs[int(rng.choice(len(organs), p=np.asarray(list(ORGANS.values())) / sum(ORGANS.values())))]
    values = VALUES[organ]
    n = int(rng.integers(2, 5))
    first = {"side": _draw(rng, ("left", "right")), "density": _draw(rng, values["density"]),
             "shape": _draw(rng, values["shape"]), "large": bool(rng.random() < 0.5),
             "surface": _draw(rng, values["surface"]), "near": None}
    lesions = [first]
    names, weights = zip(*CHANGES)
    p = np.asarray(weights) / sum(weights)
    for _ in range(60):
        if len(lesions) >= n:
            break
        base_index = int(rng.integers(len(lesions)))
        new = dict(lesions[base_index])
        changed = set(rng.choice(names, size=1 + int(rng.random() < 0.3), replace=False, p=p))
        for name in changed:
            if name == "side":
                new["side"] = "left" if new["side"] == "right" else "right"
            elif name == "size":
                new["large"] = not new["large"]
            else:
                new[name] = _draw(rng, [v for v in values[name] if v != new[name]])
        if _key(new) in {_key(l) for l in lesions}:
            continue
        same_side = [i for i, l in enumerate(lesions) if l["side"] == new["side"]]
        new["near"] = (same_side[0], NEAR_MM) if same_side else None
        lesions.append(new)
    specs = []
    for v in lesions:
        spec = {"lesion_type": _lesion_type(organ, v["density"], v["shape"], rng), "density": v["density"],
                "shape": v["shape"], "surface": v["surface"], "side": v["side"], "size_mm": _size(organ, v["large"], rng),
                "described": True}
        if v["density"] == "mixed":
            spec["density_variation"] = "heterogeneous"
        if v["near"] is not None:
            spec["near"] = v["near"]
        specs.append(spec)
    hosts = HOSTS[organ]
    return {"host": _draw(rng, hosts), "grid": None, "specs": specs, "rng": rng, "organ": organ}


def generate_reading(out: Path, count: int, seed: int = 0, organ_masks: bool = False, progress: bool = True,
                     attempts: int = 6) -> Path:
    """Write ``count`` reading scenes (training layout) to ``out``: scene ``i`` is the first of
    ``attempts`` draws the synthesiser can place with every value measuring true."""
    from .generate import _progress, first_placeable
    from .msd import msd_output

    with msd_output(out, "SynthLesionReading", f"{count} reading scenes, seed {seed}", organ_masks) as writer:
        for i in _progress(range(count), count, "reading", progress):
            try:
                case = first_placeable(lambda attempt: (plan_reading_case(seed, i, attempt), ()),
                                       f"reading_{i:05d}", attempts)
            except RuntimeError as exc:
                raise RuntimeError(f"reading scene {i}: {exc}") from None
            writer.add(case, "train")
        writer.close({"seed": seed, "kind": "reading scenes"})
    return Path(out)
