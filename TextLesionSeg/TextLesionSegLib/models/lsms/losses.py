"""LSMS losses: segmentation (Dice + BCE) and the vision-language contrastive loss.

[paper] Loss = segmentation loss + vision-language contrastive loss.
[chosen] Segmentation = soft Dice (MONAI's ``DiceLoss`` on the sigmoid) + BCE with logits.
Contrastive: the sentence embedding is the anchor; each lesion pixel embedding is a positive and
the hardest ``negatives`` background pixel embeddings of the same slice are the negatives
(InfoNCE per lesion pixel, cosine similarity over a learnable temperature). Slices where the
described lesion is absent contribute nothing to it (there is no positive).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss per sample, averaged; (B, 1, H, W) logits and 0/1 targets.

    An empty target with an empty prediction scores 0 (MONAI's smoothing of 1e-5).
    """
    from monai.losses import DiceLoss

    return DiceLoss(sigmoid=True, reduction="mean")(logits, target.to(logits.dtype))


def bce_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy with logits, mean over pixels; lesion pixels weighted ``pos_weight``.

    Lesions cover ~0.2% of a slice: unweighted BCE drives every logit deeply negative within a
    few steps, where the sigmoid saturates and Dice's gradient vanishes (measured: the demo
    model stalled at Dice 0 for 670 steps); weighting the positives keeps them alive.
    """
    weight = None if pos_weight == 1.0 else torch.tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), pos_weight=weight)


def presence_loss(logits: torch.Tensor, target: torch.Tensor, top_k: int = 16) -> torch.Tensor:
    """Is the described lesion on this slice at all? BCE of each sample's presence logit — the mean
    of its ``top_k`` pixel logits — against whether its target has any lesion pixel [chosen].

    Dice gives no gradient on an empty target (MONAI's smoothing makes it ~1 whatever the
    prediction) and pixel BCE spreads a missed "not here" over 25,600 pixels, so without this term
    the network keeps drawing the lesion it sees whatever the words say (measured: descriptions
    of absent lesions got a segment in 96 % of validation questions).
    """
    flat = logits.flatten(1)
    top = flat.topk(min(top_k, flat.shape[1]), dim=1).values.mean(1)
    present = (target.flatten(1).amax(1) > 0.5).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(top, present)


def contrastive_loss(
    pixel_emb: torch.Tensor,
    sentence_emb: torch.Tensor,
    target: torch.Tensor,
    log_temperature: torch.Tensor,
    negatives: int = 256,
) -> torch.Tensor:
    """Sentence-vs-pixel InfoNCE.

    Args:
        pixel_emb: (B, E, h, w) pixel embeddings.
        sentence_emb: (B, E) sentence embeddings.
        target: (B, 1, H, W) 0/1 mask of the described lesion (resized to h, w here).
        log_temperature: scalar tensor, log of the temperature.
        negatives: background pixels per sample kept as negatives (most similar first).

    Returns:
        Mean over samples that have lesion pixels; 0 (with a graph) when none has.
    """
    b = pixel_emb.shape[0]
    mask = F.adaptive_max_pool2d(target.float(), pixel_emb.shape[-2:]) if target.shape[-2:] != pixel_emb.shape[-2:] \
        else target.float()
    pix = F.normalize(pixel_emb.flatten(2), dim=1)  # (B, E, N)
    sent = F.normalize(sentence_emb, dim=-1)  # (B, E)
    sim = torch.einsum("be,ben->bn", sent, pix) / log_temperature.exp()
    fg = mask.flatten(1) > 0.5
    losses = []
    for n in range(b):
        pos = sim[n][fg[n]]
        neg = sim[n][~fg[n]]
        if pos.numel() == 0 or neg.numel() == 0:
            continue
        neg = neg.topk(min(negatives, neg.numel())).values
        # -log( e^pos / (e^pos + sum e^neg) ) for every positive pixel
        logits = torch.cat([pos[:, None], neg[None, :].expand(pos.numel(), -1)], dim=1)
        losses.append(torch.logsumexp(logits, dim=1) - pos)
    if not losses:
        return sim.sum() * 0.0
    return torch.cat(losses).mean()
