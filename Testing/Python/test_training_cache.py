"""``textlesionseg prepare``: a cache on the model's working grid that training reads like a dataset,
with the text features its training uses (no text encoder needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from public_fixtures import write_rex, write_segfm
from test_public_datasets import _config
from TextLesionSegLib.cli import main
from TextLesionSegLib.training.data import LesionDataset
from TextLesionSegLib.training.data.cache import load_text_features, on_working_grid


def _prepare(tmp_path: Path, arch: str, data: Path) -> Path:
    cache = tmp_path / f"cache-{arch}"
    code = main(["prepare", "--data", str(data), "--model", arch, "--config", str(_config(tmp_path, arch)),
                 "--out", str(cache)])
    assert code == 0
    return cache


def test_cache_reads_like_its_source_on_the_working_grid(tmp_path: Path) -> None:
    from TextLesionSegLib.models.lsms.training import preprocessing

    source = write_rex(tmp_path / "rex", n_train=2)
    cache = _prepare(tmp_path, "lsms", source)
    meta = json.loads((cache / "cache.json").read_text(encoding="utf-8"))
    assert meta["model"] == "lsms" and meta["layout"] == "rexgroundingct" and meta["text_features"] > 0
    stored = np.load(cache / meta["cases"][0]["file"], allow_pickle=False)
    assert stored["image"].dtype == np.int16 and stored["label"].dtype == np.uint8  # compact
    prep = preprocessing(json.loads(_config(tmp_path, "lsms").read_text(encoding="utf-8")))
    for part in ("train", "test"):
        original, cached = LesionDataset(source, part=part), LesionDataset(cache, part=part)
        assert cached.layout == "cache" and cached.case_ids == original.case_ids
        for a, b in zip(original, cached):
            vol_a, inst_a = on_working_grid(a, prep)
            vol_b, inst_b = on_working_grid(b, prep)  # only windowed: the grid is already the model's
            assert vol_a.shape == vol_b.shape and np.abs(vol_a - vol_b).max() <= 1.0 / 1400 + 1e-6  # 1 HU steps
            assert np.array_equal(inst_a, inst_b)
            assert [(l.lesion_id, l.report, l.attributes["side"]) for l in a.lesions] == \
                [(l.lesion_id, l.report, l.attributes["side"]) for l in b.lesions]
    feats = load_text_features(cache / "text_features.safetensors")
    assert "Nodule in the upper lobe of the left lung" in feats and feats[next(iter(feats))].dim() == 2


@pytest.mark.parametrize("arch", ["lsms", "malenia"])
def test_training_on_a_cache_asks_no_text_encoder(tmp_path: Path, arch: str, monkeypatch) -> None:
    from TextLesionSegLib.cli.train import TRAINABLE
    from TextLesionSegLib.training.trainer import Trainer

    cache = _prepare(tmp_path, arch, write_segfm(tmp_path / "segfm"))
    monkeypatch.setenv("TEXTLESIONSEG_CACHE", str(tmp_path / "empty-text-cache"))  # no phrase on disk either
    config = json.loads(_config(tmp_path, arch).read_text(encoding="utf-8"))
    config["train"]["max_steps"] = 2
    trainer = Trainer(TRAINABLE[arch], config, cache, tmp_path / "run", device="cpu", show_progress=False)
    summary = trainer.fit()
    assert summary["steps"] == 2 and np.isfinite(summary["last"]["train_loss"])
    # every text it embedded came from the cache: the text encoder was never created
    encoder = trainer.model._text_encoder if arch == "lsms" else trainer.model.text_cache._encoder
    assert encoder is None


def test_prepare_refuses_a_non_empty_out_and_leaves_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cache"
    out.mkdir()
    (out / "mine.txt").write_text("user data", encoding="utf-8")
    code = main(["prepare", "--data", str(write_segfm(tmp_path / "d", n_train=1)), "--model", "lsms", "--out", str(out)])
    assert code == 2 and "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert main(["prepare", "--data", str(tmp_path / "nope"), "--model", "lsms", "--out", str(tmp_path / "c2")]) == 2
    assert not (tmp_path / "c2").exists()
    # the empty folder a user made is used; without text features the cache holds the volumes only
    (tmp_path / "c3").mkdir()
    assert main(["prepare", "--data", str(tmp_path / "d"), "--model", "lsms", "--out", str(tmp_path / "c3"),
                 "--no-text-features"]) == 0
    assert json.loads((tmp_path / "c3" / "cache.json").read_text(encoding="utf-8"))["text_features"] == 0
    assert not (tmp_path / "c3" / "text_features.safetensors").exists() and LesionDataset(tmp_path / "c3").case_ids


def test_time_budget_ends_the_epoch_in_progress_and_saves_it(tmp_path: Path) -> None:
    """``train.max_minutes`` (what a GPU job's ``--minutes`` sets): the step under way finishes, the
    epoch is saved, nothing more runs."""
    from TextLesionSegLib.cli.train import TRAINABLE
    from TextLesionSegLib.training.trainer import Trainer

    config = json.loads(_config(tmp_path, "lsms").read_text(encoding="utf-8"))
    config["train"].update(epochs=5, steps_per_epoch=4, max_minutes=1e-6)
    trainer = Trainer(TRAINABLE["lsms"], config, write_segfm(tmp_path / "segfm", n_train=2), tmp_path / "run",
                      device="cpu", show_progress=False)
    summary = trainer.fit()
    assert (summary["steps"], summary["epochs"]) == (1, 1)
    assert (tmp_path / "run" / "last" / "model.safetensors").is_file()
