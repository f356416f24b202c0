"""Free text → one :class:`LesionQuery` per described lesion (:func:`parse_text`).

Splitting: newlines, numbered or bulleted lists (a heading line such as "Kidneys:" is kept as
context for the items below it) and "another …/a second …" always start a
new description; a new sentence or ``;`` clause starts one only when it introduces a lesion of
its own (an indefinite lesion noun: "…; small nodule in segment VII") — "The lesion abuts the duodenum." or
"The pancreatic duct is dilated." continue the current one, because radiologists describe one
lesion over several sentences.
"""

from __future__ import annotations

import re

from . import tables as T
from . import vocabulary as V
from .chinese import extract_zh, is_chinese, split_descriptions_zh
from .places import split_items, split_places
from .extract import Extraction, extract
from .knowledge import infer, lesion_type_entry, resolve_lesion_type
from .types import LesionQuery, ParseOutput

#: the most descriptions one text may hold; more is almost surely not a lesion list
MAX_QUERIES = 64
#: text beyond this many characters is not read (a report, not a book); the message says so
MAX_CHARS = 20_000

_HARD_SPLIT = re.compile(
    r"\n+|(?m:^\s*(?:\(?\d{1,2}[.)]|[-\u2022*\u00b7\u25aa\u2013])\s+)|(?<=\s)\(?\d{1,2}\)\s+(?=[^\W\d])"
)
_HEADING = re.compile(r"^\s*[^\W\d][^:\n]{0,40}:\s*$")
_LIST_START = re.compile(r"\s*\(?1[.)]\s")
_INLINE_NUMBER = re.compile(r"(?<=\s)\(?\d{1,2}[.)]\s+(?=[^\W\d])")
_ANOTHER = re.compile(
    r",?\s*(?:\band\s+|\balso\s+|\bthere is\s+(?:also\s+)?)?(?=\b(?:another|a second|a third|an additional|a further"
    r"|one more)\b)",
    re.IGNORECASE,
)
#: sentence ends, and ";" (a new lesion only if what follows introduces one, like a sentence)
_SENTENCE = re.compile(r"(?<=[^\W\d][.!?])(?<![Ss]eg\.)(?<![Ss]egs\.)(?<![Aa]pprox\.)(?<![Vv]s\.)\s+|(?<=[)\]][.!?])\s+|(?<=;)\s*")
_DEFINITE = re.compile(
    r"\b(?:the|this|that|these|those|its|said|same|it)\s+(?:[\w-]+\s+){0,4}$", re.IGNORECASE
)


def split_descriptions(text: str) -> list[str]:
    """Cut a text into lesion descriptions (see the module docstring for the rules)."""
    pieces: list[str] = []
    chunks = _HARD_SPLIT.split(text)
    if _LIST_START.match(text):  # "1. … 2. …" on one line: a numbered list, not decimals
        chunks = [c for chunk in chunks for c in _INLINE_NUMBER.split(chunk)]
    heading = ""
    for chunk in chunks:
        if _HEADING.match(chunk):  # "Kidneys:" on its own line: context for the items below it
            heading = chunk.strip()
            continue
        if heading:
            chunk = f"{heading} {chunk.strip()}"
        for part in _ANOTHER.split(chunk):
            part = part.strip(" \t,.")
            if part:
                pieces.extend(_group_sentences(part))
    return [p for p in pieces if p.strip()]


def _introduces_lesion(sentence: str) -> bool:
    """Does this sentence name a lesion of its own (indefinitely, and not negated)?"""
    norm = T.prepare(sentence)
    for m in re.finditer(T.lesion_noun(), norm):
        before = norm[max(0, m.start() - 60) : m.start()]
        if _DEFINITE.search(before):
            continue
        if re.search("(?:" + T.get("NEGATION_TRIGGERS") + r")(?:\s+[\w-]+){0,4}\s*$", before):
            continue
        if re.search(r"\b(?:to|with|of|from|into|within|in)\s+(?:[\w-]+\s+){0,3}$", before):
            continue  # "closely related to adjacent nodes", "foci within the lesion"
        return True
    return False


#: where one sentence may hold a second lesion: ", and a …", " and two …", ", a …"
_CLAUSE = re.compile(r"(?:,\s*(?:and\s+)?|\s+and\s+|;\s*)(?=(?:an?|one|two|three|four|five|several|multiple|numerous"
                     r"|\d+(?:[.,]\d+)?\s*(?:mm|cm|x|\*))\b)", re.IGNORECASE)


def _own_place(text: str) -> bool:
    values = extract(T.prepare(text)).values
    return bool(values.get("organ") or values.get("sub_location"))


def split_clauses(sentence: str) -> list[str]:
    """Several lesions in one sentence: "a nodule in the RUL and a 5 mm nodule in the lingula" →
    two descriptions. A clause is cut off only when it introduces a lesion (indefinite, not
    negated) in a place of its own and the part before it already names a lesion."""
    parts: list[str] = []
    start = 0
    for m in _CLAUSE.finditer(sentence):
        head, rest = sentence[start : m.start()], sentence[m.end() :]
        nxt = _CLAUSE.search(rest)
        clause = rest[: nxt.start()] if nxt else rest
        if _has_lesion_noun(head) and _introduces_lesion(clause) and _own_place(clause) and _own_place(head):
            parts.append(head)
            start = m.end()
    if not parts:
        return [sentence]
    parts.append(sentence[start:])
    return [p.strip(" ,") for p in parts if p.strip(" ,;")]


def _has_lesion_noun(text: str) -> bool:
    return re.search(T.lesion_noun(), T.prepare(text)) is not None


def _group_sentences(chunk: str) -> list[str]:
    groups: list[list[str]] = []
    pieces = (i for s in _SENTENCE.split(chunk) for c in split_clauses(s) for i in split_items(c))
    for sentence in (p for i in pieces for p in split_places(i)):
        if not sentence.strip():
            continue
        if groups and _introduces_lesion(sentence) and _has_lesion(" ".join(groups[-1])):
            groups.append([sentence])
        elif groups:
            groups[-1].append(sentence)
        else:
            groups.append([sentence])
    # the ";" stays inside a group (it bounds negation scopes) but not at a description's end
    return [" ".join(g).strip().rstrip(";").strip() for g in groups]


def _has_lesion(text: str) -> bool:
    ex = extract(T.prepare(text))
    return ex.lesion_mentions > 0 or _described(ex)


_ATTRIBUTES = ("shape", "density", "density_variation", "surface", "size_mm")


def _described(ex: Extraction) -> bool:
    """A description counts as a lesion when it names one or asserts a lesion attribute."""
    return ex.lesion_mentions > 0 or any(ex.values.get(a) for a in _ATTRIBUTES) or bool(ex.values.get("specific_features"))


def _unknown_words(norm: str, ex: Extraction) -> list[str]:
    words: list[str] = []
    for m in re.finditer(r"[^\W\d_][^\W\d_'-]*", norm):
        w = m.group(0)
        if w in V.FILLER or len(w) < 2 or any(a <= m.start() < b for a, b in ex.covered):
            continue
        if w not in words:
            words.append(w)
    return words[:30]


_STARTS_ANOTHER = re.compile(r"^(?:another|a second|a third|an additional|a further|one more)\b")


def _extract_any(description: str) -> tuple[Extraction, list[str], str]:
    """(extraction, words not understood, language) of one description, English or Chinese."""
    if is_chinese(description):
        ex = extract_zh(description)
        return ex, list(ex.values.pop("_unknown_words", [])), "zh"
    norm = T.prepare(description)
    ex = extract(norm)
    return ex, _unknown_words(norm, ex), "en"


def build_query(description: str) -> tuple[LesionQuery | None, Extraction]:
    """One description → its query (``None`` when it describes no lesion) and the raw extraction."""
    ex, unknown, language = _extract_any(description)
    ex.values["_unknown"] = unknown
    if not _described(ex) and not _STARTS_ANOTHER.match(T.prepare(description)):  # "another one in the spleen"
        return None, ex
    values = dict(ex.values)
    values.pop("_unknown")
    word = values.pop("lesion_type", None)
    organ = values.get("organ")
    query = LesionQuery(text=description.strip(), **values)
    query.lesion_type = resolve_lesion_type(word, organ) or word
    query.unknown_words = unknown
    query.evidence = dict(ex.evidence)
    query.confidence = dict(ex.confidence)
    query.language = language
    query.inferred = infer(query)
    return query, ex


def _same_kind(previous: str | None, organ: str | None) -> str | None:
    """"Another one": the previous lesion's kind, re-read for this lesion's organ
    ("renal cyst" then "another in the liver" → "liver cyst")."""
    entry = lesion_type_entry(previous)
    if entry is None or organ is None or entry["organ"] == organ:
        return previous
    for word in entry["words"]:
        resolved = resolve_lesion_type(word, organ)
        if resolved:
            return resolved
    return entry["words"][0]


def _empty_reason(text: str, negated: list[str], unknown: list[str]) -> str:
    if not text.strip():
        return "No lesion described: the text is empty."
    if negated:
        names = ", ".join(sorted(set(negated)))
        return f"No lesion to segment: the text only negates findings ({names})."
    if unknown and not any(ch.isascii() and ch.isalpha() for ch in text) and not is_chinese(text):
        return ("No lesion described: the text is neither English nor Chinese; TextLesionSeg understands"
                f" English and Chinese descriptions (words not understood: {', '.join(unknown[:8])}).")
    shown = f" (words not understood: {', '.join(unknown[:8])})" if unknown else ""
    return f"No lesion described: name a lesion or describe one, e.g. 'round hypodense lesion in the right kidney'{shown}."


def _unknown_place(norm: str) -> str | None:
    for m in re.finditer(V.LOCATION_PREPOSITION, norm):
        word = m.group("word")
        if word not in V.FILLER and not any(re.search(p, word) for p, _ in T.get("ORGANS")):
            return word
    return None


def parse_text(text: str) -> ParseOutput:
    """Free text → :class:`ParseOutput` with one :class:`LesionQuery` per described lesion.

    Never raises for any string: empty or whitespace text, text in another language, only
    negated findings ("no lesion") or nothing recognisable give no queries and a message saying
    why; contradictions ("round irregular"), unknown organs and truncation are named in
    ``message`` (and ``warnings``) while the understood part is still returned.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    warnings: list[str] = []
    body = text
    if len(body) > MAX_CHARS:
        body = body[:MAX_CHARS]
        warnings.append(f"the text has {len(text):,} characters; only the first {MAX_CHARS:,} were read")
    queries: list[LesionQuery] = []
    negated: list[str] = []
    unknown: list[str] = []
    placed_not: list[str] = []
    descriptions = split_descriptions_zh(body) if is_chinese(body) else split_descriptions(body)
    for description in descriptions:
        if len(queries) >= MAX_QUERIES:
            warnings.append(f"more than {MAX_QUERIES} lesion descriptions; the rest were ignored")
            break
        query, ex = build_query(description)
        negated += ex.negated
        placed_not += ex.values.get("_unknown", [])
        if query is None:
            unknown += [w for w in ex.values.get("_unknown", []) if w not in unknown]
            continue
        if query.lesion_type is None and queries and _STARTS_ANOTHER.match(T.prepare(description)):
            query.lesion_type = _same_kind(queries[-1].lesion_type, query.organ)
            query.inferred = infer(query)
        label = f"lesion {len(queries) + 1}"
        warnings += [f"{label}: {note}" for note in ex.notes]
        if query.organ is None and query.language == "en":
            place = _unknown_place(T.prepare(description))
            if place:
                warnings.append(f"{label}: organ '{place}' not recognised; the lesion is searched in the whole scan")
        queries.append(query)
    _share_scan_phase(body, queries)
    if queries:
        n = len(queries)
        message = f"{n} lesion{'s' if n > 1 else ''} described."
    else:
        message = _empty_reason(body, negated, unknown)
    if warnings:
        message += " " + "; ".join(w[0].upper() + w[1:] if i == 0 else w for i, w in enumerate(warnings)) + "."
    words = list(dict.fromkeys(placed_not))
    return ParseOutput(text=text, queries=queries, message=message, warnings=warnings, unknown_words=words[:60])


def _share_scan_phase(text: str, queries: list[LesionQuery]) -> None:
    """"Contrast-enhanced CT: …" said once applies to every lesion of the text."""
    if not queries or all(q.enhancement for q in queries):
        return
    phases = {q.enhancement for q in queries if q.enhancement}
    if not phases:
        ex = extract_zh(text[:2000]) if is_chinese(text) else extract(T.prepare(text[:2000]))
        phase = ex.values.get("enhancement")
    else:
        phase = next(iter(phases)) if len(phases) == 1 else None
    if phase:
        for q in queries:
            q.enhancement = q.enhancement or phase
