"""``textlesionseg`` command line: one sub-command per module of this package.

Each sub-command module defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments, returning an exit code or ``None`` for 0).

Exit codes: 0 success, 1 internal error (traceback written to a log file whose path is
printed), 2 bad input, 3 model or weights problem, 4 not enough memory (any allocation failure,
with the run's estimate when known), 5 remote engine problem (``--server``), 130 cancelled (Ctrl+C), 143 on SIGTERM and 129 on SIGHUP
(128 + the signal, the shell's convention; Windows' Ctrl+Break, SIGBREAK, is 130 like Ctrl+C).
A signal is handled like Ctrl+C: it raises :class:`~TextLesionSegLib.errors.Cancelled` (a
``KeyboardInterrupt``), so the clean-up that removes temporary and half-written outputs runs.
Every failure is one line on stderr, never a traceback (:func:`TextLesionSegLib.errors.classify`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import tempfile
import time
import traceback
from typing import Sequence

from .. import __version__
from ..errors import CLI_MEMORY_HINT, Cancelled, classify, one_line

#: sub-command modules, in the order ``--help`` lists them
COMMAND_MODULES: tuple[str, ...] = (
    "segment",
    "info",
    "models",
    "parse",
    "synth",
    "train",
    "prepare",
    "bundle",
    "evaluate",
    "benchmark",
    "serve",
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits with code 2 and one line, as every other bad input does."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {_shown(message)}\n")


def _shown(text: object) -> str:
    """A message that may quote user text, without the control characters (ESC...) that would
    drive the terminal."""
    try:
        from ..pipeline.names import display_text
    except Exception:  # noqa: BLE001 - an outputs module without it, or an import failing while a failure is reported
        return "".join(" " if c in "\t\n\r\x0b\x0c" else c if c.isprintable() else "\ufffd" for c in str(text))
    return display_text(text)


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
    """Write the current traceback to a log file and return its path.

    ``$TEXTLESIONSEG_LOG_DIR``, else (or when that cannot be written) the temp folder; OSError
    when neither can be written.
    """
    name = f"textlesionseg-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    problem = None
    for log_dir in dict.fromkeys(d for d in (os.environ.get("TEXTLESIONSEG_LOG_DIR"), tempfile.gettempdir()) if d):
        path = os.path.join(log_dir, name)
        try:
            os.makedirs(log_dir, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                traceback.print_exc(file=f)
            return path
        except OSError as exc:
            problem = exc
    raise problem if problem is not None else OSError("no folder for the log")


#: signals handled like Ctrl+C -> exit code (128 + signal on POSIX; SIGBREAK is Windows' Ctrl+Break)
STOP_SIGNALS: dict[str, int] = {"SIGTERM": 128 + 15, "SIGHUP": 128 + 1, "SIGBREAK": 130}


#: the signal being handled: a second stop signal while the first one's clean-up runs (systemd and
#: job schedulers repeat SIGTERM, a hang-up follows a closed terminal) must not cut that clean-up short
_stopping: list = []


def _raise_cancelled(signum: int, frame: object) -> None:
    if _stopping:
        return  # already stopping: let the clean-up finish (SIGKILL still ends the process)
    name = signal.Signals(signum).name
    _stopping.append(name)
    raise Cancelled(name, STOP_SIGNALS.get(name, 128 + signum))


def install_signal_handlers() -> dict[int, object]:
    """Make SIGTERM/SIGHUP (SIGBREAK) raise :class:`~TextLesionSegLib.errors.Cancelled`.

    Returns the handlers replaced, for :func:`restore_signal_handlers`. Only default handlers
    are replaced: an embedding program's own handler stays, and so does an ignored SIGHUP
    (``nohup``). From another thread ``signal.signal`` refuses; nothing is installed then.
    """
    previous: dict[int, object] = {}
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:
            continue  # SIGHUP on Windows, SIGBREAK on POSIX
        try:
            if signal.getsignal(signum) is not signal.SIG_DFL:
                continue
            previous[signum] = signal.signal(signum, _raise_cancelled)
        except (ValueError, OSError):  # not the main thread, or a signal this platform refuses
            continue
    return previous


def restore_signal_handlers(previous: dict[int, object]) -> None:
    """Put back what :func:`install_signal_handlers` replaced."""
    _stopping.clear()
    for signum, handler in previous.items():
        try:
            signal.signal(signum, handler)  # type: ignore[arg-type]
        except (ValueError, OSError):
            pass


def report_failure(exc: BaseException) -> int:
    """Show ``exc`` as one line on stderr (an internal error: traceback to a log) -> exit code."""
    failure = classify(exc, hint=CLI_MEMORY_HINT)
    if failure.kind == "internal":
        try:
            where = f"details in {_log_internal_error()}"
        except OSError as exc:  # never a second failure while reporting the first
            where = f"no log could be written: {one_line(exc)}"
        print(f"textlesionseg: {_shown(failure.message)} ({_shown(where)})", file=sys.stderr)
    elif failure.kind == "cancelled":
        print(f"textlesionseg: {failure.message}", file=sys.stderr)
    else:
        print(f"textlesionseg: error: {_shown(failure.message)}", file=sys.stderr)
    return failure.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``textlesionseg`` console script; returns the exit code."""
    previous = install_signal_handlers()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        try:
            return int(args.func(args) or 0)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the one place failures become exit codes
            return report_failure(exc)
    except KeyboardInterrupt as exc:  # a signal while parsing, or while a failure was being reported
        return report_failure(exc)
    finally:
        restore_signal_handlers(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
