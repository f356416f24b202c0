"""Queries → the words text encoders see: Malenia's 8 attribute phrases, LSMS's referring
sentence, and medvlsm-style prompt templates P0–P9 adapted to CT.

Every function here is deterministic: the same query always gives the same strings, so phrase
embeddings can be cached (and Malenia's stored attribute embeddings match at inference).
"""

from __future__ import annotations

from typing import Any

from . import vocabulary as V
from .types import ATTRIBUTE_NAMES, LesionQuery

#: the label each attribute phrase starts with [chosen wording, after Malenia's Fig. 1]
ATTRIBUTE_LABELS: dict[str, str] = {
    "location": "Location",
    "shape": "Shape",
    "density": "Density",
    "density_variation": "Density variation",
    "enhancement": "Enhancement",
    "surface": "Surface",
    "relation": "Relation",
    "specific_features": "Specific features",
}
#: the value written for an attribute neither asserted nor inferred
UNSPECIFIED = "unspecified"

#: canonical values of each attribute (issue 4), in a fixed order
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "shape": ("round-like", "irregular"),
    "density": ("hypodense", "isodense", "hyperdense", "mixed"),
    "density_variation": ("homogeneous", "heterogeneous"),
    "surface": ("well-defined", "ill-defined"),
    "enhancement": ("non-contrast", "contrast-enhanced"),
    "relation": ("not closely related", "closely related"),
    "specific_features": tuple(dict.fromkeys(v for _, v in V.SPECIFIC_FEATURES)),
}
_VALUE_WORDING = {
    ("enhancement", "non-contrast"): "non-contrast CT",
    ("enhancement", "contrast-enhanced"): "contrast-enhanced CT",
    ("relation", "not closely related"): "not closely related to surrounding organs",
    ("relation", "closely related"): "closely related to surrounding organs",
    ("surface", "well-defined"): "well-defined margin",
    ("surface", "ill-defined"): "ill-defined margin",
}
_LIVER_SEGMENTS = tuple(f"segment {r}" for r in ("I", "II", "III", "IV", "V", "VI", "VII", "VIII"))
#: sub-locations per organ, for enumerating every location phrase
SUB_LOCATION_VALUES: dict[str, tuple[str, ...]] = {
    "liver": ("right lobe", "left lobe", "caudate lobe") + _LIVER_SEGMENTS,
    "pancreas": ("head", "neck", "body", "tail", "uncinate process"),
    "colon": ("cecum", "ascending colon", "hepatic flexure", "transverse colon", "splenic flexure",
              "descending colon", "sigmoid colon", "rectosigmoid", "rectum"),
    "kidney": ("upper pole", "interpolar region", "lower pole"),
    "lung": ("right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe"),
}
_ORGAN_WORDS = {"lymph node": "lymph node", "small intestine": "small intestine"}


def location_text(organ: str | None, side: str | None = None, sub_location: str | None = None) -> str | None:
    """'right kidney', 'pancreatic head', 'liver segment VII', 'right upper lobe of the lung' …"""
    if organ is None:
        return None
    if organ == "pancreas" and sub_location:
        return "pancreatic uncinate process" if sub_location == "uncinate process" else f"pancreatic {sub_location}"
    if organ == "liver" and sub_location:
        if sub_location.startswith("segment"):
            return f"liver {sub_location}"
        if sub_location == "caudate lobe":
            return "caudate lobe of the liver"
        return f"{sub_location.split()[0]} hepatic lobe"
    if organ == "liver" and side == "bilateral":
        return "both hepatic lobes"
    if organ == "lung" and sub_location:
        return f"{sub_location} of the lung"
    if organ == "colon" and sub_location:
        return sub_location
    if organ == "kidney" and sub_location:
        return f"{sub_location} of the {side + ' ' if side else ''}kidney"
    name = _ORGAN_WORDS.get(organ, organ)
    if side == "bilateral" and organ in V.PAIRED_ORGANS:  # "both kidneys", "both adrenal glands"
        plural = {"ovary": "ovaries", "adrenal": "adrenal glands"}.get(organ, name + "s")
        return f"both {plural}"
    if side and organ in V.PAIRED_ORGANS:
        return f"{side} {name}" + (" gland" if organ == "adrenal" else "")
    return f"{name} gland" if organ == "adrenal" else name


def _location_of(q: LesionQuery) -> str | None:
    organ = q.organ or q.inferred.get("organ")
    return location_text(organ, q.side, q.sub_location)


def value_of(q: LesionQuery, attribute: str) -> Any:
    """The asserted value of an attribute, else the inferred one, else ``None``."""
    if attribute == "location":
        return _location_of(q)
    if attribute == "specific_features":
        return list(q.specific_features) or q.inferred.get("specific_features") or None
    value = getattr(q, attribute)
    return value if value is not None else q.inferred.get(attribute)


def phrase_for(attribute: str, value: Any) -> str:
    """The phrase of one (attribute, value): ``phrase_for("shape", "round-like")`` →
    ``"Shape: round-like"``; ``None`` gives ``"Shape: unspecified"``; a feature list is joined."""
    label = ATTRIBUTE_LABELS[attribute]
    if value is None or value == []:
        return f"{label}: {UNSPECIFIED}"
    if isinstance(value, (list, tuple)):
        return f"{label}: " + ", ".join(str(v) for v in value)
    return f"{label}: {_VALUE_WORDING.get((attribute, value), value)}"


def attribute_phrases(q: LesionQuery) -> list[str]:
    """Malenia's 8 attribute phrases of a query, in ``ATTRIBUTE_NAMES`` order.

    Unasserted attributes take the knowledge table's inferred value when there is one, else
    ``"<Label>: unspecified"``. Deterministic, so phrase embeddings can be cached.
    """
    return [phrase_for(a, value_of(q, a)) for a in ATTRIBUTE_NAMES]


def all_locations() -> list[str]:
    """Every location phrase the parser can produce, in a fixed order."""
    from .knowledge import knowledge_table

    out: list[str] = []
    for organ in knowledge_table()["anatomic_regions"]:
        if organ in V.PAIRED_ORGANS:
            out += [location_text(organ, s) for s in ("right", "left")]
        out.append(location_text(organ))
        out += [location_text(organ, None, s) for s in SUB_LOCATION_VALUES.get(organ, ())]
    if "bone" not in out:
        out.append("bone")
    return list(dict.fromkeys(x for x in out if x))


def attribute_value_phrases() -> dict[str, list[tuple[str, str]]]:
    """Every canonical value of every attribute with its phrase, for stored embeddings.

    Malenia's prompt-free inference matches each mask token against the embeddings of every
    attribute value; this is that list: ``{"shape": [("round-like", "Shape: round-like"), …], …}``,
    in ``ATTRIBUTE_NAMES`` order, each list ending with the ``unspecified`` phrase.
    """
    out: dict[str, list[tuple[str, str]]] = {}
    for a in ATTRIBUTE_NAMES:
        values = all_locations() if a == "location" else list(ATTRIBUTE_VALUES[a])
        pairs = [(v, phrase_for(a, v)) for v in values]
        out[a] = pairs + [(UNSPECIFIED, phrase_for(a, None))]
    return out


# --- LSMS referring sentence and medvlsm templates -------------------------------------------

def _class_word(q: LesionQuery, inferred: bool = True) -> str:
    word = q.lesion_type or (q.inferred.get("lesion_type") if inferred else None) or "lesion"
    plural = isinstance(q.count, str) or (isinstance(q.count, int) and q.count > 1)
    if plural:
        irregular = {"metastasis": "metastases", "lymph node": "lymph nodes", "mass": "masses"}
        word = irregular.get(word, word if word.endswith("s") else word + "s")
    return word


def _number_word(q: LesionQuery) -> str | None:
    if q.count is None:
        return None
    if isinstance(q.count, str):
        return q.count
    words = {v: k for k, v in V.NUMBER_WORDS.items() if k not in ("single", "solitary", "a pair of", "both")}
    return words.get(q.count, str(q.count))


def size_text(q: LesionQuery) -> str | None:
    """'small' / 'medium-sized' / 'large' from the stated size (10 and 30 mm cut-offs), else the size word."""
    if q.size_mm:
        d = max(q.size_mm)
        return "small" if d < 10 else "medium-sized" if d < 30 else "large"
    return q.size_word


def referring_sentence(q: LesionQuery) -> str:
    """One sentence referring to this lesion, for LSMS (e.g. 'the small round-like hypodense cyst
    with well-defined margin in the left kidney, 20 mm'). Only asserted words are used, so the
    sentence says what the user said, in a fixed order."""
    words: list[str] = ["the"]
    number = _number_word(q)
    if q.ordinal and number and number != "one":
        words += [q.ordinal, "of the", number]  # "the larger of the two … cysts"
    elif number and number != "one":
        words.append(number)
    elif q.ordinal:
        words.append(q.ordinal)
    for w in (q.size_word, q.shape, q.density_variation, q.density):
        if w and w not in words:
            words.append(w)
    words.append(_class_word(q, inferred=False))
    tail: list[str] = []
    if q.surface:
        tail.append(f"with {_VALUE_WORDING[('surface', q.surface)]}")
    loc = location_text(q.organ, q.side, q.sub_location)
    if loc:
        tail.append(f"in {loc}" if loc.startswith("both ") else f"in the {loc}")
    if q.relation == "closely related":
        tail.append(f"closely related to the {q.related_organ}" if q.related_organ else "closely related to surrounding organs")
    if q.specific_features:
        tail.append("with " + " and ".join(q.specific_features))
    sentence = " ".join(words + tail)
    if q.size_mm:
        sentence += ", " + " x ".join(f"{v:g}" for v in q.size_mm) + " mm"
    return sentence


def _description(q: LesionQuery) -> str:
    parts = [value_of(q, "density_variation"), value_of(q, "surface")]
    rel = value_of(q, "relation")
    if rel:
        parts.append(_VALUE_WORDING[("relation", rel)])
    if q.specific_features:
        parts.append("with " + " and ".join(q.specific_features))
    return ", ".join(p for p in parts if p) or UNSPECIFIED


def prompt_template(q: LesionQuery, k: int) -> str:
    """medvlsm prompt ``P{k}`` (k = 0…9) adapted to CT: colour → density, location → organ.

    P0 '' · P1 class · P2 shape class · P3 density shape class · P4 size P3 · P5 number P4 ·
    P6 P5 + ', located in the LOCATION' · P7 class + ' which is DESCRIPTION' · P8 P5 + ' which is
    DESCRIPTION' · P9 P8 + ' located in the LOCATION'. Missing attributes are left out (inferred
    values are used), so prompts stay grammatical.
    """
    if not 0 <= k <= 9:
        raise ValueError(f"prompt template index must be 0..9, got {k}")
    if k == 0:
        return ""
    cls = _class_word(q)
    shape, density = value_of(q, "shape"), value_of(q, "density")
    number = _number_word(q)
    p2 = " ".join(w for w in (shape, cls) if w)
    p3 = " ".join(w for w in (density, p2) if w)
    p4 = " ".join(w for w in (size_text(q), p3) if w)
    p5 = " ".join(w for w in (number, p4) if w)
    loc = _location_of(q) or "the scan"
    where = f"the {loc}" if loc != "the scan" and not loc.startswith("both ") else loc
    desc = _description(q)
    return {
        1: cls,
        2: p2,
        3: p3,
        4: p4,
        5: p5,
        6: f"{p5}, located in {where}",
        7: f"{cls} which is {desc}",
        8: f"{p5} which is {desc}",
        9: f"{p5} which is {desc}, located in {where}",
    }[k]
