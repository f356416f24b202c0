"""The generic trainer on a toy model module: schedule, logs, checkpoints, resume, DDP on 2 CPU ranks."""

from __future__ import annotations

import csv
import json
import os
import socket
import sys

import pytest

torch = pytest.importorskip("torch")

from TextLesionSegLib.errors import InputError  # noqa: E402
from TextLesionSegLib.training import trainer as tr  # noqa: E402


class ToyModel(torch.nn.Module):
    """y = w·x + b fitted by MSE; saves as safetensors + config.json like every real model."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = config
        self.lin = torch.nn.Linear(4, 1)

    def training_loss(self, batch: dict) -> dict:
        loss = torch.nn.functional.mse_loss(self.lin(batch["x"]).squeeze(-1), batch["y"])
        return {"loss": loss, "mse": loss.detach()}

    def save_pretrained(self, folder) -> None:
        from safetensors.torch import save_file

        os.makedirs(folder, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, os.path.join(folder, "model.safetensors"))
        with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
            json.dump(self.config.get("model", {}), f)


class ToyModule:
    """The trainer protocol: build_model, build_datasets, evaluate_batch."""

    @staticmethod
    def build_model(config):
        torch.manual_seed(0)
        return ToyModel(config)

    @staticmethod
    def build_datasets(config, data_dir):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(64, 4, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.3
        items = [{"x": x[i], "y": y[i]} for i in range(64)]
        return items[:48], items[48:]

    @staticmethod
    def evaluate_batch(model, batch):
        err = (model.lin(batch["x"]).squeeze(-1) - batch["y"]).abs().mean()
        return {"dice": float(1.0 / (1.0 + err))}  # a bounded "higher is better" score


CONFIG = {"model": {"kind": "toy"}, "train": {"epochs": 6, "batch_size": 8, "lr": 0.2, "warmup_steps": 3, "seed": 0, "grad_clip": 10.0}}


def test_lr_schedule_warms_up_then_decays():
    f = [tr.lr_factor(s, 10, 100, 0.01) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] == pytest.approx(0.01, abs=1e-3)


def test_unknown_train_setting_is_an_input_error():
    with pytest.raises(InputError, match="lrr"):
        tr.TrainSettings.from_config({"train": {"lrr": 1}})


def test_fit_logs_checkpoints_and_resumes(tmp_path):
    t = tr.Trainer(ToyModule, CONFIG, tmp_path, tmp_path / "run", device="cpu", show_progress=False)
    summary = t.fit()
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv", encoding="utf-8")))
    assert len(rows) == 6 and float(rows[-1]["train_loss"]) < 0.2 * float(rows[0]["train_loss"])
    assert float(rows[-1]["val_dice"]) > float(rows[0]["val_dice"])
    for name in ("best", "last"):
        assert (tmp_path / "run" / name / "model.safetensors").exists()
        assert json.loads((tmp_path / "run" / name / "config.json").read_text(encoding="utf-8")) == {"kind": "toy"}
    assert summary["steps"] == 36
    # resume continues from the saved step with the saved weights, and trains further
    cfg = {**CONFIG, "train": {**CONFIG["train"], "epochs": 8}}
    t2 = tr.Trainer(ToyModule, cfg, tmp_path, tmp_path / "run", device="cpu", show_progress=False)
    t2.resume()
    assert t2.step == 36 and torch.equal(t2.model.lin.weight, t.model.lin.weight)
    t2 = tr.Trainer(ToyModule, cfg, tmp_path, tmp_path / "run", device="cpu", show_progress=False)
    assert t2.fit(resume=True)["steps"] == 48
    assert len(list(csv.DictReader(open(tmp_path / "run" / "log.csv", encoding="utf-8")))) == 8


def test_init_from_starts_from_trained_weights(tmp_path):
    t = tr.Trainer(ToyModule, CONFIG, tmp_path, tmp_path / "run", device="cpu", show_progress=False)
    t.fit()
    fine = {**CONFIG, "train": {**CONFIG["train"], "init_from": str(tmp_path / "run" / "last")}}
    t2 = tr.Trainer(ToyModule, fine, tmp_path, tmp_path / "fine", device="cpu", show_progress=False)
    assert torch.equal(t2.model.lin.weight, t.model.lin.weight) and t2.step == 0  # weights, not the run state
    fresh = tr.Trainer(ToyModule, CONFIG, tmp_path, tmp_path / "fresh", device="cpu", show_progress=False)
    assert not torch.equal(fresh.model.lin.weight, t.model.lin.weight)
    (tmp_path / "other").mkdir()
    from safetensors.torch import save_file

    save_file({"other.weight": torch.zeros(3)}, str(tmp_path / "other" / "model.safetensors"))
    for folder, message in ((tmp_path / "missing", "not found"), (tmp_path / "other", "no tensor")):
        bad = {**CONFIG, "train": {**CONFIG["train"], "init_from": str(folder)}}
        with pytest.raises(InputError, match=message):
            tr.Trainer(ToyModule, bad, tmp_path, tmp_path / "bad", device="cpu", show_progress=False)


def test_resume_without_state_is_an_input_error(tmp_path):
    t = tr.Trainer(ToyModule, CONFIG, tmp_path, tmp_path / "empty", device="cpu", show_progress=False)
    with pytest.raises(InputError, match="nothing to resume"):
        t.resume()


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = {**CONFIG, "train": {**CONFIG["train"], "max_steps": 1, "epochs": 1}}
    t = tr.Trainer(ToyModule, cfg, out, os.path.join(out, f"run{rank}"), device="cpu", show_progress=False)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.train_step(next(iter(t._loader(t.train_ds, train=True))), total=1)
    torch.save({"before": before, "after": t.model.state_dict()}, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_ddp_two_cpu_ranks_hold_identical_weights(tmp_path):
    """torchrun-style environment, gloo backend: each rank sees different data, the weights agree."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for k in r0["after"]:
        assert torch.equal(r0["after"][k], r1["after"][k]), k
        assert not torch.equal(r0["after"][k], r0["before"][k])  # a real step happened
