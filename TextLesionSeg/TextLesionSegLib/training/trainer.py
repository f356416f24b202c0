"""The generic trainer used by every trainable model (Malenia, LSMS, the U-Net and CLIPSeg baselines).

A model module (e.g. ``TextLesionSegLib.models.malenia.training``) provides:

- ``build_model(config: dict) -> nn.Module`` whose ``training_loss(batch) -> dict`` has key ``"loss"``
  and which has ``save_pretrained(dir)`` (safetensors + config.json);
- ``build_datasets(config: dict, data_dir: Path) -> (train_ds, val_ds)``;
- ``evaluate_batch(model, batch) -> dict[str, float]`` (validation metrics; ``"dice"`` first);
- optionally ``collate_fn(items) -> batch``.

The YAML config's ``train`` section holds the optimisation settings (see :class:`TrainSettings`).
Multi-GPU / multi-node: launch with ``torchrun``; the trainer joins the process group it finds in the
environment (NCCL on CUDA, gloo on CPU) and wraps the model in DistributedDataParallel.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .data.cache import preload_text_features


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


class RunLogger:
    """Appends one row per epoch to ``log.csv`` (new columns extend the header) and to TensorBoard."""

    def __init__(self, out_dir: Path, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(out_dir) / "log.csv"
        self._tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(out_dir) / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self._tb = None

    def log(self, row: dict[str, Any]) -> None:
        """Write one epoch's row."""
        if not self.enabled:
            return
        rows = []
        if self.path.exists():
            with open(self.path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        rows.append({k: v for k, v in row.items()})
        header = list(dict.fromkeys(k for r in rows for k in r))
        with open(self.path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                    self._tb.add_scalar(k, v, int(row.get("step", 0)))

    def bar(self, total: int, desc: str, enabled: bool = True):
        """A tqdm bar (or a silent stand-in)."""
        if not (enabled and self.enabled):
            return _NoBar()
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def close(self) -> None:
        """Flush TensorBoard."""
        if self._tb is not None:
            self._tb.close()


@dataclass
class TrainSettings:
    """The ``train`` section of a config: AdamW + linear warm-up + cosine decay."""

    epochs: int = 10
    steps_per_epoch: int | None = None  # cap per epoch (None = the whole dataset)
    max_steps: int | None = None  # overall cap (tests, smoke runs)
    batch_size: int = 2
    lr: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    amp: bool = True  # only on CUDA
    num_workers: int = 0
    seed: int = 0
    val_every: int = 1
    threads: int | None = None
    init_from: str | None = None  # weights folder to start from (fine-tuning); None = fresh weights
    max_minutes: float | None = None  # wall-clock budget: the epoch in progress ends (and is saved) when it is spent

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TrainSettings":
        """Settings from ``config["train"]``; unknown keys are an InputError (typos should not pass)."""
        section = dict(config.get("train") or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - names)
        if unknown:
            raise InputError(f"unknown train settings {unknown}; known: {sorted(names)}")
        return cls(**section)


def _grows_inputs(new: torch.Tensor, old: torch.Tensor) -> bool:
    """Whether ``new`` is ``old`` (a convolution weight) with more input channels."""
    return new.dim() == old.dim() >= 3 and new.shape[0] == old.shape[0] and new.shape[2:] == old.shape[2:] \
        and new.shape[1] > old.shape[1]


def _with_new_inputs(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``old`` padded with zero weights for the added input channels (their output starts at 0)."""
    out = torch.zeros_like(new)
    out[:, : old.shape[1]] = old
    return out


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) config; InputError with the reason when it cannot be read."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"config {path} is not a mapping of sections")
    return data


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Multiplier of the base learning rate: linear warm-up, then cosine down to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class _LossModule(nn.Module):
    """Makes ``training_loss`` the forward of a module, so DDP's hooks see it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.model.training_loss(batch)


def _dist_info() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [_to_device(v, device) for v in batch]
    return batch


class Trainer:
    """Runs training of one model module; see the module docstring for the protocol.

    Args:
        module: the model module (import path or module object).
        config: the whole config dict (sections ``model``, ``data``, ``train``).
        data_dir: dataset folder handed to ``build_datasets``.
        out_dir: run folder: ``last/``, ``best/`` (model + config), ``trainer_state.pt``, ``log.csv``.
        device: ``auto``, ``cpu`` or ``cuda``.
        show_progress: tqdm bars on rank 0.
    """

    def __init__(self, module: Any, config: dict[str, Any], data_dir: str | Path, out_dir: str | Path,
                 device: str = "auto", show_progress: bool = True):
        self.module = importlib.import_module(module) if isinstance(module, str) else module
        self.config = config
        self.settings = TrainSettings.from_config(config)
        self.data_dir, self.out_dir = Path(data_dir), Path(out_dir)
        self.rank, self.world, local = _dist_info()
        self.distributed = self.world > 1
        if self.distributed and not torch.distributed.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"
            torch.distributed.init_process_group(backend=backend)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(f"cuda:{local}" if device == "cuda" and self.distributed else device)
        self.show_progress = show_progress and self.rank == 0
        if self.settings.threads:
            torch.set_num_threads(int(self.settings.threads))
        self._seed(self.settings.seed + self.rank)
        self.model = self.module.build_model(config)
        preload_text_features(self.model, self.data_dir)  # a prepared cache's text features: no encoder needed
        if self.settings.init_from:
            self.init_from(self.settings.init_from)
        self.model = self.model.to(self.device)
        self.train_ds, self.val_ds = self.module.build_datasets(config, self.data_dir)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=self.settings.lr, weight_decay=self.settings.weight_decay)
        self.use_amp = bool(self.settings.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step = 0
        self.epoch = 0
        self.best = -math.inf
        self.loss_module: nn.Module = _LossModule(self.model)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            # some parameters (e.g. CMKI on a lesion-free batch) may get no gradient in a step
            self.loss_module = DistributedDataParallel(self.loss_module, device_ids=ids, find_unused_parameters=True)

    def init_from(self, folder: str | Path) -> None:
        """Start from the weights in ``folder`` (``model.safetensors``): every tensor whose name and
        shape match is loaded; a first convolution that gained input channels (e.g. position
        channels) keeps the old channels' weights and starts the new ones at zero, so the model
        begins exactly where it was; InputError when no tensor fits (another architecture)."""
        from safetensors.torch import load_file

        path = Path(folder) / "model.safetensors"
        if not path.is_file():
            raise InputError(f"init_from: {path} not found")
        own = self.model.state_dict()
        loaded = {}
        for k, v in load_file(str(path)).items():
            if k in own and own[k].shape == v.shape:
                loaded[k] = v
            elif k in own and _grows_inputs(own[k], v):
                loaded[k] = _with_new_inputs(own[k], v)
        if not loaded:
            raise InputError(f"init_from: no tensor of {path} fits this model (another architecture or config?)")
        self.model.load_state_dict(loaded, strict=False)
        skipped = sorted(set(own) - set(loaded))
        if skipped and self.rank == 0:
            print(f"init_from {folder}: {len(loaded)} tensors loaded, {len(skipped)} kept fresh: {skipped[:5]}")

    @staticmethod
    def _seed(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    # ------------------------------------------------------------------ data
    def _loader(self, ds: Any, train: bool) -> torch.utils.data.DataLoader:
        sampler = None
        if self.distributed and train:
            sampler = torch.utils.data.distributed.DistributedSampler(ds, shuffle=True, seed=self.settings.seed)
        collate = getattr(self.module, "collate_fn", None)
        return torch.utils.data.DataLoader(
            ds, batch_size=self.settings.batch_size if train else 1, shuffle=train and sampler is None,
            sampler=sampler, num_workers=self.settings.num_workers, collate_fn=collate, drop_last=False)

    def total_steps(self, loader_len: int) -> int:
        """Optimiser steps of the whole run (for the schedule)."""
        per_epoch = min(loader_len, self.settings.steps_per_epoch or loader_len)
        total = per_epoch * self.settings.epochs
        return min(total, self.settings.max_steps) if self.settings.max_steps else total

    # ------------------------------------------------------------------ state
    def save(self, name: str) -> Path:
        """Model (safetensors + config.json) into ``out/name``; with ``last`` also the optimiser state."""
        folder = self.out_dir / name
        self.model.save_pretrained(folder)
        if name == "last":
            state = {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}
            torch.save(state, self.out_dir / "trainer_state.pt")
            meta = {"epoch": self.epoch, "step": self.step, "best": self.best, "config": self.config}
            (self.out_dir / "trainer_state.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        return folder

    def resume(self) -> None:
        """Continue from ``out/last`` and ``trainer_state.*``; InputError when there is nothing to resume."""
        from safetensors.torch import load_file

        meta_path = self.out_dir / "trainer_state.json"
        if not meta_path.exists():
            raise InputError(f"nothing to resume in {self.out_dir} (no trainer_state.json)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.model.load_state_dict(load_file(str(self.out_dir / "last" / "model.safetensors"), device=str(self.device)))
        state = torch.load(self.out_dir / "trainer_state.pt", map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.best = int(meta["epoch"]), int(meta["step"]), float(meta["best"])

    # ------------------------------------------------------------------ loops
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean of ``evaluate_batch`` over the validation set (every rank computes; rank 0 logs)."""
        if self.val_ds is None or len(self.val_ds) == 0:
            return {}
        self.model.eval()
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for batch in self._loader(self.val_ds, train=False):
            metrics = self.module.evaluate_batch(self.model, _to_device(batch, self.device))
            for k, v in metrics.items():  # a metric some batches lack is averaged over those that have it
                sums[k] = sums.get(k, 0.0) + float(v)
                counts[k] = counts.get(k, 0) + 1
        self.model.train()
        return {f"val_{k}": v / counts[k] for k, v in sums.items()}

    def train_step(self, batch: dict[str, Any], total: int) -> dict[str, float]:
        """One optimiser step; returns the loss parts as floats."""
        s = self.settings
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr * lr_factor(self.step, s.warmup_steps, total, s.min_lr_ratio)
        batch = _to_device(batch, self.device)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
            parts = self.loss_module(batch)
        loss = parts["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {self.step}: {loss.item()}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if s.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return {k: float(v.detach()) for k, v in parts.items()}

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train for the configured epochs/steps; returns a summary (steps, best val Dice, folders)."""
        if resume:
            self.resume()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        loader = self._loader(self.train_ds, train=True)
        total = self.total_steps(len(loader))
        logger = RunLogger(self.out_dir, enabled=self.rank == 0)
        self.model.train()
        last: dict[str, float] = {}
        start = time.time()
        while self.epoch < self.settings.epochs and self.step < total:
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(self.epoch)
            bar = logger.bar(total=min(len(loader), self.settings.steps_per_epoch or len(loader)),
                             desc=f"epoch {self.epoch + 1}/{self.settings.epochs}", enabled=self.show_progress)
            sums: dict[str, float] = {}
            n, out_of_time = 0, False
            for i, batch in enumerate(loader):
                if (self.settings.steps_per_epoch and i >= self.settings.steps_per_epoch) or self.step >= total:
                    break
                if self.settings.max_minutes is not None and time.time() - start > 60.0 * self.settings.max_minutes and n:
                    out_of_time = True
                    break
                parts = self.train_step(batch, total)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                n += 1
                bar.update(1)
                bar.set_postfix(loss=f"{parts['loss']:.3f}")
            bar.close()
            self.epoch += 1
            last = {f"train_{k}": v / max(n, 1) for k, v in sums.items()}
            if self.epoch % self.settings.val_every == 0 or self.epoch >= self.settings.epochs or self.step >= total:
                last.update(self.validate())
            score = last.get("val_dice", -last.get("train_loss", math.inf))
            if self.rank == 0:
                if score > self.best:
                    self.best = score
                    self.save("best")
                self.save("last")
                logger.log({"epoch": self.epoch, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                            "time_s": round(time.time() - start, 1), **last})
            if out_of_time:
                break
        logger.close()
        if self.distributed:
            torch.distributed.barrier()
        return {"steps": self.step, "epochs": self.epoch, "best": self.best, "last": last,
                "out_dir": str(self.out_dir), "settings": asdict(self.settings)}


def train(module: str, config: dict[str, Any], data_dir: str | Path, out_dir: str | Path, resume: bool = False,
          device: str = "auto", show_progress: bool = True) -> dict[str, Any]:
    """Build a :class:`Trainer` and run it; the CLI's entry point."""
    return Trainer(module, config, data_dir, out_dir, device=device, show_progress=show_progress).fit(resume=resume)
