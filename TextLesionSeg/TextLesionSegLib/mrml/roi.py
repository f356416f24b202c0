"""Restrict a run to a markups ROI: crop the engine image, paste the answer back.

The engine needs no ROI option: the Slicer side sends only the voxels inside the ROI (a
smaller, faster and lighter job) and places the returned masks back on the full grid, so the
segments still live on the input volume's geometry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import InputError
from ..pipeline.geometry import Image
from ..pipeline.result import Result


def roi_corners_ras(roi_node: Any) -> np.ndarray:
    """The 8 corners (8, 3) of a markups ROI's world-RAS bounding box.

    ``GetRASBounds`` includes the ROI's own rotation and its parent transforms; for a rotated
    ROI the axis-aligned box is a little larger than the ROI, which only adds context.
    """
    bounds = [0.0] * 6
    roi_node.GetRASBounds(bounds)
    if bounds[0] > bounds[1]:
        raise InputError(f"ROI '{roi_node.GetName()}' is not placed; place it or clear the ROI selector")
    return np.array(
        [[x, y, z] for x in bounds[0:2] for y in bounds[2:4] for z in bounds[4:6]], dtype=float
    )


def crop_box(image: Image, corners_ras: np.ndarray) -> tuple[slice, slice, slice]:
    """KJI slices of ``image`` covering the box spanned by ``corners_ras`` (clipped)."""
    kji = image.ras_to_kji(corners_ras)
    low = np.maximum(np.floor(kji.min(axis=0)).astype(int), 0)
    high = np.minimum(np.ceil(kji.max(axis=0)).astype(int) + 1, image.array.shape[:3])
    if np.any(high - low < 1):
        raise InputError("the ROI does not overlap the volume; move or resize it")
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))  # type: ignore[return-value]


def crop_image(image: Image, box: tuple[slice, slice, slice]) -> Image:
    """The sub-image of ``image`` inside ``box`` (same spacing/direction, shifted origin)."""
    start = np.array([s.start for s in box], dtype=float)
    origin = image.kji_to_lps(start)
    return replace(image, array=image.array[box].copy(), origin=origin, metadata=dict(image.metadata))


def uncrop_result(result: Result, full_image: Image, box: tuple[slice, slice, slice]) -> Result:
    """``result`` (on the cropped grid) with every mask/probability pasted into the full grid."""
    shape = full_image.array.shape[:3]
    for segment in result.segments:
        mask = np.zeros(shape, dtype=np.uint8)
        mask[box] = segment.mask
        segment.mask = mask
        if segment.probability is not None:
            probability = np.zeros(shape, dtype=np.float32)
            probability[box] = segment.probability
            segment.probability = probability
    result.image = full_image
    return result
