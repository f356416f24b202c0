"""``textlesionseg prepare --data DIR --model lsms|malenia --out CACHE``: a training cache.

Every case of DIR (any layout ``train`` reads) is moved once onto the model's working grid and
written compactly (int16 HU, uint8/int16 instance labels, one ``.npz`` per case), with the
frozen text encoder's features of every text its training will use. ``train --data CACHE`` and
``LesionDataset(CACHE)`` then read it like any dataset folder, without resampling, without
SimpleITK and without a text encoder. See docs/data.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError
from ..training.data.adapters import LAYOUTS
from ..models.spec import model_specs
from .train import TRAINABLE, resolve_config

#: architectures whose training module can write a cache (preprocessing + text_features)
PREPARABLE = tuple(name for name, spec in model_specs().items() if spec.writes_cache and spec.trainer)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prepare`` sub-command."""
    p = subparsers.add_parser("prepare", help="write a training cache: working-grid volumes + text features",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset folder (any layout train reads)")
    p.add_argument("--model", required=True, choices=PREPARABLE, help="architecture the cache is for")
    p.add_argument("--out", required=True, help="cache folder (must not exist or be empty)")
    p.add_argument("--config", help="training config (default: the shipped <model>-demo)")
    p.add_argument("--format", choices=[l for l in LAYOUTS if l != "cache"], help="the folder's layout (default: detected)")
    p.add_argument("--attributes", metavar="TABLE", help="Malenia's attribute table (.xlsx or .csv) to join")
    p.add_argument("--no-text-features", action="store_true", help="store no text features (LSMS keeps about "
                   "20 KB per sentence: a whole large dataset's can reach GBs; training then encodes its texts)")
    p.set_defaults(func=run)


def prepare(data: Path, arch: str, out: Path, config: dict[str, Any], layout: str | None = None,
            attributes: str | None = None, progress: Any = None, max_cases: int | None = None,
            text_features: bool = True) -> dict[str, Any]:
    """Write the cache of ``data`` for ``arch`` under ``config`` into ``out`` (see the module
    docstring); returns its manifest (``cache.json``) with ``text_features`` (how many texts)."""
    from ..training.data import lesion_datasets
    from ..training.data.cache import TEXT_FEATURES, save_text_features, write_cache

    module = importlib.import_module(TRAINABLE[arch])
    datasets = lesion_datasets(data, part="all", attributes=attributes, layout=layout)
    meta = write_cache(datasets, out, module.preprocessing(config), arch, str(data), progress, max_cases)
    # the cache is the data from now on: its records already hold the joined attributes
    config = json.loads(json.dumps(config))
    config["data"] = {k: v for k, v in (config.get("data") or {}).items() if k not in ("layout", "attributes")}
    feats = {}
    if text_features:
        model = module.build_model(config)
        model.eval()
        feats = module.text_features(model, module.build_datasets(config, out))
    meta["text_features"] = save_text_features(out / TEXT_FEATURES, feats) if feats else 0
    meta["config"] = config
    (out / "cache.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def check_inputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """(data, out) of ``prepare``/``bundle``: an existing data folder, a new or empty output folder,
    an existing attribute table; InputError naming the problem otherwise."""
    data, out = Path(args.data), Path(args.out)
    if not data.is_dir():
        raise InputError(f"data folder {data} does not exist")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not an empty folder: choose another --out")
    if args.attributes and not Path(args.attributes).is_file():
        raise InputError(f"attribute table not found: {args.attributes}")
    return data, out


@contextmanager
def new_output(out: Path) -> Iterator[Path]:
    """``out`` created (or the empty folder it is); on any failure emptied again, so nothing
    half-written is left behind and a folder the user made stays."""
    existed = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield out
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        if existed:
            out.mkdir()
        raise


def run(args: argparse.Namespace) -> int:
    """Prepare the cache; prints a one-line JSON summary."""
    from ..training.trainer import load_config

    data, out = check_inputs(args)
    config = load_config(resolve_config(args.config or f"{args.model}-demo"))
    with new_output(out):
        meta = prepare(data, args.model, out, config, args.format, args.attributes,
                       progress=lambda case_id: print(f"prepared {case_id}", file=sys.stderr),
                       text_features=not args.no_text_features)
    print(json.dumps({"out": str(out), "cases": len(meta["cases"]), "text_features": meta["text_features"],
                      "model": args.model}))
    return 0
