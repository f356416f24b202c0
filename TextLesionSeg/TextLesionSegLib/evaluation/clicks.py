"""Measure click models: Dice after 1, 3 and 5 simulated clicks, NoC@80 and NoC@90.

The protocol (``training.clicks``) runs through the engine as a user's clicks do: each click is
a voxel of the *input* grid turned into RAS (``pipeline.geometry``) and given, with every earlier
click and the current mask, to ``pipeline.clicks.refine_lesion``; its answer, on the input grid,
is compared with the reference and places the next click. Each lesion of a case is clicked on its
own (the others are background). The reference only places the clicks and scores the answer.

NoC@X is the number of clicks until Dice >= X, counted as ``max_clicks`` when never reached
(the share that reached it is reported beside). ::

    python -m TextLesionSegLib.evaluation.clicks --model interactive-demo --baseline \\
        --data SynthLesion --part test --image lung2_image.nrrd --label lung2_label.nrrd --out clicks.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..training.clicks import dice, first_click, next_click

#: click counts whose Dice is reported, and the Dice levels of NoC@X
REPORTED_CLICKS = (1, 3, 5)
NOC_LEVELS = (0.8, 0.9)


def click_curve(image: Any, reference: np.ndarray, model: Any, max_clicks: int = 5, settings: Any = None) -> list[float]:
    """Dice after each of ``max_clicks`` simulated clicks on one lesion (stops early at Dice 1)."""
    from ..pipeline.clicks import refine_lesion

    ref = np.asarray(reference, bool)
    spacing = image.spacing
    click = first_click(ref, spacing)
    include: list[tuple[float, ...]] = []
    exclude: list[tuple[float, ...]] = []
    mask = np.zeros(ref.shape, np.uint8)
    curve: list[float] = []
    while click is not None and len(curve) < max_clicks:
        ras = tuple(float(v) for v in image.kji_to_ras(np.asarray(click.kji, float)))
        (include if click.positive else exclude).append(ras)
        result = refine_lesion(image, include, exclude, model, settings, prior=mask if mask.any() else None)
        mask = result.segments[0].mask
        curve.append(dice(mask, ref))
        click = next_click(mask, ref, spacing)
    return curve + [curve[-1] if curve else 0.0] * (max_clicks - len(curve))  # a perfect mask stays perfect


def noc(curve: Sequence[float], level: float) -> int:
    """Clicks until Dice >= ``level`` (``len(curve)`` when never reached)."""
    return next((n + 1 for n, d in enumerate(curve) if d >= level), len(curve))


def summarise(rows: list[dict[str, Any]], max_clicks: int) -> dict[str, Any]:
    """Means over lesions: Dice@k, NoC@X (and the share reaching X within ``max_clicks``)."""
    if not rows:
        return {"lesions": 0}
    curves = np.array([r["dice"] for r in rows])
    out: dict[str, Any] = {"lesions": len(rows)}
    for k in REPORTED_CLICKS:
        if k <= max_clicks:
            out[f"dice@{k}"] = round(float(curves[:, k - 1].mean()), 3)
    for level in NOC_LEVELS:
        counts = [noc(c, level) for c in curves]
        out[f"noc@{int(level * 100)}"] = round(float(np.mean(counts)), 2)
        out[f"reached@{int(level * 100)}"] = round(float(np.mean([c.max() >= level for c in curves])), 3)
    out["seconds_per_click"] = round(float(np.mean([r["seconds"] / max_clicks for r in rows])), 3)
    return out


def group_summaries(rows: list[dict[str, Any]], max_clicks: int) -> dict[str, Any]:
    """:func:`summarise` per group of lesions, a group being the case id's prefix before its first
    ``_`` (``large_00003#1`` -> ``large``, ``seen_train_00001#2`` -> ``seen``): the parts of a mixed
    validation set. Empty when every lesion is of one group."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row["lesion"]).split("_", 1)[0], []).append(row)
    return {} if len(groups) < 2 else {name: summarise(g, max_clicks) for name, g in sorted(groups.items())}


def lesions_of_cases(data: Path, part: str | None, split: str | None, limit: int | None,
                     val_fraction: float | None = None) -> list[tuple[str, Any, np.ndarray]]:
    """(name, image, one lesion's mask) of every lesion of the chosen cases; with ``val_fraction``
    the validation cases a training run with that fraction held out (``training_data.split_cases``)."""
    from .cases import load_cases
    from .training_data import split_cases

    if val_fraction is not None:
        cases = split_cases({"val_fraction": val_fraction}, data)[1]
    else:
        cases = load_cases(data, split=split, part=part)
    out = []
    for case in cases[: limit or None]:
        image, labels = case.load()
        for lesion in case.lesions:
            mask = labels == lesion.lesion_id
            if mask.any():
                out.append((f"{case.case_id}#{lesion.lesion_id}", image, mask))
    return out


def evaluate(models: dict[str, Any], lesions: list[tuple[str, Any, np.ndarray]], max_clicks: int) -> dict[str, Any]:
    """Per model: per-lesion Dice curves and their summary."""
    report: dict[str, Any] = {}
    for name, model in models.items():
        rows = []
        for lesion_name, image, mask in lesions:
            t0 = time.perf_counter()
            curve = click_curve(image, mask, model, max_clicks)
            rows.append({"lesion": lesion_name, "dice": [round(d, 4) for d in curve],
                         "seconds": round(time.perf_counter() - t0, 3)})
        report[name] = {"summary": summarise(rows, max_clicks), "groups": group_summaries(rows, max_clicks),
                        "lesions": rows}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module doc."""
    from ..models.interactive.region_grow import RegionGrowSegmenter
    from ..models.registry import load_segmenter
    from ..pipeline.io import read_image

    p = argparse.ArgumentParser(prog="python -m TextLesionSegLib.evaluation.clicks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=[], help="registered click model (repeatable)")
    p.add_argument("--weights", type=Path, action="append", default=[],
                   help="a click model's weights folder (a training run's best/), measured as its folder name")
    p.add_argument("--baseline", action="store_true", help="also measure region growing from the clicks")
    p.add_argument("--data", type=Path, help="dataset or SynthLesion root (every lesion of the chosen cases)")
    p.add_argument("--part", default="test", help="cases of this part (test; train for validation folders)")
    p.add_argument("--split", default=None, help="only this SynthLesion split")
    p.add_argument("--limit", type=int, default=None, help="at most this many cases")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="instead: the validation cases of a training run with this val_fraction (the ship rule's set)")
    p.add_argument("--image", type=Path, help="one more image (e.g. lung2_image.nrrd) ...")
    p.add_argument("--label", type=Path, help="... and its label (every voxel > 0 is the lesion)")
    p.add_argument("--max-clicks", type=int, default=5)
    p.add_argument("--out", type=Path, required=True, help="JSON report")
    args = p.parse_args(argv)
    lesions = lesions_of_cases(args.data, args.part, args.split, args.limit, args.val_fraction) if args.data else []
    if args.image is not None:
        image, label = read_image(args.image), read_image(args.label)
        if label.array.shape != image.array.shape:
            p.error(f"{args.label} is not on the grid of {args.image}")
        lesions.append((args.image.name, image, np.asarray(label.array) > 0))
    from ..models.interactive.segmenter import InteractiveSegmenter

    models: dict[str, Any] = {name: load_segmenter(name, "cpu") for name in args.model}
    models.update({f"{w.parent.name}/{w.name}": InteractiveSegmenter.from_pretrained(w) for w in args.weights})
    if args.baseline:
        models["region-grow"] = RegionGrowSegmenter()
    report = {"max_clicks": args.max_clicks, "data": str(args.data or ""), "part": args.part, "split": args.split,
              "image": str(args.image or ""), **evaluate(models, lesions, args.max_clicks)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    for name in models:
        print(name, json.dumps(report[name]["summary"]))
        for group, summary in report[name]["groups"].items():
            print(f"  {group}", json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
