"""Any text in, a clear answer out: robustness of the parser (issue 4 item 6, issue 10 "Text")."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from TextLesionSegLib.query import (
    ATTRIBUTE_NAMES,
    ATTRIBUTE_VALUES,
    attribute_phrases,
    parse_text,
    prompt_template,
    referring_sentence,
    terminology_for,
)
from TextLesionSegLib.query import vocabulary as V
from TextLesionSegLib.query.parser import MAX_CHARS

CANONICAL = {**ATTRIBUTE_VALUES}

_WORDS = [
    "round", "irregular", "hypodense", "hyperdense", "isodense", "mixed", "homogeneous", "heterogeneous",
    "well-defined", "ill-defined", "no", "not", "without", "lesion", "cyst", "mass", "nodule", "liver", "kidney",
    "left", "right", "segment", "VII", "pancreatic", "head", "2", "x", "3", "cm", "mm", "possible", "another",
    "the", "and", ";", ".", ",", "\n", "1.", "-", "closely", "related", "to", "duct", "dilated", "lobe", "upper",
]


def _check(out, text: str) -> None:
    """Invariants of every parse result."""
    assert isinstance(out.message, str) and out.message.strip()
    assert "\n" not in out.message  # one line for the UI and the CLI
    json.dumps(out.to_dict())  # always serialisable
    for q in out.queries:
        for attribute, values in CANONICAL.items():
            if attribute == "specific_features":
                assert set(q.specific_features) <= set(values)
            else:
                assert getattr(q, attribute) in (None, *values), (attribute, getattr(q, attribute))
        assert q.side in (None, "left", "right")
        assert q.size_mm is None or all(0 < v <= 1000 for v in q.size_mm)
        phrases = attribute_phrases(q)
        assert len(phrases) == len(ATTRIBUTE_NAMES) and all(isinstance(p, str) and p for p in phrases)
        assert referring_sentence(q)
        assert [prompt_template(q, k) for k in range(10)]
        t = terminology_for(q)
        assert len(t["category"]) == 3 and len(t["type"]) == 3


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_unicode_text(text: str) -> None:
    _check(parse_text(text), text)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=40).map(" ".join))
def test_any_mix_of_radiology_words(text: str) -> None:
    out = parse_text(text)
    _check(out, text)
    assert parse_text(text).to_dict() == out.to_dict()  # deterministic


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["round", "oval", "irregular", "lobulated"]),
    st.sampled_from(["hypodense", "low attenuation", "hyperdense", "isoattenuating"]),
    st.sampled_from(["kidney", "adrenal gland", "lung"]),
    st.sampled_from(["left", "right"]),
    st.floats(min_value=0.2, max_value=25.0).map(lambda v: round(v, 1)),
)
def test_generated_descriptions_round_trip(shape: str, density: str, organ: str, side: str, cm: float) -> None:
    text = f"{cm} cm {shape} {density} lesion in the {side} {organ}"
    q = parse_text(text).queries[0]
    assert q.shape == ("round-like" if shape in ("round", "oval") else "irregular")
    assert q.density == {"hypodense": "hypodense", "low attenuation": "hypodense", "hyperdense": "hyperdense",
                         "isoattenuating": "isodense"}[density]
    assert q.side == side and q.organ == {"adrenal gland": "adrenal"}.get(organ, organ)
    assert q.size_mm == [pytest.approx(cm * 10)]


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "empty"),
        ("   \n\t  \n", "empty"),
        ("the and of with", "No lesion described"),
        ("no lesion", "negat"),
        ("No focal lesion. No lymphadenopathy.", "negat"),
        ("Опухоль правой почки", "neither English nor Chinese"),
        ("肝右叶", "No lesion described"),
        ("🙂🙂🙂", "No lesion described"),
        ("\x00\x01\x02", "No lesion described"),
    ],
)
def test_nothing_described_gives_a_clear_message(text: str, needle: str) -> None:
    out = parse_text(text)
    assert out.queries == [] and needle in out.message
    _check(out, text)


def test_contradictory_attributes_are_named() -> None:
    out = parse_text("round irregular hypodense hyperdense lesion in the liver")
    q = out.queries[0]
    assert (q.shape, q.density) == ("round-like", "hypodense")  # the first mention is kept
    assert "contradictory shape" in out.message and "contradictory density" in out.message


def test_unknown_organ_is_named() -> None:
    out = parse_text("round hypodense lesion in the thymus")
    assert out.queries[0].organ is None and "thymus" in out.message and "thymus" in out.queries[0].unknown_words


def test_non_english_words_inside_english_are_reported() -> None:
    q = parse_text("lésion hypodense du rein droit").queries[0]
    assert q.density == "hypodense" and {"du", "rein", "droit"} <= set(q.unknown_words)


def test_implausible_size_is_ignored_with_a_message() -> None:
    out = parse_text("cyst of 5000 cm in the liver")
    assert out.queries[0].size_mm is None and "not a plausible lesion size" in out.message


def test_100000_characters_fast_and_said() -> None:
    text = ("Round hypodense lesion in the right kidney with well-defined margins. " * 1500)[:100_000]
    start = time.perf_counter()
    out = parse_text(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0  # generous: it is ~1 s on one slow core
    assert f"{MAX_CHARS:,}" in out.message and "100,000" in out.message
    assert 1 <= len(out.queries) <= 64
    junk = "x" * 100_000
    out = parse_text(junk)
    assert out.queries == [] and "100,000" in out.message


def test_too_many_lesions_are_capped_with_a_message() -> None:
    out = parse_text("\n".join(f"cyst number {i} in the liver" for i in range(100)))
    assert len(out.queries) == 64 and "ignored" in out.message


def test_not_a_string_does_not_crash() -> None:
    assert parse_text(None).queries == []  # type: ignore[arg-type]
    assert parse_text(12).queries == []  # type: ignore[arg-type]


def test_normalise_unifies_dashes_accents_and_space() -> None:
    assert V.normalise("Well\u2013Defined  LÉSION\u00a0in\tthe 2\u00d73 cm") == "well-defined lesion in the 2 x 3 cm"


_LESION_LINES = st.builds(
    lambda shape, density, organ, noun: f"{shape} {density} {noun} in the {organ}",
    st.sampled_from(["round", "irregular", "oval", "lobulated", ""]),
    st.sampled_from(["hypodense", "hyperdense", "isoattenuating", "low attenuation", ""]),
    st.sampled_from(["left kidney", "liver", "pancreatic tail", "right upper lobe", "spleen", "sigmoid colon"]),
    st.sampled_from(["lesion", "mass", "cyst", "nodule"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_LESION_LINES, min_size=1, max_size=6), st.sampled_from(["\n", "; ", "\n- "]))
def test_one_query_per_listed_description(lines: list[str], sep: str) -> None:
    out = parse_text(sep.join(lines))
    assert len(out.queries) == len(lines), (lines, [q.text for q in out.queries])


@settings(max_examples=60, deadline=None)
@given(_LESION_LINES, st.sampled_from(["calcification", "necrosis", "duct dilatation", "fat", "cavitation"]),
       st.sampled_from(["without {}", "no {}", "{} is not seen"]))
def test_a_negated_feature_is_never_asserted(line: str, feature: str, pattern: str) -> None:
    q = parse_text(f"{line}, {pattern.format(feature)}.").queries[0]
    assert feature not in q.specific_features
