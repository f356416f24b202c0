"""Malenia's hyper-parameters, serialised to ``config.json`` next to ``model.safetensors``.

Every value the paper leaves open is a field here with a stated default ([chosen] in the model card).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class MaleniaConfig:
    """All of Malenia's architecture, loss and inference settings.

    Attributes (selected):
        backbone: ``"swinunetr"`` (full model, MONAI SwinUNETR) or ``"cnn"`` (small CPU demo).
        feature_size: SwinUNETR feature size (48 as in ZePT) [chosen].
        cnn_channels: channel widths of the small CNN, finest first.
        hidden_dim: width C of tokens and projected features F1..F4.
        num_tokens: N learnable mask tokens.
        num_blocks: transformer decoder blocks, one per scale F1, F2, F3 [paper: 3].
        fusion_rounds: CMKI deep-fusion rounds [paper: 3].
        text_model / text_dim: frozen text encoder (hub id or folder) and its width.
        temperature_init: initial MP-NCE temperature, learnable [chosen: 0.07].
        w_*: loss weights; cost_*: Hungarian matching cost weights. ``w_attr`` [chosen, default 0 =
            the paper's loss]: an attribute-wise contrastive term, see ``training.losses.attribute_nce_loss``.
        component_keep_ratio: text-guided whole-volume choice (``pipeline.selection``): keep
            the 3D components whose score is at least this fraction of the best one's as well; 0
            or 1 keeps the best only [chosen: 0.9, by referring accuracy on a validation set].
        position_channels: feed the body-frame coordinates (``pipeline.body_frame``) as 3 more
            input channels, so a window knows where in the patient it lies [chosen, issue 16].
        attribute_heads: per-attribute classification heads on the tokens (:mod:`.heads`);
            with them text-guided inference chooses tokens by the heads against a "none" option
            [chosen, issue 16]. ``w_heads``: their cross-entropy weight.
        w_choice: weight of the token-choice cross-entropy over tokens + "none" for one
            description per window (right, elsewhere or absent) [chosen]; needs attribute_heads.
        w_text_seg: weight of CMKI trained on that description, an empty target when it names no
            lesion in the window [chosen].
        All four default off: the paper's model.
    """

    backbone: str = "swinunetr"
    in_channels: int = 1
    feature_size: int = 48
    cnn_channels: tuple[int, ...] = (16, 32, 64, 128)
    cnn_stem_stride: int = 1
    hidden_dim: int = 192
    mask_dim: int = 48
    num_tokens: int = 16
    num_heads: int = 8
    ffn_dim: int = 768
    num_blocks: int = 3
    fusion_rounds: int = 3
    dropout: float = 0.0
    text_model: str = "all-MiniLM-L6-v2"
    text_dim: int = 384
    num_attributes: int = 8
    temperature_init: float = 0.07
    roi_size: tuple[int, int, int] = (96, 96, 96)
    spacing: tuple[float, float, float] = (1.5, 1.5, 1.5)
    hu_window: tuple[float, float] = (-175.0, 250.0)
    # loss weights
    w_seg: float = 1.0
    w_deep: float = 0.5
    w_sim: float = 0.5
    w_obj: float = 1.0
    w_attr: float = 0.0
    # matching costs
    cost_dice: float = 1.0
    cost_bce: float = 1.0
    cost_align: float = 1.0
    cost_obj: float = 0.5
    match_size: int = 32
    # inference
    object_threshold: float = 0.5
    attribute_gate: bool = True
    component_keep_ratio: float = 0.9
    # issue 16 [chosen]; all off = the paper's model
    position_channels: bool = False
    attribute_heads: bool = False
    w_heads: float = 0.0
    w_choice: float = 0.0
    w_text_seg: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def input_channels(self) -> int:
        """Channels entering the backbone: the image (``in_channels``) plus 3 positions."""
        return self.in_channels + (3 if self.position_channels else 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary, with ``model_type`` so a folder says what it holds."""
        d = asdict(self)
        d["model_type"] = "malenia"
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MaleniaConfig":
        """Inverse of :meth:`to_dict`; unknown keys are kept in ``extra`` (newer files load)."""
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        for key in ("cnn_channels", "roi_size", "spacing", "hu_window"):
            if key in known and known[key] is not None:
                known[key] = tuple(known[key])
        cfg = cls(**known)
        cfg.extra.update({k: v for k, v in data.items() if k not in names and k != "model_type"})
        return cfg


def demo_config(**overrides: Any) -> MaleniaConfig:
    """The small CPU demo configuration (CNN backbone, narrow tokens)."""
    base = dict(backbone="cnn", cnn_channels=(16, 32, 64, 96), cnn_stem_stride=2, hidden_dim=96, mask_dim=32, num_tokens=8,
                num_heads=4, ffn_dim=192, roi_size=(64, 64, 64))
    base.update(overrides)
    return MaleniaConfig(**base)
