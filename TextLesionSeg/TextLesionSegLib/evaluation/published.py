"""The metrics a public dataset publishes for itself, computed beside ours from the same records.

ReXGroundingCT (leaderboard at rexrank.ai/ReXGroundingCT): **Global Dice**, "average Dice per
finding per case", and **Global HIT rate**, "proportion of findings that have Dice >= 0.1". A
finding is one lesion record here (all its entities), so both come from the per-lesion Dice the
evaluation already measures. Its instance-wise precision / recall (an entity is found at
Dice >= 0.2) needs the entities apart and is not computed.
"""

from __future__ import annotations

from typing import Any, Sequence

#: ReXGroundingCT's hit threshold on a finding's Dice
REX_HIT_DICE = 0.1


def rexgroundingct(dices: Sequence[float]) -> dict[str, Any]:
    """Global Dice and hit rate of per-finding Dice values."""
    n = len(dices)
    return {"n_findings": n, "global_dice": round(sum(dices) / n, 4) if n else None,
            "hit_rate": round(sum(d >= REX_HIT_DICE for d in dices) / n, 4) if n else None,
            "definition": f"mean Dice per finding per case; share of findings with Dice >= {REX_HIT_DICE}"}


#: layout -> its published metrics from per-finding Dice values
PUBLISHED = {"rexgroundingct": rexgroundingct}


def published_metrics(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per dataset layout that publishes metrics, those metrics over its records (``layout``, ``dice``)."""
    out = {}
    for layout, metric in PUBLISHED.items():
        dices = [float(r["dice"]) for r in records if r.get("layout") == layout]
        if dices:
            out[layout] = metric(dices)
    return out
