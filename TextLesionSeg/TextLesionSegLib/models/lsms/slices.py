"""Referring slice samples: one described lesion among several, on 2D slices of the working grid.

A *case* is a volume on the LSMS working grid (``pipeline.preprocess.to_working_grid``, the same
function inference uses, so train and test inputs match), its instance label map, and for each
lesion the sentences that describe it. A *sample* is (neighbouring slices, the mask of one lesion
on the centre slice, one of that lesion's sentences, and the mask of every lesion on that slice:
the target of the optional text-free objectness output). Slices where the described lesion is absent
but another lesion is present are sampled too, with an empty target: the model must learn to
answer "not here" as well as "this one". Optionally, slices with no lesion at all are sampled with
an empty target as well: inference runs over every slice of the body, and a model that has only
seen slices holding a lesion marks organs and vessels on the lesion-free ones.

Descriptions of lesions the scan does not hold (``ReferringCase.absent``: a lesion of the case
with its side, density, shape, size or organ changed, ``training.data.descriptions``) are paired
with slices that hold a lesion, with an empty target: "not found" is an answer the network must
learn to give, not one the threshold has to guess.

With ``position_channels`` every sample also carries the body-frame coordinates of its crop
(``pipeline.body_frame``), so a crop knows where in the patient it lies.

Left/right augmentation flips the I axis *and* swaps the words "left" and "right" in the
sentence, so text and anatomy stay consistent (the paper mirrors images instead; see the card);
the position channels flip with it (x -> -x of the mirrored patient).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

_LEFT_RIGHT = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def swap_left_right(text: str) -> str:
    """"left" <-> "right" (case kept), for left-right flip augmentation."""

    def repl(m: re.Match) -> str:
        word = m.group(0)
        new = "right" if word.lower() == "left" else "left"
        if word.isupper():
            return new.upper()
        return new.capitalize() if word[0].isupper() else new

    return _LEFT_RIGHT.sub(repl, text)


@dataclass
class ReferringCase:
    """A volume on the working grid with its lesions and their descriptions.

    Attributes:
        volume: (K, J, I) float32 in 0..1 (wide HU window).
        instances: (K, J, I) integer lesion ids (0 = background).
        sentences: lesion id -> sentences that describe it (at least one each).
        case_id: name for logs.
        absent: descriptions of lesions the case does not hold.
        body_level: the volume's body-vs-air value, for the body frame.
    """

    volume: np.ndarray
    instances: np.ndarray
    sentences: dict[int, list[str]]
    case_id: str = ""
    absent: list[str] = field(default_factory=list)
    body_level: float = 500.0 / 1400.0
    slices_of: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from ...pipeline.body_frame import body_frame

        for lesion in self.sentences:
            self.slices_of[lesion] = np.flatnonzero((self.instances == lesion).any(axis=(1, 2)))
        self.frame = body_frame(self.volume, self.body_level)


def slice_stack(volume: np.ndarray, k: int, context: int) -> np.ndarray:
    """Slices k-context..k+context of (K, J, I) as (2*context+1, J, I), edges repeated."""
    idx = np.clip(np.arange(k - context, k + context + 1), 0, volume.shape[0] - 1)
    return volume[idx]


def crop_or_pad(arrays: Sequence[np.ndarray], center_ji: tuple[int, int], size: int) -> list[np.ndarray]:
    """Crop (..., J, I) arrays to size x size around ``center_ji``, zero-padding past the edges."""
    out = []
    j0 = int(center_ji[0]) - size // 2
    i0 = int(center_ji[1]) - size // 2
    for a in arrays:
        pad = np.zeros(a.shape[:-2] + (size, size), dtype=a.dtype)
        js, is_ = max(j0, 0), max(i0, 0)
        je, ie = min(j0 + size, a.shape[-2]), min(i0 + size, a.shape[-1])
        if je > js and ie > is_:
            pad[..., js - j0 : je - j0, is_ - i0 : ie - i0] = a[..., js:je, is_:ie]
        out.append(pad)
    return out


class ReferringSliceDataset:
    """Map-style dataset of referring slice samples (torch ``Dataset`` protocol).

    Args:
        cases: the referring cases.
        context: neighbouring slices each side (``LSMSConfig.context_slices``).
        size: crop rows/columns (``LSMSConfig.slice_size``).
        train: random crops, flips, sentence choice; otherwise deterministic.
        negatives_per_lesion: slices without the described lesion (but with another) per lesion.
        background_per_lesion: slices without any lesion per lesion (train: drawn afresh from the
            case's lesion-free slices on every pass; otherwise fixed, spread over them).
        flip_probability: chance of the left-right flip + word swap (train only).
        absent_per_lesion: samples per lesion pairing one of its slices with a description of a
            lesion the case does not hold (empty target).
        position: add the body-frame position channels (``LSMSConfig.position_channels``).
        seed: base seed; train draws come from (seed, sample, call count), so every pass
            differs and a run is reproducible.
    """

    def __init__(self, cases: Sequence[ReferringCase], context: int, size: int, train: bool = True,
                 negatives_per_lesion: int = 2, flip_probability: float = 0.3, seed: int = 0,
                 background_per_lesion: int = 0, absent_per_lesion: int = 0, position: bool = False):
        self.cases = list(cases)
        self.context, self.size, self.train = context, size, train
        self.flip_probability = flip_probability
        self.position = position
        self.absent: set[int] = set()  # positions in self.index whose text names no lesion of the case
        self.seed = seed
        self.calls = 0
        self.index: list[tuple[int, int, int]] = []  # (case, lesion, k)
        #: case -> its lesion-free slices, for index entries whose slice is redrawn in training
        self.free_slices: dict[int, np.ndarray] = {}
        self.background: set[int] = set()  # positions in self.index that are lesion-free slices
        for c, case in enumerate(self.cases):
            with_lesion = (case.instances > 0).any(axis=(1, 2))
            any_lesion, free = np.flatnonzero(with_lesion), np.flatnonzero(~with_lesion)
            self.free_slices[c] = free
            for n_lesion, (lesion, ks) in enumerate(case.slices_of.items()):
                if free.size and background_per_lesion:
                    # fixed picks spread over the free slices, shifted per lesion so that the
                    # lesions of one case do not all get the same slices
                    step = free.size / background_per_lesion
                    for b in range(background_per_lesion):
                        self.background.add(len(self.index))
                        pick = int((b + (n_lesion + 1) / (len(case.slices_of) + 1)) * step) % free.size
                        self.index.append((c, lesion, int(free[pick])))
                self.index += [(c, lesion, int(k)) for k in ks]
                others = np.setdiff1d(any_lesion, ks)
                if others.size and negatives_per_lesion:
                    pick = np.linspace(0, others.size - 1, min(negatives_per_lesion, others.size)).round().astype(int)
                    self.index += [(c, lesion, int(others[p])) for p in pick]
                if case.absent and absent_per_lesion:
                    pick = np.linspace(0, ks.size - 1, min(absent_per_lesion, ks.size)).round().astype(int)
                    for p in pick:
                        self.absent.add(len(self.index))
                        self.index.append((c, lesion, int(ks[p])))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, n: int) -> dict[str, Any]:
        import torch

        c, lesion, k = self.index[n]
        case = self.cases[c]
        rng = None
        if self.train:
            self.calls += 1
            rng = np.random.default_rng((self.seed, n, self.calls))
            if n in self.background:
                k = int(rng.choice(self.free_slices[c]))
        stack = slice_stack(case.volume, k, self.context)
        absent = n in self.absent
        target = np.zeros(case.instances[k].shape, np.float32) if absent else \
            (case.instances[k] == lesion).astype(np.float32)
        sentences = case.absent if absent else case.sentences[lesion]
        text = sentences[int(rng.integers(len(sentences)))] if rng is not None else \
            sentences[n % len(sentences) if absent else 0]
        # Window placement must not give the lesion's position away (a model that learns "the
        # object in the middle of the crop" fails on whole slices): the whole slice is kept when
        # it fits, shifted at random; otherwise any window that contains the lesion is drawn.
        fg = np.argwhere(target > 0) if target.any() else np.argwhere(case.instances[k] > 0)
        start = []
        for axis in range(2):
            dim = target.shape[axis]
            if dim <= self.size:
                # deterministic: top-left, padded bottom/right exactly as LSMSModel.forward pads
                lo = hi = 0
                if rng is not None:
                    lo, hi = dim - self.size, 0
            else:
                lo, hi = 0, dim - self.size
                if fg.size:
                    lo = min(max(0, int(fg[:, axis].max()) + 1 - self.size), hi)
                    hi = max(min(hi, int(fg[:, axis].min())), lo)
            start.append(int(rng.integers(lo, hi + 1)) if rng is not None else (lo + hi) // 2)
        center = (start[0] + self.size // 2, start[1] + self.size // 2)
        lesions = (case.instances[k] > 0).astype(np.float32)  # every lesion: the objectness target
        stack, target, lesions = crop_or_pad([stack, target, lesions], center, self.size)
        position = case.frame.slice_channels(k, (center[0] - self.size // 2, center[1] - self.size // 2),
                                             (self.size, self.size)) if self.position else None
        if rng is not None and rng.random() < self.flip_probability:
            stack, target, lesions = stack[..., ::-1], target[..., ::-1], lesions[..., ::-1]
            text = swap_left_right(text)
            if position is not None:  # the mirrored patient: x -> -x, seen mirrored
                position = position[..., ::-1] * np.array([-1.0, 1.0, 1.0], np.float32)[:, None, None]
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32)),
            "label": torch.from_numpy(np.ascontiguousarray(target[None], dtype=np.float32)),
            "text": text,
            "lesions": torch.from_numpy(np.ascontiguousarray(lesions[None], dtype=np.float32)),
        }
        if position is not None:
            sample["position"] = torch.from_numpy(np.ascontiguousarray(position, dtype=np.float32))
        return sample


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors, keep texts as a list."""
    import torch

    batch = {
        "image": torch.stack([s["image"] for s in samples]),
        "label": torch.stack([s["label"] for s in samples]),
        "text": [s["text"] for s in samples],
    }
    if "lesions" in samples[0]:
        batch["lesions"] = torch.stack([s["lesions"] for s in samples])
    if "position" in samples[0]:
        batch["position"] = torch.stack([s["position"] for s in samples])
    return batch
