"""Training samples on the model's working grid, with MONAI crops and light augmentation.

The image goes through ``pipeline.preprocess.to_working_grid`` (the inference preprocessing:
LPS orientation, spacing, HU window to 0..1, body crop), and the instance label map through the
same :class:`WorkingGrid` with nearest-neighbour resampling, so training and inference see
identical grids and intensities. Crops are label-balanced (MONAI ``RandCropByPosNegLabeld``);
augmentation is intensity-only plus small rotations about the body axis: no flips, which would
contradict the left/right and upper/lower words of the reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ...core.types import PreprocessingConfig
from .dataset import LesionCase, LesionDataset

if TYPE_CHECKING:
    import torch


def to_working_arrays(case: LesionCase, cfg: PreprocessingConfig) -> dict[str, Any]:
    """Image ``(1, K, J, I)`` float32 in 0..1 and instance label ``(1, K, J, I)`` int32 on the
    working grid, with the case's lesion records (those still present after resampling)."""
    from ...pipeline.preprocess import to_working_grid

    tensor, grid = to_working_grid(case.image, cfg)
    label = grid.to_working_image(case.image.with_array(case.label.astype(np.int32)), nearest=True)
    present = set(np.unique(label).tolist()) - {0}
    return {"image": tensor[0].numpy(), "label": label[None].astype(np.int32), "case_id": case.case_id,
            "lesions": [l for l in case.lesions if l.lesion_id in present], "grid": grid}


def training_transforms(roi_size: Sequence[int], num_samples: int = 2, pos: float = 2.0, neg: float = 1.0,
                        augment: bool = True):
    """MONAI dictionary transforms on ``{"image", "label"}`` (channel-first, KJI).

    Label-balanced crops of ``roi_size`` (``pos``:``neg`` lesion-centred to background-centred),
    padded when the volume is smaller; then, if ``augment``, intensity scale/shift, Gaussian
    noise, and a rotation of up to 10 degrees about the superior axis.
    """
    from monai import transforms as T

    roi = tuple(int(r) for r in roi_size)
    steps: list[Any] = [
        T.SpatialPadd(keys=["image", "label"], spatial_size=roi, mode="constant"),
        T.RandCropByPosNegLabeld(keys=["image", "label"], label_key="label", spatial_size=roi, pos=pos, neg=neg,
                                 num_samples=num_samples, allow_smaller=False),
    ]
    if augment:
        steps += [
            T.RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
            T.RandShiftIntensityd(keys="image", offsets=0.05, prob=0.5),
            T.RandGaussianNoised(keys="image", std=0.02, prob=0.3),
            # axes of a KJI array: (K, J, I); rotate in the axial J-I plane only
            T.RandRotated(keys=["image", "label"], range_x=np.deg2rad(10), prob=0.3, mode=["bilinear", "nearest"],
                          padding_mode="zeros", keep_size=True),
        ]
    steps.append(T.EnsureTyped(keys=["image", "label"], track_meta=False))
    return T.Compose(steps)


def lesions_in_window(sample: dict[str, Any], min_voxels: int = 8) -> list[Any]:
    """The lesion records with at least ``min_voxels`` voxels inside a cropped sample."""
    label = np.asarray(sample["label"])
    counts = np.bincount(label.ravel().astype(np.int64))
    return [l for l in sample["lesions"] if l.lesion_id < len(counts) and counts[l.lesion_id] >= min_voxels]


class TrainingWindows:
    """A map-style dataset (usable with ``torch.utils.data.DataLoader``) of random training windows.

    Cases are preprocessed once (kept in memory on the working grid); each item is one
    label-balanced window ``{"image": (1,*roi), "label": (1,*roi) instances, "lesions": [...],
    "case_id"}``.
    """

    def __init__(self, dataset: LesionDataset, cfg: PreprocessingConfig, roi_size: Sequence[int],
                 samples_per_epoch: int = 100, augment: bool = True, seed: int = 0) -> None:
        self.cases = [to_working_arrays(c, cfg) for c in dataset]
        self.transform = training_transforms(roi_size, num_samples=1, augment=augment)
        self.transform.set_random_state(seed=seed)
        self.length = samples_per_epoch
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        case = self.cases[int(self.rng.integers(len(self.cases)))]
        out = self.transform({"image": case["image"], "label": case["label"]})
        sample = out[0] if isinstance(out, list) else out
        sample = {"image": sample["image"], "label": sample["label"].round().long(), "case_id": case["case_id"],
                  "lesions": case["lesions"]}
        sample["lesions"] = lesions_in_window(sample)
        return sample
