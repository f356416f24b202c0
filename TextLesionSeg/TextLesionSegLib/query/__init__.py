"""Free text → structured lesion queries: parser, knowledge table, terminology, phrases.

Light on purpose (Slicer imports it at start-up): only the standard library, no torch.
"""

from __future__ import annotations

from .knowledge import (
    infer,
    knowledge_table,
    organ_of_location,
    rank_lesion_types,
    terminology_code_dict,
    terminology_for,
    terminology_string,
)
from .parser import parse_text, split_descriptions
from .phrases import (
    ATTRIBUTE_VALUES,
    UNSPECIFIED,
    attribute_phrases,
    attribute_value_phrases,
    location_text,
    phrase_for,
    prompt_template,
    referring_sentence,
)
from .types import ATTRIBUTE_NAMES, LesionQuery, ParseOutput

__all__ = [
    "ATTRIBUTE_NAMES",
    "ATTRIBUTE_VALUES",
    "UNSPECIFIED",
    "LesionQuery",
    "ParseOutput",
    "attribute_phrases",
    "attribute_value_phrases",
    "infer",
    "knowledge_table",
    "location_text",
    "organ_of_location",
    "parse_text",
    "phrase_for",
    "prompt_template",
    "rank_lesion_types",
    "referring_sentence",
    "split_descriptions",
    "terminology_code_dict",
    "terminology_for",
    "terminology_string",
]
