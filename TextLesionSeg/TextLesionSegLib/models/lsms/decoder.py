"""The Full-Scale Decoder (FSD) of LSMS.

[paper] A Position Alignment block resizes F1..F4 to one resolution while keeping their
channels (P1..P4); P2..P4 are modelled globally across scales for the final mask.
[chosen] The common resolution is F1's (stride 4). Global modelling: the tokens of P2, P3 and P4,
pooled to ``global_stride`` (their number is what costs), each projected to ``decoder_dim``
with a learned scale embedding and a 2D sine position code, go through transformer layers whose
self-attention spans all scales and all positions at once; the result is resized back and added
to each level. The four levels are concatenated, fused by convolutions into pixel features, and
a 1x1 convolution gives the mask logits; a second 1x1 convolution gives the pixel embeddings of
the vision-language contrastive loss. With ``objectness_weight`` > 0 a third 1x1 convolution gives
the logits of every lesion on the slice, whatever the words [chosen, issue 16]. A 1x1 projection commutes with bilinear resizing, so each
level is projected before it is enlarged: same result, a quarter of the memory.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import LSMSConfig


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average-pool down or bilinearly enlarge ``x`` (B, C, h, w) to ``size`` (rows, cols)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def sine_position_2d(h: int, w: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Fixed 2D sine/cosine position code (h*w, dim): half the channels rows, half columns."""
    quarter = max(dim // 4, 1)
    freq = torch.exp(torch.arange(quarter, device=device, dtype=torch.float32) * (-math.log(100.0) / quarter))
    # Token-index coordinates, not fractions of the slice: training crops and whole inference
    # slices differ in size, and "where" must mean the same in both (attention then reads
    # relative positions, e.g. which side of the body's middle a lesion lies on).
    ys = torch.arange(h, device=device, dtype=torch.float32)
    xs = torch.arange(w, device=device, dtype=torch.float32)
    py = torch.cat([torch.sin(ys[:, None] * freq), torch.cos(ys[:, None] * freq)], dim=1)
    px = torch.cat([torch.sin(xs[:, None] * freq), torch.cos(xs[:, None] * freq)], dim=1)
    code = torch.cat([py[:, None, :].expand(h, w, -1), px[None, :, :].expand(h, w, -1)], dim=-1)
    code = code.reshape(h * w, -1)
    if code.shape[1] < dim:
        code = F.pad(code, (0, dim - code.shape[1]))
    return code[:, :dim].to(dtype)


class GlobalCrossScale(nn.Module):
    """Self-attention over the concatenated tokens of P2..P4 (all scales, all positions)."""

    def __init__(self, in_dims: tuple[int, ...], dim: int, heads: int, layers: int):
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(c, dim) for c in in_dims)
        self.scale_embed = nn.Parameter(torch.zeros(len(in_dims), dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, levels: list[torch.Tensor], grid: tuple[int, int]) -> list[torch.Tensor]:
        """Levels (B, C_i, h_i, w_i) -> globally modelled maps (B, dim, *grid), one per level."""
        gh, gw = grid
        tokens = []
        for n, (level, proj) in enumerate(zip(levels, self.proj)):
            t = resize(level, grid).flatten(2).transpose(1, 2)  # (B, gh*gw, C_i)
            t = proj(t) + self.scale_embed[n]
            tokens.append(t + sine_position_2d(gh, gw, t.shape[-1], t.device, t.dtype))
        out = self.layers(torch.cat(tokens, dim=1))
        b, d = out.shape[0], out.shape[-1]
        return [chunk.transpose(1, 2).reshape(b, d, gh, gw) for chunk in out.split(gh * gw, dim=1)]


class FullScaleDecoder(nn.Module):
    """[F1, F2, F3, F4] -> mask logits at F1's resolution and pixel embeddings."""

    def __init__(self, config: LSMSConfig):
        super().__init__()
        dims, d = config.embed_dims, config.decoder_dim
        self.global_stride = config.global_stride
        # Position Alignment: per-level projection (applied before enlarging; see module doc).
        self.align = nn.ModuleList(nn.Conv2d(c, d, 1) for c in dims)
        self.cross_scale = GlobalCrossScale(tuple(dims[1:]), d, config.decoder_heads, config.decoder_layers)
        # the 3x3 fusion at stride 4 is most of the decoder's cost; "separable" splits it
        spatial = [nn.Conv2d(d, d, 3, padding=1)] if config.decoder_fuse == "conv" else \
            [nn.Conv2d(d, d, 3, padding=1, groups=d), nn.Conv2d(d, d, 1)]
        self.fuse = nn.Sequential(
            nn.Conv2d(4 * d, d, 1),
            nn.GroupNorm(1, d),
            nn.GELU(),
            *spatial,
            nn.GroupNorm(1, d),
            nn.GELU(),
        )
        self.mask_head = nn.Conv2d(d, 1, 1)
        self.embed_head = nn.Conv2d(d, config.embed_dim, 1)
        self.objectness_head = nn.Conv2d(d, 1, 1) if config.objectness_weight > 0 else None

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Returns (logits (B, 1, H/4, W/4), pixel embeddings (B, E, H/4, W/4), every-lesion logits
        (B, 1, H/4, W/4) or None when the config has no objectness output)."""
        size = tuple(features[0].shape[-2:])
        factor = max(self.global_stride // 4, 1)
        grid = (max(1, round(size[0] / factor)), max(1, round(size[1] / factor)))
        glob = self.cross_scale(features[1:], grid)
        levels = [self.align[0](features[0])]
        for n in range(1, 4):
            local = resize(self.align[n](features[n]), size)
            levels.append(local + resize(glob[n - 1], size))
        pixels = self.fuse(torch.cat(levels, dim=1))
        objectness = self.objectness_head(pixels) if self.objectness_head is not None else None
        return self.mask_head(pixels), self.embed_head(pixels), objectness
