"""Hungarian matching of predicted masks/tokens to ground-truth lesions (Mask2Former style)."""

from __future__ import annotations

import numpy as np
import torch


def dice_cost(pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pairwise ``1 - Dice``: ``pred_logits (N, V)``, ``target (L, V)`` → ``(N, L)``."""
    p = pred_logits.sigmoid()
    t = target.to(p.dtype)
    inter = p @ t.t()
    return 1.0 - (2 * inter + 1.0) / (p.sum(-1, keepdim=True) + t.sum(-1).unsqueeze(0) + 1.0)


def bce_cost(pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pairwise mean binary cross-entropy ``(N, L)`` computed with two matrix products."""
    t = target.to(pred_logits.dtype)
    pos = torch.nn.functional.softplus(-pred_logits)  # -log σ(x)
    neg = torch.nn.functional.softplus(pred_logits)  # -log(1-σ(x))
    return (pos @ t.t() + neg @ (1 - t).t()) / pred_logits.shape[-1]


def hungarian_match(cost: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment of rows (predictions) to columns (targets).

    Returns (row indices, column indices), sorted by column, one pair per target (when N ≥ L).
    """
    from scipy.optimize import linear_sum_assignment

    if cost.numel() == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    c = torch.nan_to_num(cost.detach().float(), nan=1e6, posinf=1e6, neginf=-1e6).cpu().numpy()
    rows, cols = linear_sum_assignment(c)
    order = np.argsort(cols)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)
