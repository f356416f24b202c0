"""3D image encoder-decoders giving Malenia's feature pyramid F1, F2, F3 (coarse → fine) and F4.

Two options through one config [chosen]: MONAI's SwinUNETR (feature size 48, ZePT's backbone) for
the full model, and a small residual CNN U-Net for CPU demos and tests. Both return raw features;
the model projects them to its token width.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import MaleniaConfig


class SwinUNETRBackbone(nn.Module):
    """MONAI SwinUNETR without its output head, exposing its decoder stages.

    For a 96³ input and feature size f: F1 = decoder at 1/16 (8f ch), F2 at 1/8 (4f), F3 at 1/4 (2f),
    F4 = full resolution (f). Input sides must be divisible by 32.
    """

    def __init__(self, in_channels: int = 1, feature_size: int = 48):
        super().__init__()
        from monai.networks.nets import SwinUNETR

        self.net = SwinUNETR(in_channels=in_channels, out_channels=1, feature_size=feature_size)
        self.net.out = nn.Identity()  # the 1-class head is not part of Malenia
        f = feature_size
        self.out_channels = (8 * f, 4 * f, 2 * f, f)
        self.divisor = 32

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = self.net
        hidden = n.swinViT(x, n.normalize)
        enc0 = n.encoder1(x)
        enc1 = n.encoder2(hidden[0])
        enc2 = n.encoder3(hidden[1])
        enc3 = n.encoder4(hidden[2])
        d16 = n.decoder5(n.encoder10(hidden[4]), hidden[3])
        d8 = n.decoder4(d16, enc3)
        d4 = n.decoder3(d8, enc2)
        d2 = n.decoder2(d4, enc1)
        d1 = n.decoder1(d2, enc0)
        return [d16, d8, d4, d1]


class CNNBackbone(nn.Module):
    """A small residual 3D U-Net (MONAI ``UnetResBlock``/``UnetUpBlock``), 3 down-samplings.

    ``channels`` (c0, c1, c2, c3) finest first: F1 = bottleneck at 1/8 (c3), F2 at 1/4 (c2),
    F3 at 1/2 (c1), F4 at full resolution (c0) (all halved again with ``stem_stride=2``).
    """

    def __init__(self, in_channels: int = 1, channels: tuple[int, ...] = (16, 32, 64, 128), stem_stride: int = 1):
        super().__init__()
        from monai.networks.blocks.dynunet_block import UnetResBlock, UnetUpBlock

        if len(channels) != 4:
            raise ValueError("cnn_channels needs 4 widths (full, 1/2, 1/4, 1/8 resolution)")
        c = list(channels)
        norm = ("instance", {"affine": True})
        # stem_stride 2 puts F4 at half resolution (masks are upsampled): ~8x cheaper on a CPU [chosen]
        self.stem = UnetResBlock(3, in_channels, c[0], kernel_size=3, stride=stem_stride, norm_name=norm)
        self.down = nn.ModuleList(
            UnetResBlock(3, c[i], c[i + 1], kernel_size=3, stride=2, norm_name=norm) for i in range(3)
        )
        self.up = nn.ModuleList(
            UnetUpBlock(3, c[i + 1], c[i], kernel_size=3, stride=1, upsample_kernel_size=2, norm_name=norm)
            for i in reversed(range(3))
        )
        self.out_channels = (c[3], c[2], c[1], c[0])
        self.divisor = 8 * stem_stride

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        feats = [skips[-1]]
        for i, block in enumerate(self.up):
            feats.append(block(feats[-1], skips[-2 - i]))
        return feats  # [1/8, 1/4, 1/2, 1/1]


def build_backbone(cfg: MaleniaConfig) -> nn.Module:
    """The backbone named by ``cfg.backbone``."""
    if cfg.backbone == "swinunetr":
        return SwinUNETRBackbone(cfg.input_channels, cfg.feature_size)
    if cfg.backbone == "cnn":
        return CNNBackbone(cfg.input_channels, tuple(cfg.cnn_channels), int(cfg.cnn_stem_stride))
    raise ValueError(f"unknown Malenia backbone '{cfg.backbone}' (use 'swinunetr' or 'cnn')")
