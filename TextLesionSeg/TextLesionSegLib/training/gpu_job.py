"""What ``python BUNDLE/run.py`` does on a GPU machine (``textlesionseg bundle`` writes the bundle).

1. Throughput: forward + backward + optimiser steps per second and peak GPU memory of the model's
   full (paper-sized) and demo configs, with AMP (float16 autocast + gradient scaling) on CUDA,
   on batches from the bundle's cache. The full config's text encoder (e.g. BERT-base) is not in
   the bundle: its text features are random of the right width, which changes no step's cost.
2. Fine-tuning of the bundle's starting weights on the cache for ``--minutes``, writing
   ``OUT/weights/`` (``model.safetensors`` + ``config.json``, loadable by ``textlesionseg segment
   --model OUT/weights``) and ``OUT/log.csv`` after every epoch, so a run cut short still leaves
   its last checkpoint.

``--dry-run``: the same on the CPU, two fine-tuning steps, one throughput step per config with the
full config's window shrunk to the demo's (the code path, not a measurement).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: fine-tuning epoch length on a GPU: a checkpoint every this many steps
GPU_STEPS_PER_EPOCH = 100


def fill_text_features(trainer: Any, module: Any, random_ok: bool) -> int:
    """Give the trainer's model a feature for every text its training uses; missing ones (or ones of
    another width) become random when ``random_ok`` (throughput), else an InputError. Returns how
    many were made up."""
    import torch

    from ..errors import InputError

    model = trainer.model
    texts = module.training_texts([trainer.train_ds, trainer.val_ds])
    gen = torch.Generator().manual_seed(0)
    dim = int(model.config.text_dim)
    if hasattr(model, "embed_phrases"):  # Malenia: phrase -> (D,)
        memory = model.text_cache._memory
        missing = [t for t in texts if t not in memory or memory[t].shape[-1] != dim]
        made = {t: torch.nn.functional.normalize(torch.randn(dim, generator=gen), dim=0) for t in missing}
        memory.update(made)
    else:  # LSMS: sentence -> (L, D) word features
        cache = model._text_cache
        missing = [t for t in texts if t not in cache or cache[t][0].shape[-1] != dim]
        for t in missing:
            length = min(len(t.split()) + 2, int(model.config.text_max_length))
            cache[t] = (torch.randn(length, dim, generator=gen), torch.ones(length, dtype=torch.bool))
    if missing and not random_ok:
        raise InputError(f"{len(missing)} training texts have no cached features (e.g. {missing[0]!r}); "
                         "build the bundle again with the config it trains")
    return len(missing)


def _shrunk(arch: str, config: dict[str, Any], demo: dict[str, Any]) -> dict[str, Any]:
    """The full config shrunk by the trainer's ``dry_run_model`` and batch size one (dry run: the
    code path only)."""
    import importlib

    from ..models.spec import trainable

    config = copy.deepcopy(config)
    shrink = getattr(importlib.import_module(trainable()[arch]), "dry_run_model", None)
    if shrink is not None:
        shrink(config.setdefault("model", {}), demo.get("model", {}))
    config.setdefault("train", {})["batch_size"] = 1
    return config


def on_cache_grid(arch: str, config: dict[str, Any], cache_meta: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the cache's working spacing and HU window (cost per step depends on window
    sizes, not on spacing), so its batches come from the cache without resampling."""
    config = copy.deepcopy(config)
    model = config.setdefault("model", {})
    model["spacing"], model["hu_window"] = list(cache_meta["spacing"]), list(cache_meta["hu_window"])
    return config


def measure(arch: str, config: dict[str, Any], cache: Path, device: str, steps: int, warmup: int) -> dict[str, Any]:
    """Steps per second, samples per second and peak memory of ``config`` on ``device`` (AMP on CUDA)."""
    import torch

    from ..models.spec import trainable
    from .trainer import Trainer

    config = copy.deepcopy(config)
    config.setdefault("train", {}).update(amp=True, max_steps=None, init_from=None, num_workers=0, threads=None)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(trainable()[arch], config, cache, tmp, device=device, show_progress=False)
        made_up = fill_text_features(trainer, trainer.module, random_ok=True)
        batches, loader = [], trainer._loader(trainer.train_ds, train=True)
        while len(batches) < warmup + steps:  # batches first: the timing is the network's, not the loader's
            batches += [b for _, b in zip(range(warmup + steps - len(batches)), loader)]
        total = warmup + steps
        for batch in batches[:warmup]:
            trainer.train_step(batch, total)
        cuda = trainer.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for batch in batches[warmup:]:
            trainer.train_step(batch, total)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        batch_size = int(trainer.settings.batch_size)
        return {"steps_per_s": round(steps / seconds, 3), "samples_per_s": round(steps * batch_size / seconds, 3),
                "batch_size": batch_size, "steps": steps, "seconds": round(seconds, 3),
                "peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
                "amp": trainer.use_amp, "parameters": sum(p.numel() for p in trainer.model.parameters()),
                "random_text_features": made_up, "device": torch.cuda.get_device_name() if cuda else "cpu"}


def finetune(bundle: Path, meta: dict[str, Any], out: Path, work: Path, device: str, minutes: float | None,
             max_steps: int | None) -> dict[str, Any]:
    """Fine-tune the starting weights on the cache; ``OUT/weights`` and ``OUT/log.csv`` after every epoch."""
    from ..models.spec import trainable
    from .trainer import Trainer

    class _Checkpointing(Trainer):
        def save(self, name: str) -> Path:
            folder = super().save(name)
            if name == "last":  # copy out as it goes: a run cut short keeps its last epoch
                shutil.copytree(folder, out / "weights", dirs_exist_ok=True)
                if (self.out_dir / "log.csv").exists():
                    shutil.copy2(self.out_dir / "log.csv", out / "log.csv")
            return folder

    config = copy.deepcopy(meta["config"])
    section = config.setdefault("train", {})
    section.update(init_from=str(bundle / meta["weights"]), max_minutes=minutes, max_steps=max_steps, num_workers=0,
                   epochs=10**6 if minutes else int(section.get("epochs", 1)), val_every=1, threads=None)
    if device != "cpu":
        section["steps_per_epoch"] = GPU_STEPS_PER_EPOCH
    trainer = _Checkpointing(trainable()[meta["arch"]], config, bundle / meta["cache"], work, device=device,
                             show_progress=False)
    fill_text_features(trainer, trainer.module, random_ok=False)
    summary = trainer.fit()
    if (work / "log.csv").exists():  # the logger writes an epoch's row after its checkpoint
        shutil.copy2(work / "log.csv", out / "log.csv")
    return {k: summary[k] for k in ("steps", "epochs", "best", "last")}


def _ensure_packages(bundle: Path) -> None:
    """Install the bundle's wheels (e.g. MONAI) into a temporary folder when they are missing here."""
    import importlib.util
    import subprocess

    wheels = sorted((bundle / "wheels").glob("*.whl"))
    missing = [w for w in wheels if importlib.util.find_spec(w.name.split("-")[0].replace("_", "-").replace("-", "_")) is None]
    if not missing:
        return
    target = Path(tempfile.mkdtemp(prefix="textlesionseg-site-"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--target", str(target), *map(str, missing)], check=True)
    sys.path.insert(0, str(target))


def main(bundle: Path, argv: list[str] | None = None) -> int:
    """Entry point of ``BUNDLE/run.py``; writes ``OUT/throughput.json``, ``OUT/weights/``, ``OUT/log.csv``."""
    p = argparse.ArgumentParser(prog="run.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="results folder (throughput.json, weights/, log.csv)")
    p.add_argument("--minutes", type=float, default=5.0, help="fine-tuning time (default 5)")
    p.add_argument("--dry-run", action="store_true", help="CPU, two fine-tuning steps: check the bundle works")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cuda or cpu")
    p.add_argument("--steps", type=int, default=20, help="timed throughput steps per config (default 20)")
    p.add_argument("--work", help="folder for the full training run (optimiser state...; default OUT/run)")
    p.add_argument("--skip-throughput", action="store_true", help="fine-tune only")
    args = p.parse_args(argv)
    _ensure_packages(bundle)
    import torch

    meta = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    cache_meta = json.loads((bundle / meta["cache"] / "cache.json").read_text(encoding="utf-8"))
    device = "cpu" if args.dry_run else ("cuda" if args.device == "auto" and torch.cuda.is_available() else args.device)
    if device == "auto":
        device = "cpu"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    arch = meta["arch"]
    results: dict[str, Any] = {"device": device, "dry_run": args.dry_run, "arch": arch, "torch": torch.__version__}
    if not args.skip_throughput:
        for name, config in meta["throughput_configs"].items():
            if args.dry_run and name == "full":
                config = _shrunk(arch, config, meta["config"])
            steps, warmup = (1, 1) if args.dry_run else (args.steps, 3)
            results[name] = measure(arch, on_cache_grid(arch, config, cache_meta), bundle / meta["cache"], device,
                                    steps, warmup)
            print(f"{arch}-{name}: {results[name]['samples_per_s']} samples/s, peak {results[name]['peak_memory_mib']} MiB",
                  flush=True)
            (out / "throughput.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    work = Path(args.work) if args.work else out / "run"
    results["finetune"] = finetune(bundle, meta, out, work, device, None if args.dry_run else args.minutes,
                                   2 if args.dry_run else None)
    (out / "throughput.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print(json.dumps({"out": str(out), "weights": str(out / "weights"), **results["finetune"]}, default=str))
    return 0
