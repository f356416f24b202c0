"""The click model is real: a tiny config learns to segment a synthetic lesion from one click
(loss falls, Dice after one click rises), its crops hold one lesion each, and it saves and
loads through the registry like the other families."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from TextLesionSegLib.evaluation.training_data import PreparedCase
from TextLesionSegLib.models.interactive.model import InteractiveNet
from TextLesionSegLib.models.interactive.training import LesionCropDataset, evaluate_batch, lesion_crop_start
from TextLesionSegLib.models.registry import Registry, sha256_file

TINY = {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 0, "crop_size": [24, 24, 24],
        "region_size": [24, 24, 24], "max_rounds": 1, "prior_noise": 0.0}


def _scene(rng: np.random.Generator, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Noisy background with two bright balls: the target (label 1) and a distractor (label 2)."""
    grid = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1).astype(np.float32)
    image = 0.3 + 0.05 * rng.standard_normal((n, n, n)).astype(np.float32)
    labels = np.zeros((n, n, n), np.int16)
    centres = [rng.uniform(7, n - 7, 3), None]
    while centres[1] is None or np.linalg.norm(centres[1] - centres[0]) < 11:
        centres[1] = rng.uniform(5, n - 5, 3)
    for value, (centre, radius) in enumerate(zip(centres, (rng.uniform(3.5, 5.5), 3.0)), start=1):
        inside = np.linalg.norm(grid - centre, axis=-1) <= radius
        image[inside] = 0.75 + 0.05 * rng.standard_normal(int(inside.sum()))
        labels[inside & (labels == 0)] = value
    return image, labels


def _batch(rng: np.random.Generator, size: int) -> dict[str, torch.Tensor]:
    scenes = [_scene(rng) for _ in range(size)]
    return {"image": torch.from_numpy(np.stack([s[0] for s in scenes]))[:, None],
            "label": torch.from_numpy(np.stack([(s[1] == 1).astype(np.float32) for s in scenes]))[:, None]}


@pytest.mark.slow
def test_tiny_click_model_learns_a_lesion_from_one_click():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = InteractiveNet(TINY)
    val = _batch(np.random.default_rng(99), 6)
    model.eval()
    before = evaluate_batch(model, val)["dice"]
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        loss = model.training_loss(_batch(rng, 4))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    after = evaluate_batch(model, val)
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10]), losses
    # the clicked ball, not the distractor: a union of both balls would score far lower
    print(before, after)
    assert after["dice"] > 0.7 and after["dice"] > before + 0.4, (before, after)


def test_lesion_crops_hold_one_lesion_each_and_validation_crops_never_change():
    image, labels = _scene(np.random.default_rng(3), n=32)
    case = PreparedCase("c", image.astype(np.float16), labels, [])
    train = LesionCropDataset([case], (24, 24, 24), repeats=2, vary=True)
    val = LesionCropDataset([case], (24, 24, 24), vary=False)
    assert len(train) == 4 and len(val) == 2
    for ds in (train, val):
        for n in range(len(ds)):
            item = ds[n]
            assert item["image"].shape == (1, 24, 24, 24) and set(item["label"].unique().tolist()) == {0.0, 1.0}
    own = (labels == 1).sum()
    assert int(val[0]["label"].sum()) == own  # the whole lesion, and only it
    first, again = val[1], val[1]  # two reads of one validation item: the same crop
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["label"], again["label"])
    assert int(first["label"].sum()) == (labels == 2).sum()


def test_training_crops_move_off_centre_but_never_cut_a_lesion_that_fits():
    rng = np.random.default_rng(0)
    shape, crop = (200, 200, 200), (48, 48, 48)
    big_lo, big_hi = np.array([80, 90, 100]), np.array([120, 125, 130])  # 40, 35, 30 voxels: fits a 48 crop
    starts = np.array([lesion_crop_start(shape, crop, big_lo, big_hi, rng) for _ in range(200)])
    assert np.all(starts <= big_lo) and np.all(starts + 48 >= big_hi)  # the whole lesion, every draw
    assert len({tuple(s) for s in starts}) > 20  # and still shifted around
    small_lo, small_hi = np.array([95, 95, 95]), np.array([105, 105, 105])
    small = np.array([lesion_crop_start(shape, crop, small_lo, small_hi, rng) for _ in range(200)])
    assert small.min() == 100 - 24 - 12 and small.max() == 100 - 24 + 12  # a quarter crop either way
    huge = np.array(lesion_crop_start(shape, crop, np.array([50, 50, 50]), np.array([150, 150, 150]), rng))
    assert np.all(np.abs(huge - 76) <= 12)  # larger than the crop: any shift stays inside it
    edge = lesion_crop_start((60, 60, 60), crop, np.array([0, 0, 0]), np.array([10, 10, 10]), rng)
    assert edge == [0, 0, 0]  # never outside the volume


def test_registry_loads_the_click_model_and_refuses_a_mismatched_config(tmp_path):
    weights = tmp_path / "site" / "weights" / "m"
    InteractiveNet(TINY).save_pretrained(weights)
    entry = {"name": "clicks-tiny", "architecture": "interactive", "version": "0.0.1", "description": "untrained",
             "weights": {"path": "weights/m", "sha256": sha256_file(weights / "model.safetensors"),
                         "size": (weights / "model.safetensors").stat().st_size}}
    path = tmp_path / "site" / "registry.json"
    path.write_text(json.dumps({"models": [entry]}), encoding="utf-8")
    seg = Registry([path], cache_dir=tmp_path / "cache").load_segmenter("clicks-tiny", "cpu")
    assert seg.capabilities == {"clicks"} and seg.preprocessing.spacing == (2.0, 2.0, 2.0)
    config = weights / "config.json"
    data = json.loads(config.read_text(encoding="utf-8"))
    data["channels"] = [16, 32, 64]
    config.write_text(json.dumps(data), encoding="utf-8")
    from TextLesionSegLib.errors import ModelError

    with pytest.raises(ModelError, match="match"):
        Registry([path], cache_dir=tmp_path / "cache").load_segmenter("clicks-tiny", "cpu")


def test_the_large_lesion_config_continues_the_shipped_network():
    """Run 5 (interactive-demo-large) starts from the shipped weights: its network must be theirs."""
    from pathlib import Path

    import TextLesionSegLib
    from TextLesionSegLib.cli.train import resolve_config
    from TextLesionSegLib.models.interactive.training import build_model
    from TextLesionSegLib.training.trainer import TrainSettings, load_config

    cfg = load_config(resolve_config("interactive-demo-large"))
    assert TrainSettings.from_config(cfg).threads == 1
    shipped = Path(TextLesionSegLib.__file__).parent / "models" / "weights" / "interactive-demo" / "config.json"
    assert build_model(cfg).config == json.loads(shipped.read_text(encoding="utf-8"))
