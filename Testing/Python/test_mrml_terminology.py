"""Terminology strings are what Slicer's own Terminologies logic reads and writes back."""

from __future__ import annotations

import pytest

slicer = pytest.importorskip("slicer")

from TextLesionSegLib.mrml.terminology import DEFAULT_TERMINOLOGY, terminology_dict, terminology_string  # noqa: E402


def _slicer_round_trip(text: str):
    entry = slicer.vtkSlicerTerminologyEntry()
    assert slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(text, entry)
    return entry, slicer.vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry(entry)


@pytest.mark.parametrize("text", [
    "hypodense mass in the right lobe of the liver",
    "small nodule in the left upper lobe of the lung",
    "cyst in the left kidney",
    "something odd",
])
def test_parser_terminology_survives_slicers_terminology_logic(text):
    from TextLesionSegLib.query import parse_text, terminology_for

    queries = parse_text(text).queries
    terminology = terminology_for(queries[0] if queries else None)
    entry_text = terminology_string(terminology)
    assert entry_text.count("~") == 6
    entry, again = _slicer_round_trip(entry_text)
    assert again == entry_text
    assert entry.GetCategoryObject().GetCodeValue() and entry.GetTypeObject().GetCodeValue()
    assert terminology_dict(entry_text)["type"][1] == entry.GetTypeObject().GetCodeValue()


def test_dicom_style_codes_default_and_separators():
    dicom_style = {
        "category": {"CodingSchemeDesignator": "SCT", "CodeValue": "49755003", "CodeMeaning": "Morphologically Altered Structure"},
        "type": {"CodingSchemeDesignator": "SCT", "CodeValue": "27925004", "CodeMeaning": "Nodule"},
        "anatomicRegion": {"CodingSchemeDesignator": "SCT", "CodeValue": "39607008", "CodeMeaning": "Lung"},
    }
    entry, _ = _slicer_round_trip(terminology_string(dicom_style))
    assert entry.GetTypeObject().GetCodeMeaning() == "Nodule"
    assert entry.GetRegionObject().GetCodeMeaning() == "Lung"
    assert entry.GetRegionContextName() == "Anatomic codes - DICOM master list"
    default, _ = _slicer_round_trip(terminology_string(None))
    assert default.GetTypeObject().GetCodeValue() == DEFAULT_TERMINOLOGY["type"][1]
    # a meaning holding a separator cannot break the seven fields
    odd = terminology_string({**DEFAULT_TERMINOLOGY, "type": ["SCT", "4147007", "Mass~with^carets"]})
    assert odd.count("~") == 6 and _slicer_round_trip(odd)[0].GetTypeObject().GetCodeMeaning() == "Mass-with-carets"
    odd_dict = terminology_string({"type": {"CodingSchemeDesignator": "SCT", "CodeValue": "1", "CodeMeaning": "a~b"}})
    assert odd_dict.count("~") == 6
    with pytest.raises(ValueError):
        terminology_string({**DEFAULT_TERMINOLOGY, "type": ["SCT", "4147007"]})
