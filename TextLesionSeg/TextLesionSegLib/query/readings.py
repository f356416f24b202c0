"""Readings beyond one phrase per value, used by :func:`.extract.extract`.

- phrases whose meaning contains a negation ("margins are not clear", "cannot exclude") are not
  negation triggers;
- "bilateral" / "both kidneys" give ``side = "bilateral"`` (and several lesions); "both lobes of
  the liver" gives the liver's ``side = "bilateral"``;
- a border "with the renal parenchyma" (the lesion's own organ) is the lesion's margin, not a
  relation to a neighbour;
- a density variation not stated may be *implied* by the text (internal necrosis, cystic
  components, a mixed density → heterogeneous; simple fluid → homogeneous), recorded as such;
- understood words inside a negation ("no mass in the RUL") are not reported as unknown.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from . import tables as T
from . import vocabulary as V

if TYPE_CHECKING:  # pragma: no cover
    from .extract import Extraction

Span = tuple[int, int]

_BAD = re.compile(r"\b(?:indistinct|unclear|blurr\w*|ill|poorly|lost|obscured?|not|effac\w+|obliterat\w+|inseparable"
                  r"|indistinguishable|cannot|invad\w+|infiltrat\w+|fuzzy|irregular|rough)\b")
_GOOD = re.compile(r"\b(?:clear|sharp|smooth|distinct|preserved|intact|well)\b")
_OWN_TISSUE = re.compile(r"\bparenchyma\w*\b|\bnormal (?:\w+ )?tissue\b|\bcortex\b")


@lru_cache(maxsize=4096)
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def negation_phrases(text: str) -> list[Span]:
    """Spans of vocabulary phrases that contain a negation word (their words start no scope)."""
    trigger = _rx(T.get("NEGATION_TRIGGERS"))
    spans: list[Span] = []
    for name in ("SURFACE", "DENSITY_VARIATION", "SHAPE"):
        for pattern, _ in T.get(name):
            spans += [m.span() for m in _rx(pattern).finditer(text) if trigger.search(m.group(0))]
    spans += [m.span() for m in _rx(T.get("UNCERTAINTY")).finditer(text) if trigger.search(m.group(0))]
    return spans


def _free(span: Span, blocked: list[Span]) -> bool:
    return not any(span[0] < b and a < span[1] for a, b in blocked)


def bilateral(text: str, blocked: list[Span], ex: "Extraction") -> None:
    """"Bilateral renal cysts", "nodules in both lungs": side ``bilateral`` and several lesions.
    "Both lobes of the liver", "bilobar": the liver's side ``bilateral`` (no lobe named; one mass
    may span both lobes, so no count is implied)."""
    if ex.values.get("organ") == "liver" and "sub_location" not in ex.values:
        hits = [m for m in _rx(T.get("LIVER_BOTH_LOBES")).finditer(text) if _free(m.span(), blocked)]
        if hits:
            ex.values["side"] = "bilateral"
            ex.covered += [m.span() for m in hits]
        return
    if ex.values.get("organ") not in V.PAIRED_ORGANS:
        return
    hits = [m for m in _rx(T.get("BILATERAL")).finditer(text) if _free(m.span(), blocked)]
    if hits:
        ex.values["side"] = "bilateral"
        ex.values.setdefault("count", "multiple")
        ex.covered += [m.span() for m in hits]


def organ_named(phrase: str) -> str | None:
    """The organ a short phrase names ("the renal parenchyma" → kidney), or ``None``."""
    for pattern, organ in T.get("ORGANS"):
        if _rx(pattern).search(phrase):
            return organ
    return None


def own_organ_margins(close: list[tuple[re.Match[str], str | None]], organ: str | None) -> list[tuple[Span, str | None]]:
    """Relation matches whose "neighbour" is the lesion's own organ or parenchyma, each with the
    margin it states (ill-defined, well-defined, or ``None`` when it says neither)."""
    out: list[tuple[Span, str | None]] = []
    for m, neighbour in close:
        if not neighbour:
            continue
        if not (_OWN_TISSUE.search(neighbour) or (organ is not None and organ_named(neighbour) == organ)):
            continue
        words = m.group(0)
        value = "ill-defined" if _BAD.search(words) else "well-defined" if _GOOD.search(words) else None
        out.append((m.span(), value))
    return out


def implied_variation(text: str, blocked: list[Span], ex: "Extraction") -> None:
    """A density variation the text implies without naming it (recorded in ``ex.evidence``)."""
    if ex.values.get("density_variation"):
        return
    for pattern, value in T.get("DENSITY_VARIATION_IMPLIED"):
        hits = [m for m in _rx(pattern).finditer(text) if _free(m.span(), blocked)]
        if hits:
            ex.values["density_variation"] = value
            ex.evidence["density_variation"] = f"implied by '{hits[0].group(0)}'"
            ex.covered.append(hits[0].span())
            return
    features = set(ex.values.get("specific_features") or ())
    for feature in ("necrosis", "hemorrhage", "septation"):
        if feature in features:
            ex.values["density_variation"] = "heterogeneous"
            ex.evidence["density_variation"] = f"implied by {feature}"
            return


def cover_negated(text: str, scopes: list[Span], ex: "Extraction") -> None:
    """Mark understood words inside negation scopes as understood (they are negated, not unknown)."""
    if not scopes:
        return
    patterns = [p for p, *_ in T.get("SUB_LOCATIONS")] + [p for p, _ in T.get("ORGANS")]
    for name in ("SHAPE", "DENSITY", "SURFACE", "DENSITY_VARIATION", "LESION_WORDS", "SPECIFIC_FEATURES"):
        patterns += [p for p, _ in T.get(name)]
    for start, end in scopes:
        for pattern in patterns:
            ex.covered += [m.span() for m in _rx(pattern).finditer(text, start, end)]
