"""Which attribute phrases Malenia aligns with, gates with and injects.

- Alignment (MP-NCE) positives: the lesion's 8 full phrases plus its coarse location (organ + side),
  so a token agrees with both "left upper lobe of the lung" and "left lung".
- Gating (text-guided selection) compares locations at the coarse level only: "is this lesion in
  the left lung" should not compete with "is it in the left upper lobe".
- CMKI's text stream gets the phrases of the user's own words; in training a random *prompt variant*
  (full, side-only location, location only, random subset) stands in for them [chosen].
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ...query.types import ATTRIBUTE_NAMES, LesionQuery

_OPTIONAL = ("shape", "density", "density_variation", "surface", "enhancement", "relation", "related_organ")


def coarse_location_phrase(q: LesionQuery) -> str:
    """``"Location: left lung"`` for a query about the left upper lobe (organ + side only)."""
    from ...query import location_text, phrase_for

    organ = q.organ or q.inferred.get("organ")
    return phrase_for("location", location_text(organ, q.side))


def coarse_location_values() -> list[tuple[str, str]]:
    """(value, phrase) of every organ and organ + side location: the bank of stored locations."""
    from ...query import knowledge_table, location_text, phrase_for
    from ...query import vocabulary as V

    out = []
    for organ in knowledge_table()["anatomic_regions"]:
        sides = ("left", "right", None) if organ in V.PAIRED_ORGANS else (None,)
        out += [(location_text(organ, s), phrase_for("location", location_text(organ, s))) for s in sides]
    return list(dict.fromkeys(out))


def gate_phrases(q: LesionQuery, phrases: list[str]) -> list[str]:
    """The phrases used for token selection: ``phrases`` with the location made coarse."""
    return [coarse_location_phrase(q)] + list(phrases[1:])


def _with_inference(q: LesionQuery) -> LesionQuery:
    from ...query import infer

    q.inferred = infer(q)
    return q


def query_from_row(row: dict[str, str]) -> LesionQuery:
    """A LesionQuery with every attribute of one ``reports.csv`` row (lung lobes get their side)."""
    fields: dict[str, Any] = {k: (row.get(k) or None) for k in ("organ", "side", "sub_location") + _OPTIONAL}
    sub = fields.get("sub_location")
    if fields.get("organ") == "lung" and sub and fields.get("side") and not sub.startswith(fields["side"]):
        fields["sub_location"] = f"{fields['side']} {sub}"  # "upper lobe" → "left upper lobe"
    feats = [f.strip() for f in (row.get("specific_features") or "").split(";") if f.strip()]
    return LesionQuery(text=row.get("report", ""), specific_features=feats, lesion_type=row.get("lesion_type") or None, **fields)


def lesion_phrase_sets(row: dict[str, str], rng: np.random.Generator, n_random: int = 2) -> dict[str, Any]:
    """``{"phrases": 8 full, "positives": alignment positives, "variants": [8-phrase prompts]}``."""
    from ...query import attribute_phrases

    q = query_from_row(row)
    full = attribute_phrases(q)
    positives = list(dict.fromkeys(full + [coarse_location_phrase(q)]))
    variants = [full, attribute_phrases(replace(q, sub_location=None))]
    loc_only = LesionQuery(text="", organ=q.organ, side=q.side)
    variants.append(attribute_phrases(_with_inference(loc_only)))
    for _ in range(n_random):
        keep = {k: getattr(q, k) for k in _OPTIONAL if rng.random() < 0.5}
        sub = q.sub_location if rng.random() < 0.5 else None
        feats = q.specific_features if rng.random() < 0.5 else []
        v = LesionQuery(text="", organ=q.organ, side=q.side, sub_location=sub, specific_features=list(feats), **keep)
        variants.append(attribute_phrases(_with_inference(v)))
    unique = [list(v) for v in dict.fromkeys(tuple(v) for v in variants)]
    assert all(len(v) == len(ATTRIBUTE_NAMES) for v in unique)
    return {"phrases": full, "positives": positives, "variants": unique}
