"""Does the output follow the words? The medvlsm test, on cases with several lesions.

For every described lesion L of a multi-lesion case, the model is run with (a) L's own
description, (b) the same text with attribute words swapped for their opposites, (c) empty text.
The output *follows the text* when its Dice with L is > 0.5 and its Dice with every other lesion
is < 0.1 (the LSMS referring criterion). A model that ignores the text gives the same mask for
every description, so it can follow at most one description per case: its expected follow rate
is at most the *chance level* = mean over described lesions of 1 / (lesions in the case).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from .metrics import dice_score

#: attribute words and their opposites (both directions are applied at once) [chosen: the three
#: pairs the medvlsm-style test names, plus the other binary attributes of Malenia's vocabulary]
SWAP_PAIRS: tuple[tuple[str, str], ...] = (
    ("hypodense", "hyperdense"),
    ("hypoattenuating", "hyperattenuating"),
    ("low-density", "high-density"),
    ("low-attenuation", "high-attenuation"),
    ("low attenuation", "high attenuation"),
    ("low density", "high density"),
    ("left", "right"),
    ("round-like", "irregular"),
    ("round", "irregular"),
    ("well-defined", "ill-defined"),
    ("well defined", "ill defined"),
    ("homogeneous", "heterogeneous"),
)
FOLLOW_DICE = 0.5
OTHER_DICE = 0.1


def _swap_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for a, b in SWAP_PAIRS:
        table.setdefault(a, b)
        table.setdefault(b, a)
    return table


_TABLE = _swap_table()
# longest first so "round-like" wins over "round"; word boundaries keep "leftover" intact
_PATTERN = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(_TABLE, key=len, reverse=True)) + r")\b",
                      re.IGNORECASE)


def swap_attributes(text: str) -> str:
    """``text`` with every attribute word replaced by its opposite, all at once, keeping capitals."""

    def repl(match: re.Match[str]) -> str:
        word = match.group(0)
        new = _TABLE[word.lower()]
        return new[0].upper() + new[1:] if word[0].isupper() else new

    return _PATTERN.sub(repl, text)


def has_swappable(text: str) -> bool:
    """True when :func:`swap_attributes` changes ``text``."""
    return bool(_PATTERN.search(text or ""))


@dataclass
class LesionSensitivity:
    """Text-sensitivity record of one described lesion in a multi-lesion case."""

    case_id: str
    lesion_id: int
    n_lesions: int
    text: str
    swapped_text: str
    dice_own: float
    max_dice_other: float
    follows: bool
    dice_swapped: float | None
    swapped_follows: bool | None
    dice_empty: float
    empty_volume_voxels: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


def score_lesion(
    case_id: str,
    lesion_id: int,
    instances: np.ndarray,
    text: str,
    pred_own: np.ndarray,
    pred_swapped: np.ndarray | None,
    pred_empty: np.ndarray,
) -> LesionSensitivity:
    """Score one described lesion from the three binary predictions (own, swapped, empty)."""
    ids = [int(v) for v in np.unique(instances) if v != 0]
    own = instances == lesion_id
    others = [instances == i for i in ids if i != lesion_id]

    def follows(pred: np.ndarray) -> tuple[float, float, bool]:
        d = dice_score(pred, own)
        worst = max((dice_score(pred, o) for o in others), default=0.0)
        return d, worst, d > FOLLOW_DICE and worst < OTHER_DICE

    d_own, d_other, ok = follows(pred_own)
    d_sw, ok_sw = None, None
    if pred_swapped is not None:
        d_sw, _, ok_sw = follows(pred_swapped)
    return LesionSensitivity(
        case_id=case_id, lesion_id=lesion_id, n_lesions=len(ids), text=text,
        swapped_text=swap_attributes(text) if pred_swapped is not None else "",
        dice_own=d_own, max_dice_other=d_other, follows=ok, dice_swapped=d_sw, swapped_follows=ok_sw,
        dice_empty=dice_score(pred_empty, own), empty_volume_voxels=int(np.count_nonzero(pred_empty)),
    )


@dataclass
class SensitivitySummary:
    """Rates over all described lesions of multi-lesion cases."""

    n: int = 0
    follow_rate: float | None = None
    chance_rate: float | None = None
    n_swapped: int = 0
    mean_dice_own: float | None = None
    mean_dice_swapped: float | None = None
    mean_dice_drop_swap: float | None = None
    swapped_still_follow_rate: float | None = None
    mean_dice_empty: float | None = None
    verdict: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (records included)."""
        return asdict(self)


def summarize_sensitivity(records: Sequence[LesionSensitivity]) -> SensitivitySummary:
    """Follow rate vs chance, Dice drop under swaps, Dice with empty text, and a plain verdict."""
    out = SensitivitySummary(n=len(records), records=[r.to_dict() for r in records])
    if not records:
        out.verdict = "no multi-lesion case: text sensitivity not measured"
        return out
    out.follow_rate = float(np.mean([r.follows for r in records]))
    out.chance_rate = float(np.mean([1.0 / max(r.n_lesions, 1) for r in records]))
    out.mean_dice_own = float(np.mean([r.dice_own for r in records]))
    out.mean_dice_empty = float(np.mean([r.dice_empty for r in records]))
    swapped = [r for r in records if r.dice_swapped is not None]
    out.n_swapped = len(swapped)
    if swapped:
        out.mean_dice_swapped = float(np.mean([r.dice_swapped for r in swapped]))
        out.mean_dice_drop_swap = float(np.mean([r.dice_own - r.dice_swapped for r in swapped]))
        out.swapped_still_follow_rate = float(np.mean([bool(r.swapped_follows) for r in swapped]))
    out.verdict = verdict(out)
    return out


#: a Dice drop under attribute swaps below this means the words changed (almost) nothing
WORDS_MATTER_DROP = 0.05


def verdict(s: SensitivitySummary) -> str:
    """One plain sentence on whether the model follows the text (used in the reports).

    A follow rate near or below chance has two causes worth telling apart: the model ignores the
    words (swapping them changes nothing), or it reads them but answers wrongly (swaps do change
    its output) — the first needs a model that reads text, the second more or better training.
    """
    if s.follow_rate is None or s.chance_rate is None:
        return "not measured"
    drop = s.mean_dice_drop_swap
    if s.follow_rate <= s.chance_rate + 0.1:
        if drop is not None and drop >= WORDS_MATTER_DROP:
            head = (f"READS THE WORDS BUT DOES NOT FOLLOW THEM: follows the description in {s.follow_rate:.0%} "
                    f"of cases, not above the {s.chance_rate:.0%} a text-blind model can reach")
        else:
            head = (f"IGNORES THE TEXT: follows the description in {s.follow_rate:.0%} of cases, "
                    f"near the {s.chance_rate:.0%} a text-blind model can reach")
    elif s.follow_rate < 0.5:
        head = f"follows the text weakly: {s.follow_rate:.0%} (chance {s.chance_rate:.0%})"
    else:
        head = f"follows the text: {s.follow_rate:.0%} (chance {s.chance_rate:.0%})"
    if drop is not None:
        head += f"; swapping attribute words lowers Dice by {drop:.2f}"
    return head
