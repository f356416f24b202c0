"""Agreement of the parser with radiologists' attribute codes (Malenia's 303 reviewed reports).

Run: ``python -m TextLesionSegLib.query.agreement [CSV] [--markdown] [--disagreements N]``
(default CSV: ``../shared/reference/malenia_attributes.csv`` next to the repository).

For every attribute with a code in a row, the parser's value is compared with the code:
*asserted* counts a row as agreeing only if the text asserted the same value; *asserted or
inferred* also accepts the knowledge table's inferred value when nothing was asserted.
*coverage* is the fraction of rows where the parser asserted any value, *precision* the
agreement among those rows.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .parser import parse_text
from .types import LesionQuery

DEFAULT_CSV = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "malenia_attributes.csv"

#: code book of the CSV (``../shared/reference/README.md``)
CODES: dict[str, dict[str, str]] = {
    "enhancement": {"1": "non-contrast", "2": "contrast-enhanced"},
    "shape": {"1": "round-like", "2": "irregular"},
    "density": {"1": "hypodense", "2": "isodense", "3": "hyperdense", "4": "mixed"},
    "density_variation": {"1": "homogeneous", "2": "heterogeneous"},
    "surface": {"1": "well-defined", "2": "ill-defined"},
    "relation": {"1": "not closely related", "2": "closely related"},
}
LOCATION_CODES: dict[str, dict[str, str]] = {
    "kidney": {"1": "left", "2": "right"},
    "liver": {"1": "left lobe", "2": "right lobe"},
    "pancreas": {"1": "head", "2": "body", "3": "tail"},
    "colon": {"1": "ascending colon", "2": "transverse colon", "3": "descending colon", "4": "sigmoid colon", "5": "rectum"},
    "lung": {"1": "left upper lobe", "2": "left lower lobe", "3": "right upper lobe", "4": "right middle lobe",
             "5": "right lower lobe"},
}
ATTRIBUTES = ("location", "shape", "density", "density_variation", "surface", "relation", "enhancement")
_LEFT_SEGMENTS = {"segment I", "segment II", "segment III", "segment IV", "caudate lobe"}


def location_value(q: LesionQuery, organ: str, inferred: bool = False) -> str | None:
    """The query's location in the code book's terms for this organ (side, lobe or part)."""
    if q.organ not in (organ, None) or (q.organ is None and not inferred):
        return None
    if organ == "kidney":
        return q.side
    if organ == "liver":
        sub = q.sub_location
        if sub and sub.startswith("segment") or sub == "caudate lobe":
            return "left lobe" if sub in _LEFT_SEGMENTS else "right lobe"
        return sub
    if organ == "pancreas":
        return {"uncinate process": "head", "neck": "body"}.get(q.sub_location or "", q.sub_location)
    return q.sub_location


@dataclass
class AttributeAgreement:
    """Counts for one attribute over the rows that have a code for it."""

    rows: int = 0
    asserted: int = 0
    agree_asserted: int = 0
    agree_any: int = 0
    misses: list[tuple[str, str, str | None]] = field(default_factory=list)

    def as_row(self, name: str) -> dict[str, object]:
        """Percentages of this attribute as one table row."""
        pct = lambda k: round(100.0 * k / self.rows, 1) if self.rows else float("nan")  # noqa: E731
        return {
            "attribute": name,
            "rows": self.rows,
            "agreement_asserted_pct": pct(self.agree_asserted),
            "agreement_asserted_or_inferred_pct": pct(self.agree_any),
            "coverage_pct": pct(self.asserted),
            "precision_pct": round(100.0 * self.agree_asserted / self.asserted, 1) if self.asserted else float("nan"),
        }


def measure(csv_path: Path = DEFAULT_CSV) -> dict[str, AttributeAgreement]:
    """Parse every report of the CSV and count agreement per attribute."""
    results = {a: AttributeAgreement() for a in ATTRIBUTES}
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        out = parse_text(row["report"])
        q = out.queries[0] if out.queries else LesionQuery(text=row["report"])
        for name in ATTRIBUTES:
            codes = [c.strip() for c in row.get(name, "").replace("\u3001", ",").split(",") if c.strip()]
            if name == "location":
                table = LOCATION_CODES.get(row["organ"], {})
                gold = {table[c] for c in codes if c in table}
                said = location_value(q, row["organ"])
                guess = said
            else:
                gold = {CODES[name][c] for c in codes if c in CODES[name]}
                said = getattr(q, name)
                guess = said if said is not None else q.inferred.get(name)
            if not gold:
                continue  # missing or stray code (e.g. enhancement 4): not counted
            r = results[name]
            r.rows += 1
            r.asserted += said is not None
            r.agree_asserted += said in gold
            r.agree_any += guess in gold
            if said not in gold:
                r.misses.append((row["case_id"], "/".join(sorted(gold)), said))
    return results


def markdown_table(results: dict[str, AttributeAgreement]) -> str:
    """The agreement table as Markdown (what docs/query.md shows)."""
    lines = [
        "| attribute | rows | agreement, asserted | agreement, asserted or inferred | coverage | precision |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        d = r.as_row(name)
        lines.append(
            f"| {name} | {d['rows']} | {d['agreement_asserted_pct']}% | {d['agreement_asserted_or_inferred_pct']}%"
            f" | {d['coverage_pct']}% | {d['precision_pct']}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the table (and, on request, the rows that disagree)."""
    parser = argparse.ArgumentParser(prog="python -m TextLesionSegLib.query.agreement", description=__doc__.split("\n")[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV, help="malenia_attributes.csv")
    parser.add_argument("--disagreements", type=int, default=0, metavar="N", help="list N disagreeing rows per attribute")
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"error: {args.csv} not found (it lives in ../shared/reference/)", file=sys.stderr)
        return 2
    results = measure(args.csv)
    print(markdown_table(results))
    for name, r in results.items():
        for case, gold, said in r.misses[: args.disagreements]:
            print(f"{name}\t{case}\tcode={gold}\tparser={said}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
