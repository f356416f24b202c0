"""One lesion description (already split off) → the fields of a :class:`LesionQuery`.

The approach is a small, explainable rule set, in the spirit of NegEx: find every phrase of the
vocabulary with its character span, drop the ones inside a negation's scope, then resolve each
attribute from what is left. Spans already used by one attribute (e.g. "closely related to the
liver with poorly defined borders") are masked for the others, so "poorly defined" there is a
relation, not the lesion's margin, and "liver" is the neighbour, not the lesion's organ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from . import readings as R
from . import similarity
from . import tables as T
from . import vocabulary as V

_FLAGS = re.IGNORECASE


@lru_cache(maxsize=None)
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, _FLAGS)


Span = tuple[int, int]


@dataclass
class Extraction:
    """What one description asserted, with the spans of text that were understood."""

    values: dict[str, object] = field(default_factory=dict)
    covered: list[Span] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    negated: list[str] = field(default_factory=list)
    lesion_mentions: int = 0
    #: attribute -> how a value not named by a vocabulary phrase was read ("implied by 'necrosis'")
    evidence: dict[str, str] = field(default_factory=dict)
    #: attribute -> similarity of a value read by the text encoder (:mod:`.similarity`)
    confidence: dict[str, float] = field(default_factory=dict)


def _overlaps(span: Span, spans: list[Span]) -> bool:
    return any(span[0] < b and a < span[1] for a, b in spans)


def negation_scopes(text: str, protected: list[Span]) -> tuple[list[Span], list[Span]]:
    """Spans of text governed by a negation trigger ("no", "without", …): (scopes, triggers)."""
    scopes: list[Span] = []
    triggers: list[Span] = []
    stop = _rx(r"[.;:,!?]|" + T.get("NEGATION_STOP"))
    for m in _rx(T.get("NEGATION_TRIGGERS")).finditer(text):
        if _overlaps(m.span(), protected):
            continue
        end_match = stop.search(text, m.end())
        end = end_match.start() if end_match else len(text)
        scopes.append((m.end(), end))
        triggers.append(m.span())
    for m in _rx(T.get("POST_NEGATION")).finditer(text):
        starts = [b.end() for b in _rx(r"[.;:,!?]|\b(?:but|however|although|whereas)\b").finditer(text, 0, m.start())]
        scopes.append((starts[-1] if starts else 0, m.start()))
        triggers.append(m.span())
    return scopes, triggers


def _find(pattern: str, text: str, blocked: list[Span]) -> list[re.Match[str]]:
    return [m for m in _rx(pattern).finditer(text) if m.end() > m.start() and not _overlaps(m.span(), blocked)]


def _resolve(name: str, found: list[tuple[int, str, str]], ex: Extraction) -> None:
    """Keep the first-mentioned value of an attribute; say so when the text contradicts itself."""
    if not found:
        return
    found.sort()
    first = found[0][1]
    ex.values[name] = first
    others = sorted({v for _, v, _ in found if v != first})
    if others:
        words = ", ".join(f"'{w}'" for _, v, w in found if v in others)
        ex.notes.append(
            f"contradictory {name.replace('_', ' ')}: '{found[0][2]}' and {words}; kept '{first}' (mentioned first)"
        )


def _location(text: str, blocked: list[Span], ex: Extraction) -> None:
    """Organ, side and sub-location from the first place the lesion is said to be."""
    hits: list[tuple[int, int, str, str | None, str | None, Span]] = []
    for pattern, organ, kind, side in T.get("SUB_LOCATIONS"):
        for m in _find(pattern, text, blocked):
            sub, side_v = _sub_location(kind, m, side)
            if sub is None:
                continue
            hits.append((m.start(), 0, organ, sub, side_v, m.span()))
    taken = [h[5] for h in hits]
    for pattern, organ in T.get("ORGANS"):
        for m in _find(pattern, text, blocked + taken):
            side_m = _rx(r"\b(right|left)(?:[- ]sided)? (?:[a-z]+ )?$").search(text[max(0, m.start() - 20) : m.start()])
            side_v = side_m.group(1) if side_m and organ in V.PAIRED_ORGANS else None
            hits.append((m.start(), 1, organ, None, side_v, m.span()))
    if not hits:
        return
    # The lesion's own organ is the earliest mention after a place preposition, else the earliest.
    def placed(h: tuple) -> bool:
        """Is this mention introduced by a place preposition ("in the …", "of the …")?"""
        before = text[max(0, h[0] - 40) : h[0]]
        return bool(_rx(r"\b(?:in|within|of|at|involving|from|on|arising|along|near|adjacent to)"
                        r"(?: the| an?)?(?: [a-z-]+){0,3} ?$").search(before))
    ordered = sorted(hits, key=lambda h: (not placed(h), h[0], h[1]))
    organ = ordered[0][2]
    same = [h for h in hits if h[2] == organ]
    ex.values["organ"] = organ
    subs = [h for h in sorted(same) if h[3]]
    if subs:
        ex.values["sub_location"] = subs[0][3]
        for h in subs[1:]:  # "right hepatic lobe (segment 6)": the segment is the more specific
            ex.values["sub_location"] = more_specific(ex.values["sub_location"], h[3])
    sides = [h[4] for h in sorted(same) if h[4]]
    if sides:
        ex.values["side"] = sides[0]
    elif organ in V.PAIRED_ORGANS:  # "Kidneys: 2 cm cyst on the left": one side word, unambiguous
        words = {m.group(1) for m in _find(r"\b(left|right)\b", text, blocked)}
        if len(words) == 1:
            ex.values["side"] = words.pop()
    ex.covered += [h[5] for h in hits]


def more_specific(current: str, new: str) -> str:
    """A liver lobe refined by a Couinaud segment inside it ("right lobe" + "segment VII" →
    "segment VII"); anything else keeps the first-mentioned place."""
    if current in ("right lobe", "left lobe") and new.startswith("segment "):
        left = new.split()[1] in ("I", "II", "III", "IV")
        return new if (current == "left lobe") == left else current
    return current


def _sub_location(kind: str, m: re.Match[str], side: str | None) -> tuple[str | None, str | None]:
    g = {k: v for k, v in m.groupdict().items() if v}
    if kind == "segment":
        seg = g["seg"].lower().rstrip("ab") or g["seg"].lower()  # 4a/IVb: segment IV
        number = int(seg) if seg.isdigit() else V.ROMAN.get(seg)
        return (f"segment {V.ROMAN_OUT[number]}", None) if number else (None, None)
    if kind == "lobe":
        return f"{_group(g, 'side')} lobe", None
    if kind == "lung lobe":
        abbr = g.get("abbr")
        if abbr:
            s = "right" if abbr.lower()[0] == "r" else "left"
            lobe = {"u": "upper", "m": "middle", "l": "lower"}[abbr.lower()[1]]
        else:
            s, lobe = _group(g, "side"), _group(g, "lobe")
        if s == "left" and lobe == "middle":
            return None, None
        return f"{s} {lobe} lobe", s
    if kind == "pole":
        pole = {"superior": "upper", "inferior": "lower"}.get(g.get("pole", ""), g.get("pole"))
        return ("interpolar region" if g.get("mid") else f"{pole} pole"), None
    if kind == "pancreas part":
        return _group(g, "part"), None
    return kind, side


def _group(groups: dict[str, str], name: str) -> str | None:
    """The first named group ``name``, ``name2``, ``name3`` … that matched (alternatives of one pattern)."""
    return next((v for k, v in sorted(groups.items()) if k.rstrip("0123456789") == name), None)


def _density(text: str, blocked: list[Span], ex: Extraction) -> None:
    """Main density: the first density phrase that describes the lesion, not one of its parts."""
    mains: list[tuple[int, str, str]] = []
    parts: list[tuple[int, str, str]] = []
    taken: list[Span] = []
    for pattern, value in T.get("DENSITY"):
        for m in _find(pattern, text, blocked + taken):
            taken.append(m.span())
            before, after = text[max(0, m.start() - 40) : m.start()], text[m.end() : m.end() + 30]
            component = (_rx(T.get("DENSITY_COMPONENT_BEFORE")).search(before) or _rx(T.get("DENSITY_COMPONENT_AFTER")).search(after))
            itself = _rx(T.get("DENSITY_SELF_AREA")).search(before) or (
                _rx(T.get("DENSITY_SELF_BEFORE")).search(before) and _rx(T.get("DENSITY_SELF_AFTER")).search(after)
            )
            if component and not itself:
                parts.append((m.start(), value, m.group(0)))
            else:
                mains.append((m.start(), value, m.group(0)))
    ex.covered += taken
    _resolve("density", mains, ex)


def extract(text: str) -> Extraction:
    """Every attribute this description asserts (normalised text in, canonical values out)."""
    ex = Extraction()
    protected: list[Span] = []
    # 1. phrases whose meaning includes a negation ("no close relationship", "non-contrast")
    relation: list[tuple[int, str, str]] = []
    for pattern in T.get("RELATION_NOT"):
        for m in _find(pattern, text, protected):
            relation.append((m.start(), "not closely related", m.group(0)))
            protected.append(m.span())
    enh_found: list[tuple[int, str, str]] = []
    for pattern, value in T.get("ENHANCEMENT")[:1]:
        for m in _find(pattern, text, protected):
            enh_found.append((m.start(), value, m.group(0)))
            protected.append(m.span())
    # vocabulary phrases that contain a negation ("not well defined", "cannot exclude") are no triggers
    neg_phrases = R.negation_phrases(text)
    scopes, triggers = negation_scopes(text, protected + neg_phrases)
    blocked = list(scopes)
    ex.covered += triggers + protected
    # 2. relation to neighbours; its span is masked for margin and organ
    close: list[tuple[re.Match[str], str | None]] = []
    for pattern in T.get("RELATION_CLOSE"):
        for m in _find(pattern, text, blocked + protected):
            protected.append(m.span())
            organ = m.groupdict().get("organ")
            close.append((m, organ.strip() if organ else None))
    ex.covered += protected
    masked = blocked + protected
    _location(text, masked, ex)
    R.bilateral(text, blocked, ex)
    # "indistinct border with the renal parenchyma": the lesion's own organ is its margin, not a neighbour
    margin_notes = R.own_organ_margins(close, ex.values.get("organ"))
    close = [(m, organ) for m, organ in close if m.span() not in {span for span, _ in margin_notes}]
    relation += [(m.start(), "closely related", m.group(0)) for m, _ in close]
    _resolve("relation", relation, ex)
    related = next((organ for _, organ in close if organ), None)
    if ex.values.get("relation") == "closely related" and related:
        ex.values["related_organ"] = re.sub(r"^(?:the|an?|adjacent|surrounding) ", "", related)
    # 3. the single-valued attributes
    for name, table in (("shape", T.get("SHAPE")), ("density_variation", T.get("DENSITY_VARIATION")), ("surface", T.get("SURFACE"))):
        found, taken = [], []
        if name == "surface":
            found += [(span[0], value, text[span[0]:span[1]]) for span, value in margin_notes if value]
        for pattern, value in table:
            for m in _find(pattern, text, masked + taken):
                found.append((m.start(), value, m.group(0)))
                taken.append(m.span())
        ex.covered += taken
        _resolve(name, found, ex)
    _density(text, masked, ex)
    for pattern, value in T.get("ENHANCEMENT")[1:]:
        enh_found += [(m.start(), value, m.group(0)) for m in _find(pattern, text, blocked + protected)]
    if enh_found:
        enh_found.sort()
        ex.values["enhancement"] = enh_found[0][1]  # the scan phase is stated once, up front
        ex.covered += [(p, p + len(w)) for p, _, w in enh_found]
    # 4. lists and scalars
    features: list[str] = []
    for pattern, value in T.get("SPECIFIC_FEATURES"):
        hits = _find(pattern, text, blocked)
        if hits and value not in features:
            features.append(value)
        ex.covered += [m.span() for m in hits]
    for start, end in scopes:  # remember what was negated, so the UI can say so
        for pattern, value in T.get("SPECIFIC_FEATURES"):
            for m in _rx(pattern).finditer(text, start, end):
                ex.negated.append(value)
                ex.covered.append(m.span())
    ex.values["specific_features"] = features
    R.implied_variation(text, masked, ex)
    similarity.read(text, masked, ex)
    _lesion_type(text, blocked, scopes, ex)
    _size_count(text, blocked, ex)
    unc = _find(T.get("UNCERTAINTY"), text, [])
    ex.values["uncertain"] = bool(unc)
    ex.covered += [m.span() for m in unc]
    R.cover_negated(text, scopes, ex)
    if ex.values.get("organ") == "lung" and "density" not in ex.values:
        solid = _find(r"\bsolid\b", text, blocked)  # a solid pulmonary nodule: soft tissue (code book)
        if solid:
            ex.values["density"] = "isodense"
            ex.covered.append(solid[0].span())
    return ex


def _lesion_type(text: str, blocked: list[Span], scopes: list[Span], ex: Extraction) -> None:
    found: list[tuple[int, str, Span]] = []
    taken: list[Span] = []
    for pattern, word in T.get("LESION_WORDS"):
        for m in _rx(pattern).finditer(text):
            if _overlaps(m.span(), taken):
                continue
            taken.append(m.span())
            if _overlaps(m.span(), blocked):
                ex.negated.append(word)
            else:
                found.append((m.start(), word, m.span()))
    ex.covered += taken
    ex.lesion_mentions = len(found)
    if not found:
        return
    found.sort()
    generic = {"lesion", "mass", "nodule", "tumor", "lymph node"}
    specific = [f for f in found if f[1] not in generic]
    ex.values["lesion_type"] = (specific or found)[0][1]


def _size_count(text: str, blocked: list[Span], ex: Extraction) -> None:
    for m in _find(V.SIZE, text, blocked):
        unit = (m.group("unit") or m.group("unit1") or "mm").lower()
        scale = 10.0 if unit.startswith("c") else 1.0
        dims = [m.group(k) for k in ("a", "b", "c", "single") if m.group(k)]
        values = [round(float(d.replace(",", ".")) * scale, 2) for d in dims]
        if all(0 < v <= 1000 for v in values):
            ex.values["size_mm"] = values
            ex.covered.append(m.span())
            break
        ex.notes.append(f"size '{m.group(0)}' is not a plausible lesion size; ignored")
    words = _find(T.get("SIZE_WORDS"), text, blocked)
    if words:
        ex.values["size_word"] = words[0].group(0).lower()
        ex.covered.append(words[0].span())
    ords = _find(V.ORDINALS, text, blocked)
    if ords:
        ex.values["ordinal"] = ords[0].group(0).lower()
        ex.covered.append(ords[0].span())
    number_alt = "|".join(sorted(map(re.escape, V.NUMBER_WORDS), key=len, reverse=True))
    count = _find(rf"\b(?P<n>{number_alt}|\d{{1,3}})\b(?= (?:[\w.,-]+ ){{0,5}}(?:{T.lesion_noun()}))", text, blocked)
    multi = _find("(?:" + T.get("MULTIPLE_WORDS") + ")" + rf"(?= (?:[\w.,-]+ ){{0,5}}(?:{T.lesion_noun()}))", text, blocked)
    # a digit directly before a unit is a size, not a count
    count = [m for m in count if not (m.group("n").isdigit() and _rx(r"^\s*(?:mm|cm|x|hu)\b").match(text[m.end():]))]
    if count and (not multi or count[0].start() < multi[0].start()):
        n = count[0].group("n").lower()
        ex.values["count"] = V.NUMBER_WORDS.get(n, int(n) if n.isdigit() else None)
        ex.covered.append(count[0].span())
    elif multi:
        ex.values["count"] = "multiple"
        ex.covered.append(multi[0].span())
