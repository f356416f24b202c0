"""Phrases for text encoders: Malenia's 8 attribute phrases, the LSMS sentence, P0–P9 (issue 4 item 3)."""

from __future__ import annotations

import pytest

from TextLesionSegLib.query import (
    ATTRIBUTE_NAMES,
    ATTRIBUTE_VALUES,
    LesionQuery,
    attribute_phrases,
    attribute_value_phrases,
    parse_text,
    phrase_for,
    prompt_template,
    referring_sentence,
)


def _q(text: str) -> LesionQuery:
    return parse_text(text).queries[0]


def test_eight_phrases_in_attribute_order() -> None:
    q = _q("Contrast-enhanced CT: round hypodense homogeneous cyst with well-defined margins in the right kidney, "
           "closely related to the liver, with calcification")
    assert attribute_phrases(q) == [
        "Location: right kidney",
        "Shape: round-like",
        "Density: hypodense",
        "Density variation: homogeneous",
        "Enhancement: contrast-enhanced CT",
        "Surface: well-defined margin",
        "Relation: closely related to surrounding organs",
        "Specific features: calcification",
    ]


def test_unasserted_attributes_use_inferred_then_unspecified() -> None:
    q = _q("cyst in the left kidney")
    phrases = dict(zip(ATTRIBUTE_NAMES, attribute_phrases(q)))
    assert q.density is None and phrases["density"] == "Density: hypodense"  # inferred (renal cyst)
    assert phrases["enhancement"] == "Enhancement: unspecified"  # nothing implies a scan phase
    bare = LesionQuery(text="")
    assert attribute_phrases(bare) == [f"{label}: unspecified" for label in (
        "Location", "Shape", "Density", "Density variation", "Enhancement", "Surface", "Relation", "Specific features")]


def test_phrases_are_deterministic() -> None:
    text = "irregular hypodense mass in the pancreatic head with ill-defined margins, upstream duct dilated"
    assert attribute_phrases(_q(text)) == attribute_phrases(_q(text))
    assert referring_sentence(_q(text)) == referring_sentence(_q(text))


def test_value_phrase_table_covers_every_value_and_what_the_parser_says() -> None:
    table = attribute_value_phrases()
    assert list(table) == list(ATTRIBUTE_NAMES)
    for attribute, values in ATTRIBUTE_VALUES.items():
        listed = [v for v, _ in table[attribute]]
        assert set(values) <= set(listed)
    for attribute, pairs in table.items():
        phrases = [p for _, p in pairs]
        assert len(phrases) == len(set(phrases)), attribute  # one phrase per value
        assert pairs[-1][1].endswith("unspecified")
    # every phrase the parser produces for a single-valued attribute is in the stored table
    for text in ["round hypodense cyst in the left kidney", "spiculated nodule in the right upper lobe",
                 "mass in the pancreatic tail", "hyperdense lesion in liver segment VII", "sigmoid colon cancer",
                 "left adrenal adenoma", "enlarged lymph node", "lesion in the caudate lobe"]:
        q = _q(text)
        for attribute, phrase in zip(ATTRIBUTE_NAMES, attribute_phrases(q)):
            if attribute != "specific_features":
                assert phrase in {p for _, p in table[attribute]}, phrase


def test_phrase_for() -> None:
    assert phrase_for("shape", "irregular") == "Shape: irregular"
    assert phrase_for("density", None) == "Density: unspecified"
    assert phrase_for("specific_features", ["necrosis", "calcification"]) == "Specific features: necrosis, calcification"


def test_referring_sentence_uses_only_asserted_words() -> None:
    q = _q("the larger of two 2 cm round hypodense cysts in the left kidney")
    s = referring_sentence(q)
    assert s.startswith("the larger of the two round-like hypodense")
    assert "in the left kidney" in s and s.endswith("20 mm")
    assert "homogeneous" not in s  # inferred only: not what the user said


def test_prompt_templates_p0_to_p9() -> None:
    q = _q("two 2 cm round hypodense cysts with well-defined margins in the left kidney")
    p = [prompt_template(q, k) for k in range(10)]
    assert p[0] == ""
    assert p[1] == "renal cysts"
    assert p[2] == "round-like renal cysts"
    assert p[3] == "hypodense round-like renal cysts"
    assert p[4] == "medium-sized hypodense round-like renal cysts"
    assert p[5] == "two medium-sized hypodense round-like renal cysts"
    assert p[6] == p[5] + ", located in the left kidney"
    assert p[7].startswith("renal cysts which is ") and "well-defined" in p[7]
    assert p[8] == p[5] + p[7][len("renal cysts"):]
    assert p[9] == p[8] + ", located in the left kidney"
    with pytest.raises(ValueError):
        prompt_template(q, 10)


def test_templates_without_attributes_stay_grammatical() -> None:
    q = LesionQuery(text="")
    assert [prompt_template(q, k) for k in (1, 2, 5, 6)] == ["lesion", "lesion", "lesion", "lesion, located in the scan"]
