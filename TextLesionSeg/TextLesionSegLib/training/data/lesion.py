"""One synthetic lesion: its 3D shape (soft weight and mask) and its HU texture.

The idea follows Hu et al., "Label-free liver tumor segmentation" (CVPR 2023): a lesion is
blended into healthy tissue, ``out = host * (1 - w) + lesion * w``, where the weight ``w``
is a shape (ellipsoid with a smooth radial modulation: gentle for round-like, lobulated and
spiculated for irregular) whose edge is sharp (well-defined: about one voxel of partial
volume) or wide and infiltrative (ill-defined). The lesion's own HU are its reference tissue
plus a density offset, texture and features (necrosis, calcification, cavitation, rim), and a
final constant shift makes the measured core mean hit the requested density exactly.

Everything is computed in a small box around the lesion, in physical millimetres from the
image geometry, so a lesion costs a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...pipeline.geometry import Image
from ...pipeline.lesion_measures import in_plane_core


@dataclass
class LesionShape:
    """Geometry of one lesion inside a box of the image.

    Attributes:
        box: index slices (K, J, I) of the box in the full image.
        weight: blend weight in 0..1 over the box (float32).
        mask: the lesion label over the box (weight >= 0.5, bool).
        depth_mm: approximate distance (mm) inside the boundary (negative outside).
        radial: normalised radius (0 at the centre, 1 at the boundary) over the box.
        edge_mm: width of the blended edge in mm.
    """

    box: tuple[slice, slice, slice]
    weight: np.ndarray
    mask: np.ndarray
    depth_mm: np.ndarray
    radial: np.ndarray
    edge_mm: float


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def _bumps(u: np.ndarray, rng: np.random.Generator, count: int, amp: tuple[float, float],
           width: tuple[float, float]) -> np.ndarray:
    """Sum of ``count`` radial bumps exp((u.v - 1) / w) at random directions v (u: (..., 3) unit)."""
    out = np.zeros(u.shape[:-1], np.float32)
    for _ in range(count):
        v = rng.standard_normal(3)
        v /= np.linalg.norm(v)
        a = rng.uniform(*amp) * (1 if rng.random() < 0.8 else -0.6)  # mostly lobes, a few indentations
        out += np.float32(a) * np.exp(((u @ v) - 1.0) / rng.uniform(*width)).astype(np.float32)
    return out


def make_shape(image: Image, center_lps: np.ndarray, size_mm: list[float], shape: str, surface: str,
               rng: np.random.Generator) -> LesionShape:
    """Build a lesion shape centred at ``center_lps`` with nominal diameters ``size_mm``."""
    from scipy import ndimage

    long_d, short_d = max(size_mm), min(size_mm)
    semi = np.array([long_d, short_d, rng.uniform(short_d, long_d)]) / 2.0
    if shape == "irregular":
        semi *= rng.uniform([1.0, 0.65, 0.7], [1.1, 0.85, 0.95])
    rot = _random_rotation(rng)
    spacing = np.asarray(image.spacing)  # I, J, K
    inplane = float(spacing[:2].mean())
    if surface == "ill-defined":
        # wide enough to look infiltrative (at least 2.5 voxels), capped at 8 mm so the core
        # (3 mm in) stays mostly lesion; the density shift is solved on that core anyway
        edge = max(float(np.clip(0.25 * long_d, 4.0, 8.0)), 2.5 * inplane)
    else:
        edge = 0.6 * inplane
    reach = semi.max() * (1.9 if shape == "irregular" else 1.2) + 2 * edge + spacing.max()
    center_kji = image.lps_to_kji(center_lps)
    half_kji = np.ceil(reach / spacing[::-1]).astype(int)
    lo = np.maximum(np.floor(center_kji).astype(int) - half_kji, 0)
    hi = np.minimum(np.floor(center_kji).astype(int) + half_kji + 2, image.array.shape[:3])
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    kk, jj, ii = np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij")
    lps = image.kji_to_lps(np.stack([kk, jj, ii], axis=-1).astype(np.float32))
    q = (lps - center_lps) @ rot  # lesion frame
    rho = np.linalg.norm(q, axis=-1) + 1e-6
    u = q / rho[..., None]
    rn = np.sqrt(((q / semi) ** 2).sum(-1))
    if shape == "round-like":
        mod = 1.0 + _bumps(u, rng, 3, (0.02, 0.05), (0.4, 0.8))
    else:
        # lobulated: several large lobes and clefts, and often spicules
        mod = 0.85 + _bumps(u, rng, int(rng.integers(5, 9)), (0.35, 0.7), (0.06, 0.15))
        if rng.random() < 0.6:
            mod += _bumps(u, rng, int(rng.integers(6, 12)), (0.3, 0.7), (0.006, 0.015))
        mod = np.maximum(mod, 0.45)
    s = rn / mod
    depth = (rho * (1.0 / np.maximum(s, 1e-3) - 1.0)).astype(np.float32)  # along the ray, mm
    depth = np.minimum(depth, 4 * semi.max())
    if surface == "ill-defined":
        # infiltrative edge: the boundary wanders by a smooth random amount
        wander = rng.standard_normal(depth.shape).astype(np.float32)
        smooth_mm = 2.5 if shape == "irregular" else 5.0  # round-like stays round: slower, smaller wander
        wander = ndimage.gaussian_filter(wander, sigma=np.maximum(smooth_mm / spacing[::-1], 0.7))
        wander /= max(float(wander.std()), 1e-6)
        depth = depth + wander * np.float32((0.35 if shape == "irregular" else 0.12) * edge)
    t = np.clip(0.5 + depth / np.float32(edge), 0.0, 1.0)
    weight = (t * t * (3 - 2 * t)).astype(np.float32) if surface == "ill-defined" else t.astype(np.float32)
    return LesionShape(box=box, weight=weight, mask=depth >= 0, depth_mm=depth, radial=s.astype(np.float32), edge_mm=edge)


def lesion_hu(shape: LesionShape, attrs: dict, host_box: np.ndarray, reference_hu: float, target_hu: float,
              lung: bool, phase: str, noise_sd: float, spacing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blend the lesion into ``host_box`` (HU over the box) and return the new HU box.

    ``target_hu`` is the mean the lesion core must measure (mixed lesions: the mean of their
    two components); features and texture are added around it and a final constant keeps the
    core mean (outside feature voxels) on target.
    """
    from scipy import ndimage

    from .grid import smooth_noise

    w = shape.weight
    s = shape.radial
    bshape = w.shape
    lesion = np.full(bshape, np.float32(target_hu), np.float32)
    feature = np.zeros(bshape, bool)
    vox = float(spacing.min())
    scale = max(2, int(round(4.0 / vox)))
    if attrs["density"] == "mixed":
        # two components: ground glass + solid in the lung, hypo + hyper elsewhere
        split = 0.8 * smooth_noise(rng, bshape, scale) + 2.0 * (0.8 - s)  # solid part (about half) tends to the centre
        lo, hi = (reference_hu - 450.0, reference_hu) if lung else (reference_hu - 55.0, reference_hu + 50.0)
        lesion = np.where(split > 0, np.float32(hi), np.float32(lo)).astype(np.float32)
        lesion = ndimage.gaussian_filter(lesion, sigma=0.6)
    if attrs["density_variation"] == "heterogeneous":
        lesion += np.float32(rng.uniform(20, 30)) * smooth_noise(rng, bshape, scale)
    elif attrs["density"] == "isodense":
        # a thin hypodense capsule keeps an isodense lesion separable from its host
        capsule = (shape.depth_mm >= 0) & (shape.depth_mm < max(1.5, vox))
        lesion[capsule] -= 35.0
    feats = attrs.get("specific_features", [])
    core_inside = s < 1.0
    if "necrosis" in feats:
        nec = (s + 0.25 * smooth_noise(rng, bshape, scale) < 0.5) & core_inside
        lesion[nec] = np.minimum(lesion[nec], np.float32(min(target_hu, reference_hu) - 60.0))
        if lung:
            lesion[nec] = np.float32(reference_hu - 35.0)
    if "cavitation" in feats:
        cav = (s + 0.15 * smooth_noise(rng, bshape, scale) < 0.42) & core_inside
        lesion[cav] = -960.0
        feature |= cav
    if "calcification" in feats:
        pts = np.argwhere((s < 0.7) & core_inside)
        if len(pts):
            kk, jj, ii = np.indices(bshape, sparse=True)
            radius_vox = np.maximum(2.0 / spacing[::-1], 0.9)
            for p in pts[rng.choice(len(pts), size=min(len(pts), int(rng.integers(2, 5))), replace=False)]:
                d2 = ((kk - p[0]) / radius_vox[0]) ** 2 + ((jj - p[1]) / radius_vox[1]) ** 2 + ((ii - p[2]) / radius_vox[2]) ** 2
                calc = d2 <= 1.0
                lesion[calc] = np.float32(rng.uniform(450, 700))
                feature |= calc
    if "rim enhancement" in feats and phase == "contrast-enhanced":
        rim_w = max(2.0, 1.2 * float(spacing[:2].max()))
        rim = (shape.depth_mm >= -0.5 * rim_w) & (shape.depth_mm < rim_w)
        lesion[rim] = np.float32(max(reference_hu, target_hu) + rng.uniform(90, 120))
        feature |= rim
    lesion += rng.standard_normal(bshape).astype(np.float32) * np.float32(noise_sd)
    out = host_box * (1.0 - w) + lesion * w
    core = in_plane_core(shape.mask, tuple(spacing))
    plain = core & ~feature if (core & ~feature).sum() >= 8 else core
    # constant shift so the core (without feature voxels) measures the target exactly
    # (for a mixed lesion the target is the mean of its components, which is kept as drawn)
    if attrs["density"] != "mixed" and plain.any():
        shift = (target_hu - float(out[plain].mean())) / max(float(w[plain].mean()), 1e-3)
        out += np.float32(shift) * w * (~feature)
    return out.astype(np.float32)
