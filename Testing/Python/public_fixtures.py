"""Small folders in the exact published layouts of ReXGroundingCT and CVPR-BiomedSegFM (tests only).

ReXGroundingCT: ``dataset.json`` (train / val / test lists of name + findings), masks in
``segmentations/<name>`` as (F, H, W, D) NIfTI (SimpleITK array (D, W, H, F)), CT volumes in
CT-RATE's nested ``dataset/<split>_fixed/<patient>/<scan>/<name>``.
CVPR-BiomedSegFM: ``CVPR25_TextSegFMData_with_class.json``, training npz under
``3D_train_npz_random_10percent_16G/<modality>/<dataset>/``, validation ``3D_val_npz`` + ``3D_val_gt``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SHAPE = (16, 40, 48)  # K, J, I
REX_TEXTS = ("Nodule in the upper lobe of the left lung", "Consolidation in the lower lobe of the right lung")


def chest(rng: np.random.Generator) -> np.ndarray:
    """A small chest: soft-tissue body, two air-filled lungs (HU, KJI)."""
    hu = np.full(SHAPE, -1000, np.int16)
    hu[:, 4:36, 3:45] = 40
    hu[1:15, 8:32, 6:22] = -850
    hu[1:15, 8:32, 26:42] = -850
    return (hu + rng.normal(0, 10, SHAPE)).astype(np.int16)


def rex_masks(hu: np.ndarray, shift: int) -> np.ndarray:
    """Finding 0: a nodule in the left lung (high i on an identity grid), 2 entities; finding 1: the
    right lung's consolidation. Written into ``hu`` too. Returns (K, J, I, F) uint8."""
    masks = np.zeros(SHAPE + (2,), np.uint8)
    masks[3:7, 10 + shift:15 + shift, 32:37, 0] = 1
    masks[9:12, 22:26, 30:33, 0] = 2
    masks[8:13, 20:28, 9:16, 1] = 1
    hu[masks[..., 0] > 0] = 30
    hu[masks[..., 1] > 0] = -50
    return masks


def write_rex(root: Path, n_train: int = 3) -> Path:
    """A ReXGroundingCT folder with ``n_train`` training scans, one public-validation scan and one
    test scan (no mask, as published)."""
    rng = np.random.default_rng(0)
    meta: dict[str, list] = {"train": [], "val": [], "test": []}
    names = [("train", f"train_{i + 1}_a_1.nii.gz") for i in range(n_train)] + [("val", "valid_7_a_1.nii.gz"),
                                                                             ("test", "valid_9_b_2.nii.gz")]
    for n, (part, name) in enumerate(names):
        hu = chest(rng)
        masks = rex_masks(hu, shift=n % 3)
        split, patient, scan = name.split("_")[:3]
        folder = root / "dataset" / f"{'train' if split == 'train' else 'valid'}_fixed" / f"{split}_{patient}" / f"{split}_{patient}_{scan}"
        folder.mkdir(parents=True, exist_ok=True)
        img = sitk.GetImageFromArray(hu)
        img.SetSpacing((1.5, 1.5, 3.0))
        sitk.WriteImage(img, str(folder / name))
        if part != "test":
            (root / "segmentations").mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(sitk.GetImageFromArray(masks, isVector=False), str(root / "segmentations" / name))
        meta[part].append({"name": name, "findings": {"0": REX_TEXTS[0], "1": REX_TEXTS[1]},
                           "entity_counts": {"0": 2, "1": 1}, "shape": [SHAPE[2], SHAPE[1], SHAPE[0]],
                           "pixels": {str(f): int((masks[..., f] > 0).sum()) for f in range(2)},
                           "categories": {"0": "1a", "1": "2b"}, "protocol": "protocol1"})
    (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


SEGFM_PROMPTS = {
    "CT_LiverTumour": {"1": ["Liver tumour in abdominal CT", "hepatic tumour"], "instance_label": 0},
    "CT_LungNodules": {"1": ["Lung nodule in chest CT"], "instance_label": 1},
    "MR_BrainTumour": {"1": ["Brain tumour in MRI"], "instance_label": 0},
}


def _segfm_case(rng: np.random.Generator, instances: bool) -> tuple[np.ndarray, np.ndarray]:
    """imgs (D, H, W) uint8 0..255 and gts: one class-1 blob, or two instances 1 and 2."""
    hu = chest(rng).astype(np.float32)
    gts = np.zeros(SHAPE, np.uint8)
    gts[4:9, 12:18, 30:36] = 1
    gts[9:12, 20:25, 10:14] = 2 if instances else 0
    hu[gts > 0] = 60
    imgs = np.clip((hu + 160) / 400 * 255, 0, 255).astype(np.uint8)
    return imgs, gts


def write_segfm(root: Path, n_train: int = 3) -> Path:
    """A CVPR-BiomedSegFM folder: CT training npz of two datasets, one MR npz (skipped: not CT) and
    one validation case with its ground truth in ``3D_val_gt``."""
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    (root / "CVPR25_TextSegFMData_with_class.json").write_text(json.dumps(SEGFM_PROMPTS), encoding="utf-8")
    train = root / "3D_train_npz_random_10percent_16G"
    spacing = np.array([1.5, 1.5, 3.0])  # SimpleITK order (x, y, z)
    for i in range(n_train):
        dataset = "CT_LungNodules" if i % 2 else "CT_LiverTumour"
        imgs, gts = _segfm_case(rng, instances=bool(i % 2))
        folder = train / "CT" / dataset
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / f"{dataset}_{i:03d}.npz", imgs=imgs, gts=gts, spacing=spacing)
    mr = train / "MR" / "MR_BrainTumour"
    mr.mkdir(parents=True)
    imgs, gts = _segfm_case(rng, instances=False)
    np.savez_compressed(mr / "MR_BrainTumour_000.npz", imgs=imgs, gts=gts, spacing=spacing)
    for folder in ("3D_val_npz", "3D_val_gt"):
        (root / folder).mkdir()
    imgs, gts = _segfm_case(rng, instances=False)
    np.savez_compressed(root / "3D_val_npz" / "CT_LiverTumour_100.npz", imgs=imgs, spacing=spacing)
    np.savez_compressed(root / "3D_val_gt" / "CT_LiverTumour_100.npz", gts=gts, spacing=spacing)
    return root
