"""Agreement of the parser with radiologists' attribute codes (Malenia's coded reports).

Run: ``python -m TextLesionSegLib.query.agreement [CSV ...] [--disagreements N] [--detail] [--removed]``
(default CSV: ``../shared/reference/malenia_attributes.csv`` next to the repository; the Chinese
``malenia_attributes_zh.csv`` has the same columns and codes).

For every attribute with a code in a row, the parser's value is compared with the code:
*stated* counts a row as agreeing only if the text stated the same value; the plain figure also
accepts the knowledge table's inferred value when nothing was stated. *In-sample* parses every
row with the full parser; *held-out* (leave-one-lesion-type-out, :func:`measure_held_out`)
parses each type's rows with the parser less what only that type's reports attest
(``query/holdout.py``; docs/query.md, "Generalisation").
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

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
#: the code book's two sides of an organ: "bilateral" agrees with a row coded with both
_BOTH_SIDES = {"kidney": ("left", "right"), "liver": ("left lobe", "right lobe")}


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
        return "bilateral" if sub is None and q.side == "bilateral" else sub
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


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    """The rows of a coded file (English or Chinese: same columns and codes)."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def _codes(row: dict[str, str], name: str) -> list[str]:
    return [c.strip() for c in (row.get(name) or "").replace("\u3001", ",").split(",") if c.strip()]


def score(row: dict[str, str], q: LesionQuery, results: dict[str, AttributeAgreement]) -> None:
    """Add one row's comparison of query ``q`` with its codes to ``results``."""
    for name in ATTRIBUTES:
        codes = _codes(row, name)
        if name == "location":
            table = LOCATION_CODES.get(row["organ"], {})
            gold = {table[c] for c in codes if c in table}
            said = location_value(q, row["organ"])
            # a convention's inferred side (several lesions "in the liver": both lobes) counts as
            # inferred, never as stated
            both_inferred = q.organ == row["organ"] and q.inferred.get("side") == "bilateral"
            guess = said if said is not None else ("bilateral" if both_inferred else None)
        else:
            gold = {CODES[name][c] for c in codes if c in CODES[name]}
            said = getattr(q, name)
            guess = said if said is not None else q.inferred.get(name)
        if not gold:
            continue  # missing or stray code (e.g. enhancement 4): not counted
        r = results[name]
        r.rows += 1
        r.asserted += said is not None
        both = _BOTH_SIDES.get(row["organ"]) if name == "location" else None
        if both and set(both) <= gold:  # both sides (lobes) coded, "bilateral" read: agrees
            said, guess = (both[0] if v == "bilateral" else v for v in (said, guess))
        r.agree_asserted += said in gold
        r.agree_any += guess in gold
        if guess not in gold:
            r.misses.append((row["case_id"], "/".join(sorted(gold)), guess))


def _first_query(report: str) -> LesionQuery:
    out = parse_text(report)
    return out.queries[0] if out.queries else LesionQuery(text=report)


def measure(csv_path: Path = DEFAULT_CSV, rows: list[dict[str, str]] | None = None) -> dict[str, AttributeAgreement]:
    """In-sample: parse every report of the CSV with the full parser and count agreement per attribute."""
    results = {a: AttributeAgreement() for a in ATTRIBUTES}
    for row in rows if rows is not None else read_rows(csv_path):
        score(row, _first_query(row["report"]), results)
    return results


def holdout_modules() -> list[ModuleType]:
    """Every module whose phrase tables a held-out fold may ablate."""
    from . import lexicon, lexicon_zh, vocabulary

    return [vocabulary, lexicon, lexicon_zh]


def general_tables() -> set[tuple[str, str]]:
    """The general lexicons' tables: kept whole by the held-out figure, ablated by the strict one."""
    from . import lexicon, lexicon_zh

    return {(lexicon.__name__, n) for n in lexicon.HOLDOUT_TABLES} | {(lexicon_zh.__name__, "GENERAL")}


@dataclass
class HeldOut:
    """Leave-one-type-out agreement: pooled over the folds, per fold, and what each fold removed."""

    pooled: dict[str, AttributeAgreement]
    per_type: dict[str, dict[str, AttributeAgreement]]
    removed: dict[str, list[tuple[tuple[str, str], str]]]


def measure_held_out(csv_path: Path = DEFAULT_CSV, rows: list[dict[str, str]] | None = None,
                     strict: bool = False) -> HeldOut:
    """Leave-one-lesion-type-out (docs/query.md, "Generalisation"): each type's reports parsed by
    the parser without the phrase alternatives only that type's reports attest; ``strict`` ablates
    the general lexicons too."""
    from .chinese import is_chinese, normalise_zh
    from .holdout import attest, held_out
    from .vocabulary import normalise

    rows = rows if rows is not None else read_rows(csv_path)
    by_type: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_type.setdefault(row["lesion_type"], []).append(row)
    modules = holdout_modules()
    chinese = sum(is_chinese(r["report"]) for r in rows) > len(rows) / 2
    reports = {t: [r["report"] for r in rs] for t, rs in by_type.items()}
    attestation = attest(modules, reports, normalise_zh if chinese else normalise)
    if not strict:
        attestation = attestation.without(general_tables())
    pooled = {a: AttributeAgreement() for a in ATTRIBUTES}
    per_type: dict[str, dict[str, AttributeAgreement]] = {}
    removed: dict[str, list[tuple[tuple[str, str], str]]] = {}
    for lesion_type, type_rows in by_type.items():
        per_type[lesion_type] = {a: AttributeAgreement() for a in ATTRIBUTES}
        with held_out(lesion_type, modules, attestation) as cut:
            removed[lesion_type] = cut
            for row in type_rows:
                q = _first_query(row["report"])
                score(row, q, pooled)
                score(row, q, per_type[lesion_type])
    return HeldOut(pooled, per_type, removed)


def _pct(r: AttributeAgreement, key: str) -> str:
    return f"{100.0 * getattr(r, key) / r.rows:.1f}%" if r.rows else "n/a"


def comparison_table(in_sample: dict[str, AttributeAgreement], loto: HeldOut, strict: HeldOut | None = None) -> str:
    """In-sample beside leave-one-type-out (and its strict form), per attribute (docs/query.md)."""
    lines = [
        "| attribute | rows | in-sample, stated | in-sample | held-out, stated | held-out | worst held-out type"
        + (" | held-out, strict |" if strict else " |"),
        "|---|---:|---:|---:|---:|---:|---|" + ("---:|" if strict else ""),
    ]
    for name, r in in_sample.items():
        h = loto.pooled[name]
        folds = [(100.0 * f[name].agree_any / f[name].rows, t) for t, f in loto.per_type.items() if f[name].rows]
        worst = min(folds) if folds else None
        worst_text = f"{worst[0]:.1f}% ({worst[1]})" if worst else "n/a"
        line = (f"| {name} | {r.rows} | {_pct(r, 'agree_asserted')} | {_pct(r, 'agree_any')}"
                f" | {_pct(h, 'agree_asserted')} | {_pct(h, 'agree_any')} | {worst_text} |")
        if strict:
            line += f" {_pct(strict.pooled[name], 'agree_any')} |"
        lines.append(line)
    return "\n".join(lines)


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
    """Command line: in-sample and leave-one-type-out tables (and, on request, disagreeing rows)."""
    parser = argparse.ArgumentParser(prog="python -m TextLesionSegLib.query.agreement", description=__doc__.split("\n")[0])
    parser.add_argument("csv", nargs="*", type=Path, default=[DEFAULT_CSV],
                        help="malenia_attributes.csv and/or malenia_attributes_zh.csv")
    parser.add_argument("--disagreements", type=int, default=0, metavar="N",
                        help="list N disagreeing rows per attribute (in-sample and held-out)")
    parser.add_argument("--detail", action="store_true", help="also print coverage and precision (in-sample)")
    parser.add_argument("--removed", action="store_true",
                        help="list the alternatives each strict held-out fold removed (those of the general lexicons included)")
    args = parser.parse_args(argv)
    for path in args.csv:
        if not path.is_file():
            print(f"error: {path} not found (it lives in ../shared/reference/)", file=sys.stderr)
            return 2
    for path in args.csv:
        rows = read_rows(path)
        results = measure(path, rows)
        loto = measure_held_out(path, rows)
        strict = measure_held_out(path, rows, strict=True)
        if len(args.csv) > 1:
            print(f"\n{path.name}\n")
        print(comparison_table(results, loto, strict))
        if args.detail:
            print()
            print(markdown_table(results))
        for name in ATTRIBUTES:
            for case, gold, said in results[name].misses[: args.disagreements]:
                print(f"in-sample\t{name}\t{case}\tcode={gold}\tparser={said}")
            for case, gold, said in loto.pooled[name].misses[: args.disagreements]:
                print(f"held-out\t{name}\t{case}\tcode={gold}\tparser={said}")
        if args.removed:
            for lesion_type, cut in strict.removed.items():
                for (module, table), alt in cut:
                    print(f"removed\t{lesion_type}\t{module.rsplit('.', 1)[-1]}.{table}\t{alt}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
