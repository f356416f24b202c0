"""Trainer contract of the click model (``training.trainer``): :func:`build_model`,
:func:`build_datasets`, :func:`evaluate_batch`.

Samples are one lesion each: a crop around it on the working grid (the engine's own
preprocessing, ``evaluation.training_data.prepare_case``), the label that lesion only, so the
other lesions in the crop are what negative clicks are for. Clicks are simulated inside the
model's loss (:meth:`.model.InteractiveNet.training_loss`), a new draw every step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...evaluation.training_data import PreparedCase, _rng, data_section, prepare_all, split_cases
from ..base import PreprocessingConfig
from .model import DEFAULT_CONFIG, InteractiveNet


def preprocessing_of(cfg: dict[str, Any]) -> PreprocessingConfig:
    """The working grid of a click-model config (also what the pipeline moves images onto)."""
    return PreprocessingConfig(spacing=tuple(cfg["spacing"]), hu_window=tuple(cfg["hu_window"]),
                               roi_size=tuple(cfg["region_size"]), crop_foreground=True)


class LesionCropDataset(Dataset):
    """One item per lesion: a ``crop`` (KJI) around it and its own mask; training draws (``vary``)
    move the lesion off centre by up to a quarter crop and flip axes, validation items never change."""

    def __init__(self, cases: list[PreparedCase], crop: Sequence[int], repeats: int = 1, seed: int = 0,
                 vary: bool = True) -> None:
        self.cases, self.crop, self.seed, self.vary = cases, tuple(int(c) for c in crop), seed, vary
        self.items = [(ci, int(v)) for ci, c in enumerate(cases) for v in np.unique(c.labels) if v > 0]
        self.repeats = max(1, int(repeats))
        self._draws = 0

    def __len__(self) -> int:
        return len(self.items) * self.repeats

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = _rng(self, index)
        ci, lesion = self.items[index % len(self.items)]
        case = self.cases[ci]
        own = case.labels == lesion
        voxels = np.argwhere(own)
        centre = np.round(voxels.mean(axis=0)).astype(int)
        if self.vary:
            start = lesion_crop_start(case.image.shape, self.crop, voxels.min(axis=0), voxels.max(axis=0) + 1, rng)
        else:
            start = [int(np.clip(c - r // 2, 0, max(0, s - r))) for c, r, s in zip(centre, self.crop, own.shape)]
        sl = tuple(slice(a, a + r) for a, r in zip(start, self.crop))
        img = np.zeros(self.crop, np.float32)
        lab = np.zeros(self.crop, np.float32)
        part_i, part_l = case.image[sl], own[sl]
        img[tuple(slice(0, n) for n in part_i.shape)] = part_i
        lab[tuple(slice(0, n) for n in part_l.shape)] = part_l
        if self.vary:
            for axis in range(3):
                if rng.random() < 0.5:
                    img, lab = np.flip(img, axis), np.flip(lab, axis)
        return {"image": torch.from_numpy(img.copy())[None], "label": torch.from_numpy(lab.copy())[None]}


def lesion_crop_start(shape: Sequence[int], crop: Sequence[int], lo: Sequence[int], hi: Sequence[int],
                      rng: np.random.Generator) -> list[int]:
    """KJI start of a training crop around a lesion whose box is ``[lo, hi)``: moved off centre by up
    to a quarter crop, but never so far that it cuts a lesion that fits the crop [chosen, session 8:
    a 60 mm lesion in a 96 mm crop was cut by the shift, which taught a large lesion's mask to end
    short of its edge]; a lesion larger than the crop keeps the plain quarter-crop shift."""
    start = []
    for s, r, a, b in zip(shape, crop, lo, hi):
        centred = (a + b) // 2 - r // 2
        low, high = centred - r // 4, centred + r // 4
        if b - a <= r:
            low, high = max(low, b - r), min(high, a)
        if low > high:
            low = high = centred
        start.append(int(np.clip(int(rng.integers(low, high + 1)), 0, max(0, s - r))))
    return start


def build_model(config: dict[str, Any]) -> InteractiveNet:
    """A fresh click model from a training config (missing keys take :data:`.model.DEFAULT_CONFIG`)."""
    return InteractiveNet(config.get("model", config))


def build_datasets(config: dict[str, Any], data_dir: Path) -> tuple[LesionCropDataset, LesionCropDataset]:
    """(train, val): lesion crops of the training cases; the last ``val_fraction`` of cases
    (``evaluation.training_data.split_cases``; held-out splits never enter) validate."""
    cfg = {**DEFAULT_CONFIG, **config.get("model", {})}
    data = data_section(config)
    train_cases, val_cases = split_cases(config, Path(data_dir))
    prep = preprocessing_of(cfg)
    seed = int((config.get("train") or {}).get("seed", 0))
    return (LesionCropDataset(prepare_all(train_cases, prep), cfg["crop_size"], int(data.get("repeats", 4)), seed),
            LesionCropDataset(prepare_all(val_cases, prep), cfg["crop_size"], 1, seed, vary=False))


def evaluate_batch(model: InteractiveNet, batch: dict[str, Any]) -> dict[str, float]:
    """Dice after 1 and after 3 simulated clicks (the protocol's clicks: centre, then errors)."""
    from ...training.clicks import dice

    target = (batch["label"][:, 0] > 0).cpu().numpy()
    out: dict[str, float] = {}
    for n_clicks in (1, 3):
        clicks, prior = model.simulate(batch["image"], target, n_clicks - 1)
        with torch.no_grad():
            pred = (torch.sigmoid(model(model.inputs(batch["image"], clicks, prior))) > 0.5)[:, 0].cpu().numpy()
        out["dice" if n_clicks == 1 else f"dice{n_clicks}"] = float(np.mean([dice(p, t) for p, t in zip(pred, target)]))
    return out
