"""LSMS — Language-guided Scale-aware MedSegmentor (arXiv 2408.17347), implemented from the paper.

Referring lesion segmentation: a sentence picks the one lesion it describes. The network works
on 2D axial slices (neighbouring slices as channels); the pipeline's shared selection
(``pipeline.candidates``, ``pipeline.selection``) lifts its slice answers to one 3D lesion.
Modules, by concern:

* :mod:`.config` — :class:`LSMSConfig` (full and demo presets, every [chosen] default).
* :mod:`.svla` — Scale-aware Vision-Language Attention (conv branch ‖ pixel-word attention, gated).
* :mod:`.encoder` — vision embedding block and the 4-stage language-guided encoder (F1..F4).
* :mod:`.decoder` — the Full-Scale Decoder (Position Alignment + global cross-scale attention).
* :mod:`.model` — :class:`LSMSModel`: text features + slices -> mask logits; save/load.
* :mod:`.losses` — Dice, BCE and the vision-language contrastive loss.
* :mod:`.training` — the trainer protocol (``build_model``/``build_datasets``/``evaluate_batch``).
* :mod:`.segmenter` — :class:`LSMSSegmenter`, the pipeline's ``LesionSegmenter``.
* :mod:`.slices` — referring slice samples (training data on the working grid).
* :mod:`.complexity` — cost table, per-slice latency (referring accuracy: ``evaluation.referring``).

Nothing here imports torch at package import time (Slicer loads packages before torch exists).
"""

from ..spec import ModelSpec

#: preference 0: its demo weights are the ones that work measurably (lung2 Dice 0.61 vs Malenia's
#: 0.00, SynthLesion seen 0.46 vs 0.20; docs/evaluation.md): reorder when better Malenia weights ship
SPEC = ModelSpec(
    architecture="lsms",
    segmenter="TextLesionSegLib.models.lsms.segmenter:LSMSSegmenter",
    capabilities={"text"},
    preference=0,
    trainer="TextLesionSegLib.models.lsms.training",
    writes_cache=True,
    benchmark_configs=("lsms-demo", "lsms-full"),
)
