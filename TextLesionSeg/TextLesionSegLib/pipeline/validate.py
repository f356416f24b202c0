"""Checks on an input image before any model runs: errors (InputError) or warnings (strings).

What is an error: nothing sensible can be computed (non-finite everywhere, constant image,
zero/negative spacing, fewer than 3 voxels along an axis, a direction matrix that is not a
rotation, not enough memory).
What is a warning: the run can go on but the user should know (a few NaN voxels, very thick
slices, a volume smaller than a patch, an image that is not CT when ``allow_non_ct``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..core.types import PreprocessingConfig
from ..errors import InputError, InsufficientMemoryError
from .geometry import Image
from .io import MIN_VOXELS_PER_AXIS, NEEDS_3D, UNKNOWN_MODALITIES

#: slices thicker than this (mm) get a warning: lesions of a few mm may be missed
THICK_SPACING_MM = 10.0
#: message every non-CT warning carries
NOT_CT = "the models were trained on CT"


@dataclass
class CtVerdict:
    """Whether an image looks like CT, and why."""

    looks_like_ct: bool
    reason: str


def ct_verdict(image: Image) -> CtVerdict:
    """CT plausibility from the modality tag if present, else from the HU distribution.

    CT in HU has air near -1000 and rarely anything above ~3500 (metal aside); MR and other
    images have no negative values or arbitrary scales. A modality that says nothing
    ("UNKNOWN": what ITK reports for a MetaImage without a Modality line) counts as absent, in every format.
    """
    modality = str(image.metadata.get("modality") or "").strip().upper().replace("MET_MOD_", "")
    if modality in UNKNOWN_MODALITIES:
        modality = ""
    if modality and modality != "CT":
        return CtVerdict(False, f"modality tag is {modality}")
    a = np.asarray(image.array)
    sample = a.ravel()[:: max(1, a.size // 1_000_000)].astype(np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return CtVerdict(False, "no finite voxels")
    p1, p99 = np.percentile(sample, [1, 99])
    lo = float(sample.min())
    if lo > -200:
        return CtVerdict(False, f"no air-like values (minimum {lo:.0f}; CT air is about -1000 HU)")
    if p1 > -300:
        return CtVerdict(False, f"too little air (1st percentile {p1:.0f}; CT air is about -1000 HU)")
    if p99 > 4000 or lo < -4000:
        return CtVerdict(False, f"values outside the HU range (1st..99th percentile {p1:.0f}..{p99:.0f})")
    if modality == "CT":
        return CtVerdict(True, "modality tag is CT")
    return CtVerdict(True, f"HU range plausible (1st..99th percentile {p1:.0f}..{p99:.0f})")


def check_geometry(image: Image) -> list[str]:
    """Spacing and direction checks: errors raised, warnings returned."""
    warnings: list[str] = []
    sp = np.asarray(image.spacing, dtype=float)
    if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise InputError(f"voxel spacing {tuple(float(s) for s in sp)} mm is zero, negative or not finite")
    if np.any(sp > THICK_SPACING_MM):
        warnings.append(f"voxel spacing {tuple(round(float(s), 3) for s in sp)} mm exceeds {THICK_SPACING_MM:g} mm: small lesions may be missed")
    d = np.asarray(image.direction, dtype=float)
    if not np.all(np.isfinite(d)):
        raise InputError("direction matrix is not finite")
    gram = d.T @ d
    if not np.allclose(gram, np.eye(3), atol=1e-3):
        raise InputError(
            "direction matrix is not orthonormal (sheared or scaled axes): "
            + np.array2string(d, precision=4, separator=",").replace("\n", "")
            + "; resample the image onto an orthogonal grid first"
        )
    return warnings


def check_values(image: Image) -> list[str]:
    """Voxel type, NaN/Inf and constant-image checks."""
    a = np.asarray(image.array)
    if a.dtype.kind not in "iuf":
        raise InputError(f"voxel type {a.dtype} is not a scalar number type")
    warnings: list[str] = []
    if a.dtype.kind == "f":
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad == a.size:
            raise InputError("every voxel is NaN or infinite")
        if bad:
            warnings.append(f"{bad} NaN/Inf voxels were treated as air (lowest window value)")
            a = a[np.isfinite(a)]
    if a.size == 0 or float(np.min(a)) == float(np.max(a)):
        raise InputError(f"image is constant (every voxel = {float(np.min(a)) if a.size else 'n/a'}); nothing to segment")
    return warnings


def available_memory_bytes() -> int:
    """Memory the OS reports as available (Linux /proc/meminfo), else a cautious 4 GiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def estimate_memory_bytes(image: Image, cfg: PreprocessingConfig, n_queries: int, low_memory: bool = False) -> int:
    """Peak host memory of one run, roughly: input copies, working grid, probability maps.

    Counted [chosen]: the input as float32 twice (cast + reorientation), the working volume
    four times (resampling, windowing, tensor, stitched output), and per query one working and
    one input-grid float32 map (one query at a time in low-memory mode), plus 1 GiB for the
    model and libraries.
    """
    n_in = int(np.prod(image.array.shape[:3]))
    extent = np.asarray(image.size_ijk) * np.asarray(image.spacing)
    sp = np.asarray(cfg.spacing if cfg.spacing is not None else image.spacing, dtype=float)
    n_work = int(np.prod(np.maximum(np.ceil(extent / sp), np.asarray(cfg.roi_size)[::-1])))
    q = 1 if low_memory else max(1, n_queries)
    return 4 * (2 * n_in + 4 * n_work + q * (n_work + n_in)) + (1 << 30)


def check_memory(image: Image, cfg: PreprocessingConfig, n_queries: int, low_memory: bool = False) -> str:
    """Raise InsufficientMemoryError when the estimate exceeds available memory; else a note."""
    need = estimate_memory_bytes(image, cfg, n_queries, low_memory)
    have = available_memory_bytes()
    gib = 1 << 30
    if need > have:
        hint = "" if low_memory else "; try --low-memory"
        raise InsufficientMemoryError(
            f"this run needs about {need / gib:.1f} GiB of memory but {have / gib:.1f} GiB is available{hint}"
        )
    return f"memory estimate {need / gib:.2f} GiB of {have / gib:.1f} GiB available"


def validate_image(
    image: Image,
    cfg: PreprocessingConfig | None = None,
    allow_non_ct: bool = False,
    n_queries: int = 1,
    low_memory: bool = False,
    check_mem: bool = True,
) -> list[str]:
    """All input checks; returns warnings, raises InputError / InsufficientMemoryError.

    A non-CT image is an InputError unless ``allow_non_ct`` (then a warning).
    """
    cfg = cfg or PreprocessingConfig()
    if image.array.ndim != 3:
        raise InputError(f"image array has {image.array.ndim} dimensions; a 3D volume is needed")
    if min(image.array.shape) < MIN_VOXELS_PER_AXIS:
        kind = "a 2D image" if 1 in image.array.shape else "too thin for a 3D CT"
        raise InputError(f"image is {kind} ({tuple(image.array.shape)} voxels, KJI); {NEEDS_3D}")
    warnings = check_geometry(image) + check_values(image)
    verdict = ct_verdict(image)
    if not verdict.looks_like_ct:
        msg = f"image does not look like CT ({verdict.reason}): {NOT_CT}"
        if not allow_non_ct:
            raise InputError(msg + "; use --allow-non-ct to continue anyway")
        warnings.append(msg + "; results may be meaningless")
    extent = np.asarray(image.size_ijk) * np.asarray(image.spacing)
    sp = np.asarray(cfg.spacing if cfg.spacing is not None else image.spacing, dtype=float)
    work = np.round(extent / sp)[::-1]
    if np.any(work < np.asarray(cfg.roi_size)):
        warnings.append(
            f"volume ({tuple(int(v) for v in work)} working voxels, KJI) is smaller than a patch "
            f"{tuple(cfg.roi_size)}: padded with air"
        )
    if check_mem:
        check_memory(image, cfg, n_queries, low_memory)
    return warnings
