"""The real chest CT bundled with slicerio (CTChest4) as a lesion host, lungs by thresholding.

CTChest4 (128x128x34, 3.05x3.05x10 mm, direction diag(-1, -1, 1)) is the one real chest CT
this project may train on; ``../shared/data/lung2`` is held out and never a host.

Lungs: air (< -400 HU) inside the body that does not touch the outside air, in pieces over
50 ml. Left/right: the patient's left is +x in LPS, so a lung voxel is "left" when its LPS x
(from the image geometry) is greater than the body's midline x. Lobes: the oblique and right
horizontal fissures approximated by planes relative to each lung's extent [chosen].
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ...pipeline.geometry import Image
from .hosts import Host, Part
from .phantom_chest import LLL, LUL, RLL, RML, RUL

SOFT, FAT, BONE, OTHER = 1, 2, 3, 4
PARTS: dict[int, Part] = {
    SOFT: Part("chest wall and mediastinal soft tissue", "chest wall"),
    FAT: Part("fat", "fat"),
    BONE: Part("bone", "bone"),
    OTHER: Part("other body tissue", "body"),
    LUL: Part("left lung upper lobe", "lung", "left", "upper lobe", True),
    LLL: Part("left lung lower lobe", "lung", "left", "lower lobe", True),
    RUL: Part("right lung upper lobe", "lung", "right", "upper lobe", True),
    RML: Part("right lung middle lobe", "lung", "right", "middle lobe", True),
    RLL: Part("right lung lower lobe", "lung", "right", "lower lobe", True),
}


def ctchest4_path() -> Path:
    """Path of slicerio's bundled CTChest4.nrrd."""
    import slicerio

    return Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"


def threshold_parts(image: Image) -> np.ndarray:
    """Part labels of a chest CT from HU thresholds (lungs split by side and lobe)."""
    from scipy import ndimage

    hu = image.array
    body = hu > -400
    lab, n = ndimage.label(body)
    if n == 0:
        raise ValueError("no body found in the chest CT")
    sizes = ndimage.sum(body, lab, index=np.arange(1, n + 1))
    body = lab == (1 + int(np.argmax(sizes)))
    filled = np.stack([ndimage.binary_fill_holes(s) for s in body])
    air = (hu < -400) & filled
    lab, n = ndimage.label(air)
    voxel_ml = float(np.prod(image.spacing)) / 1000.0
    sizes = ndimage.sum(air, lab, index=np.arange(1, n + 1)) * voxel_ml
    lung = np.isin(lab, 1 + np.flatnonzero(sizes > 50.0))
    parts = np.full(hu.shape, OTHER, np.uint8)
    parts[~filled] = 0
    parts[filled & (hu > -30) & (hu < 150)] = SOFT
    parts[filled & (hu <= -30) & (hu > -200)] = FAT
    parts[filled & (hu >= 200)] = BONE
    # physical coordinates of the voxels (axis-aligned or not: use the geometry module)
    kji = np.argwhere(lung)
    lps = image.kji_to_lps(kji)
    body_lps = image.kji_to_lps(np.argwhere(filled)[:: max(1, int(filled.sum() // 200000))])
    mid_x = float(np.median(body_lps[:, 0]))
    left = lps[:, 0] > mid_x  # LPS +x is the patient's left
    labels = np.empty(len(kji), np.uint8)
    for side_mask, upper, lower in ((left, LUL, LLL), (~left, RUL, RLL)):
        if not side_mask.any():
            continue
        p = lps[side_mask]
        z0 = p[:, 2].min() + 0.45 * np.ptp(p[:, 2])
        y0 = float(np.median(p[:, 1]))
        # oblique fissure: upper lobe is superior and anterior (-y in LPS)
        is_upper = (p[:, 2] - z0) - 0.9 * (p[:, 1] - y0) > 0
        lab_side = np.where(is_upper, upper, lower).astype(np.uint8)
        if upper == RUL:  # horizontal fissure: anterior part of the right upper lobe below it -> middle lobe
            z_h = p[:, 2].min() + 0.62 * np.ptp(p[:, 2])
            lab_side[is_upper & (p[:, 2] < z_h) & (p[:, 1] < y0)] = RML
        labels[side_mask] = lab_side
    parts[tuple(kji.T)] = labels
    return parts


@functools.lru_cache(maxsize=2)
def _load(resample_lung2like: bool) -> tuple[Image, np.ndarray]:
    """CTChest4 (optionally resampled to a 512x512, 0.74 mm, 5 mm-slice grid) and its parts."""
    import SimpleITK as sitk

    sitk_img = sitk.ReadImage(str(ctchest4_path()))
    image = Image.from_sitk(sitk_img, modality="CT", source="slicerio CTChest4")
    arr = np.maximum(image.array.astype(np.float32), -1024.0)  # -3024 padding outside the field of view
    image = image.with_array(arr)
    parts = threshold_parts(image)
    if not resample_lung2like:
        return image, parts
    spacing = (0.74, 0.74, 5.0)
    size = [512, 512, int(round(image.size_ijk[2] * image.spacing[2] / spacing[2]))]
    centre = image.kji_to_lps((np.asarray(image.array.shape) - 1) / 2.0)
    origin = centre - image.direction @ ((np.asarray(size) - 1) / 2.0 * np.asarray(spacing))
    ref = sitk.Image(size, sitk.sitkFloat32)
    ref.SetSpacing(spacing)
    ref.SetOrigin(tuple(origin))
    ref.SetDirection(tuple(image.direction.ravel()))
    hu = sitk.Resample(image.to_sitk(), ref, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkFloat32)
    lab = sitk.Resample(image.to_sitk(parts), ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    fine = Image.from_sitk(hu, modality="CT", source="slicerio CTChest4 resampled")
    return fine, sitk.GetArrayFromImage(lab)


def ctchest4_host(resample_lung2like: bool = False, rng: np.random.Generator | None = None) -> Host:
    """CTChest4 as a :class:`Host` (non-contrast); the resampled variant gets fresh fine noise."""
    image, parts = _load(resample_lung2like)
    arr = image.array.copy()
    if resample_lung2like and rng is not None:
        # linear upsampling smooths the 3 mm noise away; add scanner-like noise at the new grid
        arr += rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(12.0)
    soft = parts == SOFT
    soft_hu = float(np.median(arr[soft])) if soft.any() else 40.0
    return Host(name="ctchest4-lung2like" if resample_lung2like else "ctchest4",
                image=image.with_array(arr), parts=parts.copy(), part_table=dict(PARTS), phase="non-contrast",
                noise_sd=15.0, soft_tissue_hu=soft_hu,
                # resampled from 3.05 x 3.05 x 10 mm voxels: lesions get that blur too [chosen:
                # box of the old voxel (sigma = size / sqrt 12) plus about 1 mm of scanner blur]
                metadata={"psf_mm": (1.3, 1.3, 3.0)} if resample_lung2like else {})
