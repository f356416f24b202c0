"""The phrase tables the extractor reads: the general lexicon (:mod:`.lexicon`) merged with the
vocabulary built from reports (:mod:`.vocabulary`).

Tables of ``(pattern, value)`` pairs are merged per value, in the vocabulary's value order (so
the more specific value still comes first, e.g. "inhomogeneous" before "homogeneous"), the
lexicon's alternatives first within a value; lists of patterns and tuple tables are
concatenated (lexicon first); pattern strings are joined as alternatives. Merged tables are cached
until :func:`clear` (held-out folds call it when they swap a table).
"""

from __future__ import annotations

from typing import Any

from . import lexicon as G
from . import vocabulary as V
from .holdout import NEVER

#: tables whose entries are (pattern, value) and merge per value
_BY_VALUE = {"SHAPE", "DENSITY", "DENSITY_VARIATION", "DENSITY_VARIATION_IMPLIED", "SURFACE", "ENHANCEMENT",
             "SPECIFIC_FEATURES", "LESION_WORDS"}
_cache: dict[str, Any] = {}


def clear() -> None:
    """Forget the merged tables (after a table of either module changed)."""
    _cache.clear()


def _join(*patterns: str) -> str:
    kept = [p for p in patterns if p and p != NEVER]
    return "|".join(kept) if kept else NEVER


def _merge(name: str) -> Any:
    general = getattr(G, name, None)
    built = getattr(V, name, None)
    if general is None:
        return built
    if built is None:
        return general
    if isinstance(built, str):
        return _join(general, built)
    if name in _BY_VALUE:
        order: list[str] = []
        by_value: dict[str, list[str]] = {}
        for table in (built, general):  # value order from the vocabulary, then new values
            for pattern, value in table:
                if value not in by_value:
                    order.append(value)
                    by_value[value] = []
        for table in (general, built):
            for pattern, value in table:
                by_value[value].append(pattern)
        return [(_join(*by_value[v]), v) for v in order]
    return list(general) + list(built)


def get(name: str) -> Any:
    """The merged table ``name`` (e.g. ``"SURFACE"``)."""
    if name not in _cache:
        _cache[name] = _merge(name)
    return _cache[name]


def lesion_noun() -> str:
    """One pattern matching any lesion noun of the merged ``LESION_WORDS``."""
    if "_LESION_NOUN" not in _cache:
        _cache["_LESION_NOUN"] = _join(*(p for p, _ in get("LESION_WORDS")))
    return _cache["_LESION_NOUN"]


def prepare(text: str) -> str:
    """Normalised text (:func:`.vocabulary.normalise`) with everyday shorthand written out
    ("rt kidney" → "right kidney", "w/o" → "without", "seg. 7" → "segment 7")."""
    import re

    out = V.normalise(text)
    for pattern, replacement in G.SHORTHAND:
        out = re.sub(pattern, replacement, out)
    return out
