"""Cross-Modal Knowledge Injection (CMKI) [paper, figure right panel].

Inputs: mask tokens m (M×C) and, for each, its 8 attribute embeddings t (M×8×D_text), concatenated
and linearly projected to C. Three rounds of deep fusion, each a mask stream (cross-attention q = m,
k/v = t, residual, self-attention) and a symmetric text stream. Then Q_m = Linear(m̂), Q_t = Linear(t̂),
and with K = Linear(F4): Mask_m = Q_m·K, Mask_t = Q_t·K, ensembled as the mean of the two sigmoid
maps [chosen: mean].
"""

from __future__ import annotations

import torch
from torch import nn


class _Attend(nn.Module):
    """Attention + residual + LayerNorm (post-norm)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return self.norm(q + self.attn(q, kv, kv, need_weights=False)[0])


class FusionRound(nn.Module):
    """One deep-fusion round; both streams read the other's state from the start of the round."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.mask_cross, self.mask_self = _Attend(dim, heads, dropout), _Attend(dim, heads, dropout)
        self.text_cross, self.text_self = _Attend(dim, heads, dropout), _Attend(dim, heads, dropout)

    def forward(self, m: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m_new = self.mask_cross(m, t)
        t_new = self.text_cross(t, m)
        return self.mask_self(m_new, m_new), self.text_self(t_new, t_new)


class CMKI(nn.Module):
    """Fuses matched (mask token, attribute embeddings) pairs and predicts one mask per pair.

    Args:
        dim: token width C.
        text_dim: width of one attribute embedding.
        num_attributes: attribute embeddings per lesion [paper: 8].
        mask_dim: width of Q_m, Q_t and K.
        rounds: deep-fusion rounds [paper: 3].
    """

    def __init__(self, dim: int, text_dim: int, num_attributes: int, mask_dim: int, heads: int, rounds: int = 3, dropout: float = 0.0):
        super().__init__()
        self.num_attributes = num_attributes
        self.mask_in = nn.Linear(dim, dim)
        self.text_in = nn.Linear(num_attributes * text_dim, dim)
        self.rounds = nn.ModuleList(FusionRound(dim, heads, dropout) for _ in range(rounds))
        self.q_mask = nn.Linear(dim, mask_dim)
        self.q_text = nn.Linear(dim, mask_dim)
        # Q_m, Q_t are residuals over the token's own mask query, starting at zero [chosen]: CMKI then
        # starts from the decoder's mask and learns what the attributes add, instead of re-learning
        # the mask from scratch (which did not converge within a CPU budget).
        for lin in (self.q_mask, self.q_text):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, m: torch.Tensor, t: torch.Tensor, keys: torch.Tensor,
                base_query: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """m ``(B, M, C)``, t ``(B, M, 8, D)``, keys = Linear(F4) ``(B, mask_dim, K, J, I)``,
        base_query ``(B, M, mask_dim)`` the tokens' own mask embeddings (or None).

        Returns logits ``mask_m``, ``mask_t`` ``(B, M, K, J, I)`` and the ensemble probability ``prob``.
        """
        m = self.mask_in(m)
        t = self.text_in(t.flatten(2))
        for rnd in self.rounds:
            m, t = rnd(m, t)
        q_m, q_t = self.q_mask(m), self.q_text(t)
        if base_query is not None:
            q_m, q_t = q_m + base_query, q_t + base_query
        mask_m = torch.einsum("bmc,bckji->bmkji", q_m, keys)
        mask_t = torch.einsum("bmc,bckji->bmkji", q_t, keys)
        prob = 0.5 * (torch.sigmoid(mask_m) + torch.sigmoid(mask_t))
        return {"mask_m": mask_m, "mask_t": mask_t, "prob": prob}
