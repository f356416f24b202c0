"""``clipseg``: medvlsm's CLIPSeg baseline, slice by slice (:mod:`.model`)."""

from ..spec import ModelSpec

SPEC = ModelSpec(
    architecture="clipseg",
    segmenter="TextLesionSegLib.models.clipseg.model:CLIPSegSegmenter",
    capabilities={"text"},
    trainer="TextLesionSegLib.models.clipseg.model",
    benchmark_configs=("clipseg_demo", "clipseg_full"),
)
