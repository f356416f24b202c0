"""A quick-look picture of a result: segment contours on an axial and a coronal CT slice."""

from __future__ import annotations

import os

import numpy as np

from .geometry import Image
from .result import Result


def _canonical_view(image: Image, array: np.ndarray) -> np.ndarray:
    """``array`` (K, J, I) permuted/flipped so axes are S, P, L (closest to identity in LPS)."""
    d = image.direction  # column n = index axis n (I, J, K)
    order_ijk = [int(np.argmax(np.abs(d[row, :]))) for row in range(3)]  # index axis for L, P, S
    if len(set(order_ijk)) != 3:
        return array
    kji_axes = [2 - order_ijk[2], 2 - order_ijk[1], 2 - order_ijk[0]]  # S, P, L in array axes
    out = np.transpose(array, kji_axes)
    for n, row in enumerate((2, 1, 0)):
        if d[row, order_ijk[row]] < 0:
            out = np.flip(out, axis=n)
    return out


def render_overlay(result: Result, path: str | os.PathLike) -> None:
    """Draw the overlay PNG to ``path`` (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    img = result.image
    ct = _canonical_view(img, np.asarray(img.array, dtype=np.float32))
    masks = [_canonical_view(img, np.asarray(s.mask)) for s in result.segments]
    union = np.zeros(ct.shape, bool)
    for m in masks:
        union |= m > 0
    if union.any():
        # Slice through the largest lesion: the one with most voxels in the union's biggest slice.
        from .postprocess import label_components

        labels, n = label_components(union)
        counts = np.bincount(labels.ravel())
        counts[0] = 0
        centre = np.argwhere(labels == int(np.argmax(counts))).mean(axis=0).round().astype(int)
    else:
        centre = np.array(ct.shape) // 2
    # Array is now (S, P, L). Axial slice (P rows, L columns) is already radiological
    # (anterior up, patient's right on the picture's left); coronal needs superior up.
    sp = np.asarray(img.spacing)[[int(np.argmax(np.abs(img.direction[row, :]))) for row in (2, 1, 0)]]
    views = [
        ("axial", ct[centre[0]], [m[centre[0]] for m in masks], sp[1] / sp[2]),
        ("coronal", ct[:, centre[1]][::-1], [m[:, centre[1]][::-1] for m in masks], sp[0] / sp[2]),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), dpi=100)
    for ax, (title, slab, mslabs, aspect) in zip(axes, views):
        ax.imshow(slab, cmap="gray", vmin=-400, vmax=400, aspect=aspect, interpolation="nearest")
        for seg, m in zip(result.segments, mslabs):
            if m.any():
                ax.contour(m.astype(float), levels=[0.5], colors=[seg.color], linewidths=1.5)
        ax.set_title(title)
        ax.axis("off")
    names = [f"{s.name[:40]}" for s in result.segments]
    fig.suptitle("; ".join(names)[:120] or "no segments", fontsize=9)
    fig.tight_layout()
    fig.savefig(str(path), format="png")
    plt.close(fig)
