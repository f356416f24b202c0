"""Errors a user can act on, each with the documented exit code of the CLI.

Exit codes (README, "Exit codes"): 0 success, 1 internal error (traceback goes to a log file),
2 bad input, 3 model or weights problem, 4 not enough memory (any allocation failure), 5 remote
engine problem (server unreachable, token refused, busy, another version, time limit), 130
cancelled (Ctrl+C), 143 terminated (SIGTERM), 129 hung up (SIGHUP): 128 + the signal number.
:func:`classify` turns any exception into its exit code and one line, for the command line and
the worker alike.
"""

from __future__ import annotations


class TextLesionSegError(Exception):
    """Base class of the errors shown to a user as one line, without a traceback."""

    exit_code = 1


class InputError(TextLesionSegError):
    """The user's image, text, option or output path is unusable (exit code 2)."""

    exit_code = 2


class ModelError(TextLesionSegError):
    """A model, its weights or its registry entry is missing or unusable (exit code 3)."""

    exit_code = 3


class InsufficientMemoryError(TextLesionSegError):
    """The job needs more memory than the machine has (exit code 4)."""

    exit_code = 4


class ServerError(TextLesionSegError):
    """The remote engine (``textlesionseg serve``) cannot do the job: unreachable, token refused,
    queue full, another version, or its time limit passed (exit code 5)."""

    exit_code = 5


class CancelledError(TextLesionSegError):
    """The user cancelled the job; nothing was written."""

    exit_code = 130


class Cancelled(KeyboardInterrupt):
    """A signal (SIGTERM, SIGHUP; SIGBREAK on Windows) asked the command line to stop.

    A ``KeyboardInterrupt`` subclass, so every clean-up that runs for Ctrl+C runs for it too
    (``except Exception`` never swallows it); it carries the process exit code (128 + signal).
    """

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code


# ---- one classifier for the command line and the worker ----------------------------------------
#: texts of allocation failures that do not raise MemoryError: torch's CPU allocator
#: ("DefaultCPUAllocator: can't allocate memory"), CUDA ("CUDA out of memory", "CUDA error: out of
#: memory", cuBLAS/cuDNN "..._STATUS_ALLOC_FAILED"), ITK/SimpleITK ("Failed to allocate memory for
#: image.", "std::bad_alloc"), ENOMEM texts
ALLOCATION_TEXTS = ("out of memory", "can't allocate memory", "cannot allocate memory", "failed to allocate memory",
                    "bad_alloc", "unable to allocate", "memory allocation failed", "status_alloc_failed")
#: what to try after an allocation failure, per front end
CLI_MEMORY_HINT = "try --low-memory, a smaller (cropped) volume, or another --device"
WORKER_MEMORY_HINT = "try low-memory mode, a smaller (cropped) volume, or the CPU"
_GIB = 1 << 30


class Failure:
    """How one exception is shown: exit code and one line (no ``textlesionseg: error:`` prefix).

    ``kind`` is ``user`` (a :class:`TextLesionSegError`), ``memory`` (an allocation failure),
    ``cancelled`` or ``internal`` (a bug: the caller logs the traceback and names the log).
    """

    def __init__(self, kind: str, exit_code: int, message: str) -> None:
        self.kind, self.exit_code, self.message = kind, exit_code, message

    def __repr__(self) -> str:
        return f"Failure({self.kind!r}, {self.exit_code}, {self.message!r})"


def one_line(text: object) -> str:
    """The first non-empty line of ``text``, stripped ('' when there is none)."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _chain(exc: BaseException) -> list:
    """``exc`` and the exceptions behind it: every ``__cause__``; the ``__context__`` of our own
    errors too (they wrap a library failure, often ``from None``); never a bug's ``__context__``
    (an unrelated earlier exception being handled)."""
    seen: list = []
    while exc is not None and exc not in seen and len(seen) < 16:
        seen.append(exc)
        nxt = exc.__cause__
        if nxt is None and isinstance(exc, TextLesionSegError):
            nxt = exc.__context__
        exc = nxt
    return seen


def _sentences(line: str, limit: int = 160) -> str:
    """``line`` cut after the last whole sentence that fits in ``limit`` characters (CUDA's
    message goes on for 500 characters of advice after "... of which 1.25 GiB is free.")."""
    if len(line) <= limit:
        return line
    kept = ""
    for sentence in line.split(". "):
        nxt = f"{kept}. {sentence}" if kept else sentence
        if len(nxt) > limit:
            break
        kept = nxt
    return (kept.rstrip(".") + ".") if kept else line[:limit].rstrip() + "..."


def _allocation_detail(exc: BaseException) -> str | None:
    """The telling line of an allocation failure, or None when ``exc`` is not one."""
    detail = _allocation_line(exc)
    return None if detail is None else _sentences(detail)


def _allocation_line(exc: BaseException) -> str | None:
    import errno

    if isinstance(exc, InsufficientMemoryError):
        return None
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    telling = next((ln for ln in lines if any(t in ln.lower() for t in ALLOCATION_TEXTS)), None)
    if isinstance(exc, MemoryError):  # numpy's _ArrayMemoryError is one
        return telling or one_line(text) or "MemoryError"
    if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
        return telling or f"{exc.strerror or 'cannot allocate memory'}"
    oom_type = any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__)  # torch, no import
    if oom_type or (isinstance(exc, RuntimeError) and telling):
        line = telling or one_line(text) or type(exc).__name__
        if "] " in line and line.startswith("[enforce fail"):  # torch: "[enforce fail at alloc_cpu.cpp:127] err == 0. "
            line = line.split("] ", 1)[1].split(". ", 1)[-1]
        return line
    return None


def memory_estimate(exc: BaseException) -> str | None:
    """The run's memory estimate (``pipeline.validate.estimate_memory_bytes``), when known.

    Read from the frames the exception passed through: the innermost one holding the input
    ``Image`` and a ``PreprocessingConfig`` (or a model with ``.preprocessing``), as in
    ``pipeline.run.segment``/``find_lesions``; ``queries`` and ``settings.low_memory`` there
    are used too. None when the failure happened elsewhere (e.g. while reading the image).
    Nothing is imported: without the pipeline loaded there is no image to measure.
    """
    import sys
    import traceback

    package = __name__.rsplit(".", 1)[0]
    validate = sys.modules.get(f"{package}.pipeline.validate")
    if validate is None:
        return None
    image_type, config_type = getattr(validate, "Image", None), getattr(validate, "PreprocessingConfig", None)
    if image_type is None or config_type is None:
        return None
    try:
        for link in _chain(exc):
            frames = [frame for frame, _ in traceback.walk_tb(link.__traceback__)]
            for frame in reversed(frames):  # innermost first
                local = dict(frame.f_locals)
                image = next((v for v in local.values() if isinstance(v, image_type)), None)
                if image is None:
                    continue
                cfg = next((v for v in local.values() if isinstance(v, config_type)), None)
                if cfg is None:
                    cfg = next((v.preprocessing for v in local.values()
                                if isinstance(getattr(v, "preprocessing", None), config_type)), None)
                if cfg is None:
                    continue
                queries = local.get("queries")
                n_queries = len(queries) if isinstance(queries, (list, tuple)) else 1
                low = bool(getattr(local.get("settings"), "low_memory", False))
                need = validate.estimate_memory_bytes(image, cfg, n_queries, low)
                have = validate.available_memory_bytes()
                return f"this run needs about {need / _GIB:.1f} GiB (estimate), {have / _GIB:.1f} GiB is available now"
    except Exception:  # noqa: BLE001 - an estimate is a courtesy; never a second failure
        return None
    return None


def classify(exc: BaseException, hint: str = CLI_MEMORY_HINT, estimate: str | None = None) -> Failure:
    """Exit code and one line for any exception, the same for the command line and the worker.

    Our errors keep their code (2 input, 3 model, 4 memory); any allocation failure, wherever
    raised (numpy ``MemoryError``/``_ArrayMemoryError``, torch ``OutOfMemoryError`` and the CPU
    allocator's ``RuntimeError``, ITK/SimpleITK "Failed to allocate memory", ``std::bad_alloc``),
    even wrapped in one of our errors, is exit 4 with the memory estimate when known; Ctrl+C and
    termination signals are "cancelled" (130, or 128 + signal); anything else is an internal
    error (exit 1) shown by the first line of its message only.
    """
    for link in _chain(exc):
        detail = _allocation_detail(link)
        if detail is not None:
            estimate = estimate or memory_estimate(exc)
            parts = [f"not enough memory ({detail})"] + ([estimate] if estimate else []) + [hint]
            return Failure("memory", 4, "; ".join(parts))
    if isinstance(exc, Cancelled):
        return Failure("cancelled", exc.exit_code, f"cancelled ({exc.signal_name})")
    if isinstance(exc, (KeyboardInterrupt, CancelledError)):
        return Failure("cancelled", 130, "cancelled")
    if isinstance(exc, TextLesionSegError):
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        return Failure("user", exc.exit_code, " ".join(lines) or type(exc).__name__)
    first = one_line(exc)
    return Failure("internal", 1, f"internal error: {type(exc).__name__}" + (f": {first}" if first else ""))
