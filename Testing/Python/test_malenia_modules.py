"""Shapes and gradients of every Malenia module, both backbones, config and weight files."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from TextLesionSegLib.models.malenia.config import MaleniaConfig, demo_config  # noqa: E402


def _grads_reach_all(module: torch.nn.Module) -> list[str]:
    return [n for n, p in module.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]


@pytest.mark.parametrize("stride", [1, 2])
def test_cnn_backbone_pyramid(stride):
    from TextLesionSegLib.models.malenia.backbone import CNNBackbone

    net = CNNBackbone(1, (4, 8, 12, 16), stem_stride=stride)
    feats = net(torch.rand(1, 1, 32, 32, 32))
    sizes = [f.shape[2] for f in feats]
    assert sizes == [32 // (8 * stride), 32 // (4 * stride), 32 // (2 * stride), 32 // stride]  # coarse → fine, F4
    assert [f.shape[1] for f in feats] == [16, 12, 8, 4] == list(net.out_channels)
    sum(f.mean() for f in feats).backward()
    assert not _grads_reach_all(net)


def test_swinunetr_backbone_pyramid():
    from TextLesionSegLib.models.malenia.backbone import SwinUNETRBackbone

    net = SwinUNETRBackbone(1, feature_size=12).eval()  # 12: the smallest width SwinUNETR accepts
    with torch.no_grad():  # 64³: a 32³ input leaves a 1³ bottleneck, which instance norm rejects
        feats = net(torch.rand(1, 1, 64, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(96, 4, 4, 4), (48, 8, 8, 8), (24, 16, 16, 16), (12, 64, 64, 64)]


def test_decoder_blocks_and_intermediate_masks():
    from TextLesionSegLib.models.malenia.decoder import MaskTokenDecoder

    dec = MaskTokenDecoder(dim=16, num_tokens=5, num_blocks=3, heads=2, ffn_dim=32, mask_dim=8)
    feats = [torch.rand(2, 16, s, s, s, requires_grad=True) for s in (2, 4, 8)]
    mask_feats = torch.rand(2, 8, 16, 16, 16, requires_grad=True)
    tokens, masks = dec(feats, mask_feats)
    assert len(tokens) == len(masks) == 3
    assert all(t.shape == (2, 5, 16) for t in tokens) and all(m.shape == (2, 5, 16, 16, 16) for m in masks)
    sum(m.mean() for m in masks).backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)  # each block reads its scale
    assert not _grads_reach_all(dec)


def test_cmki_shapes_gradients_and_ensemble():
    from TextLesionSegLib.models.malenia.cmki import CMKI

    cmki = CMKI(dim=16, text_dim=12, num_attributes=8, mask_dim=8, heads=2, rounds=3)
    assert len(cmki.rounds) == 3
    m, t = torch.rand(1, 3, 16), torch.rand(1, 3, 8, 12)
    keys, base = torch.rand(1, 8, 6, 6, 6), torch.rand(1, 3, 8)
    out = cmki(m, t, keys, base)
    assert out["mask_m"].shape == out["mask_t"].shape == out["prob"].shape == (1, 3, 6, 6, 6)
    assert torch.allclose(out["prob"], 0.5 * (out["mask_m"].sigmoid() + out["mask_t"].sigmoid()))
    # zero-initialised residual queries: CMKI starts exactly from the tokens' own masks
    assert torch.allclose(out["mask_m"], torch.einsum("bmc,bckji->bmkji", base, keys), atol=1e-6)
    (out["prob"] * torch.rand_like(out["prob"])).sum().backward()
    assert cmki.q_mask.weight.grad.abs().sum() > 0 and cmki.q_text.weight.grad.abs().sum() > 0


def _tiny_cfg(**kw):
    base = dict(roi_size=(32, 32, 32), cnn_channels=(4, 8, 12, 16), hidden_dim=16, mask_dim=8, num_tokens=4,
                num_heads=2, ffn_dim=32, text_dim=384)
    return demo_config(**{**base, **kw})


def test_full_model_loss_backward_reaches_every_parameter(tmp_path):
    from TextLesionSegLib.models.malenia.model import MaleniaModel

    model = MaleniaModel(_tiny_cfg(extra={"text_cache_dir": str(tmp_path)}))
    masks = torch.zeros(2, 32, 32, 32)
    masks[0, 4:12, 4:12, 4:12], masks[1, 18:28, 18:28, 18:28] = 1, 1
    phrases = [[f"Attribute {a}: value {v}" for a in range(8)] for v in range(2)]
    out = model.training_loss({"image": torch.rand(1, 1, 32, 32, 32), "masks": [masks], "phrases": [phrases]})
    assert set(out) >= {"loss", "seg", "deep", "sim", "obj"} and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert not _grads_reach_all(model)
    assert model.temperature.item() == pytest.approx(0.07, rel=1e-4)


def test_attribute_term_is_off_by_default_and_adds_to_the_loss_when_weighted(tmp_path):
    """``w_attr`` 0 (the paper's loss) leaves the loss as it was; > 0 adds the attribute-wise term,
    whose targets come from the lesion's positives within each attribute's value group."""
    from TextLesionSegLib.models.malenia.model import MaleniaModel

    torch.manual_seed(0)
    groups = [[f"Attribute {a}: value {v}" for v in range(2)] for a in range(8)]
    phrases = [[groups[a][v] for a in range(8)] for v in range(2)]
    masks = torch.zeros(2, 32, 32, 32)
    masks[0, 4:12, 4:12, 4:12], masks[1, 18:28, 18:28, 18:28] = 1, 1
    batch = {"image": torch.rand(1, 1, 32, 32, 32), "masks": [masks], "phrases": [phrases], "bank_groups": groups}
    plain = MaleniaModel(_tiny_cfg(extra={"text_cache_dir": str(tmp_path)}))
    weighted = MaleniaModel(_tiny_cfg(w_attr=2.0, extra={"text_cache_dir": str(tmp_path)}))
    weighted.load_state_dict(plain.state_dict())
    a, b = plain.training_loss(batch), weighted.training_loss(batch)
    assert "attr" not in a and float(b["attr"]) > 0
    assert float(b["loss"]) == pytest.approx(float(a["loss"]) + 2.0 * float(b["attr"]), rel=1e-5)
    b["loss"].backward()
    assert weighted.token_align[0].weight.grad.abs().sum() > 0
    pos = torch.tensor([[True, False, False, False], [False, True, True, True]])
    targets = MaleniaModel._group_targets([torch.tensor([0, 1]), torch.tensor([2, 3])], pos)
    assert targets.tolist() == [[0, -1], [1, -1]]  # lesion 2 has both values of the second: ambiguous


def test_config_json_round_trip_and_bad_files(tmp_path):
    from TextLesionSegLib.errors import ModelError
    from TextLesionSegLib.models.malenia.model import MaleniaModel

    cfg = _tiny_cfg(extra={"note": 1})
    (tmp_path / "config.json").write_text(json.dumps(MaleniaModel(cfg).config_dict()), encoding="utf-8")
    data = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert data["model_type"] == "malenia" and MaleniaConfig.from_dict(data) == cfg
    with pytest.raises(ModelError, match="model.safetensors"):
        MaleniaModel.from_pretrained(tmp_path)  # config without weights
    other = _tiny_cfg(num_tokens=6)
    MaleniaModel(other).save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text(json.dumps(cfg.to_dict()), encoding="utf-8")
    with pytest.raises(ModelError, match="do not match"):
        MaleniaModel.from_pretrained(tmp_path / "other")
