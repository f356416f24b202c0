"""Text models hold safetensors weights or are refused (issue 18): a folder whose only weights are a
pickled ``pytorch_model.bin`` is refused (ModelError, exit 3, one line with the conversion) before
anything reaches ``torch.load``; the same model saved as safetensors loads. A tiny BERT built from
a config with ``transformers`` (no hub: HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from TextLesionSegLib.errors import ModelError, classify  # noqa: E402
from TextLesionSegLib.models import text_encoders as te  # noqa: E402


def _tiny_bert(folder, safe_serialization: bool):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + "a lesion mass in the left right lung liver".split()
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32))
    model.save_pretrained(folder, safe_serialization=safe_serialization)
    if not safe_serialization and (folder / "model.safetensors").exists():
        # transformers >= 5 ignores safe_serialization=False (it always writes safetensors) but still
        # loads a pytorch_model.bin it finds: write that file as transformers 4 did, torch.save(state_dict)
        (folder / "model.safetensors").unlink()
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder


@pytest.fixture(scope="module")
def berts(tmp_path_factory):
    root = tmp_path_factory.mktemp("text-models")
    return {"pickled": _tiny_bert(root / "pickled", False), "safe": _tiny_bert(root / "safe", True)}


@pytest.fixture()
def no_torch_load(monkeypatch):
    """Any call of torch.load (with or without weights_only) fails the test."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"torch.load reached with {args} {kwargs}")

    monkeypatch.setattr(torch, "load", refuse)
    return calls


def test_a_pickled_text_model_is_refused_before_torch_load(berts, no_torch_load):
    folder = berts["pickled"]
    assert (folder / "pytorch_model.bin").is_file() and not (folder / "model.safetensors").exists()
    for use in (lambda enc: enc.encode(["a lesion in the liver"]), lambda enc: enc.encode_tokens(["a mass"])):
        with pytest.raises(ModelError) as info:
            use(te.TextEncoder(folder))
        failure = classify(info.value)
        assert failure.exit_code == 3 and "\n" not in failure.message, failure
        assert "pytorch_model.bin" in failure.message and "safetensors weights are needed" in failure.message
        assert "save_pretrained" in failure.message  # the one-line conversion
    # the phrase cache (Malenia) reaches the encoder the same way
    with pytest.raises(ModelError, match="safetensors"):
        te.PhraseEmbeddingCache(str(folder), cache_dir=False).embed(["left lung"])
    assert no_torch_load == []


def test_the_same_model_saved_as_safetensors_loads(berts, no_torch_load):
    enc = te.TextEncoder(berts["safe"])
    out = enc.encode_tokens(["a mass in the left lung", "lesion"])
    assert out.tokens.shape[0] == 2 and out.tokens.shape[-1] == 16 and out.pooled.shape == (2, 16)
    assert no_torch_load == []


def test_both_files_present_loads_the_safetensors_one(berts, tmp_path, no_torch_load):
    """A folder with model.safetensors and a pytorch_model.bin beside it: only the safetensors is read."""
    import shutil

    both = tmp_path / "both"
    shutil.copytree(berts["safe"], both)
    shutil.copyfile(berts["pickled"] / "pytorch_model.bin", both / "pytorch_model.bin")
    assert te.TextEncoder(both).encode(["liver"]).shape == (1, 16)
    assert no_torch_load == []


def test_a_folder_without_any_weights_is_one_line_exit_3(berts, tmp_path, no_torch_load):
    import shutil

    empty = tmp_path / "no-weights"
    shutil.copytree(berts["safe"], empty)
    (empty / "model.safetensors").unlink()
    with pytest.raises(ModelError) as info:
        te.TextEncoder(empty).encode(["liver"])
    assert classify(info.value).exit_code == 3 and "\n" not in str(info.value)
    assert "no safetensors weights" in str(info.value)


def test_a_hub_id_is_asked_for_safetensors_only(monkeypatch, no_torch_load):
    """A hub id is not a folder to inspect: ``from_pretrained`` gets ``use_safetensors=True``."""
    seen = {}

    class FakeAuto:
        @staticmethod
        def from_pretrained(path, **kwargs):
            seen[path] = kwargs
            raise OSError("some-org/model does not appear to have a file named model.safetensors")

    import transformers as now  # the module object sys.modules holds now (transformers replaces its lazy one)

    monkeypatch.setattr(now, "AutoModel", FakeAuto)
    monkeypatch.setattr(now, "AutoTokenizer", type("T", (), {"from_pretrained": staticmethod(lambda p: None)}))
    with pytest.raises(ModelError, match="no safetensors weights in its hub repository") as info:
        te.TextEncoder("some-org/model").encode(["x"])
    assert seen == {"some-org/model": {"use_safetensors": True}} and "\n" not in str(info.value)


def test_segment_with_a_model_whose_text_model_is_pickled_exits_3_with_one_line(berts, tmp_path, monkeypatch,
                                                                              capsys, no_torch_load):
    """Through the command line: an LSMS model whose config names the pickled text model."""
    import json

    from TextLesionSegLib.cli import main
    from TextLesionSegLib.models.lsms.config import tiny_config
    from TextLesionSegLib.models.lsms.model import LSMSModel
    from TextLesionSegLib.models.registry import sha256_file
    from TextLesionSegLib.worker import testing as tiny

    weights = tmp_path / "site" / "weights" / "m"
    LSMSModel(tiny_config(text_model=str(berts["pickled"]), text_dim=16)).save_pretrained(weights)
    entry = {"name": "lsms-pickled-text", "architecture": "lsms", "version": "0.0.1", "description": "untrained",
             "license": "Apache-2.0", "card": "",
             "weights": {"path": "weights/m", "sha256": sha256_file(weights / "model.safetensors"),
                         "size": (weights / "model.safetensors").stat().st_size}}
    (tmp_path / "site" / "registry.json").write_text(json.dumps({"models": [entry]}), encoding="utf-8")
    monkeypatch.setenv("TEXTLESIONSEG_EXTRA_REGISTRY", str(tmp_path / "site" / "registry.json"))
    monkeypatch.setenv("TEXTLESIONSEG_CACHE", str(tmp_path / "cache"))
    ct = tiny.write_phantom(tmp_path / "ct.nrrd", size=24)
    out = tmp_path / "out"
    out.mkdir()
    rc = main(["segment", str(ct), "--text", "round hyperdense mass in the right lung", "--model", "lsms-pickled-text",
               "--device", "cpu", "--quiet", "--output", str(out / "o.seg.nrrd")])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 3 and len(lines) == 1 and "Traceback" not in err, err
    assert "pytorch_model.bin" in lines[0] and "safetensors weights are needed" in lines[0], lines[0]
    assert list(out.iterdir()) == [] and no_torch_load == []


def test_a_pickled_pretrained_clipseg_is_refused_too(tmp_path, no_torch_load):
    """CLIPSeg's ``pretrained`` folder (training from medvlsm's CLIP) is loaded by transformers the
    same way; its pickled form is refused before torch.load, its safetensors form loads."""
    import shutil

    from test_eval_baselines import TINY_CLIP
    from TextLesionSegLib.models.clipseg import model as clipseg

    torch.manual_seed(0)
    clipseg.CLIPSegBaseline(TINY_CLIP).save_pretrained(tmp_path / "hf")
    pickled = tmp_path / "pickled"
    shutil.copytree(tmp_path / "hf", pickled)
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x02 a pickle that must never be opened")
    with pytest.raises(ModelError) as info:
        clipseg.CLIPSegBaseline({**TINY_CLIP, "pretrained": str(pickled)})
    assert "pretrained CLIPSeg" in str(info.value) and "pytorch_model.bin" in str(info.value)
    assert classify(info.value).exit_code == 3 and "\n" not in str(info.value)
    assert clipseg.CLIPSegBaseline({**TINY_CLIP, "pretrained": str(tmp_path / "hf")}).frozen
    assert no_torch_load == []
