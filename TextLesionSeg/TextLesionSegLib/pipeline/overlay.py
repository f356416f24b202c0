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
    # One axial slice through each segment found (up to 3: two descriptions -> two lesions, each
    # seen), then a coronal slice through the largest; empty segments have no slice of their own.
    centres = [np.argwhere(m > 0).mean(axis=0).round().astype(int) for m in masks if m.any()][:3]
    if union.any():
        from .postprocess import label_components

        labels, n = label_components(union)
        counts = np.bincount(labels.ravel())
        counts[0] = 0
        largest = np.argwhere(labels == int(np.argmax(counts))).mean(axis=0).round().astype(int)
    else:
        largest = np.array(ct.shape) // 2
    centres = centres or [largest]
    # Array is now (S, P, L). Axial slice (P rows, L columns) is already radiological
    # (anterior up, patient's right on the picture's left); coronal needs superior up.
    sp = np.asarray(img.spacing)[[int(np.argmax(np.abs(img.direction[row, :]))) for row in (2, 1, 0)]]
    views = [(f"axial {k + 1}" if len(centres) > 1 else "axial", ct[c[0]], [m[c[0]] for m in masks], sp[1] / sp[2])
             for k, c in enumerate(centres)]
    views.append(("coronal", ct[:, largest[1]][::-1], [m[:, largest[1]][::-1] for m in masks], sp[0] / sp[2]))
    # lung window where the lesions are lung-like (ground glass is black in a soft-tissue window)
    lo, hi = (-1100.0, 300.0) if union.any() and float(np.median(ct[union])) < -100 else (-400.0, 400.0)
    fig, axes = plt.subplots(1, len(views), figsize=(5 * len(views), 5), dpi=100)
    for ax, (title, slab, mslabs, aspect) in zip(np.atleast_1d(axes), views):
        ax.imshow(slab, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
        for seg, m in zip(result.segments, mslabs):
            if m.any():
                ax.contour(m.astype(float), levels=[0.5], colors=[seg.color], linewidths=1.5)
        ax.set_title(title)
        ax.axis("off")
    names = [f"{s.name[:90]}" + ("" if s.found else " (not found)") for s in result.segments]
    fig.suptitle("\n".join(names)[:300] or "no segments", fontsize=9)
    fig.tight_layout()
    fig.savefig(str(path), format="png")
    plt.close(fig)
