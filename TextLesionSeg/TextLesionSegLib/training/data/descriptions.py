"""Descriptions as a radiologist types them: of one lesion, and of lesions a scan does not hold.

Training gives the words a job (issue 16): a sample pairs an image with a description of a
lesion in view, of a lesion elsewhere in the case, or of a lesion that is not there, and the
target is that lesion's mask or nothing. This module writes those descriptions from attributes:

- :func:`describe` states a chosen set of attributes in varied phrasing (templates, nouns,
  synonyms from the report writer, sizes in mm or cm, report sentences);
- :func:`distinguishing_keys` picks attributes that make a description fit one lesion of a case
  and no other (what a referring sentence must say);
- :func:`absent_descriptions` writes contrasting descriptions — a lesion of the case with its
  side, density, shape, margin, size or organ changed — that fit no lesion of the case.

What a description *states* is kept beside its text as a dict (``stated``), so a training
sample knows which lesions it fits. Every phrasing here parses back (``query.parse_text``) to the
values it states (``test_descriptions.py``). The demo's evaluation prompts (:data:`HELD_OUT`) are
never produced, so lung2 measures reading, not recall of a training template [chosen].
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from .report import DENSITY_WORDS, LUNG_DENSITY_WORDS, SHAPE_WORDS, SURFACE_WORDS, VARIATION_WORDS, make_report

#: prompts used to measure the shipped models on held-out data: never generated for training
HELD_OUT: frozenset[str] = frozenset({"a mass in the left lung", "a mass in the right lung"})
#: attributes a description may state, in the order adjectives are written
STATABLE = ("organ", "side", "sub_location", "size_mm", "shape", "density", "density_variation", "surface")
#: attributes whose contrasting value makes a description of a lesion that is not there
CONTRASTS = ("side", "density", "shape", "surface", "size_mm", "organ")
#: two sizes "agree" within this factor of their longest diameters [chosen]
SIZE_TOLERANCE = 1.6
#: sizes changed by this factor make a contrasting size
SIZE_CONTRAST = 2.5

_NOUNS = {"lung": ("nodule", "mass", "lesion", "opacity", "tumour"), "liver": ("lesion", "mass", "nodule"),
          "kidney": ("lesion", "mass", "tumour"), "pancreas": ("lesion", "mass"), "colon": ("mass", "lesion", "tumour"),
          "spleen": ("lesion", "nodule")}
_DENSITY_CHOICES = ("hypodense", "isodense", "hyperdense")
_LOWER = {"hypodense": ["hypodense", "low-attenuation", "low-density", "hypoattenuating"],
          "isodense": ["isodense", "isoattenuating"],
          "hyperdense": ["hyperdense", "high-attenuation", "high-density", "hyperattenuating"],
          "mixed": ["mixed-density", "part-solid"]}
_PREDICATE_SURFACE = {"well-defined": ["well-defined", "well circumscribed", "sharply marginated"],
                      "ill-defined": ["ill-defined", "poorly defined", "indistinct"]}


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip(" .")


def _largest_mm(size: Any) -> float | None:
    if size in (None, "", []):
        return None
    if isinstance(size, str):
        nums = [float(v) for v in re.findall(r"\d+(?:\.\d+)?", size)]
        return max(nums) if nums else None
    return float(max(size))


def fits(stated: dict[str, Any], attrs: dict[str, Any]) -> bool:
    """Whether a lesion with ``attrs`` fits every stated value (sizes within
    :data:`SIZE_TOLERANCE`; a sub-location counts only where the lesion has one)."""
    for key, value in stated.items():
        if key == "size_mm":
            have, want = _largest_mm(attrs.get("size_mm")), _largest_mm(value)
            if have is None or want is None or max(have, want) / max(min(have, want), 1e-6) > SIZE_TOLERANCE:
                return False
        elif key == "sub_location":
            if attrs.get("sub_location") and attrs.get("sub_location") != value:
                return False
        elif (attrs.get(key) or None) != (value or None):
            return False
    return True


def _location(stated: dict[str, Any], rng: np.random.Generator) -> str | None:
    organ, side, sub = stated.get("organ"), stated.get("side"), stated.get("sub_location")
    if not organ:
        return None  # data that names no organ: the description names no place
    s = f"{side} " if side else ""
    if organ == "lung":
        if sub:
            lobe = sub.replace("left ", "").replace("right ", "")
            return _pick(rng, [f"the {s}{lobe}", f"the {lobe} of the {s}lung"])
        return _pick(rng, [f"the {s}lung", f"the {s}lung field"])
    if organ == "liver":
        if side:
            return _pick(rng, [f"the {side} hepatic lobe", f"the {side} lobe of the liver", f"the {side} liver lobe"])
        return "the liver"
    if organ == "kidney":
        return _pick(rng, [f"the {s}kidney"]) if side else "the kidney"
    if organ == "pancreas":
        return _pick(rng, [f"the pancreatic {sub}", f"the {sub} of the pancreas"]) if sub else "the pancreas"
    if organ == "colon":
        return f"the {sub}" if sub else "the colon"
    return f"the {s}{organ}"


def _size_text(size: Any, rng: np.random.Generator) -> str:
    d = _largest_mm(size) or 10.0
    if rng.random() < 0.5:
        return f"{d / 10:.1f} cm"
    return f"{int(round(d))} mm"


def describe(attrs: dict[str, Any], stated_keys: Sequence[str], rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
    """A description of a lesion with ``attrs`` stating the attributes ``stated_keys`` (organ is
    always stated, the side with it where the organ has one). Returns ``(text, stated)``."""
    keys = set(stated_keys) | {"organ"}
    stated = {k: attrs.get(k) for k in STATABLE if k in keys and attrs.get(k) not in (None, "", [])}
    if attrs.get("organ") == "liver":
        stated.pop("sub_location", None)  # the lobe is the side: "right hepatic lobe"
    for _ in range(8):
        text = _draft(attrs, stated, rng)
        if _norm(text) not in HELD_OUT:
            return text, stated
    return text + ".", stated  # a held-out prompt said ten times over: make it differ


def _draft(attrs: dict[str, Any], stated: dict[str, Any], rng: np.random.Generator) -> str:
    organ = stated.get("organ") or "lung"
    lung = organ == "lung"
    if set(stated) >= {"shape", "density", "density_variation", "surface"} and rng.random() < 0.3:
        # a report sentence states everything (no relation sentence, no specific features)
        full = dict(attrs, relation="not closely related", specific_features=[])
        return make_report(full, rng).split(" No close")[0]
    adjectives = []
    if "shape" in stated:
        adjectives.append(_pick(rng, SHAPE_WORDS[stated["shape"]]))
    if "density" in stated:
        words = (LUNG_DENSITY_WORDS if lung and rng.random() < 0.4 else _LOWER)[stated["density"]]
        adjectives.append(_pick(rng, [w for w in words if w != "solid"] or words))
    noun = _pick(rng, _NOUNS.get(organ, ("lesion", "mass")))
    where = _location(stated, rng)
    size = _size_text(stated["size_mm"], rng) if "size_mm" in stated else ""
    extras = []
    if "density_variation" in stated:
        extras.append(_pick(rng, VARIATION_WORDS[stated["density_variation"]]))
    if "surface" in stated:
        extras.append(_pick(rng, SURFACE_WORDS[stated["surface"]]))
    article = "an" if (adjectives or [noun])[0][0] in "aeiou" else "a"
    head = " ".join(adjectives + [noun])
    if where is None:
        text = f"{article} {head}" + (f", {size}" if size else "")
        return text + (", with " + " and ".join(extras) if extras else "")
    template = int(rng.integers(6))
    if template == 0:
        text = f"{article} {head} in {where}"
    elif template == 1:
        text = f"{where[0].upper() + where[1:]}: {head}"
    elif template == 2:
        text = f"there is {article} {head} in {where}"
    elif template == 3:
        text = f"{head} in {where}"
    elif template == 4:
        text = f"{_pick(rng, ['the', article])} {head} seen in {where}"
    else:
        text = f"{noun} in {where}" + (", " + " and ".join(adjectives) if adjectives else "")
    if size:
        text = f"{size} {text}" if template == 3 else f"{text}, {size}"
    if extras:
        text += ", with " + " and ".join(extras)
    return text


def distinguishing_keys(target: dict[str, Any], others: Sequence[dict[str, Any]], rng: np.random.Generator
                        ) -> list[str] | None:
    """Attributes to state so that a description fits ``target`` and none of ``others``: a random
    order of the statable attributes, taken until no other lesion fits (None if none can)."""
    order = [k for k in ("side", "density", "shape", "size_mm", "surface", "density_variation")
             if target.get(k) not in (None, "", [])]
    rng.shuffle(order)
    keys = ["organ"]
    stated = {"organ": target.get("organ")}
    for key in order:
        if not any(fits(stated, o) for o in others):
            break
        keys.append(key)
        stated[key] = target.get(key)
    if any(fits(stated, o) for o in others):
        return None
    return keys


def _contrast_value(key: str, attrs: dict[str, Any], rng: np.random.Generator, organs: Sequence[str]) -> Any:
    value = attrs.get(key)
    if key == "side":
        return {"left": "right", "right": "left"}.get(value)
    if key == "density":
        options = [d for d in _DENSITY_CHOICES if d != value]
        return _pick(rng, options)
    if key == "shape":
        return {"round-like": "irregular", "irregular": "round-like"}.get(value)
    if key == "surface":
        return {"well-defined": "ill-defined", "ill-defined": "well-defined"}.get(value)
    if key == "size_mm":
        d = _largest_mm(value)
        if d is None:
            return None
        new = d * SIZE_CONTRAST if d * SIZE_CONTRAST <= 70 or d / SIZE_CONTRAST < 6 else d / SIZE_CONTRAST
        return [round(new, 1)]
    if key == "organ":
        options = [o for o in organs if o != value]
        return _pick(rng, options) if options else None
    return None


def absent_descriptions(lesions: Sequence[dict[str, Any]], rng: np.random.Generator, count: int,
                        organs: Sequence[str] = ()) -> list[tuple[str, dict[str, Any]]]:
    """Up to ``count`` descriptions ``(text, stated)`` that fit none of ``lesions`` (attribute
    dicts of one case): a lesion of the case with one value (sometimes two) changed to a
    contrasting one. ``organs``: organs of the scan a lesion-free organ may be named from."""
    out: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for _ in range(count * 6):
        if len(out) >= count or not lesions:
            break
        base = dict(lesions[int(rng.integers(len(lesions)))])
        keys = [k for k in CONTRASTS if _contrast_value(k, base, rng, organs) is not None]
        if not keys:
            continue
        changed = list(rng.choice(keys, size=min(len(keys), 1 + int(rng.random() < 0.25)), replace=False))
        for key in changed:
            base[key] = _contrast_value(key, base, rng, organs)
        if "organ" in changed:  # another organ: its own side and sub-location are not known
            base["sub_location"] = None
            base["side"] = base["side"] if base["organ"] in ("lung", "kidney") else None
        extra = [k for k in ("density", "shape", "surface", "side") if k not in changed and rng.random() < 0.4]
        text, stated = describe(base, changed + extra, rng)
        if any(fits(stated, les) for les in lesions) or _norm(text) in seen:
            continue
        seen.add(_norm(text))
        out.append((text, stated))
    return out


def case_organs(case: Any) -> list[str]:
    """Organs of a case's scan: its synthetic host's (``host`` attribute), else its lesions'."""
    from .hosts import HOST_ORGANS

    hosts = {str(l.attributes.get("host") or "") for l in case.lesions}
    organs = [o for h in hosts for o in HOST_ORGANS.get(h, ())]
    return list(dict.fromkeys(organs or [str(l.attributes.get("organ")) for l in case.lesions if l.attributes.get("organ")]))


def case_absent_texts(case: Any, rng: np.random.Generator, count: int) -> list[str]:
    """``count`` descriptions of lesions a loaded case (``LesionCase``/evaluation ``Case``) does
    not hold, contrasting with any of its lesions, organs from its scan (:func:`case_organs`)."""
    texts = absent_descriptions([dict(l.attributes) for l in case.lesions], rng, count, case_organs(case))
    return [text for text, _ in texts]


def case_descriptions(lesions: dict[int, dict[str, Any]], rng: np.random.Generator, organs: Sequence[str] = (),
                      per_lesion: int = 6, absent: int = 6, reports: dict[int, str] | None = None
                      ) -> tuple[dict[int, list[tuple[str, dict[str, Any]]]], list[tuple[str, dict[str, Any]]]]:
    """Descriptions of every lesion of one case and of lesions it does not hold.

    ``lesions``: lesion id -> attributes. Each lesion gets its report (when given) and up to
    ``per_lesion`` varied descriptions that fit it and no other lesion of the case (a lesion no
    description can tell apart from another gets its report only); ``absent`` descriptions fit
    none. Returns ``({id: [(text, stated)]}, [(text, stated)])``.
    """
    out: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for lesion_id, attrs in lesions.items():
        others = [a for other, a in lesions.items() if other != lesion_id]
        texts: list[tuple[str, dict[str, Any]]] = []
        report = (reports or {}).get(lesion_id)
        if report:
            texts.append((report, {k: attrs.get(k) for k in STATABLE if attrs.get(k) not in (None, "", [])}))
        seen = {_norm(t) for t, _ in texts}
        for _ in range(per_lesion * 3):
            if len(texts) >= per_lesion + bool(report):
                break
            keys = distinguishing_keys(attrs, others, rng)
            if keys is None:
                break
            keys += [k for k in ("density", "shape", "size_mm", "surface") if k not in keys and rng.random() < 0.3]
            text, stated = describe(attrs, keys, rng)
            if _norm(text) not in seen and not any(fits(stated, o) for o in others):
                seen.add(_norm(text))
                texts.append((text, stated))
        out[lesion_id] = texts
    return out, absent_descriptions(list(lesions.values()), rng, absent, organs)
