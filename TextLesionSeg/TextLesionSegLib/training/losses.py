"""Losses shared by the models: Dice + BCE segmentation loss and the multi-positive contrastive loss.

Segmentation losses come from MONAI (``DiceLoss``); this module only adapts them to the shapes the
models use and adds the MP-NCE loss that MONAI does not have.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(pred: torch.Tensor, target: torch.Tensor, logits: bool = True) -> torch.Tensor:
    """Soft Dice loss averaged over the leading (mask) dimension: ``pred``/``target`` ``(M, *spatial)``.

    ``logits=False`` when ``pred`` is already a probability (Malenia's ensemble).
    """
    from monai.losses import DiceLoss

    if pred.numel() == 0:
        return pred.sum() * 0.0
    loss = DiceLoss(sigmoid=logits, smooth_nr=1e-5, smooth_dr=1e-5, reduction="mean")
    # MONAI expects (B, C, *spatial): one mask per batch item, one channel
    return loss(pred.unsqueeze(1), target.unsqueeze(1).to(pred.dtype))


def bce_loss(pred: torch.Tensor, target: torch.Tensor, logits: bool = True) -> torch.Tensor:
    """Binary cross-entropy; probabilities are clamped so a perfect prediction stays finite."""
    if pred.numel() == 0:
        return pred.sum() * 0.0
    target = target.to(pred.dtype)
    if logits:
        return F.binary_cross_entropy_with_logits(pred, target)
    with torch.autocast(device_type=pred.device.type, enabled=False):
        return F.binary_cross_entropy(pred.float().clamp(1e-6, 1 - 1e-6), target.float())


def dice_bce_loss(pred: torch.Tensor, target: torch.Tensor, logits: bool = True) -> torch.Tensor:
    """L_seg = Dice + BCE [chosen]."""
    return dice_loss(pred, target, logits) + bce_loss(pred, target, logits)


def attribute_nce_loss(
    queries: torch.Tensor, candidates: torch.Tensor, groups: list[torch.Tensor], targets: torch.Tensor,
    temperature: torch.Tensor | float,
) -> torch.Tensor:
    """Attribute-wise InfoNCE: for each attribute, the query against that attribute's values only.

    MP-NCE asks one token to sit near all its 8 phrases at once among every phrase; a token that
    spreads its mass evenly over the values most lesions share (both densities, both shapes, ...)
    already sits close to that loss's floor without telling values apart, which is what the
    read-out needs (it compares the values of one attribute, ``models.malenia.inference``).
    This term asks exactly that question [chosen].

    Args:
        queries: ``(M, C)`` embeddings; candidates: ``(P, C)``.
        groups: per attribute, the candidate indices of its values.
        targets: ``(M, len(groups))`` index *within the group* of the query's value, -1 to skip.
        temperature: scalar τ.

    Returns the mean cross-entropy over the (query, attribute) pairs with a target (0 if none).
    """
    q = F.normalize(queries.float(), dim=-1)
    c = F.normalize(candidates.float(), dim=-1)
    total, count = queries.sum() * 0.0, 0
    for a, index in enumerate(groups):
        keep = targets[:, a] >= 0
        if index.numel() < 2 or not bool(keep.any()):
            continue
        logits = q[keep] @ c[index].t() / temperature
        total = total + F.cross_entropy(logits, targets[keep, a], reduction="sum")
        count += int(keep.sum())
    return total / max(count, 1)


def mp_nce_loss(
    queries: torch.Tensor, candidates: torch.Tensor, positives: torch.Tensor, temperature: torch.Tensor | float
) -> torch.Tensor:
    """Multi-positive InfoNCE (MP-NCE): every positive candidate of a query counts [paper].

    Args:
        queries: ``(M, C)`` embeddings (Malenia: matched mask tokens).
        candidates: ``(P, C)`` embeddings (attribute phrases of the batch and the value bank).
        positives: ``(M, P)`` bool, True where candidate p describes query m.
        temperature: scalar τ (learnable in Malenia).

    Returns the mean over queries of ``-(1/|P_m|) Σ_{p∈P_m} log softmax_p(cos(q_m, c_p)/τ)``.
    Queries without any positive are skipped.
    """
    keep = positives.any(dim=1)
    if queries.numel() == 0 or not bool(keep.any()):
        return queries.sum() * 0.0
    q = F.normalize(queries[keep].float(), dim=-1)
    c = F.normalize(candidates.float(), dim=-1)
    pos = positives[keep].float()
    logits = q @ c.t() / temperature
    log_prob = logits.log_softmax(dim=-1)
    return -((log_prob * pos).sum(1) / pos.sum(1)).mean()
