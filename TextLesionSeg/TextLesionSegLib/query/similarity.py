"""Fallback for phrases the rules miss: the nearest attribute value by text-encoder similarity.

When a description speaks about an attribute (a cue word such as "margin", "interface",
"serosa", "texture" — :data:`.prototypes.CUES`) but no rule placed a value, the clause around the
cue is embedded with all-MiniLM-L6-v2 (numpy, :mod:`.minilm`) and compared with the general
prototype sentences of each value (:data:`.prototypes.PROTOTYPES`). The best value is taken when
its cosine similarity is at least :data:`THRESHOLD` and beats every other value by
:data:`MARGIN`; the query records it in ``evidence`` ("similar to '…'") and its similarity in
``confidence`` so the preview and the JSON show it as a guess. Both cut-offs were fixed before
any measurement and never tuned. English only (the encoder is English).

Off when the bundled model or numpy is missing, or when ``TEXTLESIONSEG_SIMILARITY=0``.
"""

from __future__ import annotations

import os
import re
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .prototypes import CUES, PROTOTYPES

if TYPE_CHECKING:  # pragma: no cover
    from .extract import Extraction

#: least cosine similarity to a prototype for a value to be taken [chosen a priori]
THRESHOLD = 0.5
#: least lead of the best value over the next one [chosen a priori]
MARGIN = 0.05
_BOUNDARY = re.compile(r"[.;,:!?()]|\b(?:and|but|with|while|whereas|which)\b")
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}


def enabled() -> bool:
    """Is the fallback available (model found, numpy importable, not switched off)?"""
    if os.environ.get("TEXTLESIONSEG_SIMILARITY", "1").strip().lower() in ("0", "off", "false", "no"):
        return False
    if "ok" not in _STATE:
        try:
            import numpy  # noqa: F401

            from .minilm import model_folder

            _STATE["ok"] = model_folder() is not None
        except Exception:  # noqa: BLE001 - a missing optional part only switches the fallback off
            _STATE["ok"] = False
    return bool(_STATE["ok"])


def _bank() -> tuple[Any, dict[str, tuple[list[str], list[str], Any]]]:
    """The encoder and, per attribute, (values, prototype sentences, their embeddings)."""
    with _LOCK:
        if "model" not in _STATE:
            from .minilm import MiniLM, model_folder

            model = MiniLM(model_folder())  # type: ignore[arg-type]
            bank = {}
            for attribute, by_value in PROTOTYPES.items():
                values = [v for v, sentences in by_value.items() for _ in sentences]
                sentences = [s for ss in by_value.values() for s in ss]
                bank[attribute] = (values, sentences, model.encode(sentences))
            _STATE["model"], _STATE["bank"] = model, bank
    return _STATE["model"], _STATE["bank"]


@lru_cache(maxsize=4096)
def nearest(attribute: str, phrase: str) -> tuple[str, float, str] | None:
    """(value, similarity, nearest prototype) for a phrase, or ``None`` below the cut-offs."""
    if not enabled() or attribute not in PROTOTYPES:
        return None
    model, bank = _bank()
    values, sentences, matrix = bank[attribute]
    sims = matrix @ model.encode([phrase])[0]
    best: dict[str, tuple[float, str]] = {}
    for value, sentence, sim in zip(values, sentences, sims.tolist()):
        if value not in best or sim > best[value][0]:
            best[value] = (sim, sentence)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
    (value, (sim, sentence)), runner = ranked[0], ranked[1][1][0] if len(ranked) > 1 else -1.0
    if sim < THRESHOLD or sim - runner < MARGIN:
        return None
    return value, round(float(sim), 3), sentence


def _clause(text: str, at: int) -> tuple[int, int]:
    starts = [m.end() for m in _BOUNDARY.finditer(text, 0, at)]
    end = _BOUNDARY.search(text, at)
    return (starts[-1] if starts else 0), (end.start() if end else len(text))


def read(text: str, blocked: list[tuple[int, int]], ex: "Extraction") -> None:
    """Fill unplaced attributes whose cue words appear, from the nearest prototype."""
    if not enabled():
        return
    for attribute, cue in CUES.items():
        if ex.values.get(attribute):
            continue
        for m in re.finditer(cue, text):
            start, end = _clause(text, m.start())
            if any(start < b and a < end for a, b in blocked):
                continue
            phrase = text[start:end].strip()
            if len(phrase.split()) < 2:
                continue
            found = nearest(attribute, phrase)
            if found:
                value, sim, sentence = found
                ex.values[attribute] = value
                ex.evidence[attribute] = f"similar to '{sentence}' ({sim:.2f})"
                ex.confidence[attribute] = sim
                # only the cue word counts as placed: the clause's other words stay visible to
                # parse's unknown-word list, since no rule read them
                ex.covered.append(m.span())
                break
