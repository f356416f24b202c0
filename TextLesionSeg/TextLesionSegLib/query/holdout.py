"""Leave-one-lesion-type-out: the parser without what only one lesion type's reports attest.

Every phrase table the parser reads is a list of alternatives (a top-level ``|`` branch of a
regular expression in :mod:`.vocabulary` or :mod:`.lexicon`, a term of the Chinese lexicon).
The *attestation* of an alternative is the set of lesion types in whose reports of a
coded file it occurs, computed from the file (:func:`attest`). In the fold of a type ``T``
(:func:`held_out`) an alternative is kept when it occurs in no report, or in a report of another
type, and removed when it occurs only in ``T``'s reports: what could only have been learned from
``T`` is not used to measure ``T`` (docs/query.md, "Generalisation").

Tables are named by ``(module, attribute)``; a module lists its own in ``HOLDOUT_TABLES``. A table
is a pattern string, a list of pattern strings, a list of tuples whose first item is a pattern, or
a dict ``{term: value}`` (lexicons; each key is one alternative, matched as a plain substring).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterator

#: a pattern that never matches: what a table entry becomes when all its alternatives are removed
NEVER = r"(?!)"


def alternatives(pattern: str) -> list[str]:
    """Top-level ``|`` branches of a regular expression (groups, classes and escapes respected)."""
    out: list[str] = []
    depth, start, i, in_class = 0, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":  # "[]…]": a literal ] first
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    out.append(pattern[start:])
    return out


def _searchable(alternative: str) -> re.Pattern[str]:
    """The alternative as it is looked for in a whole report: context anchors (``^``, ``$``) dropped,
    because such patterns are run on a window of text before or after a match."""
    alt = re.sub(r"^\^", "", alternative)
    alt = re.sub(r"(?:\\s\*)?\$$", "", alt)
    try:
        return re.compile(alt, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(alternative), re.IGNORECASE)


Key = tuple[str, str]  # (module name, attribute)


@dataclass
class Attestation:
    """Which lesion types' reports each alternative of each table occurs in."""

    types: tuple[str, ...]
    #: (module, attribute) -> entry index -> alternative -> the types attesting it
    seen: dict[Key, dict[int, dict[str, frozenset[str]]]] = field(default_factory=dict)

    def without(self, exempt: set[Key]) -> "Attestation":
        """The same attestation less the tables in ``exempt`` (kept whole by every fold)."""
        return Attestation(self.types, {k: v for k, v in self.seen.items() if k not in exempt})

    def only_in(self, lesion_type: str) -> list[tuple[Key, str]]:
        """Alternatives attested by ``lesion_type`` alone (what its fold removes)."""
        return [(key, alt) for key, entries in self.seen.items() for alts in entries.values()
                for alt, types in alts.items() if types == frozenset({lesion_type})]


def _entries(table: Any) -> list[tuple[int, list[str], bool]]:
    """(index, alternatives, is_plain_term) of every entry of a table."""
    if isinstance(table, str):
        return [(0, alternatives(table), False)]
    if isinstance(table, dict):
        return [(0, list(table), True)]
    out = []
    for i, entry in enumerate(table):
        pattern = entry if isinstance(entry, str) else entry[0]
        out.append((i, alternatives(pattern), False))
    return out


def attest(modules: list[ModuleType], reports: dict[str, list[str]],
           prepare: Callable[[str], str]) -> Attestation:
    """The attestation of every table of ``modules`` in ``reports`` ({lesion type: texts}).

    ``prepare`` normalises a report the way the parser does before matching.
    """
    texts = {t: [prepare(r) for r in rs] for t, rs in reports.items()}
    att = Attestation(types=tuple(reports))
    for module in modules:
        for name in getattr(module, "HOLDOUT_TABLES", ()):
            table = getattr(module, name)
            per_entry: dict[int, dict[str, frozenset[str]]] = {}
            for index, alts, plain in _entries(table):
                seen: dict[str, frozenset[str]] = {}
                for alt in alts:
                    if plain:
                        term = prepare(alt)
                        found = {t for t, rs in texts.items() if any(term in r for r in rs)}
                    else:
                        rx = _searchable(alt)
                        found = {t for t, rs in texts.items() if any(rx.search(r) for r in rs)}
                    seen[alt] = frozenset(found)
                per_entry[index] = seen
            att.seen[(module.__name__, name)] = per_entry
    return att


def _without(table: Any, removed: dict[int, set[str]]) -> Any:
    """``table`` with the removed alternatives of each entry taken out."""
    def cut(pattern: str, index: int) -> str:
        drop = removed.get(index, set())
        kept = [a for a in alternatives(pattern) if a not in drop]
        return "|".join(kept) if kept else NEVER

    if isinstance(table, str):
        return cut(table, 0)
    if isinstance(table, dict):
        drop = removed.get(0, set())
        return {k: v for k, v in table.items() if k not in drop}
    out = []
    for i, entry in enumerate(table):
        if isinstance(entry, str):
            out.append(cut(entry, i))
        else:
            out.append((cut(entry[0], i),) + tuple(entry[1:]))
    return type(table)(out)


@contextmanager
def held_out(lesion_type: str, modules: list[ModuleType], attestation: Attestation) -> Iterator[list[tuple[Key, str]]]:
    """Within the block, every table of ``modules`` lacks the alternatives only ``lesion_type``
    attests; yields what was removed. Tables are restored on exit; a module's ``on_holdout_change``
    (if any) is called after each change so derived patterns follow."""
    saved: list[tuple[ModuleType, str, Any]] = []
    removed_all = attestation.only_in(lesion_type)
    try:
        for module in modules:
            for name in getattr(module, "HOLDOUT_TABLES", ()):
                entries = attestation.seen.get((module.__name__, name))
                if entries is None:
                    continue
                removed = {i: {a for a, t in alts.items() if t == frozenset({lesion_type})} for i, alts in entries.items()}
                if not any(removed.values()):
                    continue
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, _without(getattr(module, name), removed))
            _changed(module)
        yield removed_all
    finally:
        for module, name, value in reversed(saved):
            setattr(module, name, value)
        for module in modules:
            _changed(module)


def _changed(module: ModuleType) -> None:
    hook = getattr(module, "on_holdout_change", None)
    if callable(hook):
        hook()
