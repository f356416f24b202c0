"""The clinical knowledge table (``knowledge_table.json``): lesion types, their organ, typical
attribute values and SNOMED CT codes; lesion-type ranking (Malenia's inference step IV) and
Slicer terminology entries.

The table is data, not code: add a lesion type by adding an entry to the JSON file.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from .types import LesionQuery

TABLE_PATH = Path(__file__).with_name("knowledge_table.json")
#: attributes with a probability table per lesion type
RANKED_ATTRIBUTES = ("shape", "density", "density_variation", "surface", "relation")
#: probability given to a value a lesion type's table does not list (so one odd value never vetoes)
_FLOOR = 0.02


@lru_cache(maxsize=1)
def knowledge_table() -> dict[str, Any]:
    """The parsed table (read once)."""
    with open(TABLE_PATH, encoding="utf-8") as f:
        return json.load(f)


def lesion_types() -> list[dict[str, Any]]:
    """Every lesion type entry of the table."""
    return knowledge_table()["lesion_types"]


def lesion_type_entry(name: str | None) -> dict[str, Any] | None:
    """The table entry of a lesion type name, or ``None``."""
    return next((e for e in lesion_types() if e["name"] == name), None)


def resolve_lesion_type(word: str | None, organ: str | None) -> str | None:
    """A lesion word plus its organ → the table's lesion type ("cyst" + kidney → "renal cyst").

    Returns the word itself when the table names it directly, ``None`` when the pair is unknown.
    """
    if word is None:
        return None
    if lesion_type_entry(word):
        return word
    if word in _UNRESOLVED or organ is None:
        return None
    for entry in lesion_types():
        if word in entry["words"] and entry["organ"] == organ:
            return entry["name"]
    return None


#: words too generic to name a disease by themselves ("a kidney mass" is not yet a carcinoma)
_UNRESOLVED = frozenset({"lesion", "mass", "tumor"})


def rank_lesion_types(attributes: dict[str, Any], organ: str | None) -> list[tuple[str, float]]:
    """Score every lesion type of the table for these attributes (Malenia's inference step IV).

    ``attributes`` maps attribute names (``shape``, ``density``, ``density_variation``,
    ``surface``, ``relation``, ``specific_features``) to canonical values; ``None`` values are
    ignored. ``organ`` is a canonical organ ("liver"); when it is ``None`` or not one, the organ
    is read from ``attributes["location"]`` (a location phrase such as "right hepatic lobe").

    The score is a naive-Bayes posterior: the type's relative prevalence (``prior``) times each
    attribute's typical frequency (floor 0.02), times 2 per typical specific feature, times 0.01
    when the type belongs to another organ than the one named. Returns ``(name, probability)``
    pairs, best first, probabilities summing to 1;
    ties are broken by name so the order is deterministic.
    """
    known_organs = {e["organ"] for e in lesion_types()}
    if organ not in known_organs:  # e.g. "lobe" cut from "right hepatic lobe": read the location phrase
        organ = organ_of_location(attributes.get("location")) or organ_of_location(organ)
    scores: list[tuple[str, float]] = []
    features = set(attributes.get("specific_features") or [])
    if isinstance(attributes.get("specific_features"), str):
        features = {f.strip() for f in attributes["specific_features"].split(",")}
    for entry in lesion_types():
        log_p = math.log(float(entry.get("prior", 1.0)))
        for name in RANKED_ATTRIBUTES:
            value = attributes.get(name)
            if value is None:
                continue
            log_p += math.log(max(entry.get(name, {}).get(value, 0.0), _FLOOR))
        for feature in features:  # a typical feature doubles the odds; others change nothing
            if feature in entry["specific_features"]:
                log_p += math.log(2.0)
        if organ is not None and entry["organ"] != organ:
            log_p += math.log(0.01)
        scores.append((entry["name"], log_p))
    top = max(s for _, s in scores)
    weights = [(n, math.exp(s - top)) for n, s in scores]
    total = sum(w for _, w in weights)
    ranked = [(n, round(w / total, 6)) for n, w in weights]
    return sorted(ranked, key=lambda t: (-t[1], t[0]))


def organ_of_location(location: Any) -> str | None:
    """The organ a location phrase names: 'right hepatic lobe' → 'liver', 'RUL' → 'lung'.

    Accepts a phrase value ("pancreatic head") or a whole attribute phrase ("Location: …");
    ``None`` when no organ is recognised.
    """
    if not isinstance(location, str) or not location.strip():
        return None
    from .extract import extract
    from .vocabulary import normalise

    text = normalise(location.split(":", 1)[-1])
    return extract(text).values.get("organ")  # type: ignore[return-value]


def infer(query: LesionQuery) -> dict[str, Any]:
    """Attributes the text did not state but the table implies for the query's lesion type.

    The lesion type is the asserted one when the table knows it, else the best-ranked type for the
    asserted attributes within the query's organ (only if its probability is at least 0.5). An
    attribute is inferred when the type's most typical value has a frequency of at least the
    table's ``inference_threshold``. Asserted values are never overwritten.
    """
    table = knowledge_table()
    inferred: dict[str, Any] = {}
    entry = lesion_type_entry(query.lesion_type)
    if entry is None and (query.organ or query.lesion_type):
        asserted = {a: getattr(query, a) for a in RANKED_ATTRIBUTES}
        asserted["specific_features"] = query.specific_features
        ranked = [r for r in rank_lesion_types(asserted, query.organ) if _fits(r[0], query)]
        if ranked and ranked[0][1] >= 0.5:
            entry = lesion_type_entry(ranked[0][0])
            inferred["lesion_type"] = entry["name"]
            inferred["lesion_type_score"] = ranked[0][1]
    if entry is None:
        return _by_convention(query, inferred)
    if query.organ is None:
        inferred["organ"] = entry["organ"]
    for name in RANKED_ATTRIBUTES:
        if getattr(query, name) is not None:
            continue
        freq = entry.get(name) or {}
        if freq:
            value, p = max(freq.items(), key=lambda kv: (kv[1], kv[0]))
            if p >= table["inference_threshold"]:
                inferred[name] = value
    return _by_convention(query, inferred)


def _by_convention(query: LesionQuery, inferred: dict[str, Any]) -> dict[str, Any]:
    """Reporting conventions. Invasion of a neighbour is always reported when seen, so a
    description that says nothing about neighbours implies "not closely related". Lesions
    confined to one lobe are reported in that lobe, so several lesions "in the liver" (肝内多发)
    with no lobe, segment or side named imply both lobes (the liver's side ``bilateral``)."""
    if query.relation is None and "relation" not in inferred:
        inferred["relation"] = "not closely related"
    if _several_in_liver_unplaced(query):
        inferred["side"] = "bilateral"
    return inferred


def _several_in_liver_unplaced(query: LesionQuery) -> bool:
    """Several (≥ 3 or "multiple") lesions in the liver, no lobe, segment or side named."""
    several = query.count == "multiple" or (isinstance(query.count, int) and query.count >= 3)
    return query.organ == "liver" and several and query.sub_location is None and query.side is None


def _fits(name: str, query: LesionQuery) -> bool:
    """A generic word ("cyst") only lets types that it can name be inferred."""
    entry = lesion_type_entry(name)
    if entry is None:
        return False
    if query.organ is not None and entry["organ"] != query.organ:
        return False
    generic = {"lesion", "mass", "nodule", "tumor", None}
    return query.lesion_type in generic or query.lesion_type in entry["words"]


def _code(triple: list[str]) -> list[str]:
    return [str(triple[0]), str(triple[1]), str(triple[2])]


def terminology_for(query: LesionQuery | None) -> dict[str, Any]:
    """The query as a Slicer terminology entry, in slicerio's segment ``"terminology"`` form.

    Codes are ``[CodingSchemeDesignator, CodeValue, CodeMeaning]`` lists, which is what slicerio's
    ``terminology_entry_to_string`` joins with ``^`` when it writes ``Segment<N>_Tags``
    (``TerminologyEntry:...``) and what ``terminology_entry_from_string`` returns on reading.
    Keys: ``contextName``, ``category``, ``type``, and when the organ is known
    ``anatomicContextName``, ``anatomicRegion`` and (for a side or a lobe) ``anatomicRegionModifier``.
    ``None`` gives a plain "Mass" entry. Use :func:`terminology_code_dict` for the
    ``CodingSchemeDesignator``/``CodeValue``/``CodeMeaning`` dictionary form.
    """
    table = knowledge_table()
    entry: dict[str, Any] = {"contextName": table["segmentation_context"], "category": _code(table["category"])}
    if query is None:
        entry["type"] = _code(table["type_codes"]["mass"])
        return entry
    # The type is what the user said (an inferred disease is a guess, not a label); the organ may
    # be inferred, because a named disease ("HCC") fixes it.
    type_name = query.lesion_type
    known = lesion_type_entry(type_name)
    if known is not None:
        entry["type"] = _code(known["type"])
    else:
        generic = table["generic_types"].get(type_name or "lesion", "mass")
        entry["type"] = _code(table["type_codes"][generic])
    organ = query.organ or query.inferred.get("organ")
    region = table["anatomic_regions"].get(organ) if organ else None
    if region is None:
        return entry
    side = query.side
    sub = query.sub_location or ""
    if organ == "lung" and sub.endswith(" lobe"):
        region = table["sub_location_regions"][sub.split()[1] + " lobe"]
    elif organ == "colon" and sub in table["sub_location_regions"]:
        region = table["sub_location_regions"][sub]
    elif organ == "liver" and sub in ("right lobe", "left lobe"):
        side = sub.split()[0]  # Slicer lists Right/Left modifiers for the liver: its lobes
    entry["anatomicContextName"] = table["anatomic_context"]
    entry["anatomicRegion"] = _code(region)
    if side in table["laterality"] and (organ in ("kidney", "adrenal", "lung", "ovary", "breast", "liver")):
        if region[2] != "Middle lobe of right lung":
            entry["anatomicRegionModifier"] = _code(table["laterality"][side])
    return entry


def terminology_code_dict(code: list[str]) -> dict[str, str]:
    """``[scheme, value, meaning]`` → ``{"CodingSchemeDesignator", "CodeValue", "CodeMeaning"}``."""
    return {"CodingSchemeDesignator": code[0], "CodeValue": code[1], "CodeMeaning": code[2]}


def terminology_string(query: LesionQuery | None) -> str:
    """The ``TerminologyEntry`` tag string Slicer stores (same encoding as slicerio writes)."""
    entry = terminology_for(query)
    empty = ["", "", ""]
    parts = [
        entry["contextName"],
        "^".join(entry["category"]),
        "^".join(entry["type"]),
        "^".join(entry.get("typeModifier", empty)),
        entry.get("anatomicContextName", ""),
        "^".join(entry.get("anatomicRegion", empty)),
        "^".join(entry.get("anatomicRegionModifier", empty)),
    ]
    return "~".join(parts)
