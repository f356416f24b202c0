"""``textlesionseg`` command line: one sub-command per module of this package.

Each sub-command module defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments, returning an exit code or ``None`` for 0).

Exit codes: 0 success, 1 internal error (traceback written to a log file whose path is
printed), 2 bad input, 3 model or weights problem, 4 not enough memory, 130 cancelled.
User errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
from typing import Sequence

from .. import __version__
from ..errors import TextLesionSegError

#: sub-command modules, in the order ``--help`` lists them
COMMAND_MODULES: tuple[str, ...] = (
    "segment",
    "info",
    "models",
    "parse",
    "synth",
    "train",
    "evaluate",
    "benchmark",
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits with code 2 and one line, as every other bad input does."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every sub-command whose module is present."""
    parser = _Parser(prog="textlesionseg", description="Free-text lesion segmentation of CT volumes.")
    parser.add_argument("--version", action="version", version=f"textlesionseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # sub-command not built yet
            raise
        module.register(sub)
    return parser


def _log_internal_error() -> str:
    """Write the current traceback to a log file and return its path."""
    log_dir = os.environ.get("TEXTLESIONSEG_LOG_DIR") or tempfile.gettempdir()
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, f"textlesionseg-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    with open(path, "w", encoding="utf-8") as f:
        traceback.print_exc(file=f)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``textlesionseg`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        return int(code or 0)
    except TextLesionSegError as exc:
        print(f"textlesionseg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("textlesionseg: cancelled", file=sys.stderr)
        return 130
    except MemoryError:
        print("textlesionseg: error: not enough memory (try --low-memory or a smaller ROI)", file=sys.stderr)
        return 4
    except Exception as exc:  # noqa: BLE001 - the one place internal errors are turned into a log
        path = _log_internal_error()
        print(f"textlesionseg: internal error: {type(exc).__name__}: {exc} (details in {path})", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
