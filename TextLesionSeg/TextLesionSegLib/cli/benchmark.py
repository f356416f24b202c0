"""``textlesionseg benchmark``: time and peak memory per pipeline stage, per model and input.

    textlesionseg benchmark --quick --out BENCH            # minutes on 2 CPU cores
    textlesionseg benchmark --device cuda --out BENCH      # every input, demo and full configs

Models are registry names, weights folders, or ``ARCH@CONFIG.yaml`` (random weights of a config,
for timing full-size models that have no trained weights). Writes ``BENCH/benchmark.json`` and
``BENCH/benchmark.md``. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InputError, TextLesionSegError
from ..models.spec import model_specs, trainable

CONFIG_DIRS = (Path(__file__).resolve().parents[1] / "evaluation" / "configs",
               Path(__file__).resolve().parents[1] / "training" / "configs")
#: configs timed with random weights: (architecture, config name), demo then full (``ModelSpec.benchmark_configs``)
DEMO_CONFIGS = tuple((name, s.benchmark_configs[0]) for name, s in model_specs().items() if s.benchmark_configs)
FULL_CONFIGS = tuple((name, s.benchmark_configs[-1]) for name, s in model_specs().items() if len(s.benchmark_configs) > 1)


def _model_modules() -> dict[str, str]:
    """Architecture -> trainable module (``build_model`` + ``save_pretrained``): the declared trainers."""
    return trainable()


def config_path(name: str) -> Path | None:
    """A config file given as a path or as a shipped config's name (``malenia-full``, ``unet_demo``)."""
    if Path(name).is_file():
        return Path(name)
    for folder in CONFIG_DIRS:
        for cand in (folder / name, folder / f"{name}.yaml"):
            if cand.is_file():
                return cand
    return None


def register(subparsers: Any) -> None:
    """Add the ``benchmark`` parser."""
    p = subparsers.add_parser("benchmark", help="time and memory per stage, peer ratio, compute floor",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=None,
                   help="registry names, weights folders or ARCH@CONFIG.yaml (default: every registered model "
                        "with weights, plus the full configs unless --quick)")
    p.add_argument("--inputs", nargs="+", default=None, choices=("cube128", "lung2", "abdomen512"),
                   help="inputs (default: all; --quick: cube128 lung2)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--quick", action="store_true", help="demo models, small inputs, peer on cube128 only")
    p.add_argument("--no-peer", action="store_true", help="skip the SwinUNETR-48 peer")
    p.add_argument("--one-window", action="store_true",
                   help="time one window (3D) or 4 slices (2D) of each model and of the peer, scaled by the "
                        "window count (full-size models on large inputs on a CPU); stated in each row's note")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--gpu-tflops", type=float, default=100.0,
                   help="assumed effective GPU rate for the FLOP-based estimate (default 100 TFLOP/s, an "
                        "assumption: ~10%% of an H100's dense BF16 peak)")
    p.add_argument("--out", required=True, help="output folder for benchmark.json / benchmark.md")
    p.add_argument("--overwrite", action="store_true", help="replace an existing benchmark in --out")
    p.set_defaults(func=run)


def _default_models(quick: bool) -> list[str]:
    """Registered models whose weights are here (bundled or cached), else the demo configs with
    random weights; plus the full configs unless ``quick``."""
    from ..models import registry

    names = []
    for entry in registry.list_models():
        try:
            if registry.weights_status(entry.name).state in ("bundled", "cached"):
                names.append(entry.name)
        except (TextLesionSegError, OSError):  # a broken entry is skipped, not fatal to a benchmark
            continue
    # demo configs with random weights stand in for demo models not registered yet (same cost)
    wanted = ([] if names else list(DEMO_CONFIGS)) + ([] if quick else list(FULL_CONFIGS))
    names += [f"{arch}@{cfg}" for arch, cfg in wanted if config_path(cfg) is not None]
    return names


def _random_model(spec: str, device: str, tmp: Path) -> Any:
    """``ARCH@CONFIG``: build the config's model with random weights, save, load as a segmenter."""
    import importlib

    from ..models import registry
    from ..training.trainer import load_config

    arch, _, cfg_name = spec.partition("@")
    modules = _model_modules()
    if arch not in modules:
        raise InputError(f"unknown architecture '{arch}' in '{spec}' (known: {', '.join(modules)})")
    cfg_path = config_path(cfg_name)
    if cfg_path is None:
        raise InputError(f"config '{cfg_name}' not found (a file, or a name in {', '.join(map(str, CONFIG_DIRS))})")
    config = load_config(cfg_path)
    model = importlib.import_module(modules[arch]).build_model(config)
    folder = tmp / f"{arch}-{Path(cfg_path).stem}"
    model.save_pretrained(folder)
    seg = registry.default_registry().segmenter_class(arch).from_pretrained(folder, device)
    seg.name = f"{Path(cfg_path).stem} (random weights)"
    return seg


def _load(spec: str, device: str, tmp: Path) -> Any:
    from ..models import registry

    return _random_model(spec, device, tmp) if "@" in spec else registry.load_segmenter(spec, device)


def _row(r: dict[str, Any], gpu_tflops: float) -> str:
    st = r["stages"]
    peak = max(s["peak_mib"] for s in st.values())
    cpu_side = sum(v["seconds"] for k, v in st.items() if k != "model")
    est = "–"
    if r["gflops"] is not None:
        est = f"{cpu_side + r['gflops'] / (gpu_tflops * 1e3):.1f}"
    f = lambda v, d=1: "–" if v is None else f"{v:.{d}f}"  # noqa: E731
    return (f"| {r['model']} | {r['input']} | {'×'.join(map(str, r['working_shape_kji']))} | "
            + " | ".join(f"{st[s]['seconds']:.2f}" for s in ("read", "preprocess", "text", "model", "postprocess", "write"))
            + f" | {r['total_s']:.1f} | {peak:.0f} | {f(r['gflops'], 0)} | {f(r['floor_s'], 2)} | "
              f"{f(None if r['efficiency'] is None else 100 * r['efficiency'])} | {f(r['peer_s'])} | "
              f"{f(r['peer_ratio'], 2)} | {est} |")


def markdown(report: dict[str, Any]) -> str:
    """The Markdown table of a benchmark report."""
    m = report["machine"]
    lines = ["# Benchmark", "", f"Command: `{report['command']}`",
             f"Machine: {m['cpu']} ({m['threads']} torch threads), {m['device']}, torch {m['torch']}; measured "
             f"matmul rate {m['matmul_gflops']:.1f} GFLOP/s; load average at the end {m['load_average_1min']:.1f} "
             "(other jobs share the cores when it exceeds the thread count: times are then upper bounds).", "",
             "Seconds per stage; peak = highest memory seen (MiB; CPU RSS of the whole process, or CUDA allocator); "
             "floor = model GFLOPs ÷ matmul rate; eff. = floor ÷ measured model time; peer = MONAI SwinUNETR-48 "
             "sliding window on the same working volume, ratio = model ÷ peer. "
             f"GPU est. = the CPU-side stages as measured here + model GFLOPs ÷ {report['gpu_tflops']:g} TFLOP/s: "
             "an ESTIMATE from FLOPs, not a GPU measurement.", "",
             "| model | input | working KJI | read | preprocess | text | model | postprocess | write | total s | peak MiB "
             "| GFLOPs | floor s | eff. % | peer s | ratio | GPU est. s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(r, report["gpu_tflops"]) for r in report["runs"]]
    notes = [f"{r['model']} / {r['input']}: {r['note']}" for r in report["runs"] if "scaled" in r["note"] or "peer" in r["note"]]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes)]
    if report.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(report["skipped"])]
    return "\n".join(lines) + "\n"


def _report(args: argparse.Namespace, device: str, rate: float, runs: list, skipped: list) -> dict[str, Any]:
    import os

    import torch

    return {"command": "textlesionseg benchmark " + " ".join(sys.argv[2:])
            if len(sys.argv) > 1 and sys.argv[1] == "benchmark" else "textlesionseg benchmark ...",
            "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                        "threads": torch.get_num_threads(), "device": device, "torch": torch.__version__,
                        "matmul_gflops": rate, "load_average_1min": os.getloadavg()[0],
                        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None},
            "gpu_tflops": args.gpu_tflops, "runs": runs, "skipped": skipped}


def _write(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "benchmark.md").write_text(markdown(report), encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    """Benchmark every model on every input and write the report."""
    import torch

    from ..evaluation import benchmark as bm
    from ..evaluation.benchmark_inputs import TEXT_FOR_INPUT, input_file
    from ..models.registry import resolve_device
    from ..pipeline.preprocess import to_working_grid

    out = Path(args.out)
    if (out / "benchmark.json").exists() and not args.overwrite:
        raise InputError(f"{out}/benchmark.json exists; choose another --out or add --overwrite")
    device = resolve_device(args.device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked but torch sees no CUDA device; use --device cpu")
    if args.threads:
        torch.set_num_threads(int(args.threads))
    inputs = args.inputs or (["cube128", "lung2"] if args.quick else ["cube128", "lung2", "abdomen512"])
    specs = args.models or _default_models(args.quick)
    if not specs:
        raise InputError("no model to benchmark: none is registered with weights; name one with --models")
    for spec in specs:  # a mistyped model is the user's error (exit 2), found before any timing
        arch, sep, cfg = spec.partition("@")
        if sep and (arch not in _model_modules() or config_path(cfg) is None):
            raise InputError(f"'{spec}': unknown architecture or config (architectures: "
                             f"{', '.join(_model_modules())}; configs: files or shipped names)")
    rate = bm.matmul_gflops(device)
    runs, skipped = [], []
    cache = Path(tempfile.gettempdir()) / "textlesionseg-benchmark-inputs"
    with tempfile.TemporaryDirectory() as tmp:
        for name in inputs:
            try:
                path = input_file(name, cache)
            except InputError as exc:
                skipped.append(f"{name}: {exc}")
                continue
            peer: dict[tuple, float] = {}
            for spec in specs:
                print(f"benchmark: {spec} on {name}", file=sys.stderr)
                try:
                    model = _load(spec, device, Path(tmp))
                    rec = bm.run_pipeline(model, path, TEXT_FOR_INPUT[name], device, name, rate,
                                          one_window=args.one_window)
                except (TextLesionSegError, OSError, ValueError, RuntimeError) as exc:
                    # one model that cannot load (e.g. a text model not available offline) must
                    # not cost the others' numbers
                    skipped.append(f"{spec} on {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
                    continue
                want_peer = not args.no_peer and (not args.quick or name == "cube128")
                if want_peer:
                    from ..pipeline.io import read_image
                    from ..core.types import PreprocessingConfig

                    key = tuple(model.preprocessing.spacing or ())
                    if key not in peer:
                        vol, _ = to_working_grid(read_image(path), PreprocessingConfig(
                            spacing=model.preprocessing.spacing, roi_size=(96, 96, 96)))
                        # --quick / --one-window: one 96^3 window timed, times the window count
                        peer[key] = bm.swinunetr_peer(vol, device, one_window=args.quick or args.one_window)[0]
                    rec.peer_s = peer[key]
                    if args.quick or args.one_window:
                        rec.note += "; peer extrapolated from one window"
                    rec.peer_ratio = rec.stages["model"].seconds / rec.peer_s
                runs.append(rec.to_dict())
                del model
                _write(out, _report(args, device, rate, runs, skipped))  # partial results survive a crash
    report = _report(args, device, rate, runs, skipped)
    _write(out, report)
    print(markdown(report))
    return 0
