"""Which candidate a description names — or that none does. Shared by every model.

Two modes, reported side by side everywhere (issue 16: "network alone, and with this layer"):

- ``"network"``: candidates ranked by the network's own score (:attr:`Candidate.network_score`);
  the words act only through the network;
- ``"measured"`` (default): that score times the agreement of each candidate's *measured*
  attributes (:mod:`.candidates`) with the parsed words — side, organ context (in aerated lung
  or not), density and size — and ordinal words ("the larger", "the most superior") choose
  among the plausible candidates.

One measurement is taken but does not vote [chosen, measured on validation data]: **shape** —
the shape index of a *predicted* mask on a 5 mm-slice grid does not tell round from irregular (in 7
of 8 validation questions the measured layer got wrong in session 5, it had penalised the
described lesion's shape; in session 6, on REFVAL's predicted masks, round-like lesions measured
0.58-1.00 and irregular ones 0.68-0.98). The **side of a liver lobe** does not vote either: its
border is not the body's midline (a left-lobe lesion measured x = -0.09). Session 6 tried a lobe
border right of the midline (Cantlie's line, x = -0.11 on the validation sets' reference masks)
with lobes and Couinaud segments read from the words: it changed no answer on either validation
set (REFVAL, READVAL), so by the rule written before it was measured it was not kept.

**Text-free candidates** [chosen, issue 16]: when the model also gives a text-free lesion map
(LSMS's objectness output, Malenia's prompt-free map), the ``measured`` mode also measures the
lesions of that map that touch none of the words' map (:func:`.candidates.cut_map`), and a candidate's base score is the larger of the network's score for the words
and :data:`LESION_PRIOR` times its lesion score: a lesion the words' map missed can still be
chosen when its measurements agree with the words, but a candidate the network chose for the
words wins a tie. The ``network`` mode never sees that map.

In both modes **"not found" is an answer**: when the best score is below the model's calibrated
``min_score`` (chosen on validation data, stored with the weights), the description gets an
empty segment and a message saying why. Agreement factors are [chosen]; each contradiction
multiplies the score by a small factor instead of zeroing it, so a confident network can still
win against one doubtful measurement, and the threshold decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .candidates import Candidate

MODES = ("network", "measured")
#: score factor of a clear contradiction per attribute [chosen]
CONTRADICTED = {"side": 0.05, "organ": 0.2, "density": 0.15, "size": 0.15}
#: |body x| below this is "at the midline": side words neither agree nor contradict
MIDLINE_BAND = 0.06
#: density agreement in HU relative to the reference tissue: (agree at, contradicted at) [chosen;
#: the thresholds of the synthesiser's code book, ``training.data.synthesize._check``, with margins]
DENSITY_HU = {
    "soft": {"hypodense": (-15.0, 5.0), "hyperdense": (15.0, -5.0), "isodense": (15.0, 35.0)},
    "lung": {"hypodense": (-250.0, -100.0), "hyperdense": (60.0, 25.0), "isodense": (45.0, 120.0)},
}
#: a "mixed" lesion's core spans at least this many HU between its 15th and 85th percentiles
MIXED_SPREAD_HU = {"soft": 45.0, "lung": 250.0}
#: stated and measured longest diameters agree within this factor, contradict beyond the second
SIZE_RATIO = (1.6, 3.0)
#: "small" / "large" in mm of longest diameter: (agree up to / from, contradicted from / up to)
SMALL_MM, LARGE_MM = (20.0, 40.0), (30.0, 15.0)
#: abdominal organs whose lesions do not lie in aerated lung
NOT_LUNG = ("liver", "kidney", "pancreas", "spleen", "colon", "adrenal", "bladder", "stomach", "gallbladder",
            "small intestine", "prostate", "uterus", "ovary", "lymph node")
#: ordinal word -> (property, descending?); "first/second/third" count by size [chosen]
ORDINALS = {
    "largest": ("volume", True), "larger": ("volume", True), "biggest": ("volume", True),
    "bigger": ("volume", True), "dominant": ("volume", True), "index": ("volume", True),
    "first": ("volume", True), "second": ("volume", True), "third": ("volume", True),
    "smaller": ("volume", False), "smallest": ("volume", False),
    "most superior": ("z", True), "more superior": ("z", True), "upper": ("z", True),
    "most inferior": ("z", False), "more inferior": ("z", False), "lower": ("z", False),
    "most anterior": ("y", False), "most posterior": ("y", True),
    "most medial": ("lateral", False), "most lateral": ("lateral", True),
}
_POSITION = {"second": 1, "third": 2}
#: an ordinal compares candidates scoring at least this share of the best (no faint false positive
#: becomes "the larger" one)
ORDINAL_PLAUSIBLE = 0.25
#: how much "upper"/"lower" (lobe, pole) may lower a score: a tie-breaker among candidates only
#: [chosen, measured for LSMS: at 0.5 it moved picks onto false positives elsewhere in the scan]
SUB_LOCATION_WEIGHT = 0.1
#: weight of a candidate's text-free lesion score against the network's score for the words
#: (see the module docstring) [chosen]; a model's own, chosen on its validation data, ships in its
#: ``config.json`` (``extra.selection.lesion_prior``, :attr:`LesionSegmenter.lesion_prior`)
LESION_PRIOR = 0.5
#: a description of several lesions ("two nodules", "multiple cysts") keeps every candidate
#: scoring at least this share of the best (a contradicted one scores at most 0.2 of it)
SEVERAL_SHARE = 0.3


def _ramp(value: float, agree: float, contradicted: float, floor: float) -> float:
    """1 at ``agree`` (and beyond, away from ``contradicted``), ``floor`` at ``contradicted``."""
    if agree == contradicted:
        return 1.0
    t = (value - contradicted) / (agree - contradicted)
    return float(floor + (1.0 - floor) * min(1.0, max(0.0, t)))


def query_side(query: Any) -> str | None:
    """The patient side a query asks for, judged against the body's midline (a liver lobe is not
    such a side: see the module docstring)."""
    side = getattr(query, "side", None)
    return side if side in ("left", "right") and getattr(query, "organ", None) != "liver" else None


def agreement(c: Candidate, query: Any) -> tuple[float, dict[str, float]]:
    """Product of per-attribute agreement factors of ``c`` with the words of ``query`` (a
    ``LesionQuery``), and each factor by name (only the attributes the query states)."""
    factors: dict[str, float] = {}
    side = query_side(query)
    if side:
        x = c.body_xyz[0]
        if abs(x) < MIDLINE_BAND:
            factors["side"] = 0.5
        else:
            factors["side"] = 1.0 if c.side == side else CONTRADICTED["side"]
    organ = getattr(query, "organ", None)
    if organ == "lung":
        factors["organ"] = _ramp(c.lung_context, 0.3, 0.05, CONTRADICTED["organ"])
    elif organ in NOT_LUNG:
        factors["organ"] = _ramp(c.lung_context, 0.3, 0.6, CONTRADICTED["organ"])
    density = getattr(query, "density", None)
    context = "lung" if c.in_lung else "soft"
    if density == "mixed":
        factors["density"] = _ramp(c.p85_hu - c.p15_hu, MIXED_SPREAD_HU[context], 0.4 * MIXED_SPREAD_HU[context],
                                   CONTRADICTED["density"])
    elif density in DENSITY_HU[context]:
        agree, contra = DENSITY_HU[context][density]
        delta = c.density_delta
        value = abs(delta) if density == "isodense" else delta
        factors["density"] = _ramp(value, agree, contra, CONTRADICTED["density"])
    sizes = getattr(query, "size_mm", None)
    if sizes:
        ratio = max(c.diameter_mm, 1.0) / max(float(max(sizes)), 1.0)
        r = max(ratio, 1.0 / ratio)
        factors["size"] = _ramp(-np.log(r), -np.log(SIZE_RATIO[0]), -np.log(SIZE_RATIO[1]), CONTRADICTED["size"])
    elif getattr(query, "size_word", None) in ("small", "tiny"):
        factors["size"] = _ramp(-c.diameter_mm, -SMALL_MM[0], -SMALL_MM[1], 0.3)
    elif getattr(query, "size_word", None) in ("large", "big", "huge", "bulky"):
        factors["size"] = _ramp(c.diameter_mm, LARGE_MM[0], LARGE_MM[1], 0.3)
    total = float(np.prod(list(factors.values()))) if factors else 1.0
    return total, factors


@dataclass
class Selection:
    """The answer to one description: which candidates it names, or why none.

    Attributes:
        mode: "network" or "measured".
        labels: the chosen candidates' labels (empty when not found).
        found: whether any candidate passed ``min_score``.
        message: one line for the user ("" when found).
        candidates: every candidate with its measurements, factors and score, best first.
        min_score: the threshold used.
    """

    mode: str
    labels: list[int]
    found: bool
    message: str = ""
    min_score: float = 0.0
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the report's per-segment ``selection``)."""
        return {"mode": self.mode, "found": self.found, "message": self.message, "min_score": self.min_score,
                "labels": list(self.labels), "candidates": self.candidates}


def base_score(c: Candidate, mode: str, lesion_prior: float | None = None) -> float:
    """A candidate's score before the measurements: the network's score for the words, or in the
    ``measured`` mode the larger of that and ``lesion_prior`` (default :data:`LESION_PRIOR`) times
    its text-free lesion score, when the model gave a lesion map."""
    if mode != "measured" or c.lesion_score is None:
        return c.network_score
    prior = LESION_PRIOR if lesion_prior is None else lesion_prior
    return max(c.network_score, prior * c.lesion_score)


def _ordinal_key(c: Candidate, prop: str) -> float:
    if prop == "volume":
        return c.volume_mm3
    if prop == "z":
        return c.centroid_kji[0]  # K grows toward superior on the LPS working grid
    if prop == "y":
        return c.centroid_kji[1]  # J grows toward posterior
    return abs(c.body_xyz[0])  # lateral: far from the midline


def _sub_location_factors(candidates: Sequence[Candidate], query: Any) -> list[float]:
    """"upper"/"lower" in the sub-location lowers the others by up to :data:`SUB_LOCATION_WEIGHT`,
    by their head-foot rank among the candidates (K grows toward superior)."""
    sub = (getattr(query, "sub_location", None) or "").lower()
    upper, lower = "upper" in sub or "superior" in sub, "lower" in sub or "inferior" in sub
    if len(candidates) < 2 or not (upper or lower):
        return [1.0] * len(candidates)
    z = np.array([c.centroid_kji[0] for c in candidates], float)
    zn = (z - z.min()) / (np.ptp(z) or 1.0)
    return list(1.0 - SUB_LOCATION_WEIGHT * ((1.0 - zn) if upper else zn))


def _wants_several(query: Any) -> bool:
    count = getattr(query, "count", None)
    return isinstance(count, str) or (isinstance(count, int) and count > 1)


def _describe(c: Candidate) -> str:
    return f"{c.side}, {c.core_hu:.0f} HU vs {c.reference_hu:.0f}, {c.diameter_mm:.0f} mm"


def choose(candidates: Sequence[Candidate], query: Any, mode: str = "measured", min_score: float = 0.0,
           keep_ratio: float = 1.0, lesion_prior: float | None = None) -> Selection:
    """Rank ``candidates`` for ``query`` and choose (see the module docstring).

    ``keep_ratio``: besides the best, keep candidates scoring at least this share of it (1 keeps
    the best only; a query asking for several lesions keeps those above :data:`SEVERAL_SHARE`).
    ``lesion_prior``: the model's weight of text-free candidates (:func:`base_score`; default
    :data:`LESION_PRIOR`).
    """
    if mode not in MODES:
        raise ValueError(f"selection mode must be one of {MODES}, not '{mode}'")
    rows = []
    tie = _sub_location_factors(candidates, query) if mode == "measured" else [1.0] * len(candidates)
    for c, t in zip(candidates, tie):
        total, factors = agreement(c, query) if mode == "measured" else (1.0, {})
        rows.append((base_score(c, mode, lesion_prior) * total * t, c, factors))
    rows.sort(key=lambda r: -r[0])
    ordinal = (getattr(query, "ordinal", None) or "").lower()
    if mode == "measured" and ordinal in ORDINALS and len(rows) > 1 and rows[0][0] > 0:
        plausible = [r for r in rows if r[0] >= ORDINAL_PLAUSIBLE * rows[0][0]]
        prop, descending = ORDINALS[ordinal]
        plausible.sort(key=lambda r: _ordinal_key(r[1], prop), reverse=descending)
        pick = plausible[min(_POSITION.get(ordinal, 0), len(plausible) - 1)]
        rows = [pick] + [r for r in rows if r is not pick]
    table = [{**c.to_dict(), "factors": {k: round(v, 3) for k, v in f.items()}, "score": round(float(s), 4)}
             for s, c, f in rows]
    if not rows or rows[0][0] < min_score:
        if not rows:
            why = "nothing above the probability threshold"
        else:
            best_score, best, factors = rows[0]
            bad = [k for k, v in factors.items() if v < 0.5]
            why = (f"best candidate ({_describe(best)}) scores {best_score:.2f} < {min_score:.2f}"
                   + (f"; it disagrees on {', '.join(bad)}" if bad else ""))
        return Selection(mode, [], False, f"not found: {why}", min_score, table)
    best = rows[0][0]
    if _wants_several(query):
        kept = [r for r in rows if r[0] >= max(min_score, SEVERAL_SHARE * best)]
    else:
        near = [r for r in rows[1:] if r[0] >= max(min_score, keep_ratio * best)] if keep_ratio < 1.0 else []
        kept = [rows[0]] + near
    return Selection(mode, [r[1].label for r in kept], True, "", min_score, table)
