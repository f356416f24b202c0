"""Malenia on one window: text-guided selection + CMKI, and prompt-free token read-out.

Text-guided [paper's text use, adapted]: a description's 8 attribute embeddings choose the mask token
whose aligned embedding agrees best with them, then CMKI fuses that token with the same embeddings.
Prompt-free [paper, steps I-IV]: confident tokens, their nearest stored attribute value per
attribute, CMKI on (token, predicted attributes), disease from the knowledge table (in segmenter).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .model import MaleniaModel


@dataclass
class AttributeBank:
    """Stored attribute-value phrases and embeddings, grouped by attribute (8 groups, in order)."""

    phrases: list[list[str]]  # per attribute, the value phrases
    values: list[list[str]]  # per attribute, the canonical values
    embeddings: list[torch.Tensor]  # per attribute, (V_a, text_dim)


def attribute_log_prob(model: MaleniaModel, token_align: torch.Tensor, query_emb: torch.Tensor,
                       query_phrases: list[str], asserted: list[bool], bank: AttributeBank) -> torch.Tensor:
    """Mean over asserted attributes of log p(query's value | token), ``(N,)``.

    p is a softmax of cosine similarity / τ over {the query's phrase} ∪ {the other stored values of
    the same attribute}, so an unseen phrase is still compared with the known alternatives.
    """
    tok = F.normalize(token_align, dim=-1)
    total = tok.new_zeros(tok.shape[0])
    count = 0
    for a, on in enumerate(asserted):
        if not on:
            continue
        others = [i for i, p in enumerate(bank.phrases[a]) if p != query_phrases[a]]
        cands = query_emb[a : a + 1]
        if others:
            cands = torch.cat([cands, bank.embeddings[a][others].to(query_emb)])
        cand = F.normalize(model.align_text(cands), dim=-1)
        total = total + (tok @ cand.t() / model.temperature).log_softmax(-1)[:, 0]
        count += 1
    return total / max(count, 1)


def _alignment_scores(model: MaleniaModel, out: dict, b: int, gate_emb: torch.Tensor, query_phrases: list[list[str]],
                      asserted: list[list[bool]], bank: AttributeBank) -> torch.Tensor:
    """``(Q, N)`` token scores σ(object) · exp(mean log p(asserted attribute | token)) by the
    alignment embeddings (the paper's text use)."""
    obj = out["object_logits"][b].float().sigmoid()
    scores = []
    for q in range(gate_emb.shape[0]):
        logp = attribute_log_prob(model, out["align"][-1][b].float(), gate_emb[q].float(), query_phrases[q],
                                  asserted[q] if model.config.attribute_gate else [False] * len(asserted[q]), bank)
        scores.append(obj * logp.exp())
    return torch.stack(scores)


def _head_scores(model: MaleniaModel, out: dict, b: int, targets: torch.Tensor) -> torch.Tensor:
    """``(Q, N)`` token scores σ(s_n(d) - none) by the attribute heads: how much more token n
    is the described lesion than "no such lesion here" (:mod:`.heads`)."""
    from .heads import choice_logits

    log_probs = model.heads(out["head_inputs"][b].float())
    scores = choice_logits(log_probs, out["object_logits"][b].float(), targets)
    return (scores - model.heads.none_logit.float()).sigmoid()


def text_guided_window(model: MaleniaModel, patch: torch.Tensor, query_emb: torch.Tensor,
                       query_phrases: list[list[str]], asserted: list[list[bool]], bank: AttributeBank,
                       gate_emb: torch.Tensor | None = None, with_score: bool = False,
                       query_targets: torch.Tensor | None = None, with_lesions: bool = False) -> torch.Tensor:
    """Probabilities ``(B, Q, *roi)`` for Q descriptions on a batch of windows.

    query_emb ``(Q, 8, text_dim)`` goes to CMKI. The token is chosen by the attribute heads against
    "none" when the model has them and ``query_targets`` ``(Q, H)`` are given; else by alignment:
    ``gate_emb`` (default ``query_emb``) and ``query_phrases`` (its phrases). The chosen token's
    score s gates its mask by min(1, s / object_threshold), so windows without a matching lesion
    stay empty. ``with_score``: ``(B, 2Q, *roi)``, the second Q channels being the probabilities
    times s, for the whole-volume choice (``pipeline.selection``). ``with_lesions``: one more
    channel, the prompt-free map of the same forward pass (:func:`prompt_free_map`: every lesion
    whatever the words), the text-free candidates of the ``measured`` selection.
    """
    out = model(patch)
    thr = model.config.object_threshold
    maps = []
    for b in range(patch.shape[0]):
        if model.heads is not None and query_targets is not None:
            score = _head_scores(model, out, b, query_targets.to(patch.device))
        else:
            score = _alignment_scores(model, out, b, query_emb if gate_emb is None else gate_emb, query_phrases,
                                      asserted, bank)
        best = score.argmax(dim=1)
        fused = model.inject(out["tokens"][-1][b, best], query_emb.to(out["tokens"][-1].dtype), out["keys"][b : b + 1], out["size"])
        chosen = score.gather(1, best[:, None]).view(-1, 1, 1, 1)  # the chosen tokens' scores s
        prob = fused["prob"][0] * (chosen / thr).clamp(max=1.0).to(fused["prob"].dtype)
        if with_score:
            prob = torch.cat([prob, prob * chosen.to(prob.dtype)])
        if with_lesions:
            prob = torch.cat([prob, prompt_free_map(model, out, b, bank, patch).to(prob.dtype)])
        maps.append(prob)
    return torch.stack(maps)


def predict_attributes(model: MaleniaModel, token_align: torch.Tensor, bank: AttributeBank) -> list[list[tuple[int, float]]]:
    """For each token, per attribute: (index of the nearest stored value, cosine similarity)."""
    tok = F.normalize(token_align.float(), dim=-1)
    result = [[] for _ in range(tok.shape[0])]
    for a in range(len(bank.phrases)):
        if not bank.phrases[a]:
            for r in result:
                r.append((-1, 0.0))
            continue
        sims = tok @ F.normalize(model.align_text(bank.embeddings[a].to(tok)), dim=-1).t()
        val, idx = sims.max(dim=1)
        for n in range(tok.shape[0]):
            result[n].append((int(idx[n]), float(val[n])))
    return result


def prompt_free_map(model: MaleniaModel, out: dict, b: int, bank: AttributeBank, patch: torch.Tensor) -> torch.Tensor:
    """Lesion probability ``(1, *roi)`` of window ``b`` of a forward pass ``out``: max over
    confident tokens of CMKI(token, its predicted attributes) (the paper's prompt-free steps I-III)."""
    obj = out["object_logits"][b].float().sigmoid()
    keep = (obj >= model.config.object_threshold).nonzero().squeeze(1)
    if keep.numel() == 0:
        return patch.new_zeros((1,) + tuple(patch.shape[2:]))
    attrs = predict_attributes(model, out["align"][-1][b, keep], bank)
    emb = torch.stack([torch.stack([bank.embeddings[a][i] for a, (i, _) in enumerate(t)]) for t in attrs])
    fused = model.inject(out["tokens"][-1][b, keep], emb.to(patch), out["keys"][b : b + 1], out["size"])
    return fused["prob"][0].max(dim=0, keepdim=True).values


def prompt_free_window(model: MaleniaModel, patch: torch.Tensor, bank: AttributeBank) -> torch.Tensor:
    """Lesion probability ``(B, 1, *roi)``: max over confident tokens of CMKI(token, its predicted attributes)."""
    out = model(patch)
    return torch.stack([prompt_free_map(model, out, b, bank, patch) for b in range(patch.shape[0])])
