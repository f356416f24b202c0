"""Malenia behind the pipeline's :class:`LesionSegmenter` interface (text-guided and prompt-free)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ...query.types import ATTRIBUTE_NAMES
from ..base import InferenceSettings, LesionSegmenter, PreprocessingConfig, ProgressCallback
from . import SPEC

if TYPE_CHECKING:
    import torch

    from ...query.types import LesionQuery
    from .inference import AttributeBank
    from .model import MaleniaModel

# LesionQuery field(s) that assert each attribute; location is asserted by organ or side
_ASSERTING_FIELDS = {
    "location": ("organ", "side", "sub_location"),
    "shape": ("shape",),
    "density": ("density",),
    "density_variation": ("density_variation",),
    "enhancement": ("enhancement",),
    "surface": ("surface",),
    "relation": ("relation", "related_organ"),
    "specific_features": ("specific_features",),
}


def asserted_attributes(query: "LesionQuery") -> list[bool]:
    """Which of the 8 attributes the user's words (not defaults) fixed, in ATTRIBUTE_NAMES order."""
    return [any(getattr(query, f, None) for f in _ASSERTING_FIELDS[name]) for name in ATTRIBUTE_NAMES]


def value_bank_entries() -> list[tuple[str, str, str]]:
    """(attribute, value, phrase) of every stored attribute value, from the query package."""
    from ...query import attribute_value_phrases

    from .phrases import coarse_location_values

    table = dict(attribute_value_phrases())
    table["location"] = coarse_location_values()  # locations are compared at organ + side level
    entries = []
    for name in ATTRIBUTE_NAMES:
        values = table.get(name, {})
        if isinstance(values, dict):
            items = list(values.items())
        else:  # [(value, phrase), ...] as query.phrases gives, or bare phrases
            items = [tuple(v) if isinstance(v, (list, tuple)) else (v, v) for v in values]
        entries += [(name, str(value), str(phrase)) for value, phrase in items]
    return entries


class MaleniaSegmenter(LesionSegmenter):
    """A loaded Malenia model: ``predict`` for descriptions, ``find_lesions`` for prompt-free use."""

    capabilities = SPEC.capabilities

    def __init__(self, model: "MaleniaModel", name: str = "malenia", device: str = "cpu"):
        cfg = model.config
        self.model = model.eval()
        self.name = name
        self.version = str(cfg.extra.get("version", "1"))
        self.device = device
        self.preprocessing = PreprocessingConfig(spacing=tuple(cfg.spacing), hu_window=tuple(cfg.hu_window),
                                                 roi_size=tuple(cfg.roi_size))
        self._bank: "AttributeBank | None" = None
        self.read_min_scores(cfg.extra)
        # components whose token score comes near the best one's are kept too [chosen, card]
        self.keep_ratio = float(cfg.component_keep_ratio) if cfg.component_keep_ratio > 0 else 1.0

    def model_input(self, volume: "torch.Tensor") -> "torch.Tensor":
        """The working volume ``(1, 1, K, J, I)``, with the body-frame position channels appended
        (``(1, 4, K, J, I)``) when the model reads positions (``config.position_channels``)."""
        import torch

        if not self.model.config.position_channels:
            return volume
        from ...pipeline.body_frame import body_frame, body_level

        vol = volume[0, 0].detach().cpu().numpy()
        frame = body_frame(vol, body_level(self.model.config.hu_window))
        position = torch.from_numpy(frame.channels((0, 0, 0), vol.shape)).to(volume.dtype)
        return torch.cat([volume.cpu(), position[None]], dim=1)

    @classmethod
    def from_pretrained(cls, weights_dir: Path, device: str = "cpu") -> "MaleniaSegmenter":
        """Load ``model.safetensors`` + ``config.json`` from ``weights_dir``."""
        from .model import MaleniaModel

        model = MaleniaModel.from_pretrained(weights_dir, device="cpu")
        return cls(model, name=Path(weights_dir).name, device=device)

    # ------------------------------------------------------------------ helpers
    @property
    def bank(self) -> "AttributeBank":
        """Stored attribute-value embeddings: the model's own list if it has one, else the query package's."""
        if self._bank is None:
            from .inference import AttributeBank

            entries = [tuple(e) for e in self.model.config.extra.get("bank", [])] or value_bank_entries()
            phrases, values, emb = [], [], []
            for name in ATTRIBUTE_NAMES:
                rows = [e for e in entries if e[0] == name] or [(name, "unspecified", f"unspecified {name.replace('_', ' ')}")]
                phrases.append([r[2] for r in rows])
                values.append([r[1] for r in rows])
                emb.append(self.model.embed_phrases(phrases[-1]).cpu())
            self._bank = AttributeBank(phrases=phrases, values=values, embeddings=emb)
        return self._bank

    def _move(self, device: "torch.device") -> None:
        self.model.to(device)
        self._bank = None if self._bank is None else type(self._bank)(
            self._bank.phrases, self._bank.values, [e.to(device) for e in self._bank.embeddings])

    # ------------------------------------------------------------------ text-guided
    def predict(self, volume: "torch.Tensor", queries: Sequence["LesionQuery"], settings: InferenceSettings,
                progress: ProgressCallback | None = None) -> "torch.Tensor":
        """What the network sees for each description ``(Q, K, J, I)`` on the working grid: every
        window's chosen token through CMKI (the pipeline's selection chooses among the lesions)."""
        return self.candidate_maps(volume, queries, settings, progress)[0]

    def candidate_maps(self, volume: "torch.Tensor", queries: Sequence["LesionQuery"], settings: InferenceSettings,
                       progress: ProgressCallback | None = None) -> "tuple[torch.Tensor, torch.Tensor, torch.Tensor]":
        """``(probability, score, lesions)``: per description the blended map of each window's
        chosen token, and the same times that token's score (σ(object) · agreement with the
        words), which the shared selection averages over each lesion; and, when the weights set a
        ``lesion_prior`` (``extra.selection``), from the same forward passes the prompt-free map
        ``(K, J, I)`` (every lesion whatever the words), which the ``measured`` selection also
        draws candidates from (else ``None``: malenia-demo 0.2.0 sets none, see its card)."""
        import torch

        from ...pipeline.inference import resolve_device, sliding_window_predict
        from ...query import attribute_phrases
        from .heads import head_targets
        from .inference import text_guided_window
        from .phrases import gate_phrases

        if not queries:
            empty = torch.zeros((0,) + tuple(volume.shape[2:]))
            return empty, empty, None
        phrases = [list(attribute_phrases(q)) for q in queries]
        gates = [gate_phrases(q, p) for q, p in zip(queries, phrases)]
        asserted = [asserted_attributes(q) for q in queries]
        emb = torch.stack([self.model.embed_phrases(p) for p in phrases]).cpu()
        gate_emb = torch.stack([self.model.embed_phrases(p) for p in gates]).cpu()
        targets = torch.tensor([head_targets(q) for q in queries], dtype=torch.long)
        state = {"emb": emb, "gate": gate_emb}

        def to_device(device: "torch.device") -> None:
            self._move(device)
            state["emb"], state["gate"] = emb.to(device), gate_emb.to(device)

        with_lesions = bool(self.lesion_prior)

        def window(patch: "torch.Tensor") -> "torch.Tensor":
            return text_guided_window(self.model, patch, state["emb"], gates, asserted, self.bank,
                                      gate_emb=state["gate"], with_score=True, query_targets=targets,
                                      with_lesions=with_lesions)

        to_device(resolve_device(settings.device))
        out = sliding_window_predict(window, self.model_input(volume), self.preprocessing.roi_size, settings, progress,
                                     stage="Malenia: text-guided segmentation", fn_to_device=to_device)
        n = len(queries)
        lesions = out[0, 2 * n].clamp(0, 1).cpu() if with_lesions else None
        return out[0, :n].clamp(0, 1).cpu(), out[0, n : 2 * n].clamp(0, 1).cpu(), lesions

    # ------------------------------------------------------------------ prompt-free
    def find_lesions(self, volume: "torch.Tensor", settings: InferenceSettings,
                     progress: ProgressCallback | None = None) -> list[dict[str, Any]]:
        """Every lesion found with its predicted attributes and lesion type (Malenia steps I-IV)."""
        from ...pipeline.inference import resolve_device, sliding_window_predict
        from .prompt_free import describe_components
        from .inference import prompt_free_window

        def window(patch: "torch.Tensor") -> "torch.Tensor":
            return prompt_free_window(self.model, patch, self.bank)

        self._move(resolve_device(settings.device))
        inputs = self.model_input(volume)
        prob = sliding_window_predict(window, inputs, self.preprocessing.roi_size, settings, progress,
                                      stage="Malenia: finding lesions", fn_to_device=self._move)[0, 0].cpu()
        return describe_components(self, inputs, prob, settings)
