"""Report sentences in the style of the Malenia annotation table.

Example of the target style (``../shared/reference/malenia_attributes.csv``):
"Contrast-enhanced CT: An irregular hypodense lesion is seen in the right kidney, with
heterogeneous internal density, indistinct margins, and areas of low attenuation."

Wording is drawn from small synonym lists with the case's random generator, so reports vary
the way radiologists' do while every attribute stays stated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SHAPE_WORDS = {"round-like": ["round-like", "roughly round", "round"], "irregular": ["irregular", "lobulated", "irregularly shaped"]}
DENSITY_WORDS = {"hypodense": ["hypodense", "low-attenuation"], "isodense": ["isodense", "isoattenuating"],
            "hyperdense": ["hyperdense", "high-attenuation"], "mixed": ["mixed-density", "mixed"]}
LUNG_DENSITY_WORDS = {"hypodense": ["ground-glass", "ground-glass"], "isodense": ["solid", "soft-tissue density"],
                 "hyperdense": ["hyperdense", "high-density"], "mixed": ["part-solid", "mixed ground-glass and solid"]}
VARIATION_WORDS = {"homogeneous": ["homogeneous internal density", "uniform internal attenuation"],
              "heterogeneous": ["heterogeneous internal density", "uneven internal attenuation"]}
SURFACE_WORDS = {"well-defined": ["well-defined margins", "clear margins", "sharp margins"],
            "ill-defined": ["ill-defined margins", "indistinct margins", "poorly defined margins"]}
FEATURE_WORDS = {"necrosis": ["areas of low attenuation", "internal hypodense areas"],
            "calcification": ["calcified foci", "internal calcifications"],
            "cavitation": ["cavitation", "an internal cavity"],
            "rim enhancement": ["rim enhancement", "peripheral enhancement"]}
_PHASE = {"contrast-enhanced": "Contrast-enhanced CT", "non-contrast": "Non-contrast CT"}


def location_phrase(attrs: dict[str, Any]) -> str:
    """Where the lesion is, e.g. "the right kidney", "the left upper lobe", "the pancreatic head"."""
    organ, side, sub = attrs.get("organ"), attrs.get("side"), attrs.get("sub_location")
    if organ == "lung":
        if sub:
            return f"the {side + ' ' if side else ''}{sub}" + ("" if sub.endswith("lobe") else " of the lung")
        return f"the {side + ' ' if side else ''}lung"
    if organ == "liver":
        return f"the {sub.replace(' lobe', '')} hepatic lobe" if sub else "the liver"
    if organ == "pancreas":
        return f"the pancreatic {sub}" if sub else "the pancreas"
    if organ == "colon":
        return f"the {sub}" if sub else "the colon"
    return f"the {side + ' ' if side else ''}{organ}"


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _article(word: str) -> str:
    return "An" if word[0].lower() in "aeiou" else "A"


def make_report(attrs: dict[str, Any], rng: np.random.Generator) -> str:
    """One report for one lesion; states all eight attributes that were synthesised."""
    lung = attrs.get("organ") == "lung"
    noun = "nodule" if lung and max(attrs.get("size_mm") or [0]) < 30 else ("mass" if lung else "lesion")
    shape = _pick(rng, SHAPE_WORDS[attrs["shape"]])
    density = _pick(rng, (LUNG_DENSITY_WORDS if lung else DENSITY_WORDS)[attrs["density"]])
    where = location_phrase(attrs)
    phase = _PHASE.get(attrs.get("enhancement") or "", "CT")
    details = [_pick(rng, VARIATION_WORDS[attrs["density_variation"]]), _pick(rng, SURFACE_WORDS[attrs["surface"]])]
    details += [_pick(rng, FEATURE_WORDS[f]) for f in attrs.get("specific_features", []) if f in FEATURE_WORDS]
    listed = " and ".join(details) if len(details) <= 2 else ", ".join(details[:-1]) + ", and " + details[-1]
    head = f"{shape} {density} {noun}"
    if rng.random() < 0.5:
        text = f"{phase}: {_article(head)} {head} is seen in {where}, with {listed}."
    else:
        text = f"{phase} shows {_article(head).lower()} {head} in {where} with {listed}."
    if attrs.get("relation") == "closely related":
        other = attrs.get("related_organ") or "adjacent structures"
        text += f" The lesion is closely related to the {other}, with poorly defined borders."
    elif rng.random() < 0.5:
        text += " No close relationship with adjacent organs."
    return text
