"""The click-prompted network: CT window + positive-click map + negative-click map + previous mask
-> one lesion's logits, on a region around the clicks.

[paper] nnInteractive (Isensee et al. 2025): prompts enter as extra input channels next to the
image, the previous mask is an input too, and training simulates several correction rounds per
sample. [chosen] A MONAI ``UNet`` (16-128 channels, strided convolutions, 0.6 M parameters) on
48³ crops at 2 mm, so a CPU thread trains a few thousand steps in half an hour and answers a
click on a 96³ region well under a second; nnInteractive's residual encoder UNet at 1 mm and
192³ is far beyond a CPU demo.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...training.clicks import Click, click_maps, first_click, next_click, random_inner_click
from ..weights_io import DictConfigWeights

#: demo defaults; a training config's ``model`` section overrides any key [chosen]
DEFAULT_CONFIG: dict[str, Any] = {
    "architecture": "interactive",
    "channels": [16, 32, 64, 128],
    "strides": [2, 2, 2],
    "num_res_units": 1,
    "spacing": [2.0, 2.0, 2.0],
    "hu_window": [-175.0, 250.0],
    "crop_size": [48, 48, 48],      # training crops (KJI)
    "region_size": [64, 64, 64],    # inference region around the clicks (KJI), 128 mm at 2 mm
    "click_sigma": 2.0,
    "max_rounds": 3,                # simulated correction rounds per training sample: 0..max_rounds
    "prior_noise": 0.25,            # share of samples whose first round starts from a wrong mask
    "click_similarity": False,      # a 5th channel: each voxel's window value minus the clicked tissue's
}
#: input channels: CT window, positive clicks, negative clicks, previous mask (+ click similarity)
IN_CHANNELS = 4


def in_channels(config: dict[str, Any]) -> int:
    """Input channels of a model with ``config``: 4, or 5 with ``click_similarity``."""
    return IN_CHANNELS + int(bool(config.get("click_similarity", False)))


def build_input(image: torch.Tensor, clicks: list[list[Click]], prior: torch.Tensor | None,
                sigma: float, similarity: bool = False) -> torch.Tensor:
    """The network input ``(B, 4 or 5, D, H, W)`` from windowed images ``(B, 1, D, H, W)``, each
    sample's clicks and its previous mask ``(B, 1, D, H, W)`` (None: no mask yet); with
    ``similarity`` a 5th channel, :func:`click_similarity`."""
    shape = tuple(image.shape[2:])
    maps = np.stack([click_maps(shape, c, sigma) for c in clicks])
    maps_t = torch.from_numpy(maps).to(image.device, image.dtype)
    prior_t = torch.zeros_like(image) if prior is None else prior.to(image.dtype)
    parts = [image, maps_t, prior_t]
    if similarity:
        parts.append(click_similarity(image, clicks))
    return torch.cat(parts, dim=1)


def click_similarity(image: torch.Tensor, clicks: list[list[Click]]) -> torch.Tensor:
    """``(B, 1, D, H, W)``: each voxel's window value minus the median of the 3³ neighbourhoods of
    the sample's positive clicks (zeros without one) [chosen]. The clicked tissue's own value,
    given explicitly: a small CPU-trained network otherwise drew a click-sized blob whatever the
    lesion's extent (interactive-demo card, runs 1-2)."""
    out = torch.zeros_like(image)
    for b, sample in enumerate(clicks):
        values = [image[b, 0, max(k - 1, 0):k + 2, max(j - 1, 0):j + 2, max(i - 1, 0):i + 2].reshape(-1)
                  for (k, j, i), positive in ((c.kji, c.positive) for c in sample) if positive]
        if values:
            out[b] = image[b] - torch.cat(values).median()
    return out


class InteractiveNet(DictConfigWeights, nn.Module):
    """MONAI ``UNet`` with 4 input channels and 1 logit channel and its click-simulating training
    loss; saved and loaded as safetensors + ``config.json`` (:class:`..weights_io.DictConfigWeights`)."""

    train_hint = "textlesionseg train interactive"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        from monai.losses import DiceCELoss
        from monai.networks.nets import UNet

        self.config = {**DEFAULT_CONFIG, **(config or {})}
        c = self.config
        self.net = UNet(spatial_dims=3, in_channels=in_channels(c), out_channels=1, channels=tuple(c["channels"]),
                        strides=tuple(c["strides"]), num_res_units=int(c["num_res_units"]))
        # per-sample Dice: every crop holds its target lesion, so no sample asks for an empty output
        self.loss_fn = DiceCELoss(sigmoid=True)
        self.rng = np.random.default_rng(int(c.get("seed", 0)))

    def inputs(self, image: torch.Tensor, clicks: list[list[Click]], prior: torch.Tensor | None) -> torch.Tensor:
        """:func:`build_input` with this model's click encoding."""
        return build_input(image, clicks, prior, float(self.config["click_sigma"]),
                           bool(self.config.get("click_similarity", False)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 1, D, H, W)`` of the clicked lesion for inputs ``(B, 4 or 5, D, H, W)``."""
        return self.net(x)

    def simulate(self, image: torch.Tensor, target: np.ndarray, rounds: int,
                 random_first: bool = False) -> tuple[list[list[Click]], torch.Tensor | None]:
        """Clicks and previous mask after ``rounds`` simulated corrections (no gradient): a first
        click inside each target, then per round the model's answer and one corrective click."""
        clicks = [[random_inner_click(t, self.rng) if random_first else first_click(t)] for t in target]
        prior: torch.Tensor | None = None
        if self.training and self.rng.random() < float(self.config["prior_noise"]):
            prior = torch.from_numpy(_wrong_mask(target, self.rng)[:, None]).to(image.device, image.dtype)
        for _ in range(rounds):
            with torch.no_grad():
                pred = torch.sigmoid(self(self.inputs(image, clicks, prior))) > 0.5
            pred_np = pred[:, 0].cpu().numpy()
            for b in range(len(clicks)):
                click = next_click(pred_np[b], target[b])
                if click is not None:
                    clicks[b].append(click)
            prior = pred.to(image.dtype)
        return clicks, prior

    def training_loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """DiceCE of the clicked lesion after 0..``max_rounds`` simulated correction rounds."""
        image, label = batch["image"], batch["label"]
        target = (label[:, 0] > 0).cpu().numpy()
        rounds = int(self.rng.integers(0, int(self.config["max_rounds"]) + 1))
        clicks, prior = self.simulate(image, target, rounds, random_first=True)
        logits = self(self.inputs(image, clicks, prior))
        return {"loss": self.loss_fn(logits, (label > 0).to(logits.dtype))}


def _wrong_mask(target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible wrong previous mask per sample (shifted, grown or shrunk target), as another
    model's answer or a stale mask would be: the network must learn to let clicks overrule it."""
    from scipy.ndimage import binary_dilation, binary_erosion

    out = np.zeros(target.shape, np.float32)
    for b, t in enumerate(target):
        kind = int(rng.integers(3))
        if kind == 0:
            shifted = np.roll(t, tuple(int(v) for v in rng.integers(-5, 6, 3)), axis=(0, 1, 2))
        elif kind == 1:
            shifted = binary_dilation(t, iterations=int(rng.integers(2, 5)))
        else:
            shifted = binary_erosion(t, iterations=int(rng.integers(1, 3)))
        out[b] = shifted
    return out
