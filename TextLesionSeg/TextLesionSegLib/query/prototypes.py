"""Similarity prototypes: general sentences for each attribute value, for the text-encoder
fallback (:mod:`.similarity`). Written from radiology teaching, not from any coded file, and
frozen (docs/query.md, "Generalisation"); every fold keeps them (the fallback fires on no coded
report, so no figure depends on them).

Only the attributes whose wording varies most are read by similarity: a phrase the rules did not
place is compared with every prototype of every value of its attribute.
"""

from __future__ import annotations

#: attribute -> value -> example sentences
PROTOTYPES: dict[str, dict[str, tuple[str, ...]]] = {
    "surface": {
        "well-defined": (
            "the margins are well defined", "sharp smooth borders", "clear boundary with the surrounding tissue",
            "well circumscribed lesion", "the outline is smooth and distinct", "a crisp interface",
            "smooth serosal surface", "the edge is clearly demarcated",
        ),
        "ill-defined": (
            "the margins are ill defined", "blurred indistinct borders", "unclear boundary with the surrounding tissue",
            "poorly circumscribed lesion", "the outline is rough and irregular", "an infiltrative interface",
            "rough irregular serosal surface", "spiculated margins", "fuzzy hazy edges", "the edge cannot be delineated",
        ),
    },
    "density_variation": {
        "homogeneous": (
            "homogeneous internal density", "uniform attenuation throughout", "even texture", "the contents are uniform",
            "no internal components", "a simple fluid content",
        ),
        "heterogeneous": (
            "heterogeneous internal density", "non-uniform attenuation", "mixed internal texture",
            "areas of necrosis inside", "patchy internal attenuation", "internal components of different density",
            "the contents are uneven", "cystic and solid parts",
        ),
    },
    "shape": {
        "round-like": ("round lesion", "oval shape", "spherical mass", "ovoid configuration", "circular outline"),
        "irregular": ("irregular shape", "lobulated mass", "bizarre configuration", "wedge-shaped lesion",
                      "irregularly shaped infiltrating mass"),
    },
}

#: words that say a phrase speaks about an attribute (a cue found where the rules placed no value)
CUES: dict[str, str] = {
    "surface": r"\b(?:margins?|borders?|boundar(?:y|ies)|edges?|outlines?|interfaces?|demarcation|surfaces?|serosa\w*|contours?)\b",
    "density_variation": r"\b(?:texture|internal|interior|contents?|inside|components?|homogene\w*|heterogene\w*|uniform\w*)\b",
    "shape": r"\b(?:shape[ds]?|configuration|morpholog\w*|form)\b",
}

HOLDOUT_TABLES = ()
