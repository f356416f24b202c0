"""``textlesionseg train``: bad inputs are one line and exit code 2; shipped configs parse."""

from __future__ import annotations

import pytest

from TextLesionSegLib.cli import main


def test_unknown_config_and_missing_data_exit_2(tmp_path, capsys):
    assert main(["train", "malenia", "--config", "no-such-config", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["train", "malenia", "--config", "malenia-demo", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_non_empty_run_folder_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("user data", encoding="utf-8")
    assert main(["train", "malenia", "--config", "malenia-demo", "--data", str(tmp_path), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err and (out / "keep.txt").read_text(encoding="utf-8") == "user data"


def test_data_folder_without_dataset_json_exit_2(tmp_path, capsys):
    pytest.importorskip("torch")
    code = main(["train", "malenia", "--config", "malenia-demo", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--no-progress"])
    assert code == 2 and "dataset.json" in capsys.readouterr().err


def test_init_from_takes_a_folder_or_a_registered_model_name(tmp_path, capsys):
    """The configs document ``--init-from lsms-demo``: a registered name is its verified weights folder."""
    from TextLesionSegLib.cli.train import _weights_folder
    from TextLesionSegLib.models.registry import default_registry

    assert _weights_folder("lsms-demo") == default_registry().ensure_weights("lsms-demo")
    assert (_weights_folder("lsms-demo") / "model.safetensors").is_file()
    assert _weights_folder(str(tmp_path)) == tmp_path
    code = main(["train", "lsms", "--config", "lsms-demo-reading", "--init-from", "no-such-model",
                 "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "neither a folder nor a registered model" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", ["malenia-demo", "malenia-full", "malenia-demo-finetune"])
def test_shipped_configs_build(name):
    pytest.importorskip("torch")
    from TextLesionSegLib.cli.train import resolve_config
    from TextLesionSegLib.models.malenia.config import MaleniaConfig
    from TextLesionSegLib.training.trainer import TrainSettings, load_config

    cfg = load_config(resolve_config(name))
    TrainSettings.from_config(cfg)  # no unknown keys
    model_cfg = MaleniaConfig.from_dict(cfg["model"])
    assert model_cfg.num_blocks == 3 and model_cfg.fusion_rounds == 3 and not model_cfg.extra


def test_finetune_configs_keep_their_stage_one_model():
    """Stage 2 loads stage 1's weights: the model sections must be the same network."""
    from TextLesionSegLib.cli.train import resolve_config
    from TextLesionSegLib.training.trainer import TrainSettings, load_config

    for arch, later in (("malenia", "-finetune"), ("lsms", "-finetune"), ("lsms", "-background")):
        base, fine = (load_config(resolve_config(f"{arch}-demo{s}")) for s in ("", later))
        assert fine["model"] == base["model"]
        TrainSettings.from_config(fine)
    assert load_config(resolve_config("lsms-demo-background"))["data"]["background_per_lesion"] > 0
    # the attribute-wise stage: the same network, one more loss weight
    base, attr = (load_config(resolve_config(f"malenia-demo{s}")) for s in ("", "-attr"))
    assert attr["model"].pop("w_attr") > 0 and attr["model"] == base["model"]
    TrainSettings.from_config(attr)


@pytest.mark.parametrize("name", ["interactive-demo", "interactive-demo-finetune", "interactive-full"])
def test_click_model_configs_build(name):
    pytest.importorskip("torch")
    from TextLesionSegLib.cli.train import resolve_config
    from TextLesionSegLib.models.interactive.training import build_model, preprocessing_of
    from TextLesionSegLib.training.trainer import TrainSettings, load_config

    cfg = load_config(resolve_config(name))
    TrainSettings.from_config(cfg)  # no unknown keys
    model = build_model(cfg)
    import torch

    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv3d))
    assert first.in_channels == 4  # CT window, positive clicks, negative clicks, previous mask
    assert preprocessing_of(model.config).roi_size == tuple(model.config["region_size"])
    if name.endswith("-finetune"):  # run 2 continues run 1: the same network
        assert cfg["model"] == load_config(resolve_config("interactive-demo"))["model"]
