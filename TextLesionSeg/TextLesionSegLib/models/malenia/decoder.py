"""Mask tokens and Malenia's 3 transformer decoder blocks (Mask2Former pattern, one scale per block).

Block k: cross-attention (queries = tokens, keys/values = F^k + positional code), self-attention
among tokens, FFN [paper; FFN and post-norm from Mask2Former, chosen]. After each block an
intermediate mask = token embedding · upsampled F4 mask features (deep supervision [paper]).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sine_position_3d(shape: tuple[int, int, int], dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed sinusoidal code ``(K*J*I, dim)`` of voxel positions normalised to 0..1 per axis.

    Fixed rather than learned [chosen] so that windows of any size share one code.
    """
    per_axis = max(2, (dim // 6) * 2)
    freqs = torch.exp(torch.arange(0, per_axis, 2, device=device).float() * (-math.log(1000.0) / per_axis))
    grids = torch.meshgrid(*[torch.linspace(0, 1, s, device=device) for s in shape], indexing="ij")
    parts = []
    for g in grids:
        arg = g.reshape(-1, 1) * 2 * math.pi * freqs.reshape(1, -1) * 8
        parts += [arg.sin(), arg.cos()]
    code = torch.cat(parts, dim=1)
    if code.shape[1] < dim:  # pad to width
        code = F.pad(code, (0, dim - code.shape[1]))
    return code[:, :dim]


class DecoderBlock(nn.Module):
    """Cross-attention to one feature scale, self-attention among tokens, FFN; post-norm residuals."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float = 0.0):
        super().__init__()
        self.cross = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))

    def forward(self, tokens: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor) -> torch.Tensor:
        """tokens ``(B, N, C)``, memory ``(B, V, C)`` (flattened voxels) → tokens ``(B, N, C)``."""
        q = tokens + query_pos
        tokens = self.norms[0](tokens + self.cross(q, memory + memory_pos, memory, need_weights=False)[0])
        q = tokens + query_pos
        tokens = self.norms[1](tokens + self.self_attn(q, q, tokens, need_weights=False)[0])
        return self.norms[2](tokens + self.ffn(tokens))


class MaskTokenDecoder(nn.Module):
    """N learnable mask tokens refined by one :class:`DecoderBlock` per feature scale.

    Args:
        dim: token width C (F1..F3 are projected to C beforehand).
        num_tokens: N.
        num_blocks: number of blocks (= scales used, coarse → fine) [paper: 3].
        mask_dim: width of the F4 mask features the intermediate masks are computed with.
    """

    def __init__(self, dim: int, num_tokens: int, num_blocks: int, heads: int, ffn_dim: int, mask_dim: int, dropout: float = 0.0):
        super().__init__()
        self.tokens = nn.Embedding(num_tokens, dim)
        self.query_pos = nn.Embedding(num_tokens, dim)
        self.level_embed = nn.Embedding(num_blocks, dim)
        self.blocks = nn.ModuleList(DecoderBlock(dim, heads, ffn_dim, dropout) for _ in range(num_blocks))
        self.out_norm = nn.LayerNorm(dim)
        # shared token → mask-embedding MLP, as Mask2Former's mask_embed
        self.mask_embed = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, mask_dim))

    def mask_logits(self, tokens: torch.Tensor, mask_features: torch.Tensor) -> torch.Tensor:
        """Intermediate masks ``(B, N, K, J, I)`` = mask_embed(tokens) · F4 features."""
        emb = self.mask_embed(self.out_norm(tokens))
        return torch.einsum("bnc,bckji->bnkji", emb, mask_features)

    def forward(self, features: list[torch.Tensor], mask_features: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """features: F1..F3 ``(B, C, k, j, i)`` coarse → fine; mask_features: ``(B, mask_dim, K, J, I)``.

        Returns (tokens after each block ``[(B, N, C)]``, intermediate mask logits after each block).
        """
        b = mask_features.shape[0]
        tokens = self.tokens.weight.unsqueeze(0).expand(b, -1, -1)
        query_pos = self.query_pos.weight.unsqueeze(0).expand(b, -1, -1)
        all_tokens, all_masks = [], []
        for k, block in enumerate(self.blocks):
            feat = features[k % len(features)]
            memory = feat.flatten(2).transpose(1, 2)
            pos = sine_position_3d(tuple(feat.shape[2:]), feat.shape[1], feat.device).to(feat.dtype)
            pos = (pos + self.level_embed.weight[k]).unsqueeze(0)
            tokens = block(tokens, query_pos, memory, pos)
            all_tokens.append(tokens)
            all_masks.append(self.mask_logits(tokens, mask_features))
        return all_tokens, all_masks
