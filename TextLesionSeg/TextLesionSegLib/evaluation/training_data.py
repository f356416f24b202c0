"""Training samples for the two baselines, made with the engine's own preprocessing.

Each case is moved onto the model's working grid by ``pipeline.preprocess.to_working_grid``
(and its label by ``to_working_grid_label``), exactly as at inference, so train and test inputs
match. Two sample kinds:

* :class:`VolumeCropDataset` (UNet): 3D crops, label = union of every lesion (text-free).
* :class:`SliceTextDataset` (CLIPSeg): one axial slice, one lesion's description rendered with a
  P0-P9 template, label = *that lesion only* — other lesions on the slice are negatives, which is
  what can teach a slice model to follow the words.

Cases of the ``unseen`` split are never used for training; the last ``val_fraction`` of the
remaining cases is the validation set. Sampling is seeded (seed, index, draw count), so a run repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.types import PreprocessingConfig
from ..training.data.dataset import LesionRecord
from .cases import Case, load_cases

#: splits held out of every baseline's training (Malenia's zero-shot setting)
HELD_OUT_SPLITS = ("unseen", "test")


@dataclass
class PreparedCase:
    """One case on the working grid: image (K, J, I) float16 in 0..1, instance labels int16."""

    case_id: str
    image: np.ndarray
    labels: np.ndarray
    lesions: list[LesionRecord]


def prepare_case(case: Case, cfg: PreprocessingConfig) -> PreparedCase:
    """Read a case and move image and instance labels onto the working grid."""
    from ..pipeline.preprocess import to_working_grid, to_working_grid_label

    image, labels = case.load()
    tensor, grid = to_working_grid(image, cfg)
    lab = to_working_grid_label(image.with_array(labels.astype(np.int16)), grid)
    # float16 halves the cache; every value is in 0..1 where float16 keeps ~3 decimals
    return PreparedCase(case.case_id, tensor[0, 0].numpy().astype(np.float16), lab.astype(np.int16), case.lesions)


def data_section(config: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` section of a training config (the whole config when it has none)."""
    return dict(config.get("data") or {}) if "data" in config else dict(config)


def split_cases(config: dict[str, Any], data_dir: Path) -> tuple[list[Case], list[Case]]:
    """(train, val) cases of ``data_dir``: held-out splits removed, the last fraction kept for validation."""
    config = data_section(config)
    cases = [c for c in load_cases(data_dir, part="train") if c.split not in HELD_OUT_SPLITS]
    for c in cases:
        c.lesions = [l for l in c.lesions if l.split not in HELD_OUT_SPLITS]
    limit = int(config.get("max_cases", 0) or 0)
    if limit:
        cases = cases[:limit]
    n_val = max(1, int(round(len(cases) * float(config.get("val_fraction", 0.15))))) if len(cases) > 1 else 0
    return cases[: len(cases) - n_val], cases[len(cases) - n_val:]


def _crop_start(shape: Sequence[int], roi: Sequence[int], centre: Sequence[int] | None, rng: np.random.Generator) -> list[int]:
    start = []
    for size, r, c in zip(shape, roi, centre if centre is not None else [None] * 3):
        hi = max(0, size - r)
        if c is None:
            start.append(int(rng.integers(0, hi + 1)))
        else:
            jitter = int(rng.integers(-r // 4, r // 4 + 1))
            start.append(int(np.clip(c - r // 2 + jitter, 0, hi)))
    return start


def _rng(ds: Any, index: int) -> np.random.Generator:
    """Generator of one draw: training sets (``vary``) change every draw, validation sets never.

    Seeded by (seed, index, draw count), so a run with the same seed and order repeats exactly.
    """
    draw = 0
    if ds.vary:
        ds._draws += 1
        draw = ds._draws
    return np.random.default_rng([ds.seed, index, draw])


class VolumeCropDataset(Dataset):
    """Random 3D crops (``roi`` KJI) with the union of lesions as label; ``positive_fraction`` centred on a lesion."""

    def __init__(self, cases: list[PreparedCase], roi: Sequence[int], samples_per_case: int = 4,
                 positive_fraction: float = 0.67, seed: int = 0, vary: bool = True) -> None:
        self.cases, self.roi = cases, tuple(int(r) for r in roi)
        self.samples_per_case, self.positive_fraction, self.seed = samples_per_case, positive_fraction, seed
        self.vary = vary
        self._draws = 0

    def __len__(self) -> int:
        return len(self.cases) * self.samples_per_case

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = _rng(self, index)
        case = self.cases[index // self.samples_per_case]
        centre = None
        if case.labels.any() and rng.random() < self.positive_fraction:
            fg = np.argwhere(case.labels > 0)
            centre = fg[int(rng.integers(len(fg)))]
        s = _crop_start(case.image.shape, self.roi, centre, rng)
        sl = tuple(slice(a, a + r) for a, r in zip(s, self.roi))
        img = np.zeros(self.roi, np.float32)
        lab = np.zeros(self.roi, np.float32)
        crop_i, crop_l = case.image[sl], case.labels[sl]
        img[tuple(slice(0, n) for n in crop_i.shape)] = crop_i
        lab[tuple(slice(0, n) for n in crop_l.shape)] = crop_l > 0
        return {"image": torch.from_numpy(img)[None], "label": torch.from_numpy(lab)[None]}


class SliceTextDataset(Dataset):
    """(axial slice, one lesion's prompt, that lesion's mask) samples for a slice-wise text model.

    ``prompt_fn(lesion, k)`` renders template ``k`` (one of ``templates``) for a lesion; the
    template is drawn per sample from a seeded generator (deterministic, unlike medvlsm's test prompts).
    """

    def __init__(self, cases: list[PreparedCase], prompt_fn: Callable[[LesionRecord, int], str],
                 templates: Sequence[int], image_size: int, samples_per_lesion: int = 8,
                 negative_fraction: float = 0.15, seed: int = 0, vary: bool = True) -> None:
        self.cases, self.prompt_fn, self.templates = cases, prompt_fn, list(templates)
        self.image_size, self.negative_fraction, self.seed = int(image_size), negative_fraction, seed
        self.items = [(ci, les) for ci, c in enumerate(cases) for les in c.lesions
                      if (c.labels == les.lesion_id).any()]
        self.samples_per_lesion = samples_per_lesion
        self.vary = vary
        self._draws = 0

    def __len__(self) -> int:
        return len(self.items) * self.samples_per_lesion

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = _rng(self, index)
        ci, lesion = self.items[index // self.samples_per_lesion]
        case = self.cases[ci]
        own = case.labels == lesion.lesion_id
        ks = np.flatnonzero(own.any(axis=(1, 2)))
        if rng.random() < self.negative_fraction:
            # a slice without the described lesion: the right answer is an empty mask
            empty = np.flatnonzero(~own.any(axis=(1, 2)))
            k = int(rng.choice(empty)) if empty.size else int(rng.choice(ks))
        else:
            k = int(rng.choice(ks))
        text = self.prompt_fn(lesion, int(rng.choice(self.templates)))
        image = resize_slice(torch.from_numpy(case.image[k].astype(np.float32)), self.image_size)
        label = resize_slice(torch.from_numpy(own[k].astype(np.float32)), self.image_size, nearest=True)
        return {"image": image[None], "text": text, "label": label[None]}


def resize_slice(slice_2d: torch.Tensor, size: int, nearest: bool = False) -> torch.Tensor:
    """Pad a (J, I) slice to a centred square (zeros = air/background), then resize to (size, size).

    Padding first keeps the aspect ratio (medvlsm stretches every image to 352x352, which distorts
    lesion shape on non-square CT fields of view); :func:`unresize_slice` undoes both steps.
    """
    x = slice_2d.float()
    j, i = x.shape[-2:]
    n = max(j, i)
    top, left = (n - j) // 2, (n - i) // 2
    x = torch.nn.functional.pad(x, (left, n - i - left, top, n - j - top))
    x = x.reshape(-1, 1, n, n)
    mode = "nearest" if nearest else "bilinear"
    kwargs = {} if nearest else {"align_corners": False}
    out = torch.nn.functional.interpolate(x, size=(size, size), mode=mode, **kwargs)
    return out.reshape(*slice_2d.shape[:-2], size, size)


def unresize_slice(square: torch.Tensor, shape_ji: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`resize_slice` for maps ``(..., size, size)`` -> ``(..., J, I)`` (bilinear)."""
    j, i = shape_ji
    n = max(j, i)
    x = square.float().reshape(-1, 1, *square.shape[-2:])
    x = torch.nn.functional.interpolate(x, size=(n, n), mode="bilinear", align_corners=False)
    top, left = (n - j) // 2, (n - i) // 2
    x = x[..., top:top + j, left:left + i]
    return x.reshape(*square.shape[:-2], j, i)


def prepare_all(cases: list[Case], cfg: PreprocessingConfig) -> list[PreparedCase]:
    """Prepare every case (progress on stderr through tqdm)."""
    from tqdm import tqdm

    return [prepare_case(c, cfg) for c in tqdm(cases, desc="preparing cases", leave=False)]


def build_volume_datasets(config: dict[str, Any], data_dir: Path, cfg: PreprocessingConfig) -> tuple[Dataset, Dataset]:
    """(train, val) :class:`VolumeCropDataset` for the UNet baseline."""
    train_cases, val_cases = split_cases(config, data_dir)
    data = data_section(config)
    seed = int(data.get("seed", 0))
    spc = int(data.get("samples_per_case", 4))
    return (VolumeCropDataset(prepare_all(train_cases, cfg), cfg.roi_size, spc, seed=seed),
            VolumeCropDataset(prepare_all(val_cases, cfg), cfg.roi_size, 2, seed=seed + 1, vary=False))


def build_slice_datasets(config: dict[str, Any], data_dir: Path, cfg: PreprocessingConfig,
                         prompt_fn: Callable[[LesionRecord, int], str], templates: Sequence[int],
                         image_size: int) -> tuple[Dataset, Dataset]:
    """(train, val) :class:`SliceTextDataset` for the CLIPSeg baseline (validation uses one fixed template)."""
    train_cases, val_cases = split_cases(config, data_dir)
    data = data_section(config)
    seed = int(data.get("seed", 0))
    spl = int(data.get("samples_per_lesion", 8))
    neg = float(data.get("negative_fraction", 0.15))
    val_template = [int(data.get("eval_template", templates[-1]))]
    return (SliceTextDataset(prepare_all(train_cases, cfg), prompt_fn, templates, image_size, spl, neg, seed=seed),
            SliceTextDataset(prepare_all(val_cases, cfg), prompt_fn, val_template, image_size, 2, neg,
                             seed=seed + 1, vary=False))
