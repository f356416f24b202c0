"""One lesion noun, two places: "nodules in the RLL and LUL" holds one lesion per place, and
"Three nodules: RUL 6 mm, RML 4 mm, LLL 5 mm" one per listed item (:func:`split_items`).

A sentence names its lesions once and lists where they are. :func:`split_places` gives each
place a description of its own (the rest of the sentence — size, density, margins — goes with
both), so every place gets its segment. It splits only where two lesions are certain:

- the lesion noun is plural or counted ("nodules", "two masses", "multiple lesions"), and the
  places differ; or
- the noun is singular but the places lie on opposite sides of a paired organ ("lesion in the RLL
  and LUL": no one lesion crosses from one lung into the other).

"A mass in the right upper and middle lobes" or "a mass in the pancreatic head and body" is one
lesion spanning two places and stays one description (its first place is read) [chosen].
"""

from __future__ import annotations

import re
from functools import lru_cache

from . import tables as T
from . import vocabulary as V
from .extract import extract

#: words that open a place phrase ("in the RLL", "within segment 7", "involving the LUL")
_PREPOSITIONS = {"in", "within", "of", "at", "involving", "from"}
#: what joins two places
_JOIN = re.compile(r"\s*(?:,\s*and|,|and|&|/)\s+", re.IGNORECASE)
#: the most words a place phrase has ("the left upper lobe apical segment" is longer, but its
#: first four words already name the place)
_MAX_WORDS = 4
_SEGMENT_NUMERAL = re.compile(r"(?:viii|vii|vi|iv|v|iii|ii|i|[1-8])[ab]?", re.IGNORECASE)
_COUNTED = re.compile(r"\b(?:two|three|four|five|several|multiple|numerous|few|both|\d+)\b", re.IGNORECASE)


def _place(words: list[str]) -> dict[str, str] | None:
    """The place ``words`` name on their own (sub-location, organ, side), or None."""
    text = " ".join(words).strip(" ,.;:")
    place = _place_of(text) if text else None
    return dict(place) if place else None


@lru_cache(maxsize=4096)
def _place_of(text: str) -> tuple[tuple[str, str], ...] | None:
    # cached: reports repeat their place phrases, and each reading runs every rule of extract
    values = extract(T.prepare(text)).values
    place = {k: values[k] for k in ("organ", "sub_location", "side") if values.get(k)}
    return tuple(place.items()) if place.get("sub_location") or (place.get("organ") and place.get("side")) else None


def _plural_noun(text: str) -> bool:
    """Is the lesion named in ``text`` plural or counted?"""
    norm = T.prepare(text)
    nouns = [m.group(0) for m in re.finditer(T.lesion_noun(), norm)]
    plural = any(n.endswith("s") and not n.endswith(("ss", "sis")) for n in nouns)  # not "metastasis"
    return bool(nouns) and (plural or bool(_COUNTED.search(norm)))


def _two_lesions(head: str, left: dict[str, str], right: dict[str, str]) -> bool:
    if left == right:
        return False
    if _plural_noun(head):
        return True
    opposite = {left.get("side"), right.get("side")} == {"left", "right"}
    return opposite and left.get("organ") == right.get("organ") and left.get("organ") in V.PAIRED_ORGANS


def _next_place(words: list[str], previous: dict[str, str]) -> tuple[int, dict[str, str], str] | None:
    """The shortest leading run of ``words`` that names a place: (its length, the place, its
    phrase). After a liver segment a bare numeral is the next segment ("segments 2 and 7")."""
    found = next(((k, p) for k in range(1, min(_MAX_WORDS, len(words)) + 1) if (p := _place(words[:k]))), None)
    if found:
        return found[0], found[1], " ".join(words[: found[0]])
    if words and previous.get("sub_location", "").startswith("segment") and _SEGMENT_NUMERAL.fullmatch(words[0].rstrip(",.;:")):
        place = _place(["segment", *words[:2]])  # the next word too: "3 cm" is no segment
        if place:
            return 1, place, "segment " + words[0]
    return None


def split_places(sentence: str) -> list[str]:
    """``sentence`` as one description per place when it lists places of distinct lesions
    (module docstring: "nodules in the RUL, RLL and LUL" gives three), else ``[sentence]``."""
    for join in _JOIN.finditer(sentence):
        before = sentence[: join.start()].split()
        first = next(((k, p) for k in range(1, _MAX_WORDS + 1) if len(before) > k
                      and before[-k - 1].lower() in _PREPOSITIONS and (p := _place(before[-k:]))), None)
        if first is None:
            continue
        head = " ".join(before[: -first[0]])
        phrases, places = [" ".join(before[-first[0] :])], [first[1]]
        rest = sentence[join.end() :]
        while (found := _next_place(words := rest.split(), places[-1])) is not None:  # "RLL", then ", and LUL" ...
            phrases.append(found[2])
            places.append(found[1])
            rest = " ".join(words[found[0] :])
            more = _JOIN.match(" " + rest)
            if more is None or _next_place((" " + rest)[more.end() :].split(), places[-1]) is None:
                break
            rest = (" " + rest)[more.end() :]
        if len(places) < 2 or not all(_two_lesions(head, a, b) for i, a in enumerate(places) for b in places[i + 1 :]):
            continue
        # a phrase's own trailing punctuation ("LUL,") belongs to the sentence, not to the place
        trailing = phrases[-1][len(phrases[-1].rstrip(",.;:")) :]
        phrases = [p.rstrip(",.;:") for p in phrases]
        return [" ".join(w for w in (head, phrase + trailing, rest) if w).strip() for phrase in phrases]
    return [sentence]


#: what separates the items of a list ("RUL 6 mm, RML 4 mm and LLL 5 mm")
_ITEM_JOIN = re.compile(r"\s*(?:,\s*and\s+|,\s*|;\s*|\s+and\s+)", re.IGNORECASE)
#: the most words one listed item has ("2 cm in segment VII", "segment 4 (1.2 cm)")
_MAX_ITEM_WORDS = 8


def split_items(sentence: str) -> list[str]:
    """A plural or counted lesion noun, then after ":" or "," a list of items, each in a place of
    its own: "Three nodules: RUL 6 mm, RML 4 mm, LLL 5 mm" → one description per item (the noun
    phrase with each). Every item must name a place and the places must differ; otherwise (an
    item without a place: "the largest 2 cm", "ill-defined") the sentence stays whole."""
    for boundary in re.finditer(r"[:,]", sentence):
        head, tail = sentence[: boundary.start()], sentence[boundary.end() :]
        if not _plural_noun(head):
            continue
        items = [i.strip(" .;") for i in _ITEM_JOIN.split(tail) if i.strip(" .;")]
        if len(items) < 2 or any(len(i.split()) > _MAX_ITEM_WORDS for i in items):
            return [sentence]
        places: list[dict[str, str]] = []
        for item in items:
            place = _place(item.split())
            if place is None and places:  # "segments 2 and 7": the noun elided
                elided = _next_place(item.split(), places[-1])
                place = elided[1] if elided else None
            if place is None:
                return [sentence]
            places.append(place)
        if any(a == b for i, a in enumerate(places) for b in places[i + 1 :]):
            return [sentence]
        head = head.strip()
        return [f"{head} {item}" if head.endswith(":") else f"{head}: {item}" for item in items]
    return [sentence]
