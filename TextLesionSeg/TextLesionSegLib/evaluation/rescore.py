"""Re-run the measured selection on the candidate tables of an ``evaluation.referring`` run.

    python -m TextLesionSegLib.evaluation.rescore R.json --lesion-prior 0.3 0.5 0.7 1.0

``evaluation.referring --out R.json`` stores, for every measured-mode question, every candidate
with its measurements and which lesion it is (Dice > 0.5 on the working grid, else 0). A setting
of the selection that does not change the candidates themselves — the weight of text-free
candidates (``lesion_prior``) — can then be chosen without running the network again: each
question is answered anew by :func:`pipeline.selection.choose`, and the "not found" threshold is
calibrated on the new scores with :func:`referring.calibrate`'s policy.

A re-scored question *follows* when the chosen candidates are exactly the described lesion: the
candidate-level form of the referring criterion (Dice > 0.5 with it, < 0.1 with the others), which
it matches except where a chosen candidate also grazes another lesion.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from .referring import calibrate, summarize

MODE = "measured"


def _candidates(row: dict[str, Any]) -> list[tuple[Any, int]]:
    """(Candidate, lesion id or 0) of a stored row."""
    from ..pipeline.candidates import Candidate

    names = {f.name for f in dataclasses.fields(Candidate)}
    out = []
    for c in row.get("candidates") or []:
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in c.items() if k in names}
        out.append((Candidate(**kwargs), int(c.get("lesion", 0))))
    return out


def rescore(rows: Sequence[dict[str, Any]], lesion_prior: float | None) -> list[dict[str, Any]]:
    """The measured-mode rows answered again with ``lesion_prior`` (no "not found" threshold:
    :func:`referring.summarize` applies one afterwards)."""
    from ..pipeline.selection import choose
    from .runner import text_to_query

    out = []
    for row in rows:
        if row["mode"] != MODE:
            continue
        table = _candidates(row)
        sel = choose([c for c, _ in table], text_to_query(row["text"]), MODE, 0.0, lesion_prior=lesion_prior)
        lesion_of = {c.label: lesion for c, lesion in table}
        chosen = [lesion_of[label] for label in sel.labels]
        new = {**row, "best_score": sel.candidates[0]["score"] if sel.candidates else 0.0,
               "voxels": int(sum(c.voxels for c, _ in table if c.label in sel.labels))}
        if row["kind"] in ("own", "wrong"):
            new["follows"] = chosen == [row["lesion_id"]]
        elif row["kind"] == "neutral":
            new["followed"] = chosen[:1] if len(chosen) == 1 and chosen[0] else []
        new.pop("candidates", None)
        out.append(new)
    return out


def compare(rows: Sequence[dict[str, Any]], priors: Sequence[float]) -> list[dict[str, Any]]:
    """Per prior: the re-scored rows, the calibrated threshold and the rates at it (and at 0)."""
    results = []
    for prior in priors:
        new = rescore(rows, prior)
        threshold = calibrate(new, MODE)
        results.append({"lesion_prior": prior, "threshold": threshold, "rows": new,
                        "at_threshold": summarize(new, MODE, threshold), "at_zero": summarize(new, MODE, 0.0)})
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line: one line per prior."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path, help="JSON written by evaluation.referring --out")
    parser.add_argument("--lesion-prior", type=float, nargs="+", default=[0.3, 0.5, 0.7, 1.0])
    parser.add_argument("--min-score", type=float, help="also report the rates at this fixed threshold")
    args = parser.parse_args(argv)
    rows = json.loads(args.rows.read_text(encoding="utf-8"))["rows"]
    for r in compare(rows, args.lesion_prior):
        at = r["at_threshold"]
        line = (f"lesion_prior {r['lesion_prior']}: threshold {r['threshold']:.4f}  follows {at['follows']}  "
                f"absent rejected {at['absent_rejected']}  (threshold 0: follows {r['at_zero']['follows']})")
        if args.min_score is not None:
            fixed = summarize(r["rows"], MODE, args.min_score)
            line += f"  at {args.min_score}: follows {fixed['follows']}, absent rejected {fixed['absent_rejected']}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
