"""The Malenia network: backbone → mask tokens → alignment → CMKI, with its training loss.

Save/load follows the ``transformers`` pattern: ``model.safetensors`` + ``config.json``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelError
from ...training.losses import attribute_nce_loss, bce_loss, dice_bce_loss, dice_loss, mp_nce_loss
from ...training.matching import bce_cost, dice_cost, hungarian_match
from ..weights_io import DictConfigWeights
from .backbone import build_backbone
from .cmki import CMKI
from .config import MaleniaConfig
from .decoder import MaskTokenDecoder
from .heads import AttributeHeads, choice_logits, choice_with_none, head_loss


class MaleniaModel(DictConfigWeights, nn.Module):
    """Malenia (ICLR 2025) from its paper; see ``docs/models/malenia.md`` for [paper]/[chosen].

    ``forward(image)`` gives tokens, intermediate masks, objectness and alignment embeddings;
    ``training_loss(batch)`` is the trainer's entry point; ``segment_with_text`` and ``find_tokens``
    are the two inference modes on one window.
    """

    train_hint = "textlesionseg train malenia"
    weights_metadata = {"format": "pt", "model_type": "malenia"}

    def __init__(self, config: MaleniaConfig):
        super().__init__()
        self.config = cfg = config
        self.backbone = build_backbone(cfg)
        c1, c2, c3, c4 = self.backbone.out_channels
        self.feature_proj = nn.ModuleList(nn.Conv3d(c, cfg.hidden_dim, 1) for c in (c1, c2, c3))
        # F4 → mask features: the intermediate masks' features and CMKI's K = Linear(F4) [paper; shared, chosen]
        self.mask_features = nn.Conv3d(c4, cfg.mask_dim, 1)
        self.decoder = MaskTokenDecoder(cfg.hidden_dim, cfg.num_tokens, cfg.num_blocks, cfg.num_heads,
                                        cfg.ffn_dim, cfg.mask_dim, cfg.dropout)
        # multi-scale alignment: one projection per block into the shared token/attribute space
        self.token_align = nn.ModuleList(nn.Linear(cfg.hidden_dim, cfg.hidden_dim) for _ in range(cfg.num_blocks))
        self.attr_align = nn.Linear(cfg.text_dim, cfg.hidden_dim)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(cfg.temperature_init)))
        self.object_head = nn.Linear(cfg.hidden_dim, 1)
        self.cmki = CMKI(cfg.hidden_dim, cfg.text_dim, cfg.num_attributes, cfg.mask_dim, cfg.num_heads,
                         cfg.fusion_rounds, cfg.dropout)
        # attributes as categories, and the "none" option of the token choice [chosen, issue 16]:
        # the heads read the token and what its own mask covers (mask-pooled F4 features and input
        # channels: intensity, its square, position), so density and side are in reach of a linear map
        self.heads = AttributeHeads(cfg.hidden_dim + cfg.mask_dim + cfg.input_channels + 1, cfg.hidden_dim) \
            if cfg.attribute_heads else None
        self._text_cache = None  # PhraseEmbeddingCache, created on first need (not a parameter)
        # embeddings of the phrases known at training time ship inside model.safetensors, so
        # inference runs no text encoder for them [paper: stored attribute embeddings]
        known = cfg.extra.get("known_phrases") or []
        self.register_buffer("known_embeddings", torch.zeros(len(known), cfg.text_dim))

    # ------------------------------------------------------------------ core
    @property
    def temperature(self) -> torch.Tensor:
        """Learnable MP-NCE temperature τ, kept within [0.01, 1] for stability."""
        return self.log_temperature.exp().clamp(0.01, 1.0)

    def forward(self, image: torch.Tensor) -> dict[str, Any]:
        """image ``(B, 1, K, J, I)`` → dict with ``tokens`` (per block), ``masks`` (per block, logits
        at input size), ``align`` (per block, token embeddings), ``object_logits`` ``(B, N)``, ``keys``."""
        feats = self.backbone(image)
        pyramid = [proj(f) for proj, f in zip(self.feature_proj, feats[:3])]
        mask_feats = self.mask_features(feats[3])
        tokens, masks = self.decoder(pyramid, mask_feats)
        size = tuple(image.shape[2:])
        out = {
            "tokens": tokens,
            "masks": [self.upsample(m, size) for m in masks],
            "align": [proj(t) for proj, t in zip(self.token_align, tokens)],
            "object_logits": self.object_head(tokens[-1]).squeeze(-1),
            "keys": mask_feats,
            "size": size,
        }
        if self.heads is not None:
            out["head_inputs"] = self.head_inputs(image, tokens[-1], masks[-1], mask_feats)
        return out

    @staticmethod
    def head_inputs(image: torch.Tensor, tokens: torch.Tensor, mask_logits: torch.Tensor, mask_feats: torch.Tensor
                    ) -> torch.Tensor:
        """``(B, N, C + mask_dim + C_in + 1)``: each token beside the mean, under its own soft mask
        (at F4's resolution), of the F4 mask features, the input channels and the squared intensity."""
        low = F.adaptive_avg_pool3d(image, mask_feats.shape[2:])
        values = torch.cat([mask_feats, low, low[:, :1] ** 2], dim=1).flatten(2)  # (B, D, V)
        weights = mask_logits.sigmoid().flatten(2)  # (B, N, V)
        pooled = torch.einsum("bnv,bdv->bnd", weights, values) / weights.sum(-1, keepdim=True).clamp_min(1e-3)
        return torch.cat([tokens, pooled], dim=-1)

    @staticmethod
    def upsample(logits: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        """Mask logits ``(B, M, k, j, i)`` → ``size`` (no-op when F4 is at full resolution)."""
        if tuple(logits.shape[2:]) == tuple(size):
            return logits
        return F.interpolate(logits, size=size, mode="trilinear", align_corners=False)

    def inject(self, tokens: torch.Tensor, attr_embeddings: torch.Tensor, keys: torch.Tensor,
               size: tuple[int, ...] | None = None) -> dict[str, torch.Tensor]:
        """CMKI on M (token, 8 attribute embeddings) pairs of one image: ``(M, C)``, ``(M, 8, D)``,
        keys ``(1, Cm, k, j, i)``; masks are returned at ``size`` (default: the keys' size)."""
        base = self.decoder.mask_embed(self.decoder.out_norm(tokens))
        out = self.cmki(tokens.unsqueeze(0), attr_embeddings.unsqueeze(0), keys, base.unsqueeze(0))
        if size is not None and tuple(size) != tuple(keys.shape[2:]):
            out["mask_m"], out["mask_t"] = self.upsample(out["mask_m"], size), self.upsample(out["mask_t"], size)
            out["prob"] = 0.5 * (out["mask_m"].sigmoid() + out["mask_t"].sigmoid())
        return out

    # ------------------------------------------------------------------ text
    @property
    def text_cache(self):
        """Phrase → embedding cache of this model's text encoder (shipped phrases + disk + memory)."""
        if self._text_cache is None:
            from ..text_encoders import PhraseEmbeddingCache

            cache = PhraseEmbeddingCache(self.config.text_model, cache_dir=self.config.extra.get("text_cache_dir"))
            known = self.config.extra.get("known_phrases") or []
            if known:
                cache.add(known, self.known_embeddings.detach().cpu())
            self._text_cache = cache
        return self._text_cache

    def set_known_phrases(self, phrases: Sequence[str]) -> None:
        """Store the embeddings of ``phrases`` in the model (saved with the weights)."""
        phrases = sorted(set(phrases))
        emb = self.embed_phrases(phrases).detach().float()
        self.config.extra["known_phrases"] = phrases
        self.known_embeddings = emb.to(self.log_temperature.device)

    def embed_phrases(self, phrases: Sequence[str]) -> torch.Tensor:
        """Frozen text embeddings ``(P, text_dim)`` on the model's device."""
        emb = self.text_cache.embed(list(phrases))
        if emb.shape[-1] != self.config.text_dim:
            raise ModelError(f"text model gives {emb.shape[-1]}-wide embeddings, config says text_dim={self.config.text_dim}")
        return emb.to(self.log_temperature.device)

    def align_text(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Attribute embeddings → the alignment space."""
        return self.attr_align(embeddings)

    # ------------------------------------------------------------------ training
    def training_loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Total loss and its parts for a batch from :func:`..training.collate`.

        batch: ``image`` ``(B,C,K,J,I)``; ``masks`` list of ``(L_b,K,J,I)``; ``phrases`` list of
        L_b lists of 8 prompt phrases (CMKI's text); optional ``positives`` (per lesion, the phrases
        it aligns with; default ``phrases``) and ``bank`` (extra negative phrases: attribute values);
        with ``w_attr`` > 0, ``bank_groups`` (per attribute, its value phrases) for the attribute-wise term;
        with the heads, ``values`` (per sample, per lesion, the head targets) and ``query`` (per
        sample, one description: ``phrases``, ``targets``, ``lesion`` = index of the lesion it
        names in the sample's masks, -1 when it names none in view).
        """
        cfg = self.config
        image = batch["image"]
        out = self(image)
        positives = batch.get("positives") or batch["phrases"]
        groups = (batch.get("bank_groups") or []) if cfg.w_attr > 0 else []
        index, cand_align = self.alignment_candidates(
            [p for sample in positives for lesion in sample for p in lesion] + list(batch.get("bank", []))
            + [p for g in groups for p in g])
        group_index = [torch.tensor([index[p] for p in g], dtype=torch.long, device=image.device) for g in groups]
        zero = image.sum() * 0.0
        parts = {"seg": zero, "deep": zero, "sim": zero, "obj": zero}
        if group_index:
            parts["attr"] = zero
        n_seg = 0
        for b in range(image.shape[0]):
            gt = batch["masks"][b].to(image.device).float()
            obj_target = torch.zeros_like(out["object_logits"][b])
            if gt.shape[0] > 0:
                pos, rows, cols = self.match_lesions(out, b, gt, positives[b], index, cand_align)
                obj_target[rows] = 1.0
                targets = self._group_targets(group_index, pos[cols]) if group_index else None
                for k in range(cfg.num_blocks):
                    parts["deep"] = parts["deep"] + dice_loss(out["masks"][k][b, rows], gt[cols]) / cfg.num_blocks
                    parts["sim"] = parts["sim"] + mp_nce_loss(out["align"][k][b, rows], cand_align, pos[cols],
                                                              self.temperature) / cfg.num_blocks
                    if group_index:
                        parts["attr"] = parts["attr"] + attribute_nce_loss(
                            out["align"][k][b, rows], cand_align, group_index, targets, self.temperature) / cfg.num_blocks
                # CMKI's text tokens: the 8 embeddings of the lesion's prompt, in attribute order
                attr = torch.stack([self.embed_phrases(batch["phrases"][b][l]) for l in cols.tolist()])
                fused = self.inject(out["tokens"][-1][b, rows], attr, out["keys"][b : b + 1], out["size"])
                parts["seg"] = parts["seg"] + dice_bce_loss(fused["prob"][0], gt[cols], logits=False)
                n_seg += 1
            parts["obj"] = parts["obj"] + bce_loss(out["object_logits"][b], obj_target)
            if self.heads is not None:
                matched = (rows, cols) if gt.shape[0] > 0 else None
                self._reading_parts(parts, out, b, gt, matched, batch)
        # objectness and the reading parts are averaged over samples, the rest over samples that hold a lesion
        per_sample = ("obj", "choice", "text_seg")
        parts = {k: v / (image.shape[0] if k in per_sample else max(n_seg, 1)) for k, v in parts.items()}
        total = cfg.w_seg * parts["seg"] + cfg.w_deep * parts["deep"] + cfg.w_sim * parts["sim"] + cfg.w_obj * parts["obj"]
        if group_index:
            total = total + cfg.w_attr * parts["attr"]
        for name, weight in (("heads", cfg.w_heads), ("choice", cfg.w_choice), ("text_seg", cfg.w_text_seg)):
            if name in parts:
                total = total + weight * parts[name]
        return {"loss": total, **{k: v.detach() for k, v in parts.items()}}

    def _reading_parts(self, parts: dict[str, torch.Tensor], out: dict, b: int, gt: torch.Tensor,
                       matched: tuple[torch.Tensor, torch.Tensor] | None, batch: dict[str, Any]) -> None:
        """Add the heads' cross-entropy, the token choice over tokens + "none" and CMKI on the
        sample's description (see :mod:`.heads`) to ``parts``, for sample ``b``."""
        cfg = self.config
        tokens = out["tokens"][-1][b]
        log_probs = self.heads(out["head_inputs"][b])
        zero = tokens.sum() * 0.0
        if matched is not None and cfg.w_heads > 0:
            rows, cols = matched
            values = torch.as_tensor(batch["values"][b], dtype=torch.long, device=tokens.device)[cols]
            parts["heads"] = parts.get("heads", zero) + head_loss({h: lp[rows] for h, lp in log_probs.items()}, values)
        query = (batch.get("query") or [None] * (b + 1))[b]
        if query is None:
            return
        targets = torch.as_tensor([query["targets"]], dtype=torch.long, device=tokens.device)
        scores = choice_logits(log_probs, out["object_logits"][b], targets)  # (1, N)
        token = None
        if query["lesion"] >= 0 and matched is not None:
            hit = (matched[1] == query["lesion"]).nonzero()
            token = int(matched[0][hit[0, 0]]) if hit.numel() else None
        if cfg.w_choice > 0:
            target = torch.tensor([tokens.shape[0] if token is None else token], device=tokens.device)
            logits = choice_with_none(scores, self.heads.none_logit)
            parts["choice"] = parts.get("choice", zero) + F.cross_entropy(logits, target)
        if cfg.w_text_seg > 0:
            # CMKI on the given words, right or wrong: the described lesion's mask, or nothing when
            # the words name no lesion here (then on the token the model would have picked)
            pick = token if token is not None else int(scores[0].argmax())
            attr = self.embed_phrases(query["phrases"]).unsqueeze(0)
            fused = self.inject(tokens[pick : pick + 1], attr, out["keys"][b : b + 1], out["size"])["prob"][0]
            if token is not None:
                loss = dice_bce_loss(fused, gt[query["lesion"]][None], logits=False)
            else:
                loss = bce_loss(fused, torch.zeros_like(fused), logits=False)
            parts["text_seg"] = parts.get("text_seg", zero) + loss

    def alignment_candidates(self, phrases: Sequence[str]) -> tuple[dict[str, int], torch.Tensor]:
        """The distinct ``phrases`` as MP-NCE candidates: (index by phrase, their embeddings in the
        alignment space ``(P, hidden_dim)``)."""
        unique = list(dict.fromkeys(phrases))
        emb = self.embed_phrases(unique) if unique else self.log_temperature.new_zeros(0, self.config.text_dim)
        return {p: i for i, p in enumerate(unique)}, self.align_text(emb)

    def match_lesions(self, out: dict, b: int, gt: torch.Tensor, lesion_positives: Sequence[Sequence[str]],
                      index: dict[str, int], cand_align: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``b``'s lesions (masks ``gt``, each with its positive phrases) against the
        candidates: the positives matrix ``(L, P)`` and the Hungarian (token rows, lesion cols)."""
        pos = torch.zeros(gt.shape[0], len(index), dtype=torch.bool, device=gt.device)
        for lesion, phrases in enumerate(lesion_positives):
            pos[lesion, [index[p] for p in phrases]] = True
        rows, cols = self._match(out, b, gt, pos, cand_align)
        return pos, rows, cols

    @staticmethod
    def _group_targets(group_index: list[torch.Tensor], positives: torch.Tensor) -> torch.Tensor:
        """``(M, A)``: per lesion and attribute, the index within the group of its one positive
        value, -1 where it has none (unspecified) or, ambiguously, several."""
        targets = torch.full((positives.shape[0], len(group_index)), -1, dtype=torch.long, device=positives.device)
        for a, index in enumerate(group_index):
            hits = positives[:, index]
            one = hits.sum(1) == 1
            targets[one, a] = hits[one].float().argmax(1)
        return targets

    @torch.no_grad()
    def _match(self, out: dict, b: int, gt: torch.Tensor, pos: torch.Tensor, cand_align: torch.Tensor):
        """Hungarian matching of the last block's tokens to the lesions of sample ``b``."""
        cfg = self.config
        size = [min(cfg.match_size, s) for s in gt.shape[1:]]
        pred = F.adaptive_avg_pool3d(out["masks"][-1][b].float(), size).flatten(1)
        # masks are compared at a coarse size (Mask2Former samples points) [chosen]
        target = (F.adaptive_avg_pool3d(gt.float(), size) > 0.25).float().flatten(1)
        cost = cfg.cost_dice * dice_cost(pred, target) + cfg.cost_bce * bce_cost(pred, target)
        sim = F.normalize(out["align"][-1][b].float(), dim=-1) @ F.normalize(cand_align.float(), dim=-1).t()
        align = (sim @ pos.float().t()) / pos.float().sum(1).clamp_min(1)  # mean cosine to the lesion's phrases
        cost = cost - cfg.cost_align * align - cfg.cost_obj * out["object_logits"][b].float().sigmoid().unsqueeze(1)
        rows, cols = hungarian_match(cost)
        return torch.as_tensor(rows, device=gt.device), torch.as_tensor(cols, device=gt.device)

    # ------------------------------------------------------------------ save / load (``weights_io``)
    def config_dict(self) -> dict[str, Any]:
        """``config.json``: the config with ``"model_type": "malenia"`` (Malenia's folders name their
        architecture with this key, as they shipped)."""
        return self.config.to_dict()

    @classmethod
    def from_config_dict(cls, data: dict[str, Any]) -> "MaleniaModel":
        """A fresh network from ``config.json``; ``ValueError`` for another model's config."""
        if data.get("model_type", "malenia") != "malenia":
            raise ValueError(f"it describes a '{data.get('model_type')}' model, not Malenia")
        return cls(MaleniaConfig.from_dict(data))


def build_model(config: dict[str, Any] | MaleniaConfig) -> MaleniaModel:
    """The trainer's constructor: a dict (the YAML's ``model`` section) or a config object."""
    cfg = config if isinstance(config, MaleniaConfig) else MaleniaConfig.from_dict(dict(config))
    return MaleniaModel(cfg)
