"""Scale-aware Vision-Language Attention (SVLA), the block of LSMS's language-guided encoder.

[paper] SVLA extracts visual features with diverse convolutional kernels (several receptive
fields) and aligns vision with language *in parallel*. [chosen] The convolutional branch is
SegNeXt's multi-scale convolutional attention (depth-wise 5x5, then strip convolutions
1xk / kx1 for k in 7, 11, 21, summed, mixed by a 1x1 conv and used as attention weights on the
input); the language branch is pixel-word cross-attention (queries = pixels, keys/values =
word features, padding tokens masked out); the two are fused by a learned sigmoid gate:
``out = conv + gate(conv, lang) * lang``.
"""

from __future__ import annotations

import torch
from torch import nn


class ScaleAwareConv(nn.Module):
    """Multi-receptive-field conv attention: ``x * mix(dw5x5(x) + sum_k strip_k(dw5x5(x)))``."""

    def __init__(self, dim: int, square_kernel: int = 5, strip_kernels: tuple[int, ...] = (7, 11, 21)):
        super().__init__()
        self.square = nn.Conv2d(dim, dim, square_kernel, padding=square_kernel // 2, groups=dim)
        # Strip convolutions approximate a large k x k kernel at 2k cost: tall thin lesions and
        # wide flat ones are both caught (SegNeXt's argument).
        self.strips = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(dim, dim, (1, k), padding=(0, k // 2), groups=dim),
                nn.Conv2d(dim, dim, (k, 1), padding=(k // 2, 0), groups=dim),
            )
            for k in strip_kernels
        )
        self.mix = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        a = self.square(x)
        a = a + sum(strip(a) for strip in self.strips)
        return self.mix(a) * x


class PixelWordAttention(nn.Module):
    """Cross-attention from every pixel to the sentence's words, padding tokens masked."""

    def __init__(self, dim: int, text_dim: int, heads: int):
        super().__init__()
        self.norm_text = nn.LayerNorm(text_dim)
        self.attn = nn.MultiheadAttention(dim, heads, kdim=text_dim, vdim=text_dim, batch_first=True)

    def forward(self, x: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W), words (B, L, Dt), word_mask (B, L) True = real token -> (B, C, H, W)."""
        b, c, h, w = x.shape
        q = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        kv = self.norm_text(words)
        # key_padding_mask wants True where a key must be ignored; weights there are exactly 0,
        # so whatever the padded positions hold cannot reach the output.
        out, _ = self.attn(q, kv, kv, key_padding_mask=~word_mask.bool(), need_weights=False)
        return out.transpose(1, 2).reshape(b, c, h, w)


class SVLA(nn.Module):
    """Conv branch and language branch in parallel on the same input, gated fusion, projection."""

    def __init__(
        self,
        dim: int,
        text_dim: int,
        heads: int,
        square_kernel: int = 5,
        strip_kernels: tuple[int, ...] = (7, 11, 21),
    ):
        super().__init__()
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()
        self.conv_branch = ScaleAwareConv(dim, square_kernel, strip_kernels)
        self.lang_branch = PixelWordAttention(dim, text_dim, heads)
        self.gate = nn.Sequential(nn.Conv2d(2 * dim, dim, 1), nn.Sigmoid())
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> (B, C, H, W), conditioned on the words."""
        u = self.act(self.proj_in(x))
        visual = self.conv_branch(u)
        lang = self.lang_branch(u, words, word_mask)
        gate = self.gate(torch.cat([visual, lang], dim=1))
        return self.proj_out(visual + gate * lang)


class ConvFFN(nn.Module):
    """1x1 expand, depth-wise 3x3 (local position), GELU, 1x1 project (SegNeXt's MLP)."""

    def __init__(self, dim: int, ratio: int):
        super().__init__()
        hidden = dim * ratio
        self.net = nn.Sequential(
            nn.Conv2d(dim, hidden, 1),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return self.net(x)


class SVLABlock(nn.Module):
    """Pre-norm residual block: ``x + s1*SVLA(BN(x))``, then ``x + s2*FFN(BN(x))``."""

    def __init__(
        self,
        dim: int,
        text_dim: int,
        heads: int,
        mlp_ratio: int,
        square_kernel: int = 5,
        strip_kernels: tuple[int, ...] = (7, 11, 21),
    ):
        super().__init__()
        # GroupNorm(1, C) rather than BatchNorm: training batches here are tiny and slices of
        # one scan are strongly correlated, so batch statistics would be noise.
        self.norm1 = nn.GroupNorm(1, dim)
        self.svla = SVLA(dim, text_dim, heads, square_kernel, strip_kernels)
        self.norm2 = nn.GroupNorm(1, dim)
        self.ffn = ConvFFN(dim, mlp_ratio)
        # Layer scale (as SegNeXt): residual branches start small so deep stacks train stably.
        self.scale1 = nn.Parameter(torch.full((dim, 1, 1), 1e-2))
        self.scale2 = nn.Parameter(torch.full((dim, 1, 1), 1e-2))

    def forward(self, x: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        x = x + self.scale1 * self.svla(self.norm1(x), words, word_mask)
        return x + self.scale2 * self.ffn(self.norm2(x))


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, L, D) token features over the real tokens of ``mask`` (B, L) -> (B, D)."""
    m = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)


__all__ = ["SVLA", "SVLABlock", "ScaleAwareConv", "PixelWordAttention", "ConvFFN", "masked_mean"]
