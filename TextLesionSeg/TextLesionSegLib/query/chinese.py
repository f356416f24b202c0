"""Chinese descriptions → the same attribute values as English ones (:func:`extract_zh`).

The text is segmented by longest match over :mod:`.lexicon_zh` (no word segmenter needed: the
lexicon's terms are the words that matter, everything else is filler or flagged), sizes and
Couinaud segments are read by regular expressions, and the tokens are read clause by clause:
a negation (无, 未见 …) covers its clause up to the next ，。；; "与X分界不清" is a relation to X,
or the lesion's margin when X is its own organ or parenchyma; a margin noun (边界, 边缘, 浆膜面 …)
takes the quality after it (清楚 → well-defined, 模糊 → ill-defined); the first value of each
attribute wins and a contradiction is noted, as in English.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from . import lexicon_zh
from .extract import Extraction, more_specific

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_PUNCT = set(",.;:!?()[]。、…")
_CLAUSE_END = set(",.;。!?")
_UNIT = r"(?:cm|mm|厘米|毫米)"
_NUM = r"\d{1,4}(?:\.\d{1,3})?"
_SIZE = re.compile(rf"(?P<a>{_NUM})\s*{_UNIT}?\s*[×x*]\s*(?P<b>{_NUM})(?:\s*{_UNIT}?\s*[×x*]\s*(?P<c>{_NUM}))?\s*(?P<u>{_UNIT})"
                   rf"|(?P<s>{_NUM})\s*(?P<u1>{_UNIT})")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8}
_HAN_DIGIT = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8}
_SEGMENT = re.compile(r"s(?P<n>[1-8])(?:段)?|第?(?P<r>viii|vii|vi|iv|v|iii|ii|i|[1-8]|[一二三四五六七八])段")
_COUNT = re.compile(r"(?P<n>\d{1,3}|[一二两三四五六七八九十])\s*(?:个|枚|处)")
_ORDINAL = re.compile(r"(?P<o>较大|较小|最大|最小)(?:者|的一个|一个)")
_ORDINALS = {"较大": "larger", "较小": "smaller", "最大": "largest", "最小": "smallest"}
_HAN_COUNT = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_ROMAN_OUT = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII"}
_GENERIC = {"lesion", "mass", "nodule", "tumor", "lymph node"}


def is_chinese(text: str) -> bool:
    """Is this mostly Chinese (at least two Han characters, and more of them than Latin words)?"""
    han = len(CJK.findall(text))
    return han >= 2 and han >= len(re.findall(r"[A-Za-z]{2,}", text))


def normalise_zh(text: str) -> str:
    """NFKC (full-width punctuation and digits → ASCII, Ⅶ → VII), Latin letters lower-cased."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).lower().strip()


_LEXICON: list[tuple[dict[str, tuple[str, str]], int]] = []


def clear_lexicon() -> None:
    """Forget the merged lexicon (a held-out fold swapped a part of it)."""
    _LEXICON.clear()


def lexicon() -> tuple[dict[str, tuple[str, str]], int]:
    """The merged lexicon with normalised keys, and its longest term (built once)."""
    if not _LEXICON:
        lex = {normalise_zh(k): v for k, v in lexicon_zh.lexicon().items()}
        _LEXICON.append((lex, max(map(len, lex), default=1)))
    return _LEXICON[0]


@dataclass
class Token:
    """One segment of the text: ``kind`` from the lexicon, or ``size``/``segment``/``punct``/``unknown``."""

    start: int
    end: int
    kind: str
    value: str
    surface: str


def tokenize(text: str) -> list[Token]:
    """Longest-match segmentation of normalised Chinese text."""
    lex, longest = lexicon()
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        o = _ORDINAL.match(text, i)
        if o:
            tokens.append(Token(i, o.end(), "ordinal", _ORDINALS[o.group("o")], o.group(0)))
            i = o.end()
            continue
        m = _SIZE.match(text, i) or _SEGMENT.match(text, i)
        c = None if m else _COUNT.match(text, i)
        if c:
            num = c.group("n")
            tokens.append(Token(i, c.end(), "count", str(int(num) if num.isdigit() else _HAN_COUNT[num]), c.group(0)))
            i = c.end()
            continue
        if m and m.re is _SIZE:
            tokens.append(Token(i, m.end(), "size", m.group(0), m.group(0)))
            i = m.end()
            continue
        if m and m.re is _SEGMENT and (m.group("n") or text[i] in "第" or tokens and tokens[-1].value.startswith("liver")
                                       or (i > 0 and text[i - 1] in "肝叶")):
            tokens.append(Token(i, m.end(), "segment", m.group("n") or m.group("r"), m.group(0)))
            i = m.end()
            continue
        for length in range(min(longest, n - i), 0, -1):
            entry = lex.get(text[i : i + length])
            if entry:
                kind, value = entry
                tokens.append(Token(i, i + length, kind, value, text[i : i + length]))
                i += length
                break
        else:
            word = re.match(r"[a-z]+|\d+(?:\.\d+)?", text[i:])
            if word:
                tokens.append(Token(i, i + word.end(), "latin", word.group(0), word.group(0)))
                i += word.end()
            else:
                tokens.append(Token(i, i + 1, "punct" if ch in _PUNCT else "unknown", ch, ch))
                i += 1
    return tokens


def clauses(tokens: list[Token]) -> list[list[Token]]:
    """Tokens cut at ，。；!? (an enumeration comma 、 does not end a clause)."""
    out: list[list[Token]] = [[]]
    for t in tokens:
        if t.kind == "punct" and t.value in _CLAUSE_END:
            out.append([])
        elif t.kind != "punct":
            out[-1].append(t)
    return [c for c in out if c]


def unknown_words(tokens: list[Token]) -> list[str]:
    """Runs of characters the lexicon does not know, and Latin words other than 'ct'."""
    words: list[str] = []
    run = ""
    for t in tokens + [Token(0, 0, "end", "", "")]:
        if t.kind == "unknown" and CJK.match(t.value):
            run += t.value
            continue
        if run and run not in words:
            words.append(run)
        run = ""
        if t.kind == "latin" and not t.value[0].isdigit() and t.value not in ("ct", "cm", "mm", "hu") and t.value not in words:
            words.append(t.value)
    return words[:30]


def _size(token: Token) -> list[float] | None:
    m = _SIZE.fullmatch(token.value)
    if not m:
        return None
    unit = m.group("u") or m.group("u1") or "mm"
    scale = 10.0 if unit in ("cm", "厘米") else 1.0
    values = [round(float(m.group(k)) * scale, 2) for k in ("a", "b", "c", "s") if m.group(k)]
    return values if all(0 < v <= 1000 for v in values) else None


def _segment(value: str) -> str | None:
    number = int(value) if value.isdigit() else _ROMAN.get(value) or _HAN_DIGIT.get(value)
    return f"segment {_ROMAN_OUT[number]}" if number in _ROMAN_OUT else None


class _Reader:
    """Collects first-mentioned values and notes contradictions (the English rule)."""

    def __init__(self) -> None:
        self.ex = Extraction()
        self.found: dict[str, list[tuple[int, str, str]]] = {}

    def say(self, name: str, value: str, token: Token) -> None:
        self.found.setdefault(name, []).append((token.start, value, token.surface))

    def finish(self) -> Extraction:
        from .extract import _resolve

        for name, found in self.found.items():
            _resolve(name, found, self.ex)
        return self.ex


def _place(reader: _Reader, clause: list[Token], neighbour: set[int]) -> None:
    """Organ, side and sub-location from the first place named outside a neighbour phrase."""
    values = reader.ex.values
    side_before = None
    for k, t in enumerate(clause):
        if k in neighbour:
            continue
        if t.kind == "side":
            side_before = t.value
            follows = clause[k + 1].kind if k + 1 < len(clause) else None
            if (t.value == "bilateral" and values.get("organ") == "liver" and "sub_location" not in values
                    and follows not in ("place", "organ")):  # 肝左右叶, 肝内多个（左右各1）: both lobes
                values.setdefault("side", "bilateral")
            continue
        if t.kind == "segment" and (values.get("organ") in (None, "liver")):
            sub = _segment(t.value)
            if sub:
                values.setdefault("organ", "liver")
                if values["organ"] == "liver":
                    values["sub_location"] = more_specific(values.get("sub_location") or sub, sub)
        elif t.kind in ("place", "organ"):
            organ, sub, side = (t.value.split("/") + ["", ""])[:3] if t.kind == "place" else (t.value, "", "")
            side = side or side_before
            if "organ" not in values:
                values["organ"] = organ
            if values["organ"] == organ:
                if sub:
                    values.setdefault("sub_location", sub)
                if side and organ in ("kidney", "adrenal", "lung", "ovary", "breast"):
                    values.setdefault("side", side)
        side_before = None


def _with_phrase(clause: list[Token], organ: str | None) -> tuple[set[int], str | None, str | None, str | None]:
    """"与X分界不清": (indices of X, relation value, related organ, margin value)."""
    for k, t in enumerate(clause):
        if t.kind != "with":
            continue
        for j in range(k + 1, min(k + 8, len(clause))):
            u = clause[j]
            q_at = _quality_after(clause, j) if u.kind == "margin" else None
            quality = clause[q_at].value if q_at is not None else None
            if u.kind == "relation" or quality:
                end = q_at if q_at is not None else j
                between = clause[k + 1 : j]
                named = [b.value.split("/")[0] for b in between if b.kind in ("place", "organ", "neighbour")]
                bad = u.kind == "relation" or quality == "bad"
                own = not named or all(o == organ for o in named)
                generic = not named and not any(b.surface in ("实质",) for b in between)
                if own and not generic:  # its own parenchyma: the margin
                    return set(range(k, end + 1)), None, None, "ill-defined" if bad else "well-defined"
                relation = "closely related" if bad else "not closely related"
                if u.kind == "relation":
                    relation = u.value
                return set(range(k, end + 1)), relation, named[0] if named else None, None
    return set(), None, None, None


def _quality_after(clause: list[Token], k: int) -> int | None:
    """Index of the quality word after the margin noun at ``k`` ("边缘较模糊": fillers between)."""
    for j in range(k + 1, min(k + 4, len(clause))):
        if clause[j].kind == "quality":
            return j
        if clause[j].kind != "filler":
            return None
    return None


def extract_zh(text: str) -> Extraction:
    """Every attribute one Chinese description states (canonical values, as :func:`.extract.extract`)."""
    norm = normalise_zh(text)
    tokens = tokenize(norm)
    r = _Reader()
    ex = r.ex
    features: list[str] = []
    lesions: list[tuple[int, str]] = []
    for clause in clauses(tokens):
        neg_at = next((k for k, t in enumerate(clause) if t.kind == "negation"), None)
        live = clause if neg_at is None else clause[:neg_at]
        for t in clause[neg_at:] if neg_at is not None else []:
            if t.kind in ("feature", "lesion"):
                ex.negated.append(t.value)
            if t.kind == "invades":  # 未见侵犯: no invasion of the neighbours
                r.say("relation", "not closely related", t)
        _place(r, live, _with_phrase(live, None)[0])
        neighbour, relation, related, margin = _with_phrase(live, ex.values.get("organ"))
        if relation:
            r.say("relation", relation, live[min(neighbour)])
            if relation == "closely related" and related:
                ex.values.setdefault("related_organ", related)
        if margin:
            r.say("surface", margin, live[min(neighbour)])
        inside = False
        for k, t in enumerate(live):
            if t.surface in ("内", "内部", "其内"):
                inside = True
            if k in neighbour:
                continue
            q_at = _quality_after(live, k) if t.kind in ("margin", "plane") else None
            if q_at is not None and q_at not in neighbour and t.kind == "plane":  # 脂肪间隙模糊: it reaches out
                r.say("relation", "closely related" if live[q_at].value == "bad" else "not closely related", t)
            elif q_at is not None and q_at not in neighbour:
                r.say("surface", "well-defined" if live[q_at].value == "good" else "ill-defined", t)
            elif t.kind == "invades" and k + 1 < len(live) and live[k + 1].kind in ("place", "organ"):
                r.say("relation", "closely related", t)
                ex.values.setdefault("related_organ", live[k + 1].value.split("/")[0])
            elif t.kind in ("shape", "surface", "enhancement", "relation"):
                r.say(t.kind, t.value, t)
                if t.surface.startswith("毛刺") and "spiculation" not in features:
                    features.append("spiculation")
            elif t.kind == "density" and not inside:
                r.say("density", t.value, t)
            elif t.kind == "variation":
                r.say("density_variation", t.value, t)
            elif t.kind == "implies" and "density_variation" not in ex.evidence:
                ex.evidence["density_variation"] = f"implied by '{t.surface}'"
            elif t.kind == "feature" and t.value not in features:
                features.append(t.value)
            elif t.kind == "lesion":
                lesions.append((t.start, t.value))
            elif t.kind == "size" and "size_mm" not in ex.values:
                size = _size(t)
                if size:
                    ex.values["size_mm"] = size
            elif t.kind == "count" and "count" not in ex.values:
                ex.values["count"] = int(t.value) if t.value.isdigit() else t.value
            elif t.kind == "ordinal":
                ex.values.setdefault("ordinal", t.value)
            elif t.kind == "size_word":
                ex.values.setdefault("size_word", t.value)
            elif t.kind == "uncertain":
                ex.values["uncertain"] = True
    r.finish()
    values = ex.values
    if values.get("side") == "bilateral" and values.get("organ") != "liver":  # one mass may span both lobes
        values.setdefault("count", "multiple")
    if "density_variation" not in values:
        implied = ex.evidence.get("density_variation") or (
            "implied by mixed density" if values.get("density") == "mixed" else None)
        implied = implied or next((f"implied by {f}" for f in ("necrosis", "hemorrhage") if f in features), None)
        if implied:
            values["density_variation"] = "heterogeneous"
            ex.evidence["density_variation"] = implied
    else:
        ex.evidence.pop("density_variation", None)
    values["specific_features"] = features
    values.setdefault("uncertain", False)
    ex.lesion_mentions = len(lesions)
    if lesions:
        specific = [w for _, w in lesions if w not in _GENERIC]
        values["lesion_type"] = (specific or [w for _, w in lesions])[0]
    ex.values["_unknown_words"] = unknown_words(tokens)
    return ex


_SENTENCE_END = re.compile(r"(?<=[。;；!?！？])")
_ANOTHER_ZH = re.compile(r"(?=另见|另可见|另一)")


def split_descriptions_zh(text: str) -> list[str]:
    """Chinese text → lesion descriptions: lines, numbered items, 另见…, and sentences or clauses
    that introduce a lesion in a place of their own (a place and a lesion noun) once the current
    description has one."""
    from .parser import split_descriptions

    pieces: list[str] = []
    for chunk in split_descriptions(text) if "\n" in text else [text]:
        for part in _ANOTHER_ZH.split(chunk):
            groups: list[str] = []
            for clause in (c for whole in re.split(r"(?<=[。;；，,])", part) for c in _each_place(whole)):
                if not clause.strip():
                    continue
                tokens = tokenize(normalise_zh(clause))
                kinds = {t.kind for t in tokens}
                # "不除外肺癌" / "考虑肺癌" qualify the lesion before them (a differential), they do
                # not introduce another one
                introduces = ("lesion" in kinds and kinds & {"place", "organ", "segment"}
                              and not kinds & {"negation", "uncertain"}
                              and not re.match(r"\s*(?:该|此|其|病灶)", clause))
                if groups and introduces and _has_place_and_lesion(groups[-1]):
                    groups.append(clause)
                elif groups:
                    groups[-1] += clause
                else:
                    groups.append(clause)
            pieces += [g.strip().rstrip("，,;；。.") for g in groups if g.strip().rstrip("，,;；。.")]
    return pieces


_LIST_JOIN = {"及", "和", "与", "、"}


def _each_place(clause: str) -> list[str]:
    """"肝左叶及右叶各见一低密度灶" (one in each): one clause per listed place, 各 dropped. Only
    where normalising keeps the characters in place (the pieces are cut from the user's words)."""
    norm = normalise_zh(clause)
    if "各" not in norm or len(norm) != len(clause.strip()):
        return [clause]
    text = clause.strip()
    tokens = tokenize(norm)
    at = next((k for k, t in enumerate(tokens) if t.surface == "各"), None)
    places: list[Token] = []
    k = (at or 0) - 1
    while at is not None and k >= 0 and (tokens[k].kind == "place" or tokens[k].surface in _LIST_JOIN):
        if tokens[k].kind == "place":
            places.insert(0, tokens[k])
        k -= 1
    if len(places) < 2:
        return [clause]
    head, tail = text[: places[0].start], text[tokens[at].end :]
    return [head + p.surface + tail for p in places]


def _has_place_and_lesion(text: str) -> bool:
    kinds = {t.kind for t in tokenize(normalise_zh(text))}
    return "lesion" in kinds and bool(kinds & {"place", "organ", "segment"})
