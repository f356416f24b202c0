"""Procedural chest CT phantom: lungs (five lobes) with vessel and airway trees, mediastinum,
heart, great vessels, chest wall with ribs, spine, at realistic HU with noise and blur.

Patient LPS millimetres: +x = patient's left, +y = posterior, +z = superior. The left lung has
an upper and lower lobe, the right an upper, middle and lower lobe, separated by oblique and
horizontal fissure planes [chosen approximation of the real fissures].
"""

from __future__ import annotations

import numpy as np

from ...pipeline.geometry import Image
from .grid import Grid, paint_ellipsoid, paint_elliptic_cylinder, paint_tube
from .hosts import Host, Part, finish_ct

AIR, SUBCUT_FAT, MUSCLE, MED_FAT, BONE, MARROW, CSF = 0, 1, 2, 3, 4, 5, 6
AORTA, HEART, PULM_VESSEL, AIRWAY, AIRWAY_WALL, ESOPHAGUS, UPPER_ABDOMEN = 7, 8, 9, 10, 11, 17, 18
LUL, LLL, RUL, RML, RLL = 12, 13, 14, 15, 16

PARTS: dict[int, Part] = {
    SUBCUT_FAT: Part("subcutaneous fat", "fat"),
    MUSCLE: Part("chest wall muscle", "chest wall"),
    MED_FAT: Part("mediastinum", "mediastinum"),
    BONE: Part("ribs", "bone"),
    MARROW: Part("vertebral marrow", "bone"),
    CSF: Part("spinal canal", "spinal canal"),
    AORTA: Part("aorta", "aorta"),
    HEART: Part("heart", "heart"),
    PULM_VESSEL: Part("pulmonary vessels", "pulmonary vessels"),
    AIRWAY: Part("airway lumen", "airway"),
    AIRWAY_WALL: Part("airway wall", "airway"),
    ESOPHAGUS: Part("esophagus", "esophagus"),
    UPPER_ABDOMEN: Part("upper abdomen", "upper abdomen"),
    LUL: Part("left lung upper lobe", "lung", "left", "upper lobe", True),
    LLL: Part("left lung lower lobe", "lung", "left", "lower lobe", True),
    RUL: Part("right lung upper lobe", "lung", "right", "upper lobe", True),
    RML: Part("right lung middle lobe", "lung", "right", "middle lobe", True),
    RLL: Part("right lung lower lobe", "lung", "right", "lower lobe", True),
}

#: (contrast-enhanced, non-contrast) HU per label
HU: dict[int, tuple[float, float]] = {
    AIR: (-1000, -1000), SUBCUT_FAT: (-105, -105), MUSCLE: (55, 50), MED_FAT: (-95, -95),
    BONE: (700, 700), MARROW: (220, 220), CSF: (15, 15), AORTA: (220, 45), HEART: (170, 42),
    PULM_VESSEL: (190, 40), AIRWAY: (-990, -990), AIRWAY_WALL: (30, 30), ESOPHAGUS: (40, 38),
    UPPER_ABDOMEN: (100, 55), LUL: (-855, -855), LLL: (-840, -840), RUL: (-855, -855),
    RML: (-850, -850), RLL: (-840, -840),
}
LUNG = (LUL, LLL, RUL, RML, RLL)


def _branches(rng: np.random.Generator, start: np.ndarray, direction: np.ndarray, length: float,
              radius: float, depth: int, out: list) -> None:
    """Append (points, radius) of a random branching tree: each segment spawns 2-3 children."""
    end = start + direction * length
    out.append(([start, end], radius))
    if depth == 0:
        return
    for _ in range(int(rng.integers(2, 4))):
        d = direction + rng.normal(0, 0.55, 3)
        d /= np.linalg.norm(d)
        _branches(rng, end, d, length * rng.uniform(0.6, 0.8), radius * 0.68, depth - 1, out)


def chest_phantom(grid_image: Image, rng: np.random.Generator, phase: str = "non-contrast") -> Host:
    """Build one chest phantom on ``grid_image``'s grid (random anatomy from ``rng``)."""
    g = Grid.from_image(grid_image)
    lab = np.zeros(g.shape, np.uint8)
    s = float(rng.uniform(0.9, 1.08))
    zr = (-400.0, 400.0)
    bx, by = 165 * s, 118 * s
    paint_elliptic_cylinder(lab, g, SUBCUT_FAT, (0, 0), (bx, by), zr)
    fat = rng.uniform(8, 22) * s
    paint_elliptic_cylinder(lab, g, MUSCLE, (0, 0), (bx - fat, by - fat), zr)
    inner = (bx - fat - 14, by - fat - 14)
    paint_elliptic_cylinder(lab, g, MED_FAT, (0, 0), inner, zr)
    # ribs: thin bone bands hugging the inner chest wall every ~28 mm
    for z in np.arange(-140, 160, 28 * s):
        paint_elliptic_cylinder(lab, g, BONE, (0, 0), (inner[0] + 7, inner[1] + 7), (z, z + 9), only_on=(MUSCLE,))
    # below the diaphragm: upper abdomen (liver dome) so lungs end on soft tissue
    dome = -105 * s
    paint_ellipsoid(lab, g, UPPER_ABDOMEN, (-20, 0, dome - 80), (inner[0], inner[1], 110), 0, only_on=(MED_FAT,))
    # lungs, then mediastinum and heart carved out of them
    for side, label in ((1, LUL), (-1, RUL)):
        c = np.array([side * 78 * s, 12, 25]) + rng.normal(0, 4, 3)
        paint_ellipsoid(lab, g, label, c, np.array([64, 88, 135]) * s * rng.uniform(0.94, 1.06), 0, only_on=(MED_FAT,))
    paint_elliptic_cylinder(lab, g, MED_FAT, (0, -10), (26 * s, 80 * s), (-200, 200))
    paint_ellipsoid(lab, g, HEART, np.array([22, -30, -55]) * s, np.array([62, 50, 55]) * s, 30)
    paint_elliptic_cylinder(lab, g, BONE, (0, -by + fat + 8), (16, 7), zr, only_on=(MED_FAT, MUSCLE))  # sternum
    spine_y = 72 * s
    paint_elliptic_cylinder(lab, g, BONE, (0, spine_y), (20, 18), zr)
    paint_elliptic_cylinder(lab, g, MARROW, (0, spine_y), (17, 15), zr)
    paint_elliptic_cylinder(lab, g, BONE, (0, spine_y + 30), (10, 11), zr)
    paint_elliptic_cylinder(lab, g, CSF, (0, spine_y + 28), (7, 7), zr)
    paint_elliptic_cylinder(lab, g, ESOPHAGUS, (4, spine_y - 28), (8, 7), zr, only_on=(MED_FAT,))
    # aorta: ascending, arch, descending
    paint_tube(lab, g, AORTA, [(12, -25, -10), (10, -25, 70), (5, 10, 95), (-2 + 18, spine_y - 28, 70),
                               (18, spine_y - 28, -300)], 14 * s)
    # lobes: oblique fissure (upper/anterior part above the plane) and the right horizontal fissure
    kk, jj, ii = g.local((slice(None), slice(None), slice(None)))
    oblique = (kk - (-10 * s)) + 0.9 * (jj - 10) > 0  # True: upper-anterior side
    lower = ~oblique
    left_lung = lab == LUL
    lab[left_lung & lower] = LLL
    right_lung = lab == RUL
    horizontal = kk < 20 * s
    lab[right_lung & lower] = RLL
    lab[right_lung & oblique & horizontal & (jj < 10)] = RML
    # airways (air with a wall) and pulmonary vessels, painted only inside the lungs/mediastinum
    carina = np.array([0, 5, 55]) * s
    paint_tube(lab, g, AIRWAY, [(0, -5, 300), (0, -2, 120), carina], 9 * s, AIRWAY_WALL, 2.0,
               only_on=(MED_FAT, ESOPHAGUS))
    vessels: list = []
    airways: list = []
    for side in (1, -1):
        hilum = carina + np.array([side * 42, 5, -15]) * s
        paint_tube(lab, g, AIRWAY, [carina, hilum], 6 * s, AIRWAY_WALL, 1.5, only_on=(MED_FAT,) + LUNG)
        for d in ((side * 0.4, -0.2, 0.9), (side * 0.5, 0.2, -0.8), (side * 0.9, -0.5, -0.1),
                  (side * 0.6, 0.7, 0.2), (side * 0.5, -0.6, -0.5)):
            d = np.asarray(d) / np.linalg.norm(d)
            _branches(rng, hilum, d, 35 * s, 4.0, 2, airways)
            # vessels branch one generation further than airways
            _branches(rng, hilum + np.array([0, -8, -5]), d + rng.normal(0, 0.2, 3), 40 * s, 6.0, 3, vessels)
    for pts, r in airways:
        paint_tube(lab, g, AIRWAY, pts, max(r, 1.0), AIRWAY_WALL, max(0.25 * r, 0.8), only_on=LUNG)
    for pts, r in vessels:
        paint_tube(lab, g, PULM_VESSEL, pts, max(r, 1.0), only_on=LUNG + (MED_FAT,))
    column = 0 if phase == "contrast-enhanced" else 1
    table = {k: v[column] for k, v in HU.items()}
    noise_sd = float(rng.uniform(10, 22))
    hu = finish_ct(lab, table, grid_image, rng, noise_sd, texture_sd=8.0)
    return Host(name="chest", image=grid_image.with_array(hu, modality="CT", source="chest phantom"),
                parts=lab, part_table=dict(PARTS), phase=phase, noise_sd=noise_sd, soft_tissue_hu=table[MUSCLE])
