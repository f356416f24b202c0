"""``interactive``: a click-prompted 3D model that segments or corrects one lesion from positive
and negative points (nnInteractive's design at demo size). See ``docs/models/interactive-demo.md``."""

from ..spec import ModelSpec

SPEC = ModelSpec(
    architecture="interactive",
    segmenter="TextLesionSegLib.models.interactive.segmenter:InteractiveSegmenter",
    capabilities={"clicks"},
    trainer="TextLesionSegLib.models.interactive.training",
)
