"""Image-only baseline: a MONAI 3D UNet that segments every lesion and ignores the text.

It is trained on the same data as the text-prompted models, with the union of all lesions as its
target. Because it cannot read, it answers every description with the same mask; its scores in
``textlesionseg evaluate`` (text sensitivity near chance on multi-lesion cases) show what the text
adds to Malenia, LSMS and CLIPSeg. [chosen] Not from a paper: a standard MONAI ``UNet``.

Trainer contract (``training.trainer``): :func:`build_model`, :func:`build_datasets`,
:func:`evaluate_batch`; the model has ``training_loss(batch)`` and ``save_pretrained`` /
``from_pretrained`` (safetensors + ``config.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..base import InferenceSettings, PreprocessingConfig, ProgressCallback
from ..weights_io import DictConfigSegmenter, DictConfigWeights
from . import SPEC

#: demo defaults; a training config overrides any key [chosen]
DEFAULT_CONFIG: dict[str, Any] = {
    "architecture": "unet",
    "channels": [8, 16, 32, 64],
    "strides": [2, 2, 2],
    "num_res_units": 1,
    "spacing": [1.5, 1.5, 1.5],
    "hu_window": [-175.0, 250.0],
    "roi_size": [64, 64, 64],
    "dice_weight": 1.0,
    "bce_weight": 1.0,
}


class UNetBaseline(DictConfigWeights, nn.Module):
    """MONAI ``UNet`` (1 input channel, 1 logit channel) with the project's save/load and loss."""

    train_hint = "textlesionseg train unet"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        from monai.losses import DiceCELoss
        from monai.networks.nets import UNet

        self.config = {**DEFAULT_CONFIG, **(config or {})}
        c = self.config
        self.net = UNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=1,
            channels=tuple(c["channels"]),
            strides=tuple(c["strides"]),
            num_res_units=int(c["num_res_units"]),
        )
        # one sigmoid channel: DiceCE with sigmoid=True keeps a non-zero BCE term on it (the
        # medvlsm pitfall was a CE term silently zero for a single output channel). batch=True:
        # one Dice over the batch, so lesion-free crops do not each demand an exactly empty output
        # (per-sample Dice of an empty crop is ~1 for any false positive, which drove the first
        # demo run to predict nothing)
        self.loss_fn = DiceCELoss(
            sigmoid=True, batch=True, lambda_dice=float(c["dice_weight"]), lambda_ce=float(c["bce_weight"])
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 1, D, H, W)`` for a batch of windowed volumes ``(B, 1, D, H, W)`` in 0..1."""
        return self.net(image)

    def training_loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """DiceCE loss of ``batch["image"]`` against ``batch["label"]`` (union of all lesions)."""
        logits = self(batch["image"])
        target = (batch["label"] > 0).to(logits.dtype)
        return {"loss": self.loss_fn(logits, target)}


# ---- trainer contract --------------------------------------------------------------------
def build_model(config: dict[str, Any]) -> UNetBaseline:
    """A fresh UNet baseline from a training config (missing keys take :data:`DEFAULT_CONFIG`)."""
    return UNetBaseline(config.get("model", config))


def build_datasets(config: dict[str, Any], data_dir: Path) -> tuple[Any, Any]:
    """(train, val) datasets of 3D crops with the union of lesions as label (see ``evaluation.training_data``)."""
    from ...evaluation.training_data import build_volume_datasets

    model_cfg = {**DEFAULT_CONFIG, **config.get("model", {})}
    return build_volume_datasets(config, Path(data_dir), _preprocessing(model_cfg))


def evaluate_batch(model: nn.Module, batch: dict[str, Any]) -> dict[str, float]:
    """Validation Dice of the thresholded prediction against the union of lesions."""
    with torch.no_grad():
        prob = torch.sigmoid(model(batch["image"]))
    pred = prob > 0.5
    ref = batch["label"] > 0
    inter = (pred & ref).sum().item()
    total = pred.sum().item() + ref.sum().item()
    return {"dice": 1.0 if total == 0 else 2.0 * inter / total}


def _preprocessing(cfg: dict[str, Any]) -> PreprocessingConfig:
    return PreprocessingConfig(
        spacing=tuple(cfg["spacing"]) if cfg.get("spacing") else None,
        hu_window=tuple(cfg["hu_window"]),
        roi_size=tuple(cfg["roi_size"]),
        crop_foreground=True,
    )


# ---- the pipeline's view -----------------------------------------------------------------
class UNetSegmenter(DictConfigSegmenter):
    """The UNet baseline behind the :class:`LesionSegmenter` seam: the same map for every query."""

    name = "unet"
    capabilities = SPEC.capabilities  # text too: it answers any text, the same way

    network_class = UNetBaseline
    preprocessing_for = staticmethod(_preprocessing)

    def predict(
        self,
        volume: torch.Tensor,
        queries: Sequence[Any],
        settings: InferenceSettings,
        progress: ProgressCallback | None = None,
    ) -> torch.Tensor:
        """Sliding-window probability of "any lesion", repeated once per query (the text is ignored)."""
        from monai.inferers import sliding_window_inference

        from ...pipeline.inference import sliding_window_batch

        if progress:
            progress("Segmenting (image-only UNet; text ignored)", 0.0)
        x = volume.to(self.device, torch.float32)
        use_amp = bool(settings.amp) and str(self.device).startswith("cuda")
        with torch.no_grad(), torch.autocast("cuda", enabled=use_amp):
            logits = sliding_window_inference(
                x,
                roi_size=tuple(self.preprocessing.roi_size),
                sw_batch_size=sliding_window_batch(settings, torch.device(self.device)),
                predictor=self.model,
                overlap=float(settings.overlap),
                mode="gaussian",
            )
        prob = torch.sigmoid(logits.float())[0, 0].cpu()
        if progress:
            progress("Segmenting (image-only UNet; text ignored)", 1.0)
        n = max(1, len(queries))
        return prob.unsqueeze(0).expand(n, *prob.shape).contiguous()

    def find_lesions(
        self, volume: torch.Tensor, settings: InferenceSettings, progress: ProgressCallback | None = None
    ) -> list[dict[str, Any]]:
        """Prompt-free mode: one entry holding every lesion the UNet found (it has no attributes)."""
        prob = self.predict(volume, [None], settings, progress)[0]
        return [{"probability": prob, "attributes": {}, "lesion_type": "lesion", "score": float(prob.max())}]
