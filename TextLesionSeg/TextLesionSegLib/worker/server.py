"""The worker process: keeps models loaded and answers JSON-line requests (see ``protocol``).

Run as ``python -m TextLesionSegLib.worker``. Requests are handled one at a time on the main
thread; the client cancels by killing the process, so nothing here needs to be interruptible.
Protocol lines go to the *original* stdout only: fd 1 is redirected to stderr at start, so a
stray ``print`` or a C library writing to stdout cannot corrupt the stream. Logs go to stderr
(the client sends them to a log file). :func:`run_request_sync` runs the same handler in the
calling process, for scripts and Slicer's self-test.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Callable, TextIO

from . import protocol

log = logging.getLogger("TextLesionSegLib.worker")
Emit = Callable[[dict[str, Any]], None]


def process_rss_bytes(pid: int | None = None) -> int | None:
    """Resident memory of a process (this one by default), from /proc or psutil; None if unknown."""
    pid = pid or os.getpid()
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil  # optional: Windows/macOS

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:  # noqa: BLE001 - memory is informative only
        return None


#: modules every model request needs; importing them takes seconds (MONAI pulls in transformers)
WARM_UP_MODULES = ("torch", "monai.inferers", "TextLesionSegLib.pipeline.run", "TextLesionSegLib.pipeline.io",
                   "TextLesionSegLib.query")
_warm_up: threading.Thread | None = None


def start_warm_up() -> None:
    """Import the heavy modules in a background thread while the user is still typing.

    Disabled with ``TEXTLESIONSEG_WORKER_WARMUP=0``. Model requests wait for it to finish
    (:func:`wait_for_warm_up`) so two threads never import the same package at once.
    """
    global _warm_up
    if os.environ.get("TEXTLESIONSEG_WORKER_WARMUP", "1") == "0" or _warm_up is not None:
        return

    def run() -> None:
        started = time.perf_counter()
        for name in WARM_UP_MODULES:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - the request will report it properly
                log.warning("warm-up import of %s failed: %s", name, exc)
        log.info("warm-up imports done in %.1f s", time.perf_counter() - started)

    _warm_up = threading.Thread(target=run, name="textlesionseg-warm-up", daemon=True)
    _warm_up.start()


def warm_up_state() -> str:
    """``off`` (never started), ``running`` or ``done``."""
    if _warm_up is None:
        return "off"
    return "running" if _warm_up.is_alive() else "done"


def wait_for_warm_up() -> None:
    """Block until the warm-up imports (if any) are finished."""
    if _warm_up is not None:
        _warm_up.join()


def compute_status() -> dict[str, Any]:
    """Torch version, CUDA devices and device choices (``pipeline.devices``), asked in this process.

    Slicer asks the worker, not its own process, so only the worker imports torch and opens CUDA.
    When torch is installed the warm-up thread is importing it: wait for that first, so two threads
    never import torch at once. Without torch nothing is imported or waited for.
    """
    from ..pipeline import devices

    if importlib.util.find_spec("torch") is not None:
        wait_for_warm_up()
    return devices.compute_status()


class WorkerState:
    """Loaded models, keyed by (name, device), and how often each was loaded."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, str], Any] = {}
        self._image: tuple[Any, Any] | None = None
        self.load_counts: Counter[str] = Counter()
        self.requests_done = 0

    def model(self, name: str, device: str, progress: Any) -> tuple[Any, bool]:
        """The loaded segmenter ``name`` on ``device``; loads it on first use. Returns (model, was_cached)."""
        from ..models import registry

        key = (name, registry.resolve_device(device))
        if key in self.models:
            return self.models[key], True
        segmenter = registry.default_registry().load_segmenter(name, key[1], progress)
        self.models[key] = segmenter
        self.load_counts[f"{name}@{key[1]}"] += 1
        log.info("loaded model %s on %s", name, key[1])
        return segmenter, False

    def image(self, path: str) -> Any:
        """The image at ``path``, read once while its file is unchanged: each click of a correction
        re-reads nothing (the last image only, so memory holds one CT)."""
        from ..pipeline import io

        stat = Path(path).stat() if Path(path).is_file() else None
        key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size) if stat else None
        if key is None or self._image is None or self._image[0] != key:
            self._image = (key, io.read_image(path))
        return self._image[1]

    def unload(self) -> None:
        """Drop every loaded model and give cached GPU memory back."""
        wait_for_warm_up()  # torch may be half-imported by the warm-up thread
        self.models.clear()
        self._image = None
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def status(self) -> dict[str, Any]:
        """Loaded models, load counts and memory of this process."""
        return {
            "loaded_models": [f"{n}@{d}" for n, d in self.models],
            "load_counts": dict(self.load_counts),
            "requests_done": self.requests_done,
            "rss_bytes": process_rss_bytes(),
            "pid": os.getpid(),
            "warm_up": warm_up_state(),
        }

    # ---- requests -----------------------------------------------------------------------------
    def handle(self, request: dict[str, Any], emit: Emit) -> dict[str, Any]:
        """Run one request; progress goes to ``emit``; returns the final result/status/error message."""
        rid = protocol.request_id(request)  # an id the reply cannot echo (a list, 10 MB of text) is null
        started = time.perf_counter()
        try:
            protocol.check_request(request)
            kind = request["type"]
            if kind == "status":
                return {"type": "status", "id": rid, **self.status(), "compute": compute_status()}
            if kind == "unload":
                self.unload()
                return {"type": "status", "id": rid, **self.status()}
            if kind in ("load", "segment", "find_lesions", "refine") and warm_up_state() == "running":
                emit({"type": "progress", "id": rid, "fraction": None,
                      "stage": "Starting the engine (first run: importing PyTorch and MONAI)"})
                wait_for_warm_up()
            if kind == "load":
                from ..models import registry

                settings = request.get("settings") or {}
                name = request.get("model") or registry.default_model_name()
                self.model(name, settings.get("device", "auto"), lambda stage, fraction=None: emit(
                    {"type": "progress", "id": rid, "stage": stage, "fraction": fraction}))
                # the panel's preload: its answer also fills the Advanced section's device list
                return {"type": "status", "id": rid, **self.status(), "compute": compute_status()}
            if kind == "shutdown":
                return {"type": "status", "id": rid, "shutting_down": True, **self.status()}
            message = self._run_model(request, emit)
            message["seconds"] = round(time.perf_counter() - started, 3)
            return message
        except BaseException as exc:  # noqa: BLE001 - every failure becomes one error message
            return self._error(rid, exc)
        finally:
            self.requests_done += 1

    def _run_model(self, request: dict[str, Any], emit: Emit) -> dict[str, Any]:
        from ..core.types import InferenceSettings
        from ..models import registry
        from ..pipeline import io, run
        from ..pipeline.clicks import default_click_model, refine_lesion

        rid = protocol.request_id(request)

        def progress(stage: str, fraction: float | None = None) -> None:
            emit({"type": "progress", "id": rid, "stage": stage, "fraction": fraction})

        # one schema (core.settings): unknown keys, wrong types and out-of-range values are refused
        settings = InferenceSettings.from_mapping(request.get("settings"))
        refine = request["type"] == "refine"
        name = request.get("model") or (default_click_model() if refine else registry.default_model_name())
        segmenter, cached = self.model(name, settings.device, progress)
        progress("Reading image", None)
        image = self.image(request["image_path"]) if refine else io.read_image(request["image_path"])
        keep = bool(request.get("keep_probability", False))
        include, exclude = request.get("include_points") or [], request.get("exclude_points") or []
        if refine:
            result = refine_lesion(image, include, exclude, segmenter, settings, request.get("prior_path"), keep)
        elif request["type"] == "segment":
            clicker = self.model(default_click_model(), settings.device, progress)[0] if include or exclude else None
            result = run.segment(image, list(request["texts"]), segmenter, settings, progress=progress,
                                 keep_probability=keep, include_points=include, exclude_points=exclude,
                                 click_model=clicker)
        else:
            result = run.find_lesions(image, segmenter, settings, progress=progress, keep_probability=keep)
        progress("Saving result", None)
        path = protocol.save_result(result, _result_path(request))
        return {
            "type": "result", "id": rid, "result_path": str(path.resolve()), "model": name,
            "model_reused": cached, "model_load_count": self.load_counts[f"{name}@{registry.resolve_device(settings.device)}"],
            "segments": [s.name for s in result.segments], "warnings": list(result.warnings),
        }

    def _error(self, rid: Any, exc: BaseException) -> dict[str, Any]:
        """One ``error`` message, classified as the command line does (``errors.classify``)."""
        from ..errors import WORKER_MEMORY_HINT, classify

        failure = classify(exc, hint=WORKER_MEMORY_HINT)
        if failure.kind != "internal":
            return {"type": "error", "id": rid, "message": failure.message, "exit_code": failure.exit_code}
        # three-argument form: the one-argument form is Python >= 3.10 (Slicer 5.8 runs 3.9)
        log.error("request %s failed:\n%s", rid, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        return {"type": "error", "id": rid, "exit_code": 1,
                "message": f"{failure.message} (traceback in the worker log)"}


def _result_path(request: dict[str, Any]) -> Path:
    """Where the result goes: ``output_dir`` of the request, else a fresh temporary folder."""
    out = request.get("output_dir")
    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="textlesionseg-result-"))
    folder.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(request.get("id") or "result"))
    path, n = folder / f"{stem}.json", 1
    while path.exists() or path.with_suffix(".npz").exists():  # never overwrite an earlier result
        path, n = folder / f"{stem}-{n}.json", n + 1
    return path


_SYNC_STATE: WorkerState | None = None


def run_request_sync(request: dict[str, Any], on_message: Emit | None = None) -> dict[str, Any]:
    """Run ``request`` in this process (models stay loaded between calls); returns the final message.

    ``on_message`` receives progress messages; raising ``errors.CancelledError`` from it stops
    the job (an error message with exit code 130 is returned).
    """
    global _SYNC_STATE
    if _SYNC_STATE is None:
        _SYNC_STATE = WorkerState()
    request = {"protocol": protocol.PROTOCOL_VERSION, **request}
    return _SYNC_STATE.handle(request, on_message or (lambda message: None))


def serve(stdin: TextIO, out: TextIO) -> int:
    """Answer requests from ``stdin`` until it closes or a shutdown request arrives."""
    state = WorkerState()

    def emit(message: dict[str, Any]) -> None:
        out.write(protocol.encode(message))
        out.flush()

    emit({"type": "ready", "protocol": protocol.PROTOCOL_VERSION, "pid": os.getpid()})
    for line in stdin:
        if not line.strip():
            continue
        try:
            request = protocol.decode(line)
        except ValueError as exc:
            emit({"type": "error", "id": None, "message": f"unreadable request line: {exc}", "exit_code": 2})
            continue
        log.info("request %s: %.40s", protocol.request_id(request), request.get("type"))
        reply = state.handle(request, emit)
        emit(reply)
        if request.get("type") == "shutdown" and reply.get("type") != "error":  # a refused shutdown is no shutdown
            break
    return 0  # no unload: the process exits next, which frees CPU and GPU memory at once


def main() -> int:
    """Entry point of ``python -m TextLesionSegLib.worker``."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
    # Keep the real stdout for the protocol; everything else written to fd 1 goes to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    start_warm_up()
    # bytes that are not UTF-8 become U+FFFD, so such a line gets an error reply instead of a
    # UnicodeDecodeError that ends the worker (the client writes ASCII-only JSON)
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(encoding="utf-8", errors="replace")
    code = serve(sys.stdin, out)
    out.flush()
    logging.shutdown()
    # Skip the interpreter's slow teardown (seconds with torch/monai loaded); the OS frees the memory.
    os._exit(code)
