"""Insert attribute-controlled lesions into a host and check every attribute on the result.

:func:`synthesize_case` places each requested lesion in its organ (side and sub-location from
the host's part map), builds its shape and texture (:mod:`.lesion`), blends it in, then
*measures* the output (:mod:`.measure`): a lesion whose measured shape, density or relation
disagrees with its attributes is rejected and redrawn, so what the reports say is true of the
images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...pipeline.geometry import Image
from . import measure
from .catalog import LESION_TYPES, sample_attributes
from .hosts import Host
from .lesion import lesion_hu, make_shape
from .mass_effect import push_aside
from .report import make_report

#: structures that lie inside an organ and count as part of it for placement
INCLUSIONS: dict[str, tuple[str, ...]] = {"lung": ("pulmonary vessels", "airway"), "liver": ("hepatic vessels",),
                                          "kidney": (), "colon": (), "pancreas": (), "spleen": ()}
#: tissues that are not "a neighbouring structure" for the relation attribute
NOT_NEIGHBOURS = ("fat", "body")
#: shape-index limits (sphericity / that of a digital ball on the same grid) [chosen from
#: measurements on all host grids, see docs/data.md]
ROUND_MIN_SHAPE_INDEX = 0.93
IRREGULAR_MAX_SHAPE_INDEX = 0.88
MAX_ATTEMPTS = 6
#: fraction of the lesion's reach that must lie inside the organ for a "not closely related"
#: lesion: colon tumours grow from the wall into lumen and fat, pancreatic ones expand a thin gland
EXOPHYTIC: dict[str, float] = {"colon": 0.35, "pancreas": 0.5}


#: how a report names a touched structure, by the part's organ [chosen: radiologists' words]
RELATED_WORDS: dict[str, str] = {"bone": "chest wall", "airway": "bronchus", "muscle": "abdominal wall",
                                 "upper abdomen": "diaphragm", "body": "chest wall", "spinal canal": "spine"}


def related_name(part) -> str:
    """The words for a neighbouring structure: "right psoas muscle", "chest wall", "liver", ..."""
    if part.organ in ("kidney", "psoas muscle", "lung") and part.side:
        return f"{part.side} {part.organ}"
    return RELATED_WORDS.get(part.organ, part.organ)


@dataclass
class SynthLesion:
    """One inserted lesion: id in the label map, attributes, report, and what was measured."""

    lesion_id: int
    attributes: dict[str, Any]
    report: str
    measured: dict[str, float] = field(default_factory=dict)
    described: bool = True


@dataclass
class SynthCase:
    """A synthetic case: HU image, instance label map (0 background, 1..K lesions), host parts."""

    case_id: str
    image: Image
    label: np.ndarray
    parts: np.ndarray
    host: Host
    lesions: list[SynthLesion]


def reference_region(host: Host, organ: str, side: str | None) -> np.ndarray:
    """Where the lesion's reference density is measured: organ parenchyma (same side), or soft
    tissue (chest wall) for the lung, as Malenia's code book defines lung density."""
    if organ == "lung":
        return host.mask("chest wall")
    return host.mask(organ, side if organ in ("kidney",) else None, parenchyma_only=True)


def _organ_ids(host: Host, organ: str) -> list[int]:
    return [v for v, p in host.part_table.items() if p.organ == organ or p.organ in INCLUSIONS.get(organ, ())]


def _choose_part(host: Host, organ: str, side: str | None, sub: str | None, rng: np.random.Generator) -> int:
    present = host.part_boxes()
    ids = [i for i in host.part_ids(organ, side, sub, parenchyma_only=True) if i in present]
    if not ids:
        where = " ".join(v for v in (side, organ, sub) if v)
        raise ValueError(f"host '{host.name}' has no {where}")
    return int(ids[int(rng.integers(len(ids)))])


@dataclass
class _OrganField:
    """Distance (mm) to the organ's border, on a coarse (about 3 mm) view of the organ's box."""

    start: np.ndarray
    stride: np.ndarray
    dist: np.ndarray
    parts: np.ndarray
    neighbour_dist: np.ndarray


def _organ_field(host: Host, organ: str) -> _OrganField:
    from scipy import ndimage

    boxes = host.part_boxes()
    ids = [i for i in _organ_ids(host, organ) if i in boxes]
    lo = np.min([[s.start for s in boxes[i]] for i in ids], axis=0)
    hi = np.max([[s.stop for s in boxes[i]] for i in ids], axis=0)
    sp = np.asarray(host.image.spacing, float)[::-1]
    pad = np.ceil(30.0 / sp).astype(int)  # room to see the neighbours
    lo, hi = np.maximum(lo - pad, 0), np.minimum(hi + pad, host.parts.shape)
    stride = np.maximum(1, np.floor(3.0 / sp)).astype(int)
    sub = tuple(slice(int(a), int(b), int(st)) for a, b, st in zip(lo, hi, stride))
    parts = host.parts[sub]
    region = np.isin(parts, np.asarray(ids, parts.dtype))
    dist = ndimage.distance_transform_edt(region, sampling=sp * stride)
    others = [v for v, p in host.part_table.items() if v not in ids and p.organ not in NOT_NEIGHBOURS]
    neighbours = np.isin(parts, np.asarray(others, parts.dtype))
    ndist = ndimage.distance_transform_edt(~neighbours, sampling=sp * stride) if neighbours.any() \
        else np.full(parts.shape, 1e6)
    return _OrganField(lo, stride, dist, parts, ndist)


def _place(host: Host, field_: _OrganField, part: int, radius: float, related: bool, exophytic: float,
           occupied: list[tuple[np.ndarray, float]], rng: np.random.Generator,
           anchor: tuple[np.ndarray, float] | None = None) -> np.ndarray | None:
    """An LPS centre inside ``part``: deep inside the organ (not related) or near its border;
    with ``anchor`` (centre, mm), within that distance of the anchor where room allows."""
    cand = field_.parts == part
    dist, ndist = field_.dist, field_.neighbour_dist
    if related:  # near the border, with a neighbouring structure within reach
        ok = cand & (dist >= 0.3 * radius) & (dist <= 0.75 * radius) & (ndist <= 0.9 * radius)
    else:
        ok = cand & (dist >= exophytic * radius) & (ndist >= radius + 4.0)
    idx = np.argwhere(ok)
    if len(idx) == 0:
        return None
    lps = host.image.kji_to_lps(idx * field_.stride + field_.start)
    for c, r in occupied:
        lps = lps[np.linalg.norm(lps - c, axis=1) >= r + radius + 4.0]
    if len(lps) == 0:
        return None
    if anchor is not None:  # lesions meant to share a model window: as close as room allows
        near = lps[np.linalg.norm(lps - anchor[0], axis=1) <= anchor[1]]
        lps = near if len(near) else lps
    return lps[int(rng.integers(len(lps)))]


def _check(host: Host, hu_box: np.ndarray, parts_box: np.ndarray, shape, attrs: dict, organ_parts: set[int],
           ref_hu: float, target: float) -> tuple[str, dict[str, Any]]:
    """Measure a candidate lesion (in its box) against its attributes: "" if it agrees, else why not."""
    sp = host.image.spacing
    mask = shape.mask
    if mask.sum() < 8:
        return "too small", {}
    stats = measure.core_stats(hu_box, mask, sp)
    out: dict[str, Any] = {"core_mean_hu": round(stats["mean"], 1), "core_median_hu": round(stats["median"], 1),
                           "core_std_hu": round(stats["std"], 1), "reference_hu": round(ref_hu, 1),
                           "volume_ml": round(float(mask.sum()) * float(np.prod(sp)) / 1000.0, 3)}
    out["sphericity"] = round(measure.sphericity(mask, sp), 3)
    idx = measure.shape_index(mask, sp)
    out["shape_index"] = round(idx, 3)
    # a lesion over fewer than 3 slices has no measurable 3D shape (thick-slice hosts)
    if int(mask.any(axis=(1, 2)).sum()) >= 3:
        if attrs["shape"] == "round-like" and idx < ROUND_MIN_SHAPE_INDEX:
            return f"shape index {idx:.2f} too low for round-like", out
        if attrs["shape"] == "irregular" and idx > IRREGULAR_MAX_SHAPE_INDEX:
            return f"shape index {idx:.2f} too high for irregular", out
    exclude = set(organ_parts) | {0} | {v for v, p in host.part_table.items() if p.organ in NOT_NEIGHBOURS}
    touch = measure.touching(mask, parts_box, sp, exclude)
    if attrs["relation"] == "closely related":
        if not touch:
            return "touches no neighbour", out
        attrs["related_organ"] = related_name(host.part_table[max(touch, key=touch.get)])
    elif touch:
        return f"touches {sorted(host.part_table[t].name for t in touch)}", out
    # density: robust statistic when features (cavity, calcification, rim) are present
    value = stats["median"] if attrs.get("specific_features") else stats["mean"]
    d = attrs["density"]
    lung = attrs["organ"] == "lung"
    if (d == "hypodense" and not value <= ref_hu - 15) or (d == "hyperdense" and not value >= ref_hu + 15) \
            or (d == "isodense" and not abs(value - ref_hu) < 15):
        return f"{d} measured {value:.0f} HU vs reference {ref_hu:.0f}", out
    if d == "mixed":
        lo_ok = stats["p15"] <= ref_hu - (200 if lung else 20)
        hi_ok = stats["p85"] >= ref_hu - (100 if lung else -20)
        if not (lo_ok and hi_ok):
            return f"mixed percentiles {stats['p15']:.0f}/{stats['p85']:.0f} vs reference {ref_hu:.0f}", out
    return "", out


def _apply_psf(host_box: np.ndarray, new_box: np.ndarray, weight: np.ndarray, psf_mm, spacing_ijk,
               noise_sd: float, rng: np.random.Generator) -> np.ndarray:
    """Blur the inserted (noise-free) lesion like the host's anatomy, then restore the noise.

    The host's own noise survives inside the lesion only as far as the blur leaves it (its
    high-pass part); fresh noise makes up the rest, so the lesion is as noisy as its host.
    """
    from scipy import ndimage

    sigma = [p / s if p / s >= 0.3 else 0.0 for p, s in zip(np.asarray(psf_mm)[::-1], np.asarray(spacing_ijk)[::-1])]
    if not any(sigma):
        return new_box
    diff = ndimage.gaussian_filter(new_box - host_box, sigma=sigma, truncate=3.0)
    w = np.clip(ndimage.gaussian_filter(weight, sigma=sigma, truncate=3.0), 0.0, 1.0)
    white = rng.standard_normal(new_box.shape).astype(np.float32)
    kept = float((white - ndimage.gaussian_filter(white, sigma=sigma, truncate=3.0)).std())
    fresh = np.float32(noise_sd * np.sqrt(max(0.0, 1.0 - kept ** 2)))
    white = rng.standard_normal(new_box.shape).astype(np.float32)
    return (host_box + diff + fresh * white * w).astype(np.float32)


def _axial_size(image: Image, mask: np.ndarray) -> list[float]:
    """[long, short] axial diameters (mm) of a lesion mask given on a box of ``image``'s grid."""
    from ...pipeline.measure import axial_diameters

    box = Image(array=mask, spacing=image.spacing, origin=image.origin, direction=image.direction)
    long_mm, short_mm = axial_diameters(box, mask)
    return [round(float(long_mm), 1), round(float(short_mm), 1)]


def _target_hu(attrs: dict, ref_hu: float, rng: np.random.Generator) -> float:
    d, lung = attrs["density"], attrs["organ"] == "lung"
    if lung:
        return {"hypodense": rng.uniform(-650, -450), "isodense": ref_hu + rng.uniform(-4, 4),
                "hyperdense": ref_hu + rng.uniform(80, 200), "mixed": ref_hu - 225}[d]
    if d == "hypodense":
        if "cyst" in attrs["lesion_type"]:
            return min(rng.uniform(0, 15), ref_hu - 25)
        return ref_hu + rng.uniform(-65, -30)
    return {"isodense": ref_hu + rng.uniform(-4, 4), "hyperdense": ref_hu + rng.uniform(30, 70),
            "mixed": ref_hu}[d]


def synthesize_case(host: Host, specs: list[dict[str, Any]], rng: np.random.Generator, case_id: str = "case") -> SynthCase:
    """Insert one lesion per spec into ``host`` (modified in place) and return the case.

    A spec is ``{"lesion_type": name, **fixed attributes, "described": bool}``; attributes not
    fixed are drawn from the lesion type's priors. ``"near": (n, mm)`` places the lesion within
    ``mm`` of the n-th lesion placed before it, where the organ leaves room.
    """
    image = host.image
    hu = image.array
    label = np.zeros(hu.shape, np.uint8)
    occupied: list[tuple[np.ndarray, float]] = []
    lesions: list[SynthLesion] = []
    refs: dict[tuple[str, str | None], float] = {}
    fields: dict[str, _OrganField] = {}
    for spec in specs:
        ltype = LESION_TYPES[spec["lesion_type"]]
        fixed = {k: v for k, v in spec.items() if k not in ("lesion_type", "described", "near")}
        near = spec.get("near")
        anchor = (occupied[near[0]][0], float(near[1])) if near and near[0] < len(occupied) else None
        organ_parts = {v for v, p in host.part_table.items()
                       if p.organ == ltype.organ or p.organ in INCLUSIONS.get(ltype.organ, ())}
        placed = None
        why: list[str] = []
        for attempt in range(MAX_ATTEMPTS):
            attrs = sample_attributes(ltype.name, rng, fixed)
            attrs["enhancement"] = host.phase
            if host.phase != "contrast-enhanced" and "rim enhancement" in attrs["specific_features"]:
                attrs["specific_features"].remove("rim enhancement")
            part = _choose_part(host, ltype.organ, attrs.get("side"), attrs.get("sub_location"), rng)
            info = host.part_table[part]
            attrs["side"], attrs["sub_location"] = info.side, info.sub_location
            scale = 1.0 if attempt < 3 else 0.75  # smaller lesions fit more hosts
            size = [round(v * scale, 1) for v in attrs["size_mm"]]
            attrs["size_mm"] = size
            reach = max(size) / 2 * (1.35 if attrs["shape"] == "irregular" else 1.08) + \
                (3.0 if attrs["surface"] == "ill-defined" else 1.0)
            if ltype.organ not in fields:
                fields[ltype.organ] = _organ_field(host, ltype.organ)
            centre = _place(host, fields[ltype.organ], part, reach, attrs["relation"] == "closely related",
                            EXOPHYTIC.get(ltype.organ, 1.0), occupied, rng, anchor)
            if centre is None:
                why.append("no room")
                continue
            key = (ltype.organ, attrs["side"])
            if key not in refs:
                refs[key] = measure.region_mean(hu, reference_region(host, ltype.organ, attrs["side"]) & (label == 0))
            ref_hu = refs[key]
            shape = make_shape(image, centre, size, attrs["shape"], attrs["surface"], rng)
            target = _target_hu(attrs, ref_hu, rng)
            host_box, parts_box = hu[shape.box], host.parts[shape.box]
            if attrs["relation"] == "closely related":  # the mass bows its neighbour outward
                host_box, parts_box = push_aside(image, shape.box, centre, max(size) / 2, host_box, parts_box,
                                                 label[shape.box] > 0)
            psf = host.metadata.get("psf_mm")
            new_box = lesion_hu(shape, attrs, host_box, ref_hu, target, ltype.organ == "lung", host.phase,
                                0.0 if psf else host.noise_sd, np.asarray(image.spacing), rng)
            if psf:
                new_box = _apply_psf(host_box, new_box, shape.weight, psf, image.spacing, host.noise_sd, rng)
            new_box = np.where(label[shape.box] > 0, host_box, new_box)  # never paint over an earlier lesion
            problem, measured = _check(host, new_box, parts_box, shape, attrs, organ_parts, ref_hu, target)
            why.append(problem)
            if not problem:
                placed = (shape, new_box, parts_box, attrs, measured, centre, reach)
                break
        if placed is None:
            raise RuntimeError(f"could not place a {ltype.name} with {fixed} in host '{host.name}' "
                               f"after {MAX_ATTEMPTS} attempts ({'; '.join(why)})")
        shape, new_box, parts_box, attrs, measured, centre, reach = placed
        lesion_id = len(lesions) + 1
        hu[shape.box] = new_box
        host.parts[shape.box] = parts_box  # organ masks follow the mass effect
        label[shape.box][shape.mask & (label[shape.box] == 0)] = lesion_id
        occupied.append((centre, reach))
        measured["attempts"] = attempt + 1
        # the written size is the measured one (longest axial diameter and its perpendicular,
        # as the engine's own RECIST measurement gives it), not the nominal size of the draw
        measured["nominal_size_mm"] = attrs["size_mm"]
        attrs["size_mm"] = _axial_size(image, shape.mask)
        report = make_report(attrs, rng)
        lesions.append(SynthLesion(lesion_id, attrs, report, measured, bool(spec.get("described", True))))
    return SynthCase(case_id=case_id, image=image, label=label, parts=host.parts, host=host, lesions=lesions)
