"""LSMS configuration: one dataclass, saved as ``config.json`` next to ``model.safetensors``.

Every value the paper leaves open is a field here with its default; ``docs/models/lsms.md``
marks each as [paper] or [chosen]. Two presets: :func:`full_config` (the paper-sized network,
BERT) and :func:`demo_config` (small, CPU-trainable, offline MiniLM text encoder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: hub id of the full configuration's text model [chosen: PAPERS.md §2 "bert-base-uncased"]
BERT_BASE = "bert-base-uncased"
#: name understood by ``models.text_encoders`` for the offline all-MiniLM-L6-v2 copy
MINILM = "all-MiniLM-L6-v2"


@dataclass
class LSMSConfig:
    """Hyper-parameters of the network, its inputs, its losses and its 3D read-out.

    Attributes:
        embed_dims: channels of encoder stages 1..4 ([chosen] 64/128/320/512, SegNeXt-B widths).
        depths: SVLA blocks per stage.
        mlp_ratios: hidden width factor of each stage's convolutional feed-forward network.
        attn_heads: heads of the pixel-word cross-attention per stage.
        strip_kernels: lengths of the strip convolutions (1xk then kx1) of the conv branch.
        square_kernel: depth-wise square kernel of the conv branch (5 -> 5x5).
        decoder_dim: channels of the Full-Scale Decoder.
        decoder_layers: transformer layers of the global cross-scale modelling.
        decoder_heads: heads of that self-attention.
        decoder_fuse: the FSD's 3x3 fusion convolution: "conv" (dense) or "separable"
            (depth-wise 3x3 + point-wise 1x1, ~9x fewer FLOPs at stride 4) [chosen].
        global_stride: the multi-scale tokens P2..P4 are pooled to this input stride before
            global attention (their count, not their channels, is what costs).
        embed_dim: width of the shared space of the vision-language contrastive loss.
        temperature: initial temperature of that loss (learnable).
        text_model: text encoder name for ``models.text_encoders`` (hub id or offline name).
        text_dim: width of its word features (768 BERT-base, 384 MiniLM).
        text_max_length: tokens kept per sentence (padding masked).
        finetune_text: train the text encoder too (otherwise frozen, not saved with the weights).
        context_slices: neighbouring slices on each side fed as channels (1 -> 3 channels).
        position_channels: also feed the body-frame coordinates (x left-right, y front-back, z
            head-foot, ``pipeline.body_frame``) as 3 channels, so a crop knows where in the patient
            it lies and "left"/"right" become readable [chosen, issue 16; off = the paper's input].
        hu_window: HU range the pipeline maps to 0..1 (wide, so lungs keep their contrast).
        extra_windows: narrower HU windows the model derives from that input as more channels
            (soft tissue), so one preprocessing serves chest and abdomen.
        spacing: working voxel size (I, J, K) in mm.
        slice_size: rows and columns of a training crop (inference takes the whole slice).
        dice_weight, bce_weight, contrastive_weight: loss weights.
        bce_pos_weight: weight of lesion pixels in the BCE (lesions are ~0.2% of a slice).
        presence_weight: weight of the slice-level "is the described lesion here" loss
            (:func:`.losses.presence_loss`) [chosen, issue 16; 0 = the paper's loss].
        objectness_weight: > 0 adds a second output, **every lesion on the slice whatever the
            words** (Dice + BCE against the union of all lesions), trained at this weight: the
            text-free lesion map the shared selection draws extra candidates from in its
            ``measured`` mode [chosen, issue 16; 0 = the paper's network, no such output].
        contrastive_negatives: background pixels per image used as negatives (hardest first).
        threshold: probability above which a voxel belongs to a candidate lesion.
        min_candidate_mm3: smaller 3D candidates are dropped as specks.
    """

    embed_dims: tuple[int, int, int, int] = (64, 128, 320, 512)
    depths: tuple[int, int, int, int] = (2, 2, 4, 2)
    mlp_ratios: tuple[int, int, int, int] = (8, 8, 4, 4)
    attn_heads: tuple[int, int, int, int] = (1, 2, 5, 8)
    strip_kernels: tuple[int, ...] = (7, 11, 21)
    square_kernel: int = 5
    decoder_dim: int = 256
    decoder_layers: int = 1
    decoder_heads: int = 8
    decoder_fuse: str = "conv"
    global_stride: int = 32
    embed_dim: int = 128
    temperature: float = 0.07
    text_model: str = BERT_BASE
    text_dim: int = 768
    text_max_length: int = 40
    finetune_text: bool = False
    context_slices: int = 1
    position_channels: bool = False
    hu_window: tuple[float, float] = (-1000.0, 400.0)
    extra_windows: tuple[tuple[float, float], ...] = ((-175.0, 250.0),)
    spacing: tuple[float, float, float] = (0.8, 0.8, 2.5)
    slice_size: int = 512
    dice_weight: float = 1.0
    bce_weight: float = 1.0
    bce_pos_weight: float = 10.0
    contrastive_weight: float = 0.1
    presence_weight: float = 0.0
    objectness_weight: float = 0.0
    contrastive_negatives: int = 256
    threshold: float = 0.5
    min_candidate_mm3: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- derived -----------------------------------------------------------------------
    @property
    def slice_channels(self) -> int:
        """Slices fed per sample: the centre one and its neighbours."""
        return 2 * self.context_slices + 1

    @property
    def in_channels(self) -> int:
        """Channels entering the vision embedding block (slices x windows, + 3 positions)."""
        return self.slice_channels * (1 + len(self.extra_windows)) + (3 if self.position_channels else 0)

    # ---- JSON --------------------------------------------------------------------------
    def __post_init__(self) -> None:
        if self.decoder_fuse not in ("conv", "separable"):
            raise ValueError(f"decoder_fuse must be 'conv' or 'separable', not '{self.decoder_fuse}'")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LSMSConfig":
        """Inverse of :meth:`to_dict`; unknown keys are refused so typos do not pass silently."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names - {"architecture"}
        if unknown:
            raise ValueError(f"unknown LSMS config keys: {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "architecture":
                continue
            if key == "extra_windows":
                value = tuple(tuple(float(v) for v in w) for w in value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)


def full_config(**overrides: Any) -> LSMSConfig:
    """The paper-sized network: 64/128/320/512 channels, BERT-base text encoder."""
    return LSMSConfig(**overrides)


def demo_config(**overrides: Any) -> LSMSConfig:
    """A small network that trains on 2 CPU cores, with the offline MiniLM text encoder."""
    base: dict[str, Any] = dict(
        embed_dims=(16, 32, 64, 128),
        depths=(1, 1, 2, 1),
        mlp_ratios=(4, 4, 4, 4),
        attn_heads=(1, 1, 2, 4),
        decoder_dim=64,
        decoder_heads=4,
        global_stride=32,
        embed_dim=64,
        text_model=MINILM,
        text_dim=384,
        text_max_length=32,
        spacing=(1.6, 1.6, 5.0),
        # 160 px = 256 mm: lesions are ~0.5% of a crop rather than ~0.2% of a whole slice,
        # which is what got the demo model past its all-background start within CPU minutes.
        slice_size=160,
    )
    base.update(overrides)
    return LSMSConfig(**base)


def tiny_config(**overrides: Any) -> LSMSConfig:
    """The smallest sensible network, for tests (seconds to train)."""
    base: dict[str, Any] = dict(
        embed_dims=(8, 16, 24, 32),
        depths=(1, 1, 1, 1),
        mlp_ratios=(2, 2, 2, 2),
        attn_heads=(1, 1, 1, 2),
        strip_kernels=(7, 11),
        decoder_dim=16,
        decoder_heads=2,
        global_stride=16,
        embed_dim=16,
        text_model=MINILM,
        text_dim=384,
        text_max_length=16,
        slice_size=64,
    )
    base.update(overrides)
    return LSMSConfig(**base)
