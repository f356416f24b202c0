"""``textlesionseg train ARCH --config CONFIG --data DIR --out RUN``: train a model with the generic trainer.

Multi-GPU / multi-node: ``torchrun --nproc_per_node N -m TextLesionSegLib.cli train ...``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from ..models.spec import trainable
from ..training.data.adapters import LAYOUTS

#: architecture → trainer module (build_model, build_datasets, evaluate_batch), from the models'
#: declarations (``models.spec``); imported lazily
TRAINABLE: dict[str, str] = trainable()
#: the configs shipped with the package (``--config malenia-demo`` works without a path)
CONFIG_DIR = Path(__file__).resolve().parent.parent / "training" / "configs"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser("train", help="train a model (Malenia, LSMS, baselines) on any dataset layout",
                              description=__doc__)
    p.add_argument("arch", choices=sorted(TRAINABLE), help="architecture to train")
    p.add_argument("--config", required=True, help="YAML config file, or the name of a shipped one "
                   f"({', '.join(sorted(c.stem for c in CONFIG_DIR.glob('*.yaml')))})")
    p.add_argument("--data", required=True, help="dataset folder as downloaded: synthetic, MSD task, KiTS23, "
                   "ReXGroundingCT, CVPR-BiomedSegFM, a prepared cache (textlesionseg prepare), or a folder of them")
    p.add_argument("--format", choices=LAYOUTS, help="the folder's layout (default: detected)")
    p.add_argument("--attributes", metavar="TABLE", help="Malenia's attribute table (.xlsx or .csv, as published), "
                   "joined to the cases by case id")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.csv)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--max-steps", type=int, help="override train.max_steps")
    p.add_argument("--init-from", metavar="WEIGHTS", help="start from these weights (a weights or run folder "
                   "with model.safetensors, or a registered model's name such as lsms-demo): fine-tune "
                   "instead of training from scratch")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _weights_folder(value: str) -> Path:
    """``--init-from``: a folder as given, else a registered model's verified weights folder (its
    documented use: ``--init-from lsms-demo``)."""
    from ..models.registry import default_registry

    path = Path(value)
    if path.exists():
        return path
    registry = default_registry()
    if value in {e.name for e in registry.list_models()}:
        return registry.ensure_weights(value)
    raise InputError(f"--init-from: '{value}' is neither a folder nor a registered model "
                     f"(textlesionseg models lists them)")


def resolve_config(value: str) -> Path:
    """A config path, or the shipped config of that name; InputError when neither exists."""
    path = Path(value)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{value}.yaml"
    if shipped.is_file():
        return shipped
    raise InputError(f"config '{value}' not found (give a YAML file or one of: "
                     f"{', '.join(sorted(c.stem for c in CONFIG_DIR.glob('*.yaml')))})")


def run(args: argparse.Namespace) -> int:
    """Train; prints a one-line JSON summary."""
    import importlib

    from ..training.trainer import load_config, train

    config = load_config(resolve_config(args.config))
    data = Path(args.data)
    if not data.is_dir():
        raise InputError(f"data folder {data} does not exist")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.resume:
        raise InputError(f"{out} is not empty: use --resume to continue that run, or another --out")
    module = TRAINABLE[args.arch]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise InputError(f"architecture '{args.arch}' has no trainer in this installation ({module})") from exc
        raise
    section = config.setdefault("train", {})
    if args.epochs is not None:
        section["epochs"] = args.epochs
    if args.max_steps is not None:
        section["max_steps"] = args.max_steps
    if args.init_from is not None:
        section["init_from"] = str(_weights_folder(args.init_from))
    data_section = config.setdefault("data", {}) or {}
    config["data"] = data_section
    if args.format:
        data_section["layout"] = args.format
    if args.attributes:
        if not Path(args.attributes).is_file():
            raise InputError(f"attribute table not found: {args.attributes}")
        data_section["attributes"] = str(args.attributes)
    summary = train(module, config, data, out, resume=args.resume, device=args.device,
                    show_progress=not args.no_progress)
    print(json.dumps({k: summary[k] for k in ("steps", "epochs", "best", "out_dir")}))
    return 0
