"""Every attribute a synthetic lesion is written with is measured back on the output image."""

from __future__ import annotations

import numpy as np
import pytest

from TextLesionSegLib.training.data import measure
from TextLesionSegLib.training.data.hosts import make_host
from TextLesionSegLib.training.data.synthesize import INCLUSIONS, synthesize_case


def _abdomen(seed: int, grid: str = "medium"):
    return make_host("abdomen", np.random.default_rng(seed), grid=grid, phase="contrast-enhanced")


def _reference(case, lesion) -> float:
    """Host tissue mean measured on the OUTPUT, away (10 mm) from every lesion."""
    a = lesion.attributes
    host = case.host
    if a["organ"] == "lung":
        region = host.mask("chest wall")
    else:
        region = host.mask(a["organ"], a["side"] if a["organ"] == "kidney" else None, parenchyma_only=True)
    far = measure.away_from([case.label == l.lesion_id for l in case.lesions], case.image.spacing, 10.0)
    return measure.region_mean(case.image.array, region & far)


@pytest.mark.parametrize("organ_type", ["hepatocellular carcinoma", "renal cell carcinoma", "pancreatic adenocarcinoma"])
def test_density_is_measurable(organ_type: str) -> None:
    specs = [{"lesion_type": organ_type, "density": d, "shape": "round-like", "specific_features": [],
              "density_variation": "homogeneous", "relation": "not closely related", "size_mm": [18, 16]}
             for d in ("hypodense", "isodense", "hyperdense")]
    if organ_type != "hepatocellular carcinoma":
        specs = specs[::2]  # two lesions fit in a kidney / pancreas
    case = synthesize_case(_abdomen(1), specs, np.random.default_rng(2))
    for lesion in case.lesions:
        mask = case.label == lesion.lesion_id
        mean = measure.core_stats(case.image.array, mask, case.image.spacing)["mean"]
        whole = float(case.image.array[mask].mean())  # the whole mask, margin voxels included
        ref = _reference(case, lesion)
        d = lesion.attributes["density"]
        if d == "hypodense":
            assert mean <= ref - 15 and whole <= ref - 15, (mean, whole, ref)
        elif d == "hyperdense":
            assert mean >= ref + 15 and whole >= ref + 15, (mean, whole, ref)
        else:
            assert abs(mean - ref) < 15, (mean, ref)


def test_lung_density_is_relative_to_soft_tissue() -> None:
    host = make_host("chest", np.random.default_rng(3), grid="medium")
    specs = [{"lesion_type": "lung nodule", "density": d, "shape": "round-like", "specific_features": [],
              "relation": "not closely related", "size_mm": [16, 14]} for d in ("isodense", "hyperdense", "hypodense")]
    case = synthesize_case(host, specs, np.random.default_rng(4))
    means = {}
    for lesion in case.lesions:
        means[lesion.attributes["density"]] = measure.core_stats(
            case.image.array, case.label == lesion.lesion_id, case.image.spacing)["mean"]
        ref = _reference(case, lesion)
    assert abs(means["isodense"] - ref) < 15
    assert means["hyperdense"] >= ref + 15
    assert means["hypodense"] <= ref - 15 and means["hypodense"] > -900  # ground glass, not air


def test_ill_defined_edges_are_softer() -> None:
    for seed in range(2):
        common = {"lesion_type": "liver metastasis", "density": "hypodense", "shape": "round-like",
                  "density_variation": "homogeneous", "specific_features": [], "relation": "not closely related",
                  "size_mm": [24, 22]}
        case = synthesize_case(_abdomen(10 + seed), [dict(common, surface="well-defined"), dict(common, surface="ill-defined")],
                               np.random.default_rng(seed))
        sharp = {}
        for lesion in case.lesions:
            sharp[lesion.attributes["surface"]] = measure.edge_sharpness(
                case.image.array, case.label == lesion.lesion_id, case.image.spacing, _reference(case, lesion))
        assert sharp["ill-defined"] < 0.7 * sharp["well-defined"], sharp


def test_round_like_is_more_spherical_than_irregular() -> None:
    for seed in range(2):
        common = {"lesion_type": "hepatocellular carcinoma", "density": "hypodense", "surface": "well-defined",
                  "relation": "not closely related", "size_mm": [30, 26]}
        case = synthesize_case(_abdomen(20 + seed, "large"), [dict(common, shape="round-like"), dict(common, shape="irregular")],
                               np.random.default_rng(seed))
        sph = {l.attributes["shape"]: measure.sphericity(case.label == l.lesion_id, case.image.spacing) for l in case.lesions}
        assert sph["round-like"] > sph["irregular"] + 0.05, sph


@pytest.mark.parametrize("host_name", ["abdomen", "chest", "ctchest4"])
def test_masks_lie_in_their_organ_and_relation_holds(host_name: str) -> None:
    rng = np.random.default_rng(5)
    host = make_host(host_name, rng, grid="medium")
    organs = ["lung"] if "chest" in host_name else ["liver", "kidney", "spleen"]
    types = {"lung": "lung cancer", "liver": "liver metastasis", "kidney": "renal cell carcinoma", "spleen": "splenic lesion"}
    specs = [{"lesion_type": types[o], "relation": "not closely related", "size_mm": [15, 12]} for o in organs]
    specs.append({"lesion_type": types[organs[0]], "relation": "closely related", "size_mm": [20, 16]})
    case = synthesize_case(host, specs, rng)
    for lesion in case.lesions:
        a = lesion.attributes
        mask = case.label == lesion.lesion_id
        organ = host.mask(a["organ"])
        for inc in INCLUSIONS[a["organ"]]:
            organ |= host.mask(inc)
        inside = float((mask & organ).sum()) / mask.sum()
        if a["relation"] == "not closely related":
            assert inside == 1.0, (a["organ"], inside)
            assert not a.get("related_organ")
        else:
            assert inside >= 0.4, inside
            assert a["related_organ"], a
        # the written size is what the engine's RECIST measurement finds on the label
        from TextLesionSegLib.pipeline.measure import axial_diameters

        long_mm, short_mm = axial_diameters(case.image, mask)
        assert a["size_mm"] == pytest.approx([long_mm, short_mm], abs=0.11)
        # the lesion's side and lobe are those of the part it sits in
        centre = np.round(np.argwhere(mask).mean(0)).astype(int)
        assert np.isin(host.parts[tuple(centre)], host.part_ids(a["organ"]) + [0] + list(host.part_table)).item()


def test_left_is_patient_left_in_lps() -> None:
    """'left lung' must be at +x (LPS) of the body midline, on both direction conventions."""
    seen_directions = set()
    for seed in range(6):
        rng = np.random.default_rng(seed)
        host = make_host("chest" if seed < 4 else "ctchest4", rng, grid="small")
        seen_directions.add(float(np.sign(host.image.direction[0, 0])))
        case = synthesize_case(host, [{"lesion_type": "lung nodule", "side": "left", "size_mm": [12, 10]},
                                      {"lesion_type": "lung nodule", "side": "right", "size_mm": [12, 10]}], rng)
        body = case.image.array > -500
        mid_x = np.median(case.image.kji_to_lps(np.argwhere(body)[::50])[:, 0])
        for lesion in case.lesions:
            x = case.image.kji_to_lps(np.argwhere(case.label == lesion.lesion_id).mean(0))[0]
            assert lesion.attributes["side"] in ("left", "right")
            assert (x > mid_x) == (lesion.attributes["side"] == "left"), (x, mid_x, lesion.attributes["side"])
            assert f"{lesion.attributes['side']} " in lesion.report
    assert seen_directions == {1.0, -1.0}


def test_features_are_visible() -> None:
    host = make_host("chest", np.random.default_rng(7), grid="medium")
    case = synthesize_case(host, [
        {"lesion_type": "lung cancer", "specific_features": ["cavitation"], "density": "isodense", "size_mm": [30, 26],
         "relation": "not closely related"},
        {"lesion_type": "lung nodule", "specific_features": ["calcification"], "density": "isodense",
         "size_mm": [20, 18], "relation": "not closely related"}], np.random.default_rng(8))
    hu = case.image.array
    cav, calc = (hu[case.label == l.lesion_id] for l in case.lesions)
    assert (cav < -700).mean() > 0.03  # air inside the lesion
    assert (calc > 250).sum() >= 1  # calcium inside the lesion
    for lesion in case.lesions:
        assert lesion.attributes["density_variation"] == "heterogeneous"
