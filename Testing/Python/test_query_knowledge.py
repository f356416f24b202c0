"""Knowledge table, lesion-type ranking, inference and Slicer terminology (issue 4 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from TextLesionSegLib.query import (
    LesionQuery,
    infer,
    knowledge_table,
    parse_text,
    rank_lesion_types,
    terminology_code_dict,
    terminology_for,
    terminology_string,
)
from TextLesionSegLib.query.verify_terminology import table_codes, verify

MALENIA_TYPES = [
    "hepatocellular carcinoma", "liver metastasis", "liver cyst", "hemangioma", "renal cell carcinoma", "renal cyst",
    "pancreatic adenocarcinoma", "pancreatic cyst", "colorectal cancer", "lung cancer", "lung nodule",
    "adrenal adenoma", "lymph node",
]


def test_table_holds_malenias_lesion_types_with_valid_values() -> None:
    table = knowledge_table()
    names = [e["name"] for e in table["lesion_types"]]
    assert set(MALENIA_TYPES) <= set(names)
    assert len(names) == len(set(names))
    allowed = {
        "shape": {"round-like", "irregular"},
        "density": {"hypodense", "isodense", "hyperdense", "mixed"},
        "density_variation": {"homogeneous", "heterogeneous"},
        "surface": {"well-defined", "ill-defined"},
        "relation": {"not closely related", "closely related"},
    }
    for e in table["lesion_types"]:
        assert e["organ"] in table["anatomic_regions"] or e["organ"] == "bone", e["name"]
        assert e["type"] in table["type_codes"].values(), e["name"]
        for attribute, values in allowed.items():
            freq = e[attribute]
            assert set(freq) <= values, (e["name"], attribute)
            assert abs(sum(freq.values()) - 1.0) < 0.02, (e["name"], attribute)


@pytest.mark.parametrize(
    "attributes, organ, expected",
    [
        ({"shape": "round-like", "density": "hypodense", "density_variation": "homogeneous", "surface": "well-defined"},
         "kidney", "renal cyst"),
        ({"shape": "irregular", "density": "hyperdense", "density_variation": "heterogeneous", "surface": "ill-defined"},
         "kidney", "renal cell carcinoma"),
        ({"shape": "irregular", "density": "hypodense", "surface": "ill-defined", "relation": "closely related",
          "specific_features": ["duct dilatation"]}, "pancreas", "pancreatic adenocarcinoma"),
        ({"shape": "round-like", "density": "hypodense", "density_variation": "homogeneous", "surface": "well-defined"},
         "pancreas", "pancreatic cyst"),
        ({"shape": "irregular", "surface": "ill-defined", "specific_features": ["spiculation", "vessel convergence"]},
         "lung", "lung cancer"),
        ({"shape": "round-like", "density": "hypodense", "density_variation": "homogeneous", "surface": "well-defined"},
         "liver", "liver cyst"),
        ({"shape": "irregular", "density": "isodense", "specific_features": ["wall thickening"]}, "colon",
         "colorectal cancer"),
    ],
)
def test_rank_lesion_types(attributes: dict, organ: str, expected: str) -> None:
    ranked = rank_lesion_types(attributes, organ)
    assert ranked[0][0] == expected, ranked[:3]
    assert abs(sum(p for _, p in ranked) - 1.0) < 1e-3
    assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)
    assert rank_lesion_types(attributes, organ) == ranked  # deterministic


def test_ranking_uses_the_attributes_not_only_the_organ() -> None:
    cyst_like = {"shape": "round-like", "density": "hypodense", "density_variation": "homogeneous", "surface": "well-defined"}
    cancer_like = {"shape": "irregular", "density": "hyperdense", "density_variation": "heterogeneous", "surface": "ill-defined"}
    p_cyst = dict(rank_lesion_types(cyst_like, "kidney"))
    p_cancer = dict(rank_lesion_types(cancer_like, "kidney"))
    assert p_cyst["renal cyst"] > 0.8 > p_cancer["renal cyst"]
    # without an organ, everything is ranked, and unknown values are tolerated
    assert len(rank_lesion_types({"shape": None, "density": "bogus"}, None)) == len(knowledge_table()["lesion_types"])


def test_inferred_is_kept_apart_and_never_overrides() -> None:
    q = parse_text("irregular cyst in the right kidney").queries[0]
    assert q.shape == "irregular" and "shape" not in q.inferred  # asserted wins
    assert q.inferred["density"] == "hypodense" and q.density is None
    q2 = parse_text("HCC").queries[0]
    assert q2.organ is None and q2.inferred["organ"] == "liver"
    assert infer(LesionQuery(text="")) == {"relation": "not closely related"}  # reporting convention only


def test_terminology_is_slicerio_form_with_slicer_codes() -> None:
    q = parse_text("2 cm round cyst in the left kidney").queries[0]
    t = terminology_for(q)
    assert t == {
        "contextName": "Segmentation category and type - DICOM master list",
        "category": ["SCT", "49755003", "Morphologically Altered Structure"],
        "type": ["SCT", "367643001", "Cyst"],
        "anatomicContextName": "Anatomic codes - DICOM master list",
        "anatomicRegion": ["SCT", "64033007", "Kidney"],
        "anatomicRegionModifier": ["SCT", "7771000", "Left"],
    }
    assert terminology_code_dict(t["type"]) == {"CodingSchemeDesignator": "SCT", "CodeValue": "367643001",
                                                 "CodeMeaning": "Cyst"}
    assert terminology_for(None)["type"][2] == "Mass" and "anatomicRegion" not in terminology_for(None)
    lung = terminology_for(parse_text("spiculated mass in the right upper lobe").queries[0])
    assert lung["anatomicRegion"][2] == "Upper lobe of lung" and lung["anatomicRegionModifier"][2] == "Right"
    assert lung["type"][2] == "Mass"  # what the user said; the inferred "lung cancer" is not asserted
    assert terminology_for(parse_text("spiculated lung cancer in the RUL").queries[0])["type"][2] == "Neoplasm, Primary"
    met = terminology_for(parse_text("metastasis in segment VI").queries[0])
    assert (met["type"][2], met["anatomicRegion"][2]) == ("Neoplasm, Secondary", "Liver")
    rectum = terminology_for(parse_text("rectal mass").queries[0])
    assert rectum["anatomicRegion"][2] == "Rectum"
    assert "anatomicRegion" not in terminology_for(parse_text("lesion in the thymus").queries[0])


def test_terminology_survives_a_seg_nrrd_written_and_read_by_slicerio(tmp_path: Path) -> None:
    import slicerio

    queries = parse_text("round cyst in the left kidney; hypodense mass in the pancreatic head").queries
    seg = slicerio.create_segmentation((8, 8, 4), np.eye(4))
    for i, q in enumerate(queries, start=1):
        mask = np.zeros((8, 8, 4), dtype=np.uint8)
        mask[i : i + 2, 2:4, 1:3] = 1
        slicerio.add_segment(seg, mask, {"id": f"Segment_{i}", "name": q.text, "labelValue": i,
                                         "color": [1.0, 0.0, 0.0], "terminology": terminology_for(q)})
    path = tmp_path / "lesions.seg.nrrd"
    slicerio.write_segmentation(str(path), seg)
    back = slicerio.read_segmentation(str(path))
    for q, segment in zip(queries, back["segments"]):
        assert segment["terminology"] == terminology_for(q)
    assert slicerio.segmentation.terminology_entry_to_string(terminology_for(queries[0])) == terminology_string(queries[0])


def test_verifier_finds_every_code_in_slicer_shaped_files_and_reports_a_missing_one(tmp_path: Path) -> None:
    def as_nodes(codes):
        return [dict(zip(("CodingSchemeDesignator", "CodeValue", "CodeMeaning"), c)) for _, c in codes]

    codes = table_codes()
    cat, anat = tmp_path / "cat.json", tmp_path / "anat.json"
    cat.write_text(json.dumps({"SegmentationCodes": {"Category": as_nodes(codes["category"])}}), encoding="utf-8")
    anat.write_text(json.dumps({"AnatomicCodes": {"AnatomicRegion": as_nodes(codes["anatomy"])}}), encoding="utf-8")
    assert verify(cat, anat) == []
    anat.write_text(json.dumps({"AnatomicCodes": {"AnatomicRegion": as_nodes(codes["anatomy"][1:])}}), encoding="utf-8")
    missing = verify(cat, anat)
    assert len(missing) == 1 and "region liver" in missing[0]


@pytest.mark.parametrize(
    "location, organ",
    [("right hepatic lobe", "liver"), ("Location: pancreatic head", "pancreas"),
     ("liver segment VII", "liver"), ("right upper lobe of the lung", "lung"), ("sigmoid colon", "colon"),
     ("left adrenal gland", "adrenal"), ("lymph node", "lymph node"), ("unspecified", None), (None, None)],
)
def test_organ_of_location_reads_every_location_phrase(location, organ) -> None:
    from TextLesionSegLib.query import organ_of_location

    assert organ_of_location(location) == organ


def test_every_location_phrase_maps_back_to_its_organ() -> None:
    from TextLesionSegLib.query import attribute_value_phrases, organ_of_location

    for value, _ in attribute_value_phrases()["location"][:-1]:
        assert organ_of_location(value) is not None, value


def test_rank_reads_the_organ_from_the_location_phrase() -> None:
    attrs = {"location": "pancreatic head", "shape": "irregular", "density": "hypodense", "surface": "ill-defined"}
    assert rank_lesion_types(attrs, None)[0][0] == "pancreatic adenocarcinoma"
    assert rank_lesion_types(attrs, "head") == rank_lesion_types(attrs, "pancreas")
