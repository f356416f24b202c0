"""Terminology dicts -> the ``TerminologyEntry`` string Slicer stores on each segment.

Slicer keeps a segment's terminology as one string of seven ``~``-separated fields, each code
a ``scheme^value^meaning`` triplet (Slicer developer guide, "TerminologyEntry tag")::

    context~category~type~typeModifier~anatomicContext~region~regionModifier

The engine's terminology dicts (``query.terminology_for``) hold each code either as slicerio's
``[scheme, value, meaning]`` list or as a DICOM-style dict
``{"CodingSchemeDesignator", "CodeValue", "CodeMeaning"}``; both are accepted. The string is
built by slicerio's ``terminology_entry_to_string`` so files written by the engine and segments
made here carry the same text.
"""

from __future__ import annotations

from typing import Any, Mapping

#: Slicer's DICOM master lists (shipped with Slicer's Terminologies module).
CATEGORY_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"

#: Used when a segment comes without terminology: "Morphologically Altered Structure / Mass".
DEFAULT_TERMINOLOGY: dict[str, Any] = {
    "contextName": CATEGORY_CONTEXT,
    "category": ["SCT", "49755003", "Morphologically Altered Structure"],
    "type": ["SCT", "4147007", "Mass"],
}

_CODE_FIELDS = ("category", "type", "typeModifier", "anatomicRegion", "anatomicRegionModifier")


def _code_triplet(code: Any) -> list[str]:
    """``[scheme, value, meaning]`` from a list/tuple or a DICOM-style code dict."""
    if code is None:
        return ["", "", ""]
    if isinstance(code, Mapping):
        items = [str(code.get(key, "")) for key in ("CodingSchemeDesignator", "CodeValue", "CodeMeaning")]
    else:
        items = [str(x) for x in code]
    if len(items) != 3:
        raise ValueError(f"a terminology code needs 3 parts (scheme, value, meaning), got {code!r}")
    # '~' and '^' are the separators of the string form; they cannot appear inside a field.
    return [x.replace("~", "-").replace("^", "-") for x in items]


def normalise_terminology(terminology: Mapping[str, Any] | None) -> dict[str, Any]:
    """slicerio's dict form (codes as lists) of any accepted terminology dict."""
    terminology = dict(terminology or {})
    for key in ("category", "type"):
        # A segment always needs a category and type; "Mass" is the honest generic answer.
        terminology[key] = terminology.get(key) or DEFAULT_TERMINOLOGY[key]
    out: dict[str, Any] = {"contextName": terminology.get("contextName") or CATEGORY_CONTEXT}
    for key in _CODE_FIELDS:
        if terminology.get(key):
            out[key] = _code_triplet(terminology[key])
    if "anatomicRegion" in out:
        out["anatomicContextName"] = terminology.get("anatomicContextName") or ANATOMIC_CONTEXT
    return out


def terminology_string(terminology: Mapping[str, Any] | None) -> str:
    """Slicer's ``TerminologyEntry`` string of a terminology dict (default: Mass)."""
    from slicerio.segmentation import terminology_entry_to_string

    return terminology_entry_to_string(normalise_terminology(terminology))


def terminology_dict(entry: str) -> dict[str, Any]:
    """Inverse of :func:`terminology_string` (slicerio's dict, codes as lists)."""
    from slicerio.segmentation import terminology_entry_from_string

    return terminology_entry_from_string(entry)


def has_terminology_api(segment: Any) -> bool:
    """Whether this Slicer's ``vtkSegment`` has ``SetTerminology``/``GetTerminology``.

    They came in Slicer 5.9 (March 2025); Slicer 5.8 keeps the same string in the segment tag
    ``vtkSegment.GetTerminologyEntryTagName()`` ("TerminologyEntry"), which is also how both
    write it into ``.seg.nrrd`` files.
    """
    return hasattr(segment, "SetTerminology") and hasattr(segment, "GetTerminology")


def set_segment_terminology(segment: Any, terminology: Mapping[str, Any] | None) -> str:
    """Store a terminology dict on a ``vtkSegment`` with the API this Slicer has; returns the string."""
    entry = terminology_string(terminology)
    if has_terminology_api(segment):
        segment.SetTerminology(entry)
    else:
        segment.SetTag(segment.GetTerminologyEntryTagName(), entry)
    return entry


def segment_terminology(segment: Any) -> str:
    """A segment's ``TerminologyEntry`` string ("" when it has none), on any Slicer version."""
    if has_terminology_api(segment):
        return str(segment.GetTerminology() or "")
    import vtk

    value = vtk.reference("")
    return str(value) if segment.GetTag(segment.GetTerminologyEntryTagName(), value) else ""
