"""``textlesionseg models``: registered models, their cards and weights; download, import, clear.

Examples::

    textlesionseg models                       # one line per model
    textlesionseg models --json
    textlesionseg models --download malenia-demo
    textlesionseg models --import malenia-demo ./model.safetensors   # sites without internet
    textlesionseg models --clear-cache [NAME]   # only folders textlesionseg created (marked)
    textlesionseg models --hash WEIGHTS_DIR    # sha256 + size for a new registry entry
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``models`` sub-command."""
    parser = subparsers.add_parser("models", help="list registered models; download, import or delete weights")
    parser.add_argument("name", nargs="?", help="show only this model (with its card's text)")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--download", metavar="NAME", help="fetch and verify the weights of NAME now")
    action.add_argument("--import", dest="import_", nargs=2, metavar=("NAME", "FILE"),
                        help="copy a local model.safetensors of NAME into the cache (verified by sha256)")
    action.add_argument("--clear-cache", nargs="?", const="", metavar="NAME",
                        help="delete downloaded or imported weights (of the registered model NAME, or all); "
                             "only folders textlesionseg created are deleted, anything else in the cache folder stays")
    action.add_argument("--hash", metavar="WEIGHTS_DIR", type=Path,
                        help="print sha256 and size of WEIGHTS_DIR/model.safetensors for a registry entry")
    action.add_argument("--cache-dir", action="store_true", help="print the folder downloads go to")
    parser.set_defaults(func=run)


def _describe(registry: Any, entry: Any) -> dict[str, Any]:
    status = registry.weights_status(entry.name)
    card = registry.model_card(entry.name)
    return {
        "name": entry.name, "architecture": entry.architecture, "version": entry.version,
        "license": entry.license, "description": entry.description, "size": entry.size,
        "card": card["card_path"] or entry.card or None,
        "weights": status.state, "weights_path": str(status.path) if status.path else None,
        "weights_detail": status.detail, "min_engine_version": entry.min_engine_version,
    }


def _size(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def run(args: argparse.Namespace) -> int:
    """List models, or do one weights action; returns the exit code."""
    from ..errors import InputError
    from ..models import registry as reg

    registry = reg.default_registry()
    if args.hash is not None:
        weights = args.hash / reg.WEIGHTS_FILE if args.hash.is_dir() else args.hash
        if not weights.is_file():
            raise InputError(f"{weights} does not exist")
        reg.check_safetensors_file(weights)
        out = {"sha256": reg.sha256_file(weights), "size": weights.stat().st_size}
        print(json.dumps(out) if args.json else f"sha256 {out['sha256']}\nsize   {out['size']}")
        return 0
    if args.cache_dir:
        print(registry.cache_dir)
        return 0
    if args.download:
        path = registry.ensure_weights(args.download)
        print(f"{args.download}: weights verified in {path}")
        return 0
    if args.import_:
        path = registry.import_local_weights(args.import_[0], Path(args.import_[1]))
        print(f"{args.import_[0]}: weights imported into {path}")
        return 0
    if args.clear_cache is not None:
        report = registry.clear_cache_report(args.clear_cache or None)
        print(f"deleted {len(report.removed)} downloaded model folder(s) from {registry.cache_dir}")
        if report.unmarked:
            print(f"kept {len(report.unmarked)} folder(s) without textlesionseg's cache marker (made by an older "
                  "version, or not by textlesionseg); delete them yourself if they are not needed: "
                  + ", ".join(str(p) for p in report.unmarked))
        return 0

    entries = [registry.get_entry(args.name)] if args.name else registry.list_models()
    rows = [_describe(registry, e) for e in entries]
    if args.json:
        json.dump({"cache_dir": str(registry.cache_dir), "models": rows}, sys.stdout, indent=2)
        print()
        return 0
    if not rows:
        print("No trained model is registered yet: 'textlesionseg segment' cannot run until one is.")
        return 0
    for row in rows:
        print(f"{row['name']:<16} {row['version']:<8} {row['architecture']:<8} {row['license']:<12} "
              f"{_size(row['size']):>9}  weights: {row['weights']:<12} {row['description']}")
        if row["card"]:
            print(f"{'':16} card: {row['card']}")
    if args.name:
        card = registry.model_card(args.name)
        print(f"\nweights: {rows[0]['weights_detail']}")
        if card["text"]:
            print("\n" + card["text"])
    print(f"\ndownloads go to {registry.cache_dir}")
    return 0
