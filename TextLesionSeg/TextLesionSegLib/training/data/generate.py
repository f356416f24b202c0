"""Generate synthetic datasets: plan cases, synthesise them, write MSD folders.

Each case's random generator is derived from ``(seed, index)`` only, so a dataset is the same
bytes on every run and machine (same package versions), whatever the order of generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import benchmark as bench
from .catalog import LESION_TYPES
from .hosts import HOST_NAMES, HOST_ORGANS, make_host
from .msd import msd_output
from .synthesize import SynthCase, synthesize_case

DEFAULT_HOSTS: tuple[str, ...] = ("ctchest4", "chest", "abdomen")


def check_choices(hosts: Sequence[str], lesion_types: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Validate host and lesion-type names; keep only hosts that offer one of the lesion types.

    Raises:
        ValueError: an unknown name, or no host offers any of the lesion types.
    """
    bad = [h for h in hosts if h not in HOST_NAMES]
    if bad:
        raise ValueError(f"unknown host(s) {', '.join(bad)} (choose from {', '.join(HOST_NAMES)})")
    types = list(lesion_types) if lesion_types else list(LESION_TYPES)
    bad = [t for t in types if t not in LESION_TYPES]
    if bad:
        raise ValueError(f"unknown lesion type(s) {', '.join(bad)} (choose from {', '.join(LESION_TYPES)})")
    usable = [h for h in hosts if any(LESION_TYPES[t].organ in HOST_ORGANS[h] for t in types)]
    if not usable:
        raise ValueError(f"none of the hosts {', '.join(hosts)} has an organ for {', '.join(types)}")
    return usable, types


#: fresh draws of a random case when the synthesiser cannot place the first one
PLAN_ATTEMPTS = 4


def plan_case(seed: int, index: int, hosts: Sequence[str], lesion_types: Sequence[str],
              lesions_per_case: int, grid: str | None = None, attempt: int = 0) -> dict[str, Any]:
    """Host and lesion specs of case ``index``: lesion types drawn among those the host offers.
    ``attempt`` > 0 draws afresh (after a case the synthesiser could not place); attempt 0 is the
    draw datasets were always made of, so they stay the same bytes."""
    rng = np.random.default_rng([int(seed), int(index)] + ([int(attempt)] if attempt else []))
    host = hosts[int(rng.integers(len(hosts)))]
    types = [t for t in lesion_types if LESION_TYPES[t].organ in HOST_ORGANS[host]]
    specs = [{"lesion_type": types[int(rng.integers(len(types)))], "described": True} for _ in range(lesions_per_case)]
    return {"host": host, "grid": grid, "specs": specs, "rng": rng}


def make_case(plan: dict[str, Any], case_id: str, fallback_hosts: Sequence[str] = ()) -> SynthCase:
    """Build the host and synthesise the planned lesions.

    Three hosts of the planned kind are tried (phantoms differ each time; CTChest4 does not),
    then each of ``fallback_hosts``: a lesion that cannot be placed so that every attribute
    measures true moves to another host rather than being written with a false attribute.
    """
    rng = plan["rng"]
    last: Exception | None = None
    kinds = [plan["host"]] + [h for h in fallback_hosts if h != plan["host"]]
    for kind in kinds:
        for _ in range(3 if not kind.startswith("ctchest4") else 1):
            host = make_host(kind, rng, grid=plan.get("grid"))
            try:
                return synthesize_case(host, plan["specs"], rng, case_id)
            except RuntimeError as exc:  # no room or no agreeing draw in this anatomy
                last = exc
    raise RuntimeError(f"case {case_id}: {last}")


def first_placeable(draw: Callable[[int], tuple[dict[str, Any], Sequence[str]]], case_id: str,
                    attempts: int) -> SynthCase:
    """The case of the first of ``attempts`` draws (``draw(attempt)`` -> plan and fallback hosts for
    :func:`make_case`) the synthesiser can place with every attribute measuring true;
    RuntimeError with the last reason when none can."""
    last: Exception | None = None
    for attempt in range(attempts):
        plan, fallback = draw(attempt)
        try:
            return make_case(plan, case_id, fallback)
        except RuntimeError as exc:  # no room, or no draw whose values measure true
            last = exc
    raise RuntimeError(f"no placeable draw in {attempts} attempts ({last})")


def _placeable_case(seed: int, index: int, hosts: Sequence[str], types: Sequence[str], lesions_per_case: int,
                    grid: str | None) -> SynthCase:
    """Random case ``index``, drawn afresh (up to :data:`PLAN_ATTEMPTS` times) while the
    synthesiser cannot place its lesions; InputError when no draw fits, since the chosen hosts and
    lesion types are what leave no room."""
    from ...errors import InputError

    def draw(attempt: int) -> tuple[dict[str, Any], list[str]]:
        plan = plan_case(seed, index, hosts, types, lesions_per_case, grid, attempt)
        organs = {LESION_TYPES[spec["lesion_type"]].organ for spec in plan["specs"]}
        return plan, [h for h in hosts if organs <= set(HOST_ORGANS[h])]

    try:
        return first_placeable(draw, f"synth_{index:05d}", PLAN_ATTEMPTS)
    except RuntimeError as exc:
        raise InputError(f"could not synthesise case {index} with these hosts and lesion types (try other "
                         f"--hosts, fewer --lesions-per-case or another --seed): {exc}") from None


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="case")


def generate_dataset(out: Path, count: int, seed: int = 0, hosts: Sequence[str] = DEFAULT_HOSTS,
                     lesion_types: Sequence[str] | None = None, lesions_per_case: int = 1,
                     organ_masks: bool = False, progress: bool = True, grid: str | None = None) -> Path:
    """Write ``count`` random cases (training layout) to ``out``; returns ``out``.

    ``grid`` fixes the phantoms' grid preset (default: drawn per case among medium, large, thick).
    """
    hosts, types = check_choices(hosts, lesion_types)
    with msd_output(out, "SynthLesionRandom", f"{count} synthetic cases, seed {seed}", organ_masks) as writer:
        for i in _progress(range(count), count, "synth", progress):
            writer.add(_placeable_case(seed, i, hosts, types, lesions_per_case, grid), "train")
        writer.close({"seed": seed, "hosts": list(hosts), "lesion_types": types, "grid": grid or "random"})
    return Path(out)


def generate_split(out: Path, split: str, count: int | None = None, definition: dict[str, Any] | None = None,
                   organ_masks: bool = False, progress: bool = True, seed: int | None = None) -> Path:
    """Write one SynthLesion split (train and/or test parts) to ``out``.

    ``count`` overrides the number of cases of each part (small runs, tests); ``seed`` replaces
    the benchmark's seed, for fresh cases planned like the split's (validation sets). Without
    it the cases *are* the benchmark's: with a larger ``count`` the first ones are its test cases.
    """
    definition = dict(definition or bench.load_definition())
    if seed is not None:
        definition["seed"] = int(seed)
    with msd_output(out, f"{definition['name']}-{split}", f"SynthLesion v{definition['version']} {split} split",
                    organ_masks, split=split) as writer:
        for part, n in bench.split_parts(definition, split):
            n = n if count is None else count
            for i in _progress(range(n), n, f"{split}/{part}", progress):
                plan = bench.plan_split_case(definition, split, part, i)
                fallback = definition["hosts"][plan["organ"]]
                writer.add(make_case(plan, f"{split}_{part}_{i:05d}", fallback), part)
        writer.close({"benchmark": definition["name"], "version": definition["version"], "split": split,
                      "seed": definition["seed"]})
    return Path(out)


def generate_benchmark(out: Path, count: int | None = None, organ_masks: bool = False, progress: bool = True) -> Path:
    """Write every split of SynthLesion under ``out/<split>/``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        from ...errors import InputError

        raise InputError(f"output '{out}' exists and is not empty; choose a new --out folder")
    definition = bench.load_definition()
    for split in bench.SPLITS:
        generate_split(out / split, split, count, definition, organ_masks, progress)
    return out
