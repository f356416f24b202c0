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


@pytest.mark.parametrize("api", ["SetTerminology (Slicer >= 5.9)", "TerminologyEntry tag (Slicer 5.8)"])
def test_terminology_is_stored_on_every_slicer_version(monkeypatch, tmp_path, api):
    """Both storage paths, on real vtkSegments: the 5.8 path (no ``SetTerminology``) writes the
    tag that newer Slicer reads as the terminology and that ``.seg.nrrd`` files carry."""
    import numpy as np
    import slicerio

    from test_mrml_support import add_volume, register_converter_rules, sphere
    from TextLesionSegLib.mrml import segmentation as segmentation_module
    from TextLesionSegLib.mrml import terminology as terminology_module
    from TextLesionSegLib.mrml.volumes import volume_to_image
    from TextLesionSegLib.pipeline.result import Result, SegmentResult

    if api.startswith("TerminologyEntry"):
        monkeypatch.setattr(terminology_module, "has_terminology_api", lambda segment: False)
    register_converter_rules()
    scene = slicer.vtkMRMLScene()
    volume = add_volume(scene, np.zeros((8, 9, 10), np.int16), np.eye(4))
    nodule = {"category": ["SCT", "49755003", "Morphologically Altered Structure"],
              "type": ["SCT", "27925004", "Nodule"]}
    result = Result(image=volume_to_image(volume), model_name="m", model_version="1",
                    segments=[SegmentResult(name="nodule", mask=sphere((8, 9, 10), (4, 4, 5), 2), terminology=nodule)])
    node = segmentation_module.import_result(result, volume).segmentation_node
    segment = node.GetSegmentation().GetNthSegment(0)
    expected = terminology_string(nodule)
    assert terminology_module.segment_terminology(segment) == expected
    assert segment.GetTerminology() == expected  # what this (new) Slicer's own API reads
    path = tmp_path / "nodule.seg.nrrd"
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.WriteData(node)
    read = slicerio.read_segmentation(str(path), skip_voxels=True)
    assert read["segments"][0]["terminology"]["type"] == ["SCT", "27925004", "Nodule"]
    scene.Clear(True)
