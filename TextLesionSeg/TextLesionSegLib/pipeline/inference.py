"""Sliding-window inference (MONAI) with device choice, AMP on CUDA and an out-of-memory fallback.

Models call :func:`sliding_window_predict` from their ``predict`` so every model gets the
same window weighting, progress reporting, cancellation and CUDA-OOM handling.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..core.types import InferenceSettings, ProgressCallback
from ..errors import CancelledError, InputError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str | None) -> "torch.device":
    """``auto`` -> first CUDA device if present, else CPU; ``cpu``; ``cuda`` / ``cuda:N``.

    Raises:
        InputError: CUDA was asked for but is not available, or the index does not exist.
    """
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"device '{name}' asked for, but CUDA is not available on this machine (use --device cpu)")
        dev = torch.device(name if ":" in name else "cuda:0")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device '{name}' does not exist: {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise InputError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N")


#: windows per forward pass when the user sets none: on a CPU, 4 windows per call ran the
#: malenia-demo sliding window on lung2 1.76x faster than 1 (65.2 s -> 37.1 s, one thread; 8 gave
#: 39.8 s; docs/BENCHMARKS.md); on CUDA 1 keeps the memory of full-size models low (and an
#: out-of-memory error halves a larger batch anyway).
AUTO_SW_BATCH = {"cpu": 4, "cuda": 1}


def sliding_window_batch(settings: InferenceSettings, device: "torch.device") -> int:
    """Windows per forward pass: the user's ``sw_batch_size``, else :data:`AUTO_SW_BATCH` for the
    device; 1 in low-memory mode."""
    if settings.low_memory:
        return 1
    if settings.sw_batch_size is not None:
        return max(1, int(settings.sw_batch_size))
    return AUTO_SW_BATCH.get(device.type, 1)


def count_windows(image_size: Sequence[int], roi_size: Sequence[int], overlap: float) -> int:
    """Number of windows MONAI's sliding window visits (its scan rule; used for progress)."""
    total = 1
    for size, roi in zip(image_size, roi_size):
        size, roi = max(int(size), int(roi)), int(roi)
        if size == roi:
            continue
        interval = max(int(roi * (1 - overlap)), 1)
        total *= math.ceil((size - roi) / interval) + 1
    return total


def _is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", RuntimeError)
    return isinstance(exc, oom) or "out of memory" in str(exc).lower()


def _run_once(
    fn: Callable[["torch.Tensor"], "torch.Tensor"],
    volume: "torch.Tensor",
    roi_size: Sequence[int],
    overlap: float,
    sw_batch_size: int,
    device: "torch.device",
    amp: bool,
    progress: ProgressCallback | None,
    stage: str,
) -> "torch.Tensor":
    import torch
    from monai.inferers import sliding_window_inference

    n_windows = count_windows(volume.shape[2:], roi_size, overlap)
    calls = max(1, math.ceil(n_windows / sw_batch_size))
    done = [0]

    def predictor(patch: "torch.Tensor") -> "torch.Tensor":
        out = fn(patch)
        done[0] += 1
        if progress is not None:
            # the callback may raise CancelledError: that stops the job between windows
            progress(stage, min(1.0, done[0] / calls))
        return out

    autocast = torch.autocast("cuda", dtype=torch.float16) if (amp and device.type == "cuda") else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        out = sliding_window_inference(
            volume.to(device),
            roi_size=tuple(int(r) for r in roi_size),
            sw_batch_size=sw_batch_size,
            predictor=predictor,
            overlap=overlap,
            mode="gaussian",
            padding_mode="constant",
            cval=0.0,
            sw_device=device,
            device=torch.device("cpu"),  # stitch on the CPU: the full map may not fit the GPU
            progress=False,
        )
    return out.float()


def sliding_window_predict(
    fn: Callable[["torch.Tensor"], "torch.Tensor"],
    volume: "torch.Tensor",
    roi_size: Sequence[int],
    settings: InferenceSettings,
    progress: ProgressCallback | None = None,
    stage: str = "inference",
    notes: list[str] | None = None,
    fn_to_device: Callable[["torch.device"], Any] | None = None,
) -> "torch.Tensor":
    """Run ``fn`` (patch ``(B, 1, *roi)`` -> ``(B, C, *roi)`` logits or probabilities) over
    ``volume`` ``(1, 1, K, J, I)`` with Gaussian-weighted overlapping windows.

    On CUDA out-of-memory the sliding-window batch is halved down to 1, then the job moves to
    the CPU (``fn_to_device(cpu)`` lets the model move its weights); each step is reported as
    a warning and appended to ``notes`` (default: ``settings.extra["notes"]``, the list
    ``run.segment`` puts there to carry such notes into ``Result.warnings``).
    Returns ``(1, C, K, J, I)`` on the CPU.
    """
    import torch

    if notes is None:
        notes = settings.extra.get("notes")

    device = resolve_device(settings.device)
    sw_batch = sliding_window_batch(settings, device)

    def note(msg: str) -> None:
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        if notes is not None:
            notes.append(msg)

    while True:
        try:
            return _run_once(fn, volume, roi_size, settings.overlap, sw_batch, device, settings.amp, progress, stage)
        except CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - only OOM is handled; everything else re-raised
            if device.type != "cuda" or not _is_oom(exc):
                raise
            torch.cuda.empty_cache()
            if sw_batch > 1:
                sw_batch = max(1, sw_batch // 2)
                note(f"CUDA out of memory: retrying with sliding-window batch {sw_batch}")
                continue
            note("CUDA out of memory with batch 1: continuing on the CPU (slower)")
            device = torch.device("cpu")
            if fn_to_device is not None:
                fn_to_device(device)
