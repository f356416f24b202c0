"""Which of the lesions found in the whole volume a description names [chosen].

Text-guided inference picks a token per sliding window, and every window that holds some lesion
finds *a* best token, so on its own the blended map shows every lesion of the scan whatever the
words say. The choice therefore has to be made once more over the whole volume: each 3D
connected component of the map carries the score of the tokens that drew it — the same score
that chose them in their windows, σ(object) · exp(mean log p(asserted attribute | token)),
blended with the same Gaussian weights as the probabilities — and only components whose score
comes near the best one's are kept. The object term matters: a token's attribute alignment is
largely a property of the token, so a window holding only another lesion still offers a token
that "agrees" with the words, but not one confident that its lesion is there.
"""

from __future__ import annotations

import numpy as np

from ...pipeline.postprocess import label_components

#: components smaller than this (voxels on the working grid) are noise, not lesions, in both of
#: Malenia's read-outs: the text-guided choice here and the prompt-free one [chosen]
MIN_COMPONENT_VOXELS = 8


def component_scores(prob: np.ndarray, weighted: np.ndarray, threshold: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """3D components (26-connected) of ``prob >= threshold`` and each one's probability-weighted
    mean score ``Σ weighted / Σ prob`` (index 0 unused). Specks are removed from the labels."""
    from scipy import ndimage

    labels, n = label_components(prob >= threshold)
    if n == 0:
        return labels, np.zeros(1)
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones_like(prob, dtype=np.float32), labels, index)
    mass = ndimage.sum_labels(prob, labels, index)
    score = np.concatenate([[0.0], ndimage.sum_labels(weighted, labels, index) / np.maximum(mass, 1e-12)])
    specks = index[sizes < MIN_COMPONENT_VOXELS]
    if specks.size:
        labels[np.isin(labels, specks)] = 0
        score[specks] = 0.0
    return labels, score


def keep_matching_components(prob: np.ndarray, weighted: np.ndarray, threshold: float, keep_ratio: float
                             ) -> np.ndarray:
    """``prob`` restricted to the components whose score is at least ``keep_ratio`` times the
    best component's (grown by one voxel so soft edges survive). ``keep_ratio`` 0 keeps every
    component (the per-window choice alone); 1 keeps only the best-agreeing lesion."""
    from scipy import ndimage

    if keep_ratio <= 0:
        return prob
    labels, score = component_scores(prob, weighted, threshold)
    if score.size <= 1 or score.max() <= 0:
        return np.zeros_like(prob)
    chosen = np.flatnonzero(score >= keep_ratio * score.max())
    chosen = chosen[chosen > 0]
    keep = ndimage.binary_dilation(np.isin(labels, chosen), iterations=1)
    return np.where(keep, prob, 0.0).astype(prob.dtype)
