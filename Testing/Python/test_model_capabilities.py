"""What a model says it can do (``LesionSegmenter.capabilities``) is what it implements: the click
path and the prompt-free path ask the declaration, never an architecture's name."""

from __future__ import annotations

import pytest

from TextLesionSegLib.models.base import LesionSegmenter
from TextLesionSegLib.models.registry import ARCHITECTURES, Registry

KNOWN = {"text", "prompt_free", "clicks"}


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_declared_capabilities_match_the_methods_each_model_overrides(architecture, tmp_path):
    cls = Registry([], cache_dir=tmp_path).segmenter_class(architecture)
    caps = set(cls.capabilities)
    assert caps and caps <= KNOWN, caps
    assert ("prompt_free" in caps) == (cls.find_lesions is not LesionSegmenter.find_lesions), architecture
    assert ("clicks" in caps) == (cls.refine is not LesionSegmenter.refine), architecture


def test_the_click_baseline_declares_clicks_only():
    from TextLesionSegLib.models.interactive.region_grow import RegionGrowSegmenter

    assert RegionGrowSegmenter.capabilities == {"clicks"}
    assert RegionGrowSegmenter.refine is not LesionSegmenter.refine
