"""Which described lesions does a model never find? The referring results by kind of lesion.

    python -m TextLesionSegLib.evaluation.missed R.json [--data DATA] [--mode network]

``evaluation.referring --out R.json`` says, for each lesion's own description, whether the
answer *follows* it and whether the lesion was among the candidates at all (``candidate_found``,
the ceiling any choice can reach). When that ceiling is low, no selection rule can help: the
network does not see the lesion. This table says which lesions it does not see, grouped by what
a radiologist would call their conspicuity: organ, contrast with the surrounding tissue (HU of
the lesion core against the organ's, as ``synth`` measured it in ``reports.csv``) and size.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

#: contrast classes, by |lesion core HU - surrounding tissue HU| [chosen: 40 HU is about the
#: difference a reader sees at once in a soft-tissue window; 100 HU is lung nodule vs air-rich lung]
CONTRAST_EDGES = (40.0, 100.0)
#: size classes by volume in mL [chosen: 1 mL is a sphere of about 12 mm]
SIZE_EDGES = (1.0, 10.0)


def _band(value: float, edges: Sequence[float], unit: str) -> str:
    """'< a unit', 'a–b unit' or '>= b unit' for ``value``."""
    if value < edges[0]:
        return f"< {edges[0]:g} {unit}"
    for lo, hi in zip(edges, edges[1:]):
        if value < hi:
            return f"{lo:g}–{hi:g} {unit}"
    return f">= {edges[-1]:g} {unit}"


def lesion_classes(reports_csv: Path) -> dict[tuple[str, int], dict[str, str]]:
    """(case id, lesion id) -> organ, contrast and size class, from a ``reports.csv`` with
    ``measured_core_mean_hu``, ``measured_reference_hu`` and ``measured_volume_ml``."""
    out: dict[tuple[str, int], dict[str, str]] = {}
    with open(reports_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                contrast = abs(float(row["measured_core_mean_hu"]) - float(row["measured_reference_hu"]))
                volume = float(row["measured_volume_ml"])
            except (KeyError, ValueError):
                continue  # a lesion without measurements cannot be classed
            out[(row["case_id"], int(row["lesion_id"]))] = {
                "organ": row.get("organ") or "?",
                "contrast": _band(contrast, CONTRAST_EDGES, "HU"),
                "size": _band(volume, SIZE_EDGES, "mL")}
    return out


def breakdown(rows: Iterable[dict[str, Any]], classes: dict[tuple[str, int], dict[str, str]],
              mode: str, by: Sequence[str] = ("organ", "contrast")) -> list[dict[str, Any]]:
    """One line per group of ``by`` over the own-description rows of ``mode``: lesions asked,
    found among the candidates, followed. Rows of lesions ``classes`` does not know are skipped."""
    groups: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        if r.get("mode") != mode or r.get("kind") != "own":
            continue
        cls = classes.get((str(r["case_id"]), int(r["lesion_id"])))
        if cls is None:
            continue
        g = groups[tuple(cls[k] for k in by)]
        g[0] += 1
        g[1] += bool(r.get("candidate_found"))
        g[2] += bool(r.get("follows"))
    return [{**dict(zip(by, key)), "lesions": n, "found": found, "follows": follows}
            for key, (n, found, follows) in sorted(groups.items())]


def markdown(lines: Sequence[dict[str, Any]], by: Sequence[str]) -> str:
    """The breakdown as a Markdown table, with a total line."""
    head = [*by, "lesions", "found among candidates", "follows"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    total = [0, 0, 0]
    for line in lines:
        n, found, follows = line["lesions"], line["found"], line["follows"]
        total = [total[0] + n, total[1] + found, total[2] + follows]
        out.append("| " + " | ".join([*(str(line[k]) for k in by), str(n), f"{found} ({found / n:.0%})",
                                      f"{follows} ({follows / n:.0%})"]) + " |")
    if total[0]:
        out.append("| " + " | ".join(["**all**", *[""] * (len(by) - 1), str(total[0]),
                                      f"{total[1]} ({total[1] / total[0]:.0%})",
                                      f"{total[2]} ({total[2] / total[0]:.0%})"]) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: print the breakdown of a stored ``evaluation.referring`` result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", help="JSON written by evaluation.referring --out")
    parser.add_argument("--data", help="dataset folder with reports.csv (default: the one the result names)")
    parser.add_argument("--mode", default="network", choices=("network", "measured"))
    parser.add_argument("--by", nargs="+", default=["organ", "contrast"], choices=("organ", "contrast", "size"))
    args = parser.parse_args(argv)
    result = json.loads(Path(args.result).read_text(encoding="utf-8"))
    reports = Path(args.data or result.get("data", "")) / "reports.csv"
    if not reports.is_file():
        print(f"error: no reports.csv in '{reports.parent}' (give the dataset with --data)", file=sys.stderr)
        return 2
    lines = breakdown(result.get("rows", []), lesion_classes(reports), args.mode, args.by)
    print(markdown(lines, args.by))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
