"""``unet``: the image-only baseline, a MONAI 3D UNet that ignores the text (:mod:`.model`)."""

from ..spec import ModelSpec

SPEC = ModelSpec(
    architecture="unet",
    segmenter="TextLesionSegLib.models.unet.model:UNetSegmenter",
    capabilities={"text", "prompt_free"},  # it answers any text, the same way
    trainer="TextLesionSegLib.models.unet.model",
    benchmark_configs=("unet_demo", "unet_full"),
)
