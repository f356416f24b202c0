"""The two baselines: the image-only MONAI UNet and medvlsm's CLIPSeg (with its pitfalls checked)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from test_eval_cases import tiny_dataset  # noqa: F401 - fixture
from TextLesionSegLib.errors import ModelError
from TextLesionSegLib.evaluation.training_data import resize_slice, unresize_slice
from TextLesionSegLib.models.clipseg import model as clipseg
from TextLesionSegLib.models.unet import model as unet_baseline
from TextLesionSegLib.models.base import InferenceSettings
from TextLesionSegLib.query.types import LesionQuery

TINY_UNET = {"channels": [4, 8], "strides": [2], "num_res_units": 0, "roi_size": [16, 32, 32]}
TINY_CLIP = {"image_size": 32, "projection_dim": 16, "reduce_dim": 16, "extract_layers": [0, 1],
             "decoder_num_attention_heads": 2, "decoder_intermediate_size": 32,
             "vision": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                        "intermediate_size": 64, "patch_size": 8},
             "text": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                      "intermediate_size": 64, "max_position_embeddings": 32}}


def _steps(model, batches, n, lr):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for i in range(n):
        loss = model.training_loss(batches[i % len(batches)])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


# ---- UNet ---------------------------------------------------------------------------------
def test_unet_trains_on_tiny_data_and_round_trips(tiny_dataset, tmp_path):  # noqa: F811
    torch.manual_seed(0)
    cfg = {"model": TINY_UNET, "data": {"samples_per_case": 4, "val_fraction": 0.34}}
    model = unet_baseline.build_model(cfg)
    train_ds, val_ds = unet_baseline.build_datasets(cfg, tiny_dataset)
    assert len(train_ds) == 4 and len(val_ds) == 2  # 2 seen cases: 1 train, 1 val; the unseen case is held out
    batch = torch.utils.data.default_collate([train_ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 1, 16, 32, 32) and batch["label"].max() == 1
    losses = _steps(model, [batch], 20, 1e-2)
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert 0.0 <= unet_baseline.evaluate_batch(model, batch)["dice"] <= 1.0
    model.save_pretrained(tmp_path / "u")
    seg = unet_baseline.UNetSegmenter.from_pretrained(tmp_path / "u")
    vol = torch.rand(1, 1, 20, 40, 36)
    prob = seg.predict(vol, [LesionQuery("a"), LesionQuery("b")], InferenceSettings(device="cpu"))
    assert prob.shape == (2, 20, 40, 36) and float(prob.min()) >= 0 and float(prob.max()) <= 1
    assert torch.equal(prob[0], prob[1])  # image-only: the text changes nothing, by design
    model.eval()
    with torch.no_grad():
        assert torch.allclose(seg.model(vol[:, :, :16, :32, :32]), model(vol[:, :, :16, :32, :32]))


def test_unet_missing_weights_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="train with"):
        unet_baseline.UNetSegmenter.from_pretrained(tmp_path)


# ---- CLIPSeg ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_clip():
    torch.manual_seed(0)
    return clipseg.CLIPSegBaseline(TINY_CLIP)


def test_clipseg_pools_the_real_end_token_and_ignores_padding(tiny_clip):
    tok = tiny_clip.tokenizer
    assert tiny_clip.clip_seg.config.text_config.eos_token_id == tok.sep_token_id
    assert tiny_clip.clip_seg.config.text_config.pad_token_id == tok.pad_token_id
    tiny_clip.eval()
    with torch.no_grad():
        alone = tiny_clip.encode_text(["hypodense lesion"])
        padded = tiny_clip.encode_text(["hypodense lesion", "an irregular hyperdense mass in the left kidney"])
        other = tiny_clip.encode_text(["hyperdense lesion"])
    assert torch.allclose(alone[0], padded[0], atol=1e-5)  # padding changes nothing
    assert not torch.allclose(alone[0], other[0], atol=1e-3)  # a different word does


def test_clipseg_loss_terms_are_live_and_gradients_reach_the_vision_tower(tiny_clip):
    tiny_clip.train()
    x = torch.rand(2, 1, 32, 32)
    empty = {"image": x, "text": ["a", "b"], "label": torch.zeros(2, 1, 32, 32)}
    full = {"image": x, "text": ["a", "b"], "label": torch.ones(2, 1, 32, 32)}
    l_empty, l_full = tiny_clip.training_loss(empty)["loss"], tiny_clip.training_loss(full)["loss"]
    assert l_empty.item() > 0.1 and l_full.item() > 0.1 and abs(l_empty.item() - l_full.item()) > 1e-3
    tiny_clip.zero_grad()
    l_full.backward()
    # transformers' own forward wraps the vision tower in no_grad; ours must not (from scratch it must learn)
    patch = tiny_clip.clip_seg.clip.vision_model.embeddings.patch_embedding.weight.grad
    assert patch is not None and float(patch.abs().sum()) > 0
    assert tiny_clip.clip_seg.clip.text_model.embeddings.token_embedding.weight.grad is not None


def test_clipseg_pretrained_mode_freezes_clip_but_trains_decoder(tiny_clip, tmp_path):
    tiny_clip.save_pretrained(tmp_path / "hf")
    model = clipseg.CLIPSegBaseline({**TINY_CLIP, "pretrained": str(tmp_path / "hf")})
    assert not any(p.requires_grad for p in model.clip_seg.clip.parameters())
    x = torch.rand(2, 1, 32, 32)
    loss = model.training_loss({"image": x, "text": ["a", "b"], "label": torch.ones(2, 1, 32, 32)})["loss"]
    loss.backward()  # frozen parts ran under no_grad, not inference_mode: backward works
    assert model.clip_seg.decoder.film_mul.weight.grad is not None
    with pytest.raises(ModelError, match="not available offline"):
        clipseg.CLIPSegBaseline({"pretrained": str(tmp_path / "missing")})


def test_clipseg_segmenter_round_trip_prompts_and_maps(tiny_clip, tmp_path):
    tiny_clip.save_pretrained(tmp_path / "c")
    seg = clipseg.CLIPSegSegmenter.from_pretrained(tmp_path / "c")
    q1 = LesionQuery("round hypodense lesion in the right kidney", organ="kidney", side="right",
                     shape="round-like", density="hypodense")
    q2 = LesionQuery("irregular hyperdense mass in the left kidney", organ="kidney", side="left",
                     shape="irregular", density="hyperdense")
    p1 = seg.prompts([q1, q2, LesionQuery("")])
    assert p1 == seg.prompts([q1, q2, LesionQuery("")])  # fixed template: deterministic
    assert p1[0] != p1[1] and p1[2] == ""
    vol = torch.rand(1, 1, 5, 40, 28)
    prob = seg.predict(vol, [q1, q2], InferenceSettings(device="cpu"))
    assert prob.shape == (2, 5, 40, 28) and float(prob.min()) >= 0 and float(prob.max()) <= 1
    assert not torch.allclose(prob[0], prob[1])  # FiLM conditioning: different words, different maps
    tiny_clip.eval()
    with torch.no_grad():
        x = torch.rand(1, 1, 32, 32)
        assert torch.allclose(seg.model(x, ["abc"]), tiny_clip(x, ["abc"]), atol=1e-4)


def test_clipseg_trains_on_described_lesion_slices(tiny_dataset):  # noqa: F811
    torch.manual_seed(0)
    cfg = {"model": {**TINY_CLIP, "templates": [3, 9]}, "data": {"samples_per_lesion": 4, "val_fraction": 0.34}}
    model = clipseg.build_model(cfg)
    train_ds, _ = clipseg.build_datasets(cfg, tiny_dataset)
    items = [train_ds[i] for i in range(8)]
    assert all(it["image"].shape == (1, 32, 32) for it in items)
    assert {it["text"] for it in items} != {""}
    batch = torch.utils.data.default_collate(items)
    losses = _steps(model, [batch], 25, 3e-3)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_slice_resize_round_trip_keeps_aspect():
    x = torch.zeros(30, 50)
    x[10:20, 5:15] = 1.0
    sq = resize_slice(x, 64)
    assert sq.shape == (64, 64)
    back = unresize_slice(sq, (30, 50))
    assert back.shape == (30, 50)
    assert float((back > 0.5).float().sub(x).abs().mean()) < 0.02
