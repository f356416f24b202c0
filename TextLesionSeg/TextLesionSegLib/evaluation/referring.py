"""Do the words pick the lesion — and is nothing returned for a lesion that is not there?

    python -m TextLesionSegLib.evaluation.referring MODEL DATA [--part test] [--out FILE.json]

For every case of a dataset (a SynthLesion referring split, reading scenes, any folder with
``reports.csv``), each *described* lesion is asked for by its report, and the same scan is asked
three more questions: a neutral sentence ("a lesion": what the network answers without words,
the text-blind reference), the report with its attribute words swapped (a wrong description),
and descriptions of lesions the case does not hold (``training.data.descriptions``: the other
side, another density, shape, size or organ). One inference answers all of them
(``model.candidate_maps``); each is then read in **both selection modes** (``network``: the
network alone; ``measured``: with the shared measured-attribute layer, ``pipeline.selection``),
mapped back to the input grid and post-processed as ``textlesionseg segment`` does.

Reported per mode (every rate beside the others, as the project reports any text-driven number):

- ``follows``: the answer to a lesion's own report has Dice > 0.5 with it and < 0.1 with every
  other lesion (the referring criterion); ``neutral_follows``: the same for "a lesion";
  ``chance``: mean of 1 / (lesions in the case), what a text-blind model can reach;
- ``wrong_still_follows``: the swapped description still returns the described lesion;
- ``absent_rejected``: a description of an absent lesion returns no segment;
- ``candidate_found``: the described lesion is one of the mode's candidates at all (the
  ceiling any choice among them can reach; in the measured mode these include the model's
  text-free lesion map, when it has one);
- for calibration, every question's best candidate score, and ``calibrate()`` the "not found"
  threshold that rejects the most absent descriptions while still answering 90 % of the
  descriptions it answers without one.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .metrics import dice_score
from .text_sensitivity import has_swappable, swap_attributes

NEUTRAL = "a lesion"
FOLLOW_DICE, OTHER_DICE = 0.5, 0.1
#: absent descriptions asked per case
ABSENT_PER_CASE = 2


def _case_questions(case: Any, rng: np.random.Generator) -> list[tuple[str, int, str]]:
    """(kind, lesion id or -1, text) of one case: own reports, neutral, swapped, absent."""
    from ..training.data.descriptions import case_absent_texts

    described = [l for l in case.lesions if l.described and (l.report or "").strip()]
    questions = [("own", int(l.lesion_id), l.report) for l in described]
    if described:
        questions.append(("neutral", -1, NEUTRAL))
    questions += [("wrong", int(l.lesion_id), swap_attributes(l.report)) for l in described if has_swappable(l.report)]
    questions += [("absent", -1, text) for text in case_absent_texts(case, rng, ABSENT_PER_CASE)]
    return questions


def _candidate_found(prob: Any, questions: Sequence[tuple[str, int, str]], grid: Any, case: Any,
                     threshold: float, lesions: Any = None) -> dict[int, bool]:
    """Per own/wrong question: whether *any* candidate of the network's map (before selection;
    with ``lesions``, the model's text-free lesion map, of the map the measured mode cuts them from,
    :func:`pipeline.candidates.cut_map`) is the described lesion (Dice > 0.5) — what the best
    possible choice could reach."""
    from ..pipeline.candidates import cut_map
    from ..pipeline.postprocess import label_components, postprocess

    out = {}
    for q, (kind, lesion_id, _) in enumerate(questions):
        if kind not in ("own", "wrong"):
            continue
        seen = prob[q : q + 1] if lesions is None else \
            cut_map(np.asarray(prob[q]), np.asarray(lesions), threshold)[None]
        raw = postprocess(grid.to_input_grid(seen)[0], case.image.spacing, threshold=threshold) > 0
        labels, n = label_components(raw)
        target = case.label == lesion_id
        hit = np.unique(labels[target & (labels > 0)])
        out[q] = any(dice_score(labels == h, target) > FOLLOW_DICE for h in hit)
    return out


def _candidate_table(answer: Any, instances: np.ndarray, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The selection's candidate rows, each with ``lesion``: the lesion it is (Dice > 0.5 on the
    working grid), else 0."""
    table = []
    for c in answer.selection.candidates:
        region = answer.labels == c["label"]
        hit = 0
        for i in np.unique(instances[region]):
            if i and dice_score(region, instances == i) > FOLLOW_DICE:
                hit = int(i)
        table.append({**c, "lesion": hit})
    return table


def _follows(pred: np.ndarray, label: np.ndarray, lesion_id: int, ids: Sequence[int]) -> tuple[float, float, bool]:
    own = dice_score(pred, label == lesion_id)
    other = max((dice_score(pred, label == i) for i in ids if i != lesion_id), default=0.0)
    return own, other, bool(own > FOLLOW_DICE and other < OTHER_DICE)


def evaluate(model: Any, data_dir: str | Path, part: str = "test", max_cases: int | None = None,
             settings: Any = None, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """Every question of every case, in both modes (see the module docstring).

    Returns ``{"rows": [...], "summary": {mode: {...}}}``; the model is answered with
    ``min_score`` 0, so :func:`summarize` can apply any threshold afterwards."""
    from ..core.types import InferenceSettings
    from ..pipeline.answer import answers_from_maps, working_hu
    from ..pipeline.postprocess import postprocess
    from ..pipeline.preprocess import to_working_grid
    from ..pipeline.selection import MODES
    from ..training.data import LesionDataset
    from .runner import text_to_query

    settings = settings or InferenceSettings(device="cpu")
    settings = replace(settings, extra={**(settings.extra or {}), "min_score": 0.0})
    rows: list[dict[str, Any]] = []
    for n, case in enumerate(LesionDataset(data_dir, part=part)):
        if max_cases and n >= max_cases:
            break
        questions = _case_questions(case, np.random.default_rng([seed, n]))
        if not questions:
            continue
        if progress:
            print(f"case {n + 1}: {case.case_id} ({len(questions)} questions)", file=sys.stderr)
        ids = [int(v) for v in np.unique(case.label) if v != 0]
        volume, grid = to_working_grid(case.image, model.preprocessing)
        hu = working_hu(case.image, grid)
        instances = grid.to_working_image(case.image.with_array(case.label.astype(np.int32)), nearest=True)
        queries = [text_to_query(text) for _, _, text in questions]
        maps = model.candidate_maps(volume, queries, settings)
        lesion_map = maps[2] if len(maps) > 2 else None
        found = {"network": _candidate_found(maps[0], questions, grid, case, settings.threshold)}
        found["measured"] = found["network"] if lesion_map is None else \
            _candidate_found(maps[0], questions, grid, case, settings.threshold, lesion_map)
        for mode in MODES:
            answers = answers_from_maps(model, volume, maps, queries, settings, hu, grid.working.spacing,
                                        grid.working.direction, mode=mode)
            for q, ((kind, lesion_id, text), answer) in enumerate(zip(questions, answers)):
                prob = grid.to_input_grid(answer.probability[None])[0]
                pred = postprocess(prob, case.image.spacing, threshold=settings.threshold).astype(bool)
                best = answer.selection.candidates[0]["score"] if answer.selection.candidates else 0.0
                row = {"case_id": case.case_id, "mode": mode, "kind": kind, "lesion_id": lesion_id, "text": text,
                       "n_lesions": len(ids), "best_score": float(best), "voxels": int(pred.sum())}
                if kind == "own" or kind == "wrong":
                    row["dice"], row["max_other_dice"], row["follows"] = _follows(pred, case.label, lesion_id, ids)
                    row["candidate_found"] = found[mode].get(q, False)
                elif kind == "neutral":
                    row["followed"] = [i for i in ids if _follows(pred, case.label, i, ids)[2]]
                if mode == "measured":  # every candidate's measurements and which lesion it is, for tuning
                    row["candidates"] = _candidate_table(answer, instances, ids)
                rows.append(row)
    return {"model": str(getattr(model, "name", "")), "data": str(data_dir), "part": part, "rows": rows,
            "summary": {mode: summarize(rows, mode) for mode in MODES}}


def summarize(rows: Sequence[dict[str, Any]], mode: str, min_score: float = 0.0) -> dict[str, Any]:
    """Rates of one mode at "not found" threshold ``min_score`` (an answer whose best candidate
    scores below it is empty)."""
    mine = [r for r in rows if r["mode"] == mode]

    def kept(r: dict[str, Any]) -> bool:
        return r["voxels"] > 0 and r["best_score"] >= min_score

    own = [r for r in mine if r["kind"] == "own"]
    wrong = [r for r in mine if r["kind"] == "wrong"]
    absent = [r for r in mine if r["kind"] == "absent"]
    neutral = {r["case_id"]: r for r in mine if r["kind"] == "neutral"}

    def rate(values: list[bool]) -> float | None:
        return round(float(np.mean(values)), 3) if values else None

    return {
        "min_score": min_score,
        "n_own": len(own), "follows": rate([r["follows"] and kept(r) for r in own]),
        "candidate_found": rate([bool(r.get("candidate_found")) for r in own]),
        "mean_dice": rate([r["dice"] if kept(r) else 0.0 for r in own]),
        "chance": rate([1.0 / max(r["n_lesions"], 1) for r in own]),
        "neutral_follows": rate([r["case_id"] in neutral and kept(neutral[r["case_id"]])
                                 and r["lesion_id"] in neutral[r["case_id"]]["followed"] for r in own]),
        "own_answered": rate([kept(r) for r in own]),
        "n_wrong": len(wrong), "wrong_still_follows": rate([r["follows"] and kept(r) for r in wrong]),
        "n_absent": len(absent), "absent_rejected": rate([not kept(r) for r in absent]),
    }


#: the "not found" threshold may refuse at most this share of descriptions of lesions that are there
MAX_REFUSED = 0.1


def calibrate(rows: Sequence[dict[str, Any]], mode: str, max_refused: float = MAX_REFUSED) -> float:
    """The "not found" threshold [chosen policy]: the highest one at which descriptions of lesions
    that are there still get a segment at least ``1 - max_refused`` as often as with no threshold —
    so it rejects as many absent descriptions as it can while costing at most 10 % of the answers
    to real ones. (A balanced objective, mean of followed and rejected, chose to refuse nearly
    everything for a model that cannot tell absent from present: useless to a reader.)"""
    mine = [r for r in rows if r["mode"] == mode and r["kind"] in ("own", "absent")]
    base = summarize(rows, mode, 0.0)["own_answered"] or 0.0
    best = 0.0
    for t in sorted({round(r["best_score"], 4) for r in mine}):
        if (summarize(rows, mode, t)["own_answered"] or 0.0) >= (1.0 - max_refused) * base:
            best = t
    return float(best)


def write_thresholds(weights_dir: Path, thresholds: dict[str, float], source: str,
                     lesion_prior: float | None = None) -> Path:
    """Store calibrated "not found" thresholds in a weights folder's ``config.json``
    (``extra.selection``, read by the segmenters), with where they came from, and the weight of
    text-free candidates they were calibrated with (``lesion_prior``), when the model has some."""
    path = Path(weights_dir) / "config.json"
    if not path.is_file():
        from ..errors import InputError

        raise InputError(f"{path} not found: thresholds are written into a weights folder")
    config = json.loads(path.read_text(encoding="utf-8"))
    extra = config.setdefault("extra", {})
    extra["selection"] = {**{m: round(float(t), 4) for m, t in thresholds.items()}, "calibrated_on": source}
    if lesion_prior is not None:
        extra["selection"]["lesion_prior"] = float(lesion_prior)
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: print the summary per mode (and at calibrated thresholds), write rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="registry name or weights folder")
    parser.add_argument("data", help="dataset folder")
    parser.add_argument("--part", default="test")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-cases", type=int)
    parser.add_argument("--overlap", type=float, default=0.25, help="sliding-window overlap (3D models)")
    parser.add_argument("--min-score", type=json.loads, default=None,
                        help='thresholds to apply, e.g. \'{"network": 0.6, "measured": 0.3}\' (default: the model\'s own)')
    parser.add_argument("--lesion-prior", type=float,
                        help="weight of the model's text-free candidates in the measured mode (default: the model's own; "
                             "choose it on validation data with evaluation.rescore)")
    parser.add_argument("--out", type=Path, help="write every row and summary as JSON")
    parser.add_argument("--write-thresholds", action="store_true",
                        help="store the thresholds calibrated here in MODEL/config.json (a weights folder; "
                             "calibrate on validation data only)")
    args = parser.parse_args(argv)
    import torch

    from ..core.types import InferenceSettings
    from ..models import registry

    torch.set_num_threads(args.threads)
    model = registry.load_segmenter(args.model, "cpu")
    if args.lesion_prior is not None:
        model.lesion_prior = args.lesion_prior
    result = evaluate(model, args.data, args.part, args.max_cases, InferenceSettings(device="cpu", overlap=args.overlap),
                      progress=True)
    thresholds = args.min_score or {m: model.min_score(m) for m in result["summary"]}
    result["at_threshold"] = {m: summarize(result["rows"], m, float(thresholds.get(m, 0.0))) for m in result["summary"]}
    result["calibrated"] = {m: calibrate(result["rows"], m) for m in result["summary"]}
    result["at_calibrated"] = {m: summarize(result["rows"], m, t) for m, t in result["calibrated"].items()}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    if args.write_thresholds:
        write_thresholds(Path(args.model), result["calibrated"], f"evaluation.referring on {args.data} ({args.part})",
                         model.lesion_prior)
    print(json.dumps({k: result[k] for k in ("model", "data", "part", "summary", "at_threshold", "calibrated",
                                             "at_calibrated")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
