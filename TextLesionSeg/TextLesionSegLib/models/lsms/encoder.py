"""Vision embedding block and the 4-stage language-guided vision encoder of LSMS.

[paper] The image goes through a vision embedding block (visual feature V1); a 4-stage
language-guided encoder whose blocks hold SVLA outputs multimodal features F1..F4.
[chosen] The embedding block is SegNeXt's stem (two stride-2 3x3 convolutions: stride 4);
each later stage starts with a stride-2 3x3 convolution, so F1..F4 sit at strides 4, 8, 16, 32.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import LSMSConfig
from .svla import SVLABlock


class VisionEmbedding(nn.Module):
    """Slices (B, C_in, H, W) -> V1 (B, C1, H/4, W/4)."""

    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, dim // 2, 3, stride=2, padding=1),
            nn.GroupNorm(1, dim // 2),
            nn.GELU(),
            nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1),
            nn.GroupNorm(1, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C1, H/4, W/4)."""
        return self.net(x)


class EncoderStage(nn.Module):
    """Optional stride-2 downsampling, then ``depth`` SVLA blocks conditioned on the words."""

    def __init__(self, in_dim: int, dim: int, depth: int, text_dim: int, heads: int, mlp_ratio: int,
                 square_kernel: int, strip_kernels: tuple[int, ...], downsample: bool):
        super().__init__()
        self.down = (
            nn.Sequential(nn.Conv2d(in_dim, dim, 3, stride=2, padding=1), nn.GroupNorm(1, dim))
            if downsample
            else nn.Identity()
        )
        self.blocks = nn.ModuleList(
            SVLABlock(dim, text_dim, heads, mlp_ratio, square_kernel, strip_kernels) for _ in range(depth)
        )
        self.norm = nn.GroupNorm(1, dim)

    def forward(self, x: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """(B, C_prev, H, W) -> (B, C, H', W')."""
        x = self.down(x)
        for block in self.blocks:
            x = block(x, words, word_mask)
        return self.norm(x)


class LanguageGuidedEncoder(nn.Module):
    """V1 and the words -> [F1, F2, F3, F4] at strides 4, 8, 16, 32."""

    def __init__(self, config: LSMSConfig, text_dim: int):
        super().__init__()
        dims = config.embed_dims
        self.embedding = VisionEmbedding(config.in_channels, dims[0])
        self.stages = nn.ModuleList(
            EncoderStage(
                in_dim=dims[max(s - 1, 0)],
                dim=dims[s],
                depth=config.depths[s],
                text_dim=text_dim,
                heads=config.attn_heads[s],
                mlp_ratio=config.mlp_ratios[s],
                square_kernel=config.square_kernel,
                strip_kernels=tuple(config.strip_kernels),
                downsample=s > 0,
            )
            for s in range(4)
        )

    def forward(self, image: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> list[torch.Tensor]:
        """image (B, C_in, H, W), words (B, L, Dt), word_mask (B, L) -> four feature maps."""
        x = self.embedding(image)
        features = []
        for stage in self.stages:
            x = stage(x, words, word_mask)
            features.append(x)
        return features
