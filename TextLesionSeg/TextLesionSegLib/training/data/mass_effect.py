"""Mass effect: a lesion that is "closely related" to a neighbour pushes it aside.

The host (HU and part labels) around the lesion is resampled along a radial displacement that
peaks at the lesion's border and fades to zero inside the lesion's box, so neighbouring
structures are bowed outward, as a growing mass deforms them. The map stays one-to-one (the
displacement's radial slope is well below 1) and changes nothing at the box faces.
"""

from __future__ import annotations

import numpy as np

from ...pipeline.geometry import Image

#: peak displacement as a fraction of the lesion radius [chosen: visible, not grotesque]
STRENGTH = 0.2


def push_aside(image: Image, box: tuple[slice, slice, slice], centre_lps: np.ndarray, radius_mm: float,
               hu_box: np.ndarray, parts_box: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warped copies of ``hu_box`` and ``parts_box``; voxels where ``keep`` is True are left as they were."""
    from scipy import ndimage

    start = np.array([s.start for s in box])
    kk, jj, ii = np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij")
    kji = np.stack([kk, jj, ii], axis=-1).astype(np.float64)
    lps = image.kji_to_lps(kji)
    d = lps - np.asarray(centre_lps, float)
    r = np.linalg.norm(d, axis=-1) + 1e-6
    half_mm = 0.5 * np.asarray(hu_box.shape) * np.asarray(image.spacing)[::-1]
    r_box = float(half_mm.min())
    u = STRENGTH * radius_mm * np.exp(-(((r - radius_mm) / (0.8 * radius_mm)) ** 2))
    u *= np.clip((r_box - r) / (0.35 * r_box), 0.0, 1.0)  # nothing moves at the box faces
    src = image.lps_to_kji(lps - (u / r)[..., None] * d) - start  # sample nearer the centre: tissue moves out
    coords = np.moveaxis(src, -1, 0)
    hu = ndimage.map_coordinates(hu_box, coords, order=1, mode="nearest").astype(np.float32)
    parts = ndimage.map_coordinates(parts_box, coords, order=0, mode="nearest").astype(parts_box.dtype)
    hu[keep] = hu_box[keep]
    parts[keep] = parts_box[keep]
    return hu, parts
