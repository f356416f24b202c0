"""LSMS network: shapes, gradients, SVLA's padding mask, the losses on hand-made cases,
checkpoint round trip."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from TextLesionSegLib.errors import ModelError  # noqa: E402
from TextLesionSegLib.models.lsms.config import LSMSConfig, demo_config, full_config, tiny_config  # noqa: E402
from TextLesionSegLib.models.lsms.decoder import FullScaleDecoder  # noqa: E402
from TextLesionSegLib.models.lsms.encoder import LanguageGuidedEncoder  # noqa: E402
from TextLesionSegLib.models.lsms.losses import bce_loss, contrastive_loss, dice_loss  # noqa: E402
from TextLesionSegLib.models.lsms.model import LSMSModel, count_parameters  # noqa: E402
from TextLesionSegLib.models.lsms.svla import SVLA, ScaleAwareConv  # noqa: E402


def _words(b: int, length: int, dim: int, valid: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    words = torch.randn(b, length, dim, generator=g)
    mask = torch.zeros(b, length, dtype=torch.bool)
    for n, v in enumerate(valid):
        mask[n, :v] = True
    return words, mask


def test_encoder_and_decoder_shapes() -> None:
    cfg = tiny_config()
    enc = LanguageGuidedEncoder(cfg, cfg.text_dim)
    words, mask = _words(2, 6, cfg.text_dim, [6, 3])
    feats = enc(torch.rand(2, cfg.in_channels, 96, 64), words, mask)
    assert [tuple(f.shape) for f in feats] == [
        (2, c, 96 // s, 64 // s) for c, s in zip(cfg.embed_dims, (4, 8, 16, 32))
    ]
    logits, emb, _ = FullScaleDecoder(cfg)(feats)
    assert logits.shape == (2, 1, 24, 16) and emb.shape == (2, cfg.embed_dim, 24, 16)


def test_separable_fusion_is_cheaper_same_shapes_and_validated() -> None:
    from TextLesionSegLib.models.lsms.complexity import lsms_cost

    cfg = tiny_config(decoder_fuse="separable")
    feats = [torch.rand(1, c, 32 // s, 32 // s) for c, s in zip(cfg.embed_dims, (1, 2, 4, 8))]
    logits, _, _ = FullScaleDecoder(cfg)(feats)
    assert logits.shape == (1, 1, 32, 32)
    assert count_parameters(FullScaleDecoder(cfg)) < count_parameters(FullScaleDecoder(tiny_config()))
    dense, separable = lsms_cost("tiny", 512, 8), lsms_cost("tiny", 512, 8, decoder_fuse="separable")
    assert separable["gflops"] < dense["gflops"] and "decoder_fuse=separable" in separable["model"]
    assert LSMSConfig.from_dict(tiny_config(decoder_fuse="separable").to_dict()).decoder_fuse == "separable"
    with pytest.raises(ValueError, match="decoder_fuse"):
        tiny_config(decoder_fuse="dense3x3")


def test_strip_kernels_are_the_configured_ones() -> None:
    conv = ScaleAwareConv(8, 5, (7, 11, 21))
    assert conv.square.kernel_size == (5, 5) and conv.square.groups == 8
    assert [(s[0].kernel_size, s[1].kernel_size) for s in conv.strips] == [
        ((1, 7), (7, 1)), ((1, 11), (11, 1)), ((1, 21), (21, 1))]
    assert full_config().embed_dims == (64, 128, 320, 512)


def test_model_outputs_and_every_parameter_gets_a_gradient() -> None:
    model = LSMSModel(tiny_config())
    words, mask = _words(2, 5, 384, [5, 2])
    label = torch.zeros(2, 1, 64, 64)
    label[0, 0, 20:30, 30:40] = 1
    out = model.training_loss({"image": torch.rand(2, 3, 64, 64), "label": label, "words": words, "word_mask": mask})
    assert set(out) >= {"loss", "dice", "bce", "contrastive"} and torch.isfinite(out["loss"])
    out["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert any(p.grad.abs().sum() > 0 for p in model.encoder.stages[0].blocks[0].svla.lang_branch.parameters())


def test_input_channels_are_neighbour_slices_times_windows() -> None:
    cfg = tiny_config(context_slices=2)
    model = LSMSModel(cfg)
    assert cfg.slice_channels == 5 and cfg.in_channels == 10
    x = torch.zeros(1, 5, 32, 32)
    x[:, :, :, 16:] = 1.0  # -1000 HU | +400 HU
    chans = model.window_channels(x)
    assert chans.shape == (1, 10, 32, 32)
    assert chans[0, 5:, 0, 0].eq(0).all() and chans[0, 5:, 0, 20].eq(1).all()


def test_svla_padding_tokens_change_nothing() -> None:
    torch.manual_seed(0)
    svla = SVLA(16, 24, heads=2).eval()
    x = torch.randn(2, 16, 8, 8)
    words, mask = _words(2, 7, 24, [7, 3])
    ref = svla(x, words, mask)
    words2 = words.clone()
    words2[1, 3:] = torch.randn(4, 24) * 100  # only padding positions of sample 1 change
    assert torch.equal(svla(x, words2, mask), ref)
    words3 = words.clone()
    words3[1, 1] = torch.randn(24) * 3  # a real token changes: the output must change
    assert (svla(x, words3, mask)[1] - ref[1]).abs().max() > 1e-3


def test_whole_model_ignores_padding_tokens() -> None:
    torch.manual_seed(0)
    model = LSMSModel(tiny_config()).eval()
    words, mask = _words(1, 9, 384, [4])
    x = torch.rand(1, 3, 64, 64)
    ref = model(x, words, mask)
    words2 = words.clone()
    words2[0, 4:] = -words2[0, 4:] * 7
    out = model(x, words2, mask)
    assert torch.equal(out["logits"], ref["logits"]) and torch.equal(out["sentence_emb"], ref["sentence_emb"])


def test_dice_and_bce_on_hand_made_cases() -> None:
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:5, 2:5] = 1
    perfect = (target * 2 - 1) * 20  # logits +-20
    assert dice_loss(perfect, target) < 1e-3 and bce_loss(perfect, target) < 1e-6
    inverted = -perfect
    assert dice_loss(inverted, target) > 0.99 and bce_loss(inverted, target) > 19
    half = torch.zeros_like(target)
    assert abs(float(bce_loss(half, target)) - float(torch.log(torch.tensor(2.0)))) < 1e-6


def test_contrastive_loss_on_hand_made_cases() -> None:
    sent = torch.tensor([[1.0, 0.0]])
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :2] = 1
    aligned = torch.zeros(1, 2, 4, 4)
    aligned[:, 0] = target[:, 0] * 2 - 1  # lesion pixels point along the sentence, background away
    log_t = torch.tensor(0.05).log()
    good = contrastive_loss(aligned, sent, target, log_t)
    bad = contrastive_loss(-aligned, sent, target, log_t)
    assert good < 1e-3 and bad > 30
    # no lesion in the slice: no positive, zero loss that still back-propagates
    empty = contrastive_loss(aligned.requires_grad_(), sent, torch.zeros_like(target), log_t)
    assert empty.item() == 0.0 and empty.requires_grad


def test_presence_loss_teaches_not_here_where_dice_cannot() -> None:
    """On an empty target Dice is ~1 whatever the prediction (no gradient to learn "not here");
    the presence loss is high for a confident wrong lesion and low for a quiet slice."""
    from TextLesionSegLib.models.lsms.losses import presence_loss

    empty = torch.zeros(2, 1, 16, 16)
    loud = torch.full((2, 1, 16, 16), -8.0)
    loud[..., 4:8, 4:8] = 8.0  # a lesion drawn although the words name none here
    quiet = torch.full((2, 1, 16, 16), -8.0)
    assert dice_loss(loud, empty) > 0.99 and dice_loss(quiet, empty) > 0.99  # Dice cannot tell them apart
    assert presence_loss(loud, empty) > 7.0 and presence_loss(quiet, empty) < 1e-3
    present = empty.clone()
    present[..., 4:8, 4:8] = 1.0
    assert presence_loss(loud, present) < 1e-3 and presence_loss(quiet, present) > 7.0
    model = LSMSModel(tiny_config(presence_weight=1.0))
    words, mask = _words(1, 5, 384, [5])
    parts = model.training_loss({"image": torch.rand(1, 3, 64, 64), "label": torch.zeros(1, 1, 64, 64),
                                 "words": words, "word_mask": mask})
    assert "presence" in parts and parts["loss"].requires_grad


def test_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(3)
    model = LSMSModel(tiny_config(decoder_layers=2)).eval()
    model.save_pretrained(tmp_path / "w")
    assert json.loads((tmp_path / "w" / "config.json").read_text(encoding="utf-8"))["architecture"] == "lsms"
    loaded = LSMSModel.from_pretrained(tmp_path / "w")
    assert loaded.config == model.config
    words, mask = _words(1, 5, 384, [5])
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(loaded(x, words, mask)["logits"], model(x, words, mask)["logits"])


def test_broken_checkpoints_raise_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="not found"):
        LSMSModel.from_pretrained(tmp_path)
    LSMSModel(tiny_config()).save_pretrained(tmp_path)
    other = {"architecture": "lsms", **tiny_config(embed_dims=(8, 16, 24, 40)).to_dict()}
    (tmp_path / "config.json").write_text(json.dumps(other), encoding="utf-8")
    with pytest.raises(ModelError, match="do not match"):
        LSMSModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"depthz": [1]}', encoding="utf-8")
    with pytest.raises(ModelError, match="not a valid"):
        LSMSModel.from_pretrained(tmp_path)


def test_config_json_round_trip() -> None:
    cfg = demo_config()
    assert LSMSConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert count_parameters(LSMSModel(cfg)) < 6_000_000  # demo weights stay well under 25 MB


def test_segmenter_loads_weights_and_answers_on_the_working_grid(tmp_path) -> None:
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.lsms.segmenter import LSMSSegmenter
    from TextLesionSegLib.query.types import LesionQuery

    torch.manual_seed(0)
    model = LSMSModel(tiny_config(spacing=(4.0, 4.0, 5.0)))
    model.save_pretrained(tmp_path / "lsms-x")
    seg = LSMSSegmenter.from_pretrained(tmp_path / "lsms-x", "cpu")
    assert seg.name == "lsms-x" and seg.preprocessing.spacing == (4.0, 4.0, 5.0)
    assert seg.preprocessing.hu_window == (-1000.0, 400.0)
    vol = torch.zeros(1, 1, 5, 40, 48)
    vol[:, :, 1:4, 5:35, 5:43] = 0.75  # body on slices 1..3 only
    model._text_cache["two words"] = (torch.randn(3, 384), torch.ones(3, dtype=torch.bool))
    seg.model._text_cache = model._text_cache
    settings = InferenceSettings(extra={"keep_all_candidates": True})
    out = seg.predict(vol, [LesionQuery(text="two words")], settings)
    assert out.shape == (1, 5, 40, 48) and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert out[0, 0].abs().sum() == 0 and out[0, 4].abs().sum() == 0  # air slices are skipped
    assert out[0, 2].abs().sum() > 0
    with pytest.raises(ModelError):
        LSMSSegmenter.from_pretrained(tmp_path / "missing", "cpu")


def test_objectness_output_is_a_config_switch_and_trains() -> None:
    """``objectness_weight`` 0 (the paper's network) has no such output; > 0 adds every-lesion
    logits whose Dice + BCE join the loss, and its head gets a gradient."""
    assert "objectness" not in LSMSModel(tiny_config())(torch.rand(1, 3, 64, 64), *_words(1, 4, 384, [4]))
    assert not LSMSModel(tiny_config()).has_objectness
    torch.manual_seed(0)
    model = LSMSModel(tiny_config(objectness_weight=1.0))
    assert model.has_objectness
    words, mask = _words(2, 5, 384, [5, 2])
    label = torch.zeros(2, 1, 64, 64)
    label[0, 0, 20:30, 30:40] = 1
    lesions = label.clone()
    lesions[:, 0, 40:50, 5:15] = 1  # a second lesion on both slices, described by neither sentence
    batch = {"image": torch.rand(2, 3, 64, 64), "label": label, "lesions": lesions, "words": words, "word_mask": mask}
    out = model.training_loss(batch)
    assert "objectness" in out and float(out["objectness"]) > 0
    without = model.training_loss({k: v for k, v in batch.items() if k != "lesions"})
    assert float(out["loss"].detach()) > float(without["loss"].detach())  # the term adds to the loss
    out["loss"].backward()
    assert model.decoder.objectness_head.weight.grad.abs().sum() > 0
    assert model(batch["image"], words, mask)["objectness"].shape == (2, 1, 64, 64)


def test_segmenter_gives_a_text_free_lesion_map_when_the_network_has_one(tmp_path) -> None:
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.lsms.segmenter import LSMSSegmenter
    from TextLesionSegLib.query.types import LesionQuery

    torch.manual_seed(0)
    vol = torch.zeros(1, 1, 5, 40, 48)
    vol[:, :, 1:4, 5:35, 5:43] = 0.75
    queries = [LesionQuery(text="one"), LesionQuery(text="two")]
    for weight, has_map in ((0.0, False), (1.0, True)):
        seg = LSMSSegmenter(LSMSModel(tiny_config(spacing=(4.0, 4.0, 5.0), objectness_weight=weight)))
        seg.model._text_cache = {t: (torch.randn(3, 384), torch.ones(3, dtype=torch.bool)) for t in ("one", "two")}
        prob, score, lesions = seg.candidate_maps(vol, queries, InferenceSettings())
        assert prob.shape == (2, 5, 40, 48) and score is None
        assert (lesions is not None) == has_map
        if has_map:
            assert lesions.shape == (5, 40, 48) and float(lesions.max()) <= 1.0
            assert lesions[0].abs().sum() == 0 and lesions[2].abs().sum() > 0  # body slices only
