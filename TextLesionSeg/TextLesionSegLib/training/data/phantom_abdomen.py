"""Procedural abdominal CT phantom: body wall, fat, muscle, liver, kidneys, spleen, pancreas,
colon, vessels and spine at realistic HU, with texture, partial-volume blur and noise.

Anatomy is laid out in patient LPS millimetres (+x = patient's left, +y = posterior,
+z = superior) around the body centre, so it is correct on any grid and direction; each case
jitters sizes and positions. HU values: portal-venous phase or non-contrast [chosen, typical
textbook values].
"""

from __future__ import annotations

import numpy as np

from ...pipeline.geometry import Image
from .grid import Grid, paint_ellipsoid, paint_elliptic_cylinder, paint_tube
from .hosts import Host, Part, finish_ct

AIR, SUBCUT_FAT, MUSCLE, VISC_FAT, CORTEX_BONE, MARROW, CSF = 0, 1, 2, 3, 4, 5, 6
AORTA, IVC, LIVER_VESSEL = 7, 8, 9
LIVER_R, LIVER_L, SPLEEN, KIDNEY_L, KIDNEY_R = 10, 11, 12, 13, 14
PANC_HEAD, PANC_BODY, PANC_TAIL = 16, 17, 18
COLON_ASC, COLON_TRANS, COLON_DESC, COLON_SIG, COLON_LUMEN = 19, 20, 21, 22, 23
PSOAS_L, PSOAS_R, BOWEL, SINUS_L, SINUS_R = 24, 25, 26, 27, 28

PARTS: dict[int, Part] = {
    SUBCUT_FAT: Part("subcutaneous fat", "fat"),
    MUSCLE: Part("abdominal wall muscle", "muscle"),
    VISC_FAT: Part("visceral fat", "fat"),
    CORTEX_BONE: Part("cortical bone", "spine"),
    MARROW: Part("vertebral marrow", "spine"),
    CSF: Part("spinal canal", "spinal canal"),
    AORTA: Part("aorta", "aorta"),
    IVC: Part("inferior vena cava", "inferior vena cava"),
    LIVER_VESSEL: Part("hepatic vessels", "hepatic vessels"),
    LIVER_R: Part("liver right lobe", "liver", "right", "right lobe", True),
    LIVER_L: Part("liver left lobe", "liver", "left", "left lobe", True),
    SPLEEN: Part("spleen", "spleen", None, None, True),
    KIDNEY_L: Part("left kidney", "kidney", "left", None, True),
    KIDNEY_R: Part("right kidney", "kidney", "right", None, True),
    PANC_HEAD: Part("pancreatic head", "pancreas", None, "head", True),
    PANC_BODY: Part("pancreatic body", "pancreas", None, "body", True),
    PANC_TAIL: Part("pancreatic tail", "pancreas", None, "tail", True),
    COLON_ASC: Part("ascending colon", "colon", "right", "ascending colon", True),
    COLON_TRANS: Part("transverse colon", "colon", None, "transverse colon", True),
    COLON_DESC: Part("descending colon", "colon", "left", "descending colon", True),
    COLON_SIG: Part("sigmoid colon", "colon", "left", "sigmoid colon", True),
    COLON_LUMEN: Part("colon lumen", "colon"),
    PSOAS_L: Part("left psoas muscle", "psoas muscle", "left"),
    PSOAS_R: Part("right psoas muscle", "psoas muscle", "right"),
    BOWEL: Part("small bowel", "small bowel"),
    SINUS_L: Part("left renal sinus", "kidney", "left"),
    SINUS_R: Part("right renal sinus", "kidney", "right"),
}

#: (contrast-enhanced, non-contrast) HU per label
HU: dict[int, tuple[float, float]] = {
    AIR: (-1000, -1000), SUBCUT_FAT: (-105, -105), MUSCLE: (58, 52), VISC_FAT: (-95, -95),
    CORTEX_BONE: (650, 650), MARROW: (210, 210), CSF: (15, 15),
    AORTA: (185, 45), IVC: (150, 42), LIVER_VESSEL: (170, 40),
    LIVER_R: (108, 58), LIVER_L: (108, 58), SPLEEN: (118, 48),
    KIDNEY_L: (165, 33), KIDNEY_R: (165, 33),
    PANC_HEAD: (98, 44), PANC_BODY: (98, 44), PANC_TAIL: (98, 44),
    COLON_ASC: (80, 42), COLON_TRANS: (80, 42), COLON_DESC: (80, 42), COLON_SIG: (80, 42),
    COLON_LUMEN: (-850, -850), PSOAS_L: (58, 52), PSOAS_R: (58, 52), BOWEL: (35, 25),
    SINUS_L: (-80, -80), SINUS_R: (-80, -80),
}


def abdomen_phantom(grid_image: Image, rng: np.random.Generator, phase: str = "contrast-enhanced") -> Host:
    """Build one abdominal phantom on ``grid_image``'s grid (random anatomy from ``rng``)."""
    g = Grid.from_image(grid_image)
    lab = np.zeros(g.shape, np.uint8)
    s = float(rng.uniform(0.9, 1.08))  # body habitus
    j = lambda scale=6.0: rng.normal(0.0, scale, 3)  # noqa: E731 - position jitter in mm
    zr = (-400.0, 400.0)
    # body wall: skin-fat ellipse, muscle ring, visceral cavity
    bx, by = 160 * s, 118 * s
    paint_elliptic_cylinder(lab, g, SUBCUT_FAT, (0, 0), (bx, by), zr)
    fat = rng.uniform(12, 28) * s
    paint_elliptic_cylinder(lab, g, MUSCLE, (0, 0), (bx - fat, by - fat), zr)
    paint_elliptic_cylinder(lab, g, VISC_FAT, (0, -3), (bx - fat - 12, by - fat - 14), zr)
    cav = (VISC_FAT,)
    # spine, canal, paraspinal muscles, psoas
    spine_y = 62 * s
    paint_elliptic_cylinder(lab, g, MUSCLE, (-38, spine_y + 35), (30, 26), zr)
    paint_elliptic_cylinder(lab, g, MUSCLE, (38, spine_y + 35), (30, 26), zr)
    paint_elliptic_cylinder(lab, g, CORTEX_BONE, (0, spine_y), (21, 18), zr)
    paint_elliptic_cylinder(lab, g, MARROW, (0, spine_y), (18, 15), zr)
    paint_elliptic_cylinder(lab, g, CORTEX_BONE, (0, spine_y + 30), (10, 11), zr)
    paint_elliptic_cylinder(lab, g, CSF, (0, spine_y + 28), (7, 7), zr)
    for side, label in ((1, PSOAS_L), (-1, PSOAS_R)):
        paint_tube(lab, g, label, [(side * 28, spine_y - 5, 40), (side * 50, spine_y - 10, -160)], 17, only_on=cav)
    # great vessels
    paint_tube(lab, g, AORTA, [(14, spine_y - 32, 400), (14, spine_y - 32, -120), (30, spine_y - 30, -200)], 11)
    paint_tube(lab, g, IVC, [(-24, spine_y - 30, 400), (-24, spine_y - 30, -200)], 12)
    # liver: right lobe (patient right = -x) and left lobe, with vessels
    c = np.array([-70, -5, 70]) * s + j()
    paint_ellipsoid(lab, g, LIVER_R, c, np.array([72, 85, 78]) * s * rng.uniform(0.92, 1.1), -15, only_on=cav)
    c2 = np.array([12, -45, 85]) * s + j()
    paint_ellipsoid(lab, g, LIVER_L, c2, np.array([50, 32, 42]) * s * rng.uniform(0.9, 1.15), 10, only_on=cav)
    liver = (LIVER_R, LIVER_L)
    hilum = np.array([-30, 0, 60]) * s
    for _ in range(7):  # portal / hepatic branches: short tubes from the hilum
        end = hilum + rng.uniform([-85, -60, -30], [45, 45, 60]) * s
        paint_tube(lab, g, LIVER_VESSEL, [hilum, (hilum + end) / 2, end], rng.uniform(2.0, 5.0), only_on=liver)
    # spleen (patient left, posterior), kidneys
    paint_ellipsoid(lab, g, SPLEEN, np.array([92, 45, 80]) * s + j(), np.array([28, 48, 50]) * s, 35, only_on=cav)
    for side, label, sinus, z0 in ((1, KIDNEY_L, SINUS_L, 10), (-1, KIDNEY_R, SINUS_R, -5)):
        kc = np.array([side * 72, 40, z0]) * s + j(4)
        semi = np.array([33, 35, 56]) * s * rng.uniform(0.92, 1.1)
        paint_ellipsoid(lab, g, label, kc, semi, side * 25, only_on=cav + (MUSCLE, PSOAS_L, PSOAS_R))
        # renal sinus fat on the medial side (part of the kidney region, not of its parenchyma)
        paint_ellipsoid(lab, g, sinus, kc + np.array([-side * 16, -4, 0]), semi * [0.3, 0.35, 0.5], 0, only_on=(label,))
    # pancreas: head (right of the vessels), body, tail towards the spleen
    pj = j(4)
    head, neck = np.array([-30, 5, 22]) * s + pj, np.array([0, -15, 32]) * s + pj
    body, tail = np.array([35, -8, 40]) * s + pj, np.array([70, 22, 50]) * s + pj
    r = rng.uniform(11, 14) * s
    paint_tube(lab, g, PANC_HEAD, [head + [0, 0, -15], head, neck], r + 3, only_on=cav)
    paint_tube(lab, g, PANC_BODY, [neck, body], r, only_on=cav)
    paint_tube(lab, g, PANC_TAIL, [body, tail], r * 0.9, only_on=cav)
    # colon: wall + lumen along ascending, transverse, descending, sigmoid
    rc = rng.uniform(18, 24) * s
    segs = {
        COLON_ASC: [(-100, 5, -110), (-98, 0, -20), (-92, -15, 20)],
        COLON_TRANS: [(-92, -15, 20), (-40, -65, 10), (40, -65, 14), (95, -20, 30)],
        COLON_DESC: [(95, -20, 30), (104, 10, -30), (100, 10, -110)],
        COLON_SIG: [(100, 10, -110), (60, -30, -150), (10, -20, -170), (0, 20, -210)],
    }
    for label, pts in segs.items():
        pts = [np.asarray(p, float) * s + pj for p in pts]
        paint_tube(lab, g, COLON_LUMEN, pts, rc - 4, wall_label=label, wall_mm=4.0,
                   only_on=cav + (BOWEL,))
    # small bowel loops filling the central lower abdomen
    for _ in range(6):
        p0 = rng.uniform([-60, -70, -150], [60, -10, -10]) * s
        p1 = p0 + rng.uniform(-40, 40, 3)
        paint_tube(lab, g, BOWEL, [p0, p1], rng.uniform(10, 14), only_on=cav)
    column = 0 if phase == "contrast-enhanced" else 1
    table = {k: v[column] for k, v in HU.items()}
    noise_sd = float(rng.uniform(8, 16))
    hu = finish_ct(lab, table, grid_image, rng, noise_sd)
    return Host(name="abdomen", image=grid_image.with_array(hu, modality="CT", source="abdomen phantom"),
                parts=lab, part_table=dict(PARTS), phase=phase, noise_sd=noise_sd,
                soft_tissue_hu=table[MUSCLE])
