"""Attributes as categories: per-attribute heads on Malenia's mask tokens, and the token choice
against a description with an explicit "none" option [chosen, issue 16; off = the paper's model].

The paper aligns tokens with attribute *embeddings* only (MP-NCE). A general sentence encoder
barely separates "left lung" from "right lung" (cosine 0.94 for all-MiniLM-L6-v2), and the
demo's projection erased even that, so the values the parser reads from the words are also
predicted as categories: one linear head per attribute over its values from the query vocabulary
(cross-entropy; an unknown value is ignored). Text-guided inference scores token n for a
description d as

    s_n(d) = object_logit_n + Σ_{a stated in d} log p_a(value_a(d) | token_n)

against a learned "none" logit, and training makes that choice explicit: a cross-entropy over
the window's tokens plus "none", whose target is the described lesion's token when it is in the
window and "none" when it is elsewhere or not in the scan at all. Embeddings stay the path for
words the vocabulary does not know (MP-NCE is kept).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

#: attribute heads and their values, in a fixed order (indices are saved with the weights)
HEAD_VALUES: dict[str, tuple[str, ...]] = {
    "organ": ("lung", "liver", "kidney", "pancreas", "colon", "spleen"),
    "side": ("left", "right"),
    "shape": ("round-like", "irregular"),
    "density": ("hypodense", "isodense", "hyperdense", "mixed"),
    "density_variation": ("homogeneous", "heterogeneous"),
    "surface": ("well-defined", "ill-defined"),
    "relation": ("not closely related", "closely related"),
}
HEADS = tuple(HEAD_VALUES)
#: value index meaning "not known / not stated" (ignored by the loss and the choice)
UNKNOWN = -1


def _side_of(get) -> str | None:
    side = get("side")
    if side in ("left", "right"):
        return side
    sub = str(get("sub_location") or "").lower().split()
    if get("organ") == "liver" and sub[:1] in (["left"], ["right"]):
        return sub[0]  # a liver lobe is a side
    return None


def head_targets(source: Any) -> list[int]:
    """Value index per head (``UNKNOWN`` where not known) of a lesion's attributes (a dict or a
    ``reports.csv`` row) or of a query's stated values (a ``LesionQuery``)."""
    if isinstance(source, Mapping):
        def get(key: str) -> Any:
            return source.get(key) or None
    else:
        def get(key: str) -> Any:
            return getattr(source, key, None) or None
    out = []
    for head, values in HEAD_VALUES.items():
        value = _side_of(get) if head == "side" else get(head)
        out.append(values.index(value) if value in values else UNKNOWN)
    return out


class AttributeHeads(nn.Module):
    """A shared hidden layer, then one classifier per attribute, plus the learned "none" logit.

    Input: a token beside what its mask covers (``MaleniaModel.head_inputs``) [chosen: mask
    pooling, as open-vocabulary mask classifiers do; a token alone gave chance-level heads in a
    first CPU run, 600 steps, cross-entropy flat at ln 2]."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.hidden = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.GELU())
        self.heads = nn.ModuleDict({h: nn.Linear(hidden, len(v)) for h, v in HEAD_VALUES.items()})
        self.none_logit = nn.Parameter(torch.zeros(()))

    def forward(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """inputs ``(..., in_dim)`` -> log-probabilities per head ``(..., V_h)``."""
        x = self.hidden(inputs)
        return {h: lin(x).log_softmax(-1) for h, lin in self.heads.items()}


def choice_logits(log_probs: dict[str, torch.Tensor], object_logits: torch.Tensor, targets: torch.Tensor
                  ) -> torch.Tensor:
    """Token scores ``s_n(d)`` for descriptions: ``log_probs`` per head ``(N, V_h)`` of one window's
    tokens, ``object_logits`` ``(N,)``, ``targets`` ``(Q, H)`` value indices (``UNKNOWN`` = not
    stated) -> ``(Q, N)``."""
    scores = object_logits.unsqueeze(0).expand(targets.shape[0], -1).clone()
    for h, head in enumerate(HEADS):
        stated = targets[:, h] >= 0
        if stated.any():
            lp = log_probs[head]  # (N, V)
            picked = lp[:, targets[:, h].clamp_min(0)].t()  # (Q, N)
            scores = scores + torch.where(stated[:, None], picked, torch.zeros_like(picked))
    return scores


def choice_with_none(scores: torch.Tensor, none_logit: torch.Tensor) -> torch.Tensor:
    """``(Q, N)`` token scores -> ``(Q, N + 1)`` logits, the last column "none"."""
    return torch.cat([scores, none_logit.expand(scores.shape[0], 1).to(scores.dtype)], dim=1)


def head_loss(log_probs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of matched tokens' heads ``(M, V_h)`` against lesion values ``(M, H)``
    (unknown values ignored; 0 when nothing is known)."""
    losses = []
    for h, head in enumerate(HEADS):
        known = targets[:, h] >= 0
        if known.any():
            losses.append(nn.functional.nll_loss(log_probs[head][known], targets[known, h]))
    if not losses:
        return next(iter(log_probs.values())).sum() * 0.0
    return torch.stack(losses).mean()


def predicted_values(log_probs: dict[str, torch.Tensor]) -> list[dict[str, tuple[str, float]]]:
    """Per token, per head: (most probable value, its probability)."""
    n = next(iter(log_probs.values())).shape[0]
    out: list[dict[str, tuple[str, float]]] = [{} for _ in range(n)]
    for head, lp in log_probs.items():
        p, idx = lp.exp().max(dim=-1)
        for t in range(n):
            out[t][head] = (HEAD_VALUES[head][int(idx[t])], float(p[t]))
    return out
