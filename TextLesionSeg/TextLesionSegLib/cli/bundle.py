"""``textlesionseg bundle --model NAME --data DIR --out BUNDLE``: one self-contained GPU job folder.

    BUNDLE/run.py          python BUNDLE/run.py --out OUT [--minutes M] [--dry-run]  (training.gpu_job)
    BUNDLE/bundle.json     architecture, training config, the full config to time, paths
    BUNDLE/cache/          the prepared cache (textlesionseg prepare) with its text features
    BUNDLE/weights/        the starting weights (model.safetensors + config.json)
    BUNDLE/code/           this package's code (no shipped weights)
    BUNDLE/wheels/         wheels of what a torch-only GPU image lacks (MONAI; pure Python)

run.py needs Python with torch, numpy, scipy and safetensors; it reads the cache without SimpleITK,
slicerio or a text encoder. The folder must stay under ``--max-mib`` (default 60): ``--max-cases``
keeps it there. See docs/gpu.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models.spec import trainable
from ..training.data.adapters import LAYOUTS
from .prepare import PREPARABLE, check_inputs, new_output, prepare
from .train import resolve_config

#: packages run.py needs that a torch-only GPU image lacks, carried as pure-Python wheels
WHEELS = ("monai",)
RUN_PY = '''#!/usr/bin/env python3
"""TextLesionSeg GPU job: python run.py --out OUT [--minutes M] [--dry-run] (see README.txt)."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "code"))
from TextLesionSegLib.training.gpu_job import main  # noqa: E402

sys.exit(main(HERE, sys.argv[1:]))
'''


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bundle`` sub-command."""
    p = subparsers.add_parser("bundle", help="write a self-contained GPU job folder (cache, weights, code, run.py)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="starting weights: registered name (lsms-demo, malenia-demo) or folder")
    p.add_argument("--data", required=True, help="dataset folder (any layout train reads)")
    p.add_argument("--out", required=True, help="bundle folder (must not exist or be empty)")
    p.add_argument("--config", help="training config (default: the shipped <architecture>-demo)")
    p.add_argument("--format", choices=[l for l in LAYOUTS if l != "cache"], help="the data folder's layout")
    p.add_argument("--attributes", metavar="TABLE", help="Malenia's attribute table (.xlsx or .csv) to join")
    p.add_argument("--max-cases", type=int, help="cache only the first N cases (keeps the bundle small)")
    p.add_argument("--max-mib", type=float, default=60.0, help="size limit of the bundle (default 60 MiB)")
    p.add_argument("--no-wheels", action="store_true", help="carry no wheels (the GPU machine has MONAI)")
    p.set_defaults(func=run)


def starting_weights(spec: str) -> tuple[Path, str]:
    """(weights folder, architecture) of a registered model name or a weights folder."""
    from ..models.registry import architecture_of
    from ..models import registry

    path = Path(spec)
    if path.is_dir():
        return path, architecture_of(path)
    reg = registry.default_registry()
    entry = reg.get_entry(spec)
    return Path(reg.ensure_weights(spec)), str(entry.architecture)


def model_section(weights: Path, arch: str) -> dict[str, Any]:
    """The training config's ``model`` section that builds exactly the network of ``weights``
    (its ``config.json`` without the bookkeeping), so fine-tuning starts from every tensor."""
    try:
        cfg = json.loads((weights / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{weights}: no readable config.json ({exc})") from exc
    section = {k: v for k, v in cfg.items() if k not in ("architecture", "model_type", "extra")}
    trainer = importlib.import_module(trainable()[arch])
    return trainer.model_section(section) if hasattr(trainer, "model_section") else section


def copy_code(dest: Path) -> None:
    """This package's code into ``dest`` (no shipped weights, no caches)."""
    package = Path(__file__).resolve().parents[1]
    shutil.copytree(package, dest / package.name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "weights", "*.egg-info"))


def download_wheels(dest: Path) -> list[str]:
    """Pure-Python wheels of :data:`WHEELS` at the versions installed here (``pip download``)."""
    from importlib.metadata import version

    dest.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={version(name)}" for name in WHEELS]
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                           "--dest", str(dest), *pins], capture_output=True, text=True)
    wheels = sorted(p.name for p in dest.glob("*.whl"))
    if done.returncode != 0 or len(wheels) < len(WHEELS) or any(not w.endswith("-none-any.whl") for w in wheels):
        raise InputError(f"could not download pure-Python wheels of {', '.join(pins)} "
                         f"({(done.stderr or '').strip().splitlines()[-1:] or 'no wheel'}); use --no-wheels "
                         "when the GPU machine has them")
    return wheels


def folder_mib(folder: Path) -> float:
    """Size of every file under ``folder`` in MiB."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def build_bundle(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Write the bundle into the (new, empty) folder ``out``; returns ``bundle.json``'s content."""
    from ..training.trainer import load_config

    weights, arch = starting_weights(args.model)
    if arch not in PREPARABLE:
        raise InputError(f"{args.model} is a {arch} model; bundles train {' or '.join(PREPARABLE)}")
    config = load_config(resolve_config(args.config or f"{arch}-demo"))
    config["model"] = model_section(weights, arch)
    cache_meta = prepare(Path(args.data), arch, out / "cache", config, args.format, args.attributes,
                         max_cases=args.max_cases)
    (out / "weights").mkdir()
    for name in ("model.safetensors", "config.json"):
        if not (weights / name).is_file():
            raise InputError(f"{weights}: no {name}")
        shutil.copy2(weights / name, out / "weights" / name)
    copy_code(out / "code")
    wheels = [] if args.no_wheels else download_wheels(out / "wheels")
    meta = {"arch": arch, "starting_weights": str(args.model), "cache": "cache", "weights": "weights",
            "config": cache_meta["config"], "wheels": wheels,
            "throughput_configs": {"full": load_config(resolve_config(f"{arch}-full")), "demo": cache_meta["config"]}}
    (out / "bundle.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    (out / "run.py").write_text(RUN_PY, encoding="utf-8")
    (out / "README.txt").write_text(
        f"TextLesionSeg GPU job ({arch}, {len(cache_meta['cases'])} cached cases from {args.data}).\n"
        "Needs Python 3.9+ with torch, numpy, scipy, safetensors (MONAI comes as a wheel in wheels/).\n"
        "  python run.py --out OUT --minutes 5      # throughput of full + demo configs, then fine-tune\n"
        "  python run.py --out OUT --dry-run        # two CPU steps: the bundle works\n"
        "Results: OUT/throughput.json, OUT/log.csv, OUT/weights/ (textlesionseg segment --model OUT/weights).\n",
        encoding="utf-8")
    return meta


def run(args: argparse.Namespace) -> int:
    """Build the bundle; prints a one-line JSON summary (folder, size)."""
    _, out = check_inputs(args)
    if args.max_cases is not None and args.max_cases < 1:
        raise InputError("--max-cases must be 1 or more")
    with new_output(out):
        meta = build_bundle(args, out)
        size = folder_mib(out)
        if size > args.max_mib:
            cases = len(json.loads((out / "cache" / "cache.json").read_text(encoding="utf-8"))["cases"])
            raise InputError(f"the bundle is {size:.1f} MiB, over --max-mib {args.max_mib:g}: give --max-cases "
                             f"(fewer than its {cases} cases)")
    print(json.dumps({"out": str(out), "arch": meta["arch"], "mib": round(size, 1), "wheels": meta["wheels"]}))
    return 0
