"""Where a voxel lies in the patient: the body's own frame on the working grid.

A Malenia window (64-96 voxels) or an LSMS crop sees a part of the patient; words such as
"left", "right", "upper lobe" need to know *which* part. This module measures the body's frame
from the working volume itself — left-right midline, front-back centre, head-foot extent of the
body mask (the largest connected component above a body level) — and gives position channels
relative to it [chosen]:

- ``x = (i - midline_i) / half_width``: > 0 toward the patient's **left** (the working grid is
  LPS-canonical, ``pipeline.preprocess``: index I grows toward the patient's left);
- ``y = (j - centre_j) / half_depth``: > 0 toward **posterior**;
- ``z = (k - centre_k) / half_height``: > 0 toward **superior** (relative to the scanned body,
  so it means "upper part of this scan", not an anatomical level).

Every file is reoriented to the same canonical grid before this runs, so a flipped or permuted
storage of one scan gives the same frame and the same channels at the same physical point
(tested in ``test_body_frame.py``). Training and inference call the same functions on volumes
prepared by the same preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: HU above which a voxel belongs to the body (air -1000, lung -850..-500, fat -100)
BODY_HU = -500.0
#: the frame is measured on a grid this many times coarser (speed; voxels of 3-10 mm suffice)
FRAME_STRIDE = 2


def body_level(hu_window: Sequence[float]) -> float:
    """The 0..1 working-grid value that separates body from air for a model's HU window.

    Windows that start above :data:`BODY_HU` (Malenia's -175..250) cannot see -500 HU; their
    lowest visible value is used, which keeps fat, muscle and skin and drops air and lung.
    """
    lo, hi = float(hu_window[0]), float(hu_window[1])
    hu = max(BODY_HU, lo + 0.01 * (hi - lo))
    return (hu - lo) / (hi - lo)


@dataclass(frozen=True)
class BodyFrame:
    """The body's centre and half extents on the working grid, in KJI voxel units.

    Attributes:
        centre_kji: (head-foot centre, front-back centre, left-right midline).
        half_extent_kji: half the body's height, depth and width (>= 1 voxel each).
    """

    centre_kji: tuple[float, float, float]
    half_extent_kji: tuple[float, float, float]

    def normalised(self, kji: np.ndarray) -> np.ndarray:
        """Points ``(N, 3)`` in KJI -> ``(N, 3)`` body coordinates ``(x, y, z)`` (see the module)."""
        kji = np.atleast_2d(np.asarray(kji, dtype=float))
        rel = (kji - np.asarray(self.centre_kji)) / np.asarray(self.half_extent_kji)
        return rel[:, ::-1].copy()  # KJI order -> (x from I, y from J, z from K)

    def side(self, kji: Sequence[float]) -> str:
        """"left" or "right" of the patient for a point in KJI (I > midline is the left)."""
        return "left" if float(kji[2]) > self.centre_kji[2] else "right"

    def channels(self, start_kji: Sequence[int], shape_kji: Sequence[int]) -> np.ndarray:
        """Position channels ``(3, K, J, I)`` float32 (x, y, z) of the box at ``start_kji`` of
        ``shape_kji`` (boxes may reach outside the volume: the coordinates simply continue)."""
        axes = [(np.arange(int(n)) + int(s) - c) / h
                for s, n, c, h in zip(start_kji, shape_kji, self.centre_kji, self.half_extent_kji)]
        k, j, i = (a.astype(np.float32) for a in axes)
        shape = tuple(int(n) for n in shape_kji)
        return np.stack([np.broadcast_to(i[None, None, :], shape), np.broadcast_to(j[None, :, None], shape),
                         np.broadcast_to(k[:, None, None], shape)])

    def slice_channels(self, k: int, start_ji: Sequence[int], shape_ji: Sequence[int]) -> np.ndarray:
        """Position channels ``(3, J, I)`` of the box of axial slice ``k`` at ``start_ji``."""
        return self.channels((int(k), int(start_ji[0]), int(start_ji[1])), (1, int(shape_ji[0]), int(shape_ji[1])))[:, 0]


def _largest_component(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(sizes.argmax())


def body_frame(volume: np.ndarray, level: float) -> BodyFrame:
    """The body's frame of a working volume ``(K, J, I)`` (0..1 values; body = ``> level``).

    The body is the largest connected component of the mask (the CT table and stray voxels are
    usually apart from it). Left-right and front-back: the median over axial slices of each
    slice's body extent (lungs, arms and bowel gas move a centre of mass, not the outline);
    head-foot: the extent of the slices holding body. A volume with no body voxel gets the
    volume's own centre and half size.
    """
    vol = np.asarray(volume)
    shape = np.asarray(vol.shape, dtype=float)
    fallback = BodyFrame(tuple((shape - 1) / 2), tuple(np.maximum(shape / 2, 1.0)))
    s = FRAME_STRIDE
    mask = vol[::s, ::s, ::s] > level
    if not mask.any():
        return fallback
    body = _largest_component(mask)
    ks = np.flatnonzero(body.any(axis=(1, 2)))
    js_lo, js_hi, is_lo, is_hi = [], [], [], []
    for k in ks:
        rows = np.flatnonzero(body[k].any(axis=1))
        cols = np.flatnonzero(body[k].any(axis=0))
        js_lo.append(rows[0]), js_hi.append(rows[-1]), is_lo.append(cols[0]), is_hi.append(cols[-1])
    j_lo, j_hi = np.median(js_lo) * s, np.median(js_hi) * s
    i_lo, i_hi = np.median(is_lo) * s, np.median(is_hi) * s
    k_lo, k_hi = ks[0] * s, ks[-1] * s
    centre = ((k_lo + k_hi) / 2, (j_lo + j_hi) / 2, (i_lo + i_hi) / 2)
    half = tuple(max(1.0, (hi - lo + s) / 2) for lo, hi in ((k_lo, k_hi), (j_lo, j_hi), (i_lo, i_hi)))
    return BodyFrame(tuple(float(c) for c in centre), tuple(float(h) for h in half))
