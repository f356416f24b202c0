"""The LSMS network: text features + CT slices -> mask logits of the one lesion the text describes.

Inputs are axial slices of the working grid (``array[k]``: rows J = anterior->posterior, columns
I = patient right->left), the centre slice with ``context_slices`` neighbours each side as
channels, HU-windowed to 0..1 with the config's wide window. No image is mirrored: "left" in a
sentence means the patient's left, which is always toward larger I on the LPS working grid, and
the network learns that from training data built on the same grid (see ``docs/models/lsms.md``).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ...errors import ModelError
from ..weights_io import DictConfigWeights
from .config import LSMSConfig
from .decoder import FullScaleDecoder
from .encoder import LanguageGuidedEncoder
from .losses import bce_loss, contrastive_loss, dice_loss, presence_loss
from .svla import masked_mean



class LSMSModel(DictConfigWeights, nn.Module):
    """Vision embedding, language-guided encoder (SVLA), Full-Scale Decoder, contrastive heads.

    Args:
        config: the network's :class:`LSMSConfig`.
    """

    train_hint = "textlesionseg train lsms"
    weights_metadata = {"architecture": "lsms"}

    def __init__(self, config: LSMSConfig):
        super().__init__()
        self.config = config
        self.encoder = LanguageGuidedEncoder(config, config.text_dim)
        self.decoder = FullScaleDecoder(config)
        self.sentence_proj = nn.Sequential(nn.Linear(config.text_dim, config.embed_dim), nn.GELU(),
                                           nn.Linear(config.embed_dim, config.embed_dim))
        self.log_temperature = nn.Parameter(torch.tensor(float(config.temperature)).log())
        self._text_encoder: Any = None  # models.text_encoders.TextEncoder, loaded on first use
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        #: optional on-disk sentence cache (``text_encoders.SentenceFeatureCache``), set for inference
        self.sentence_cache: Any = None
        if config.finetune_text:
            # A fine-tuned text model is part of the network: its weights train and are saved.
            self.text_model = self._load_text_encoder()._model
            self.text_model.requires_grad_(True)

    # ---- inputs ------------------------------------------------------------------------
    def window_channels(self, slices: torch.Tensor) -> torch.Tensor:
        """(B, S, H, W) slices in the wide window's 0..1 -> (B, S * (1 + extra windows), H, W)."""
        lo, hi = self.config.hu_window
        hu = slices * (hi - lo) + lo
        chans = [slices]
        for wlo, whi in self.config.extra_windows:
            chans.append(((hu - wlo) / (whi - wlo)).clamp(0.0, 1.0))
        return torch.cat(chans, dim=1)

    # ---- text --------------------------------------------------------------------------
    def _load_text_encoder(self) -> Any:
        if self._text_encoder is None:
            from ..text_encoders import TextEncoder

            self._text_encoder = TextEncoder(self.config.text_model, device="cpu",
                                             max_length=self.config.text_max_length)
            if self._text_encoder.dim != self.config.text_dim:
                raise ModelError(f"text model '{self.config.text_model}' gives {self._text_encoder.dim}-d "
                                 f"features but the LSMS config expects text_dim={self.config.text_dim}")
        return self._text_encoder

    def encode_text(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Word features (B, L, Dt) and padding mask (B, L) of ``texts`` on the model's device.

        A frozen encoder's outputs are cached per sentence (training sees the same sentences
        many times); a fine-tuned one runs every time, with gradients.
        """
        device = self.log_temperature.device
        if self.config.finetune_text:
            enc = self._load_text_encoder()
            tok = enc._tokenizer(list(texts), padding=True, truncation=True,
                                 max_length=self.config.text_max_length, return_tensors="pt").to(device)
            out = self.text_model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
            return out.last_hidden_state.float(), tok["attention_mask"].bool()
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing and self.sentence_cache is not None:
            for t in list(missing):
                tokens = self.sentence_cache.get(t)
                if tokens is not None and tokens.shape[-1] == self.config.text_dim:
                    self._text_cache[t] = (tokens, torch.ones(tokens.shape[0], dtype=torch.bool))
                    missing.remove(t)
        if missing:
            feats = self._load_text_encoder().encode_tokens(missing)
            for n, t in enumerate(missing):
                keep = feats.mask[n]
                self._text_cache[t] = (feats.tokens[n][keep].cpu(), keep[keep].cpu())
                if self.sentence_cache is not None:
                    self.sentence_cache.put(t, self._text_cache[t][0])
        length = max(self._text_cache[t][0].shape[0] for t in texts)
        words = torch.zeros(len(texts), length, self.config.text_dim)
        mask = torch.zeros(len(texts), length, dtype=torch.bool)
        for n, t in enumerate(texts):
            tokens = self._text_cache[t][0]
            words[n, : tokens.shape[0]] = tokens
            mask[n, : tokens.shape[0]] = True
        return words.to(device), mask.to(device)

    # ---- forward -----------------------------------------------------------------------
    def forward(self, slices: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor,
                position: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Mask logits of the described lesion.

        Args:
            slices: (B, S, H, W), S = ``config.slice_channels``; any H, W (padded to a
                multiple of 32 inside, answers cropped back).
            words: (B, L, Dt) word features; word_mask: (B, L) True on real tokens.
            position: (B, 3, H, W) body-frame coordinates (``pipeline.body_frame``); required
                when ``config.position_channels``, ignored otherwise.

        Returns:
            ``{"logits": (B, 1, H, W), "pixel_emb": (B, E, H/4, W/4), "sentence_emb": (B, E)}``, and
            ``"objectness"`` (B, 1, H, W), every lesion whatever the words, when the config has it.
        """
        h, w = slices.shape[-2:]
        x = self.window_channels(slices)
        if self.config.position_channels:
            if position is None:
                raise ValueError("this LSMS model reads body-frame positions: pass position (B, 3, H, W)")
            x = torch.cat([x, position.to(x.dtype)], dim=1)
        # Pad bottom/right with air (0 in the wide window) to a multiple of the encoder's
        # stride 32, so F1..F4 tile the slice exactly, then crop the answers back.
        ph, pw = (-h) % 32, (-w) % 32
        x = nn.functional.pad(x, (0, pw, 0, ph)) if ph or pw else x
        features = self.encoder(x, words, word_mask)
        logits, pixel_emb, objectness = self.decoder(features)
        size = x.shape[-2:]
        logits = nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)[..., :h, :w]
        pixel_emb = pixel_emb[..., : -(-h // 4), : -(-w // 4)]
        sentence_emb = self.sentence_proj(masked_mean(words, word_mask))
        out = {"logits": logits, "pixel_emb": pixel_emb, "sentence_emb": sentence_emb}
        if objectness is not None:
            out["objectness"] = nn.functional.interpolate(objectness, size=size, mode="bilinear",
                                                          align_corners=False)[..., :h, :w]
        return out

    def training_loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Weighted Dice + BCE + contrastive loss of a batch.

        ``batch``: ``"image"`` (B, S, H, W), ``"label"`` (B, 1, H, W) 0/1 mask of the described
        lesion, and ``"text"`` (B sentences) or pre-computed ``"words"`` + ``"word_mask"``; with an
        objectness output, ``"lesions"`` (B, 1, H, W) every lesion of the slice (Dice + BCE on it).
        """
        if "words" in batch:
            words, mask = batch["words"], batch["word_mask"]
        else:
            words, mask = self.encode_text(list(batch["text"]))
        out = self(batch["image"], words, mask, batch.get("position"))
        target = batch["label"].to(out["logits"].dtype)
        cfg = self.config
        dice = dice_loss(out["logits"], target)
        bce = bce_loss(out["logits"], target, cfg.bce_pos_weight)
        con = contrastive_loss(out["pixel_emb"], out["sentence_emb"], target, self.log_temperature,
                               cfg.contrastive_negatives)
        loss = cfg.dice_weight * dice + cfg.bce_weight * bce + cfg.contrastive_weight * con
        parts = {"dice": dice.detach(), "bce": bce.detach(), "contrastive": con.detach()}
        if cfg.presence_weight > 0:
            presence = presence_loss(out["logits"], target)
            loss = loss + cfg.presence_weight * presence
            parts["presence"] = presence.detach()
        if "objectness" in out and "lesions" in batch:
            lesions = batch["lesions"].to(out["objectness"].dtype)
            objectness = dice_loss(out["objectness"], lesions) + bce_loss(out["objectness"], lesions, cfg.bce_pos_weight)
            loss = loss + cfg.objectness_weight * objectness
            parts["objectness"] = objectness.detach()
        return {"loss": loss, **parts}

    @torch.no_grad()
    def predict_slices(self, slices: torch.Tensor, texts: Sequence[str], position: torch.Tensor | None = None
                       ) -> torch.Tensor:
        """Probabilities (B, H, W) for a batch of slices, one sentence per slice."""
        words, mask = self.encode_text(list(texts))
        return torch.sigmoid(self(slices, words, mask, position)["logits"][:, 0])

    @property
    def has_objectness(self) -> bool:
        """Whether the network also answers "every lesion here" (``config.objectness_weight`` > 0)."""
        return self.decoder.objectness_head is not None

    # ---- persistence (``weights_io.DictConfigWeights``; a frozen text model is not a submodule) ----
    def config_dict(self) -> dict[str, Any]:
        """``config.json``: the config, with ``"architecture": "lsms"`` first for the registry."""
        return {"architecture": "lsms", **self.config.to_dict()}

    @classmethod
    def from_config_dict(cls, data: dict[str, Any]) -> "LSMSModel":
        """A fresh network from ``config.json``; ``ValueError`` on unknown keys."""
        return cls(LSMSConfig.from_dict(data))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
