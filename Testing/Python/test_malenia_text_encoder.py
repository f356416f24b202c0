"""Text encoders: a tiny BERT saved locally and the bundled all-MiniLM-L6-v2; the phrase cache."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from TextLesionSegLib.models import text_encoders as te  # noqa: E402


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A randomly initialised 2-layer BERT with a real word-piece vocabulary, saved to a folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + "a the lesion mass in left right lung liver round irregular hypodense hyperdense ##s".split()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)
    return folder


def test_tokens_mask_and_pooled(tiny_bert):
    enc = te.TextEncoder(tiny_bert)
    out = enc.encode_tokens(["a mass in the left lung", "lesion"])
    b, length, d = out.tokens.shape
    assert (b, d) == (2, 32) and out.mask.shape == (2, length) and out.mask.dtype == torch.bool
    assert out.mask[0].sum() > out.mask[1].sum()  # the short text is padded
    manual = out.tokens[1][out.mask[1]].mean(0)
    assert torch.allclose(out.pooled[1], manual, atol=1e-5)  # padding excluded from the mean
    assert not any(p.requires_grad for p in enc._model.parameters())  # frozen
    assert enc.encode(["lesion"]).shape == (1, 32)


def test_bad_model_name_is_a_model_error(tmp_path):
    from TextLesionSegLib.errors import ModelError

    with pytest.raises(ModelError):
        te.TextEncoder(tmp_path / "nothing-here").encode(["x"])


def test_minilm_default_is_offline_and_semantic():
    enc = te.TextEncoder()  # the bundled all-MiniLM-L6-v2
    e = torch.nn.functional.normalize(enc.encode(["hypodense lesion in the liver", "low-density liver lesion",
                                                  "fracture of the femur"]), dim=-1)
    assert e.shape == (3, 384)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.1


def test_phrase_cache_memory_and_disk(tiny_bert, tmp_path, monkeypatch):
    cache = te.PhraseEmbeddingCache(str(tiny_bert), cache_dir=tmp_path)
    first = cache.embed(["left lung", "liver", "left lung"])
    assert first.shape == (3, 32) and torch.equal(first[0], first[2])
    # a new cache reads the disk file: no text model is loaded for known phrases
    again = te.PhraseEmbeddingCache(str(tiny_bert), cache_dir=tmp_path)
    monkeypatch.setattr(te.TextEncoder, "_load", lambda self: (_ for _ in ()).throw(AssertionError("encoder loaded")))
    assert torch.allclose(again.embed(["liver"]), first[1:2])
    with pytest.raises(AssertionError, match="encoder loaded"):
        again.embed(["a phrase never seen"])
    monkeypatch.undo()
    again._file.write_bytes(b"damaged")  # a damaged disk cache is rebuilt, never trusted
    assert torch.allclose(te.PhraseEmbeddingCache(str(tiny_bert), cache_dir=tmp_path).embed(["liver"]), first[1:2])


def test_shipped_embeddings_need_no_encoder(monkeypatch):
    cache = te.PhraseEmbeddingCache("no/such-model", cache_dir=False)
    cache.add(["Shape: round-like"], torch.ones(1, 4))
    monkeypatch.setattr(te.TextEncoder, "_load", lambda self: (_ for _ in ()).throw(AssertionError("encoder loaded")))
    assert torch.equal(cache.embed(["Shape: round-like"]), torch.ones(1, 4))


def test_sentence_cache_lets_lsms_skip_the_text_model(tiny_bert, tmp_path, monkeypatch):
    from TextLesionSegLib.models.lsms.config import tiny_config
    from TextLesionSegLib.models.lsms.model import LSMSModel

    cfg = tiny_config(text_model=str(tiny_bert), text_dim=32)
    first = LSMSModel(cfg)
    first.sentence_cache = te.SentenceFeatureCache(cfg.text_model, cfg.text_max_length, cache_dir=tmp_path)
    words, mask = first.encode_text(["a mass in the left lung", "lesion"])
    assert len(list(first.sentence_cache.folder.glob("*.safetensors"))) == 2
    # a fresh model (a new process, in real use) reads the sentences back without any text model
    again = LSMSModel(cfg)
    again.sentence_cache = te.SentenceFeatureCache(cfg.text_model, cfg.text_max_length, cache_dir=tmp_path)
    monkeypatch.setattr(te.TextEncoder, "_load", lambda self: (_ for _ in ()).throw(AssertionError("encoder loaded")))
    words2, mask2 = again.encode_text(["a mass in the left lung", "lesion"])
    assert torch.equal(mask2, mask) and torch.allclose(words2, words)
    with pytest.raises(AssertionError, match="encoder loaded"):
        again.encode_text(["a sentence never seen"])
    # another truncation length is another key; a damaged entry is ignored, not trusted
    assert te.SentenceFeatureCache(cfg.text_model, 8, cache_dir=tmp_path).get("lesion") is None
    cache = again.sentence_cache
    cache._path("lesion").write_bytes(b"not a safetensors file")
    assert cache.get("lesion") is None
