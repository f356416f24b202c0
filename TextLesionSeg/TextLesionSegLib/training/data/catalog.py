"""Lesion types, attribute vocabularies and how attributes are sampled.

Canonical attribute values are those of :class:`TextLesionSegLib.query.types.LesionQuery`;
lesion-type names are those of the query knowledge table (``query/knowledge_table.json``).
Priors per lesion type are [chosen] from the radiology of each lesion and the frequencies in
the Malenia annotation table (e.g. renal cell carcinoma: mostly irregular, heterogeneous,
ill-defined; renal cyst: round-like, hypodense, homogeneous, well-defined).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...query.agreement import CODES

SHAPES = ("round-like", "irregular")
DENSITIES = ("hypodense", "isodense", "hyperdense", "mixed")
VARIATIONS = ("homogeneous", "heterogeneous")
SURFACES = ("well-defined", "ill-defined")
ENHANCEMENTS = ("non-contrast", "contrast-enhanced")
RELATIONS = ("not closely related", "closely related")
#: specific features the synthesiser can draw (each measurable: see ``measure.py``); names are the
#: query vocabulary's canonical ones (``query/vocabulary.py``), which has no "rim enhancement"
FEATURES = ("calcification", "cavitation", "necrosis", "rim enhancement")

#: attributes a caller (or the benchmark definition) may fix
CONTROLLABLE = ("shape", "density", "density_variation", "surface", "relation", "specific_features",
                "side", "sub_location", "size_mm")


@dataclass(frozen=True)
class LesionType:
    """A lesion type with its organ and attribute priors.

    Attributes:
        name: e.g. "renal cell carcinoma".
        organ: organ name as in the hosts' parts ("kidney", "lung", ...).
        size_mm: range of the nominal diameter.
        priors: attribute -> {value: weight}.
        features: feature -> probability.
    """

    name: str
    organ: str
    size_mm: tuple[float, float]
    priors: dict[str, dict[str, float]]
    features: dict[str, float] = field(default_factory=dict)


def _p(**kw: dict[str, float]) -> dict[str, dict[str, float]]:
    return kw


LESION_TYPES: dict[str, LesionType] = {t.name: t for t in (
    LesionType("lung cancer", "lung", (18, 45), _p(
        shape={"irregular": 0.8, "round-like": 0.2}, density={"isodense": 0.6, "mixed": 0.3, "hyperdense": 0.1},
        density_variation={"heterogeneous": 0.6, "homogeneous": 0.4}, surface={"ill-defined": 0.7, "well-defined": 0.3},
        relation={"closely related": 0.4, "not closely related": 0.6}), {"cavitation": 0.15, "necrosis": 0.15}),
    LesionType("lung nodule", "lung", (10, 22), _p(
        shape={"round-like": 0.85, "irregular": 0.15}, density={"isodense": 0.6, "hyperdense": 0.3, "hypodense": 0.1},
        density_variation={"homogeneous": 0.8, "heterogeneous": 0.2}, surface={"well-defined": 0.85, "ill-defined": 0.15},
        relation={"not closely related": 0.85, "closely related": 0.15}), {"calcification": 0.2}),
    LesionType("lung metastasis", "lung", (8, 25), _p(
        shape={"round-like": 0.8, "irregular": 0.2}, density={"isodense": 0.8, "hyperdense": 0.2},
        density_variation={"homogeneous": 0.7, "heterogeneous": 0.3}, surface={"well-defined": 0.7, "ill-defined": 0.3},
        relation={"not closely related": 0.8, "closely related": 0.2})),
    LesionType("hepatocellular carcinoma", "liver", (20, 60), _p(
        shape={"irregular": 0.7, "round-like": 0.3}, density={"hypodense": 0.6, "hyperdense": 0.2, "mixed": 0.2},
        density_variation={"heterogeneous": 0.8, "homogeneous": 0.2}, surface={"ill-defined": 0.7, "well-defined": 0.3},
        relation={"not closely related": 0.85, "closely related": 0.15}), {"necrosis": 0.3, "rim enhancement": 0.2}),
    LesionType("liver cyst", "liver", (10, 40), _p(
        shape={"round-like": 0.9, "irregular": 0.1}, density={"hypodense": 1.0},
        density_variation={"homogeneous": 1.0}, surface={"well-defined": 1.0},
        relation={"not closely related": 0.9, "closely related": 0.1})),
    LesionType("liver metastasis", "liver", (10, 35), _p(
        shape={"round-like": 0.6, "irregular": 0.4}, density={"hypodense": 0.8, "isodense": 0.1, "hyperdense": 0.1},
        density_variation={"homogeneous": 0.5, "heterogeneous": 0.5}, surface={"ill-defined": 0.5, "well-defined": 0.5},
        relation={"not closely related": 0.9, "closely related": 0.1}), {"rim enhancement": 0.3}),
    LesionType("renal cell carcinoma", "kidney", (20, 55), _p(
        shape={"irregular": 0.7, "round-like": 0.3}, density={"hypodense": 0.45, "hyperdense": 0.3, "isodense": 0.15, "mixed": 0.1},
        density_variation={"heterogeneous": 0.75, "homogeneous": 0.25}, surface={"ill-defined": 0.8, "well-defined": 0.2},
        relation={"not closely related": 0.7, "closely related": 0.3}), {"necrosis": 0.4, "calcification": 0.1}),
    LesionType("renal cyst", "kidney", (10, 35), _p(
        shape={"round-like": 0.85, "irregular": 0.15}, density={"hypodense": 1.0},
        density_variation={"homogeneous": 1.0}, surface={"well-defined": 1.0},
        relation={"not closely related": 0.9, "closely related": 0.1})),
    LesionType("pancreatic adenocarcinoma", "pancreas", (15, 35), _p(
        shape={"irregular": 0.85, "round-like": 0.15}, density={"hypodense": 0.8, "isodense": 0.2},
        density_variation={"heterogeneous": 0.6, "homogeneous": 0.4}, surface={"ill-defined": 0.8, "well-defined": 0.2},
        relation={"not closely related": 0.6, "closely related": 0.4}), {"necrosis": 0.2}),
    LesionType("pancreatic cyst", "pancreas", (10, 25), _p(
        shape={"round-like": 0.9, "irregular": 0.1}, density={"hypodense": 1.0},
        density_variation={"homogeneous": 1.0}, surface={"well-defined": 1.0},
        relation={"not closely related": 1.0})),
    LesionType("colorectal cancer", "colon", (20, 45), _p(
        shape={"irregular": 0.9, "round-like": 0.1}, density={"isodense": 0.5, "hyperdense": 0.3, "hypodense": 0.2},
        density_variation={"heterogeneous": 0.6, "homogeneous": 0.4}, surface={"ill-defined": 0.6, "well-defined": 0.4},
        relation={"not closely related": 0.6, "closely related": 0.4}), {"necrosis": 0.2}),
    LesionType("splenic lesion", "spleen", (12, 40), _p(
        shape={"round-like": 0.7, "irregular": 0.3}, density={"hypodense": 0.9, "hyperdense": 0.1},
        density_variation={"homogeneous": 0.6, "heterogeneous": 0.4}, surface={"well-defined": 0.6, "ill-defined": 0.4},
        relation={"not closely related": 0.9, "closely related": 0.1})),
)}


def lesion_types_for_organs(organs) -> list[str]:
    """Lesion type names whose organ is in ``organs``."""
    return [n for n, t in LESION_TYPES.items() if t.organ in set(organs)]


def _draw(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.asarray([weights[n] for n in names], float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_attributes(lesion_type: str, rng: np.random.Generator, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Draw a consistent attribute set for ``lesion_type``; values in ``fixed`` win.

    Consistency rules: mixed density and any calcified focus, cavitation or necrosis imply a
    heterogeneous lesion; cavitation exists only in the lung; rim enhancement needs contrast
    (checked later against the host phase).
    """
    t = LESION_TYPES[lesion_type]
    fixed = dict(fixed or {})
    out: dict[str, Any] = {"lesion_type": t.name, "organ": t.organ}
    for attr in ("shape", "density", "density_variation", "surface", "relation"):
        out[attr] = fixed[attr] if attr in fixed else _draw(rng, t.priors[attr])
    feats = list(fixed["specific_features"]) if "specific_features" in fixed else \
        [f for f, p in t.features.items() if rng.random() < p]
    if "cavitation" in feats and t.organ != "lung":
        feats.remove("cavitation")
    textured = ("calcification", "cavitation", "necrosis")
    if fixed.get("density_variation") == "homogeneous":
        if out["density"] == "mixed":
            raise ValueError("a mixed-density lesion cannot be homogeneous")
        if "specific_features" not in fixed:
            feats = [f for f in feats if f not in textured]
    elif out["density"] == "mixed" or any(f in feats for f in textured):
        out["density_variation"] = "heterogeneous"
    out["specific_features"] = sorted(feats)
    size = fixed.get("size_mm")
    if size is None:
        d = float(rng.uniform(*t.size_mm))
        size = [round(d, 1), round(d * float(rng.uniform(0.7, 0.95)), 1)]
    out["size_mm"] = [float(v) for v in size]
    for key in ("side", "sub_location"):
        if fixed.get(key) is not None:
            out[key] = fixed[key]
    return out


#: Malenia annotation-table codes -> canonical values (one code book, kept beside the parser's
#: agreement measurement that reads the same table)
MALENIA_CODES: dict[str, dict[str, str]] = CODES

#: Malenia location codes per organ -> (side, sub_location)
MALENIA_LOCATION: dict[str, dict[str, tuple[str | None, str | None]]] = {
    "kidney": {"1": ("left", None), "2": ("right", None)},
    "liver": {"1": ("left", "left lobe"), "2": ("right", "right lobe")},
    "pancreas": {"1": (None, "head"), "2": (None, "body"), "3": (None, "tail")},
    "colon": {"1": ("right", "ascending colon"), "2": (None, "transverse colon"), "3": ("left", "descending colon"),
              "4": ("left", "sigmoid colon"), "5": (None, "rectum")},
    "lung": {"1": ("left", "upper lobe"), "2": ("left", "lower lobe"), "3": ("right", "upper lobe"),
             "4": ("right", "middle lobe"), "5": ("right", "lower lobe")},
}
