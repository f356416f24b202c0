"""Malenia: 3D lesion segmentation by mask-attribute alignment (ICLR 2025), implemented from the paper.

Modules by concern: ``config`` (hyper-parameters, JSON), ``backbone`` (image encoder-decoder giving
F1..F4), ``decoder`` (mask tokens + 3 transformer blocks), ``cmki`` (cross-modal knowledge injection),
``heads`` (attributes as categories, the token choice with "none"), ``model`` (the network and
its training loss), ``inference`` (one window: text-guided and prompt-free), ``prompt_free``
(lesions found, described), ``segmenter`` (the pipeline's ``LesionSegmenter``), ``training`` (the
trainer's model module), ``data`` (cases and descriptions), ``attribute_probe`` (read-out accuracy).
Which lesion a description names is chosen by the pipeline's shared selection (``pipeline.selection``).
Nothing here is imported at package import: torch stays lazy for Slicer.
"""

from ..spec import ModelSpec

SPEC = ModelSpec(
    architecture="malenia",
    segmenter="TextLesionSegLib.models.malenia.segmenter:MaleniaSegmenter",
    capabilities={"text", "prompt_free"},
    preference=1,
    trainer="TextLesionSegLib.models.malenia.training",
    writes_cache=True,
    benchmark_configs=("malenia-demo", "malenia-full"),
)
