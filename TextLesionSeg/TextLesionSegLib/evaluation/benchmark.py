"""Time and peak memory per stage of the whole pipeline, a peer pipeline, and the compute floor.

Stages (as ``textlesionseg segment`` runs them): read (SimpleITK), preprocess (to the working grid),
text (parse + the model's text encoding, when it has a separate step), model (``predict``),
postprocess (back to the input grid, threshold, components, measurements), write (``.seg.nrrd``).

Memory: on the CPU, the peak resident set size (RSS, sampled every 5 ms from ``/proc/self/statm``)
during each stage, also given as the rise over the RSS when the stage began; on CUDA,
``torch.cuda.max_memory_allocated`` per stage.

Peer: MONAI ``SwinUNETR`` (feature size 48, 96^3 windows, overlap 0.5, Gaussian) sliding-window
inference on the same working-grid volume; the ratio model time / peer time says what the model
costs compared with a standard 3D segmenter.

Compute floor: the model's floating-point operations for that volume (counted by
``torch.utils.flop_counter.FlopCounterMode``: matmuls and convolutions) divided by this device's
measured dense matmul rate; efficiency = floor / measured model time.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

STAGES = ("read", "preprocess", "text", "model", "postprocess", "write")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class _PeakSampler:
    """Background thread recording the highest RSS seen while a stage runs."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s, self.peak, self._stop = interval_s, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "_PeakSampler":
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


@dataclass
class StageRecord:
    """One stage: wall seconds, peak memory (MiB) and its rise over the stage's start."""

    seconds: float
    peak_mib: float
    rise_mib: float


@dataclass
class RunRecord:
    """One model on one input."""

    model: str
    input: str
    shape_kji: tuple[int, ...]
    working_shape_kji: tuple[int, ...] = ()
    device: str = "cpu"
    stages: dict[str, StageRecord] = field(default_factory=dict)
    total_s: float = 0.0
    gflops: float | None = None
    floor_s: float | None = None
    efficiency: float | None = None
    peer_s: float | None = None
    peer_ratio: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


@contextmanager
def stage(record: RunRecord, name: str, device: str) -> Iterator[None]:
    """Time a stage and record its peak memory (CPU RSS, or CUDA allocator peak)."""
    cuda = device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    with _PeakSampler() as sampler:
        base_rss = sampler.peak
        yield
        if cuda:
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        record.stages[name] = StageRecord(seconds, peak / 2**20, (peak - base) / 2**20)
    else:
        record.stages[name] = StageRecord(seconds, sampler.peak / 2**20, (sampler.peak - base_rss) / 2**20)


def matmul_gflops(device: str = "cpu", n: int = 1024, repeats: int = 5) -> float:
    """Measured dense float32 matmul rate of ``device`` (GFLOP/s), best of ``repeats``."""
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _modules_of(obj: Any) -> list[Any]:
    """The ``nn.Module`` attributes of a segmenter (or the object itself when it is one)."""
    from torch import nn

    if isinstance(obj, nn.Module):
        return [obj]
    return [v for v in vars(obj).values() if isinstance(v, nn.Module)] if hasattr(obj, "__dict__") else []


def count_gflops(fn: Any, owner: Any = None) -> tuple[float, Any]:
    """(GFLOPs counted while running ``fn()``, its result).

    Parameters of ``owner``'s modules stop requiring gradients meanwhile: the counter's module
    tracker hooks autograd, which fails on parameters used under ``no_grad``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    params = [p for m in _modules_of(owner) for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        with FlopCounterMode(display=False) as counter:
            out = fn()
    finally:
        for p in params:
            p.requires_grad_(True)
    return counter.get_total_flops() / 1e9, out


def swinunetr_peer(volume: Any, device: str, overlap: float = 0.5, one_window: bool = False) -> tuple[float, float]:
    """(seconds, GFLOPs per 96^3 window) of MONAI SwinUNETR-48 sliding-window inference on ``volume``.

    ``one_window``: time a single window and multiply by the number of windows the sliding window
    would run (``pipeline.inference.count_windows``); blending overhead is left out.
    """
    import torch
    from monai.inferers import sliding_window_inference
    from monai.networks.nets import SwinUNETR

    net = SwinUNETR(in_channels=1, out_channels=2, feature_size=48).to(device).eval()
    window = torch.zeros((1, 1, 96, 96, 96), device=device)
    with torch.no_grad():
        gflops_window, _ = count_gflops(lambda: net(window), net)
        x = volume.to(device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        if one_window:
            from ..pipeline.inference import count_windows

            net(window)
            factor = count_windows(tuple(x.shape[2:]), (96, 96, 96), overlap)
        else:
            sliding_window_inference(x, (96, 96, 96), 1, net, overlap=overlap, mode="gaussian")
            factor = 1
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return (time.perf_counter() - t) * factor, gflops_window


def _window_crop(volume: Any, roi: Sequence[int]) -> tuple[Any, float]:
    """(a centred crop of one model window, how many such windows cover ``volume``).

    3D models: one ``roi`` window, scaled by MONAI's window count at overlap 0.5. Slice models
    (``roi[0] == 1``): 4 whole slices, scaled by slices / 4.
    """
    from ..pipeline.inference import count_windows

    k, j, i = volume.shape[2:]
    if int(roi[0]) == 1:
        n = min(4, k)
        k0 = (k - n) // 2
        return volume[:, :, k0:k0 + n], k / n
    r = [min(int(a), int(b)) for a, b in zip(roi, (k, j, i))]
    s = [(d - a) // 2 for d, a in zip((k, j, i), r)]
    crop = volume[:, :, s[0]:s[0] + r[0], s[1]:s[1] + r[1], s[2]:s[2] + r[2]]
    return crop, float(count_windows((k, j, i), tuple(int(a) for a in roi), 0.5))


def run_pipeline(model: Any, image_path: Path, texts: Sequence[str], device: str, input_name: str,
                 matmul_rate: float | None = None, count_flops: bool = True, one_window: bool = False) -> RunRecord:
    """Run every stage once for ``model`` on the image file and record it.

    ``one_window``: the model stage runs on one window (or 4 slices) and its time and FLOPs are
    scaled by the number of windows (for full-size models on large inputs on a CPU, where the
    whole volume would take hours); postprocess and write then handle empty masks.
    """
    import torch

    from ..core.types import InferenceSettings
    from ..pipeline.io import read_image
    from ..pipeline.measure import measure_lesions
    from ..pipeline.outputs import write_seg_nrrd
    from ..pipeline.postprocess import postprocess
    from ..pipeline.preprocess import to_working_grid
    from ..pipeline.result import Result, SegmentResult
    from ..pipeline.run import parse_queries

    settings = InferenceSettings(device=device)
    rec = RunRecord(model=str(model.name), input=input_name, shape_kji=(), device=device)
    t0 = time.perf_counter()
    with stage(rec, "read", device):
        image = read_image(image_path)
    rec.shape_kji = tuple(int(s) for s in image.array.shape)
    with stage(rec, "preprocess", device):
        volume, grid = to_working_grid(image, model.preprocessing)
    rec.working_shape_kji = tuple(int(s) for s in volume.shape[2:])
    with stage(rec, "text", device):
        queries, _ = parse_queries(texts)
        encode = getattr(model, "encode_queries", None)
        if callable(encode):
            encode(queries)
    scale, extra_s = 1.0, 0.0
    model_input = volume
    if one_window:
        model_input, scale = _window_crop(volume, model.preprocessing.roi_size)
    with stage(rec, "model", device), torch.no_grad():
        prob = model.predict(model_input, queries, settings)
    if one_window:
        s = rec.stages["model"]
        rec.stages["model"] = StageRecord(s.seconds * scale, s.peak_mib, s.rise_mib)
        extra_s = s.seconds * (scale - 1.0)  # the scaled windows count in the total too
        prob = torch.zeros((len(queries),) + tuple(volume.shape[2:]))
        rec.note += f"; model time and FLOPs scaled from one window x {scale:g}"
    with stage(rec, "postprocess", device):
        segments = []
        for q, query in enumerate(queries):
            p = grid.to_input_grid(prob[q:q + 1])[0]
            mask = postprocess(p, image.spacing, threshold=settings.threshold)
            segments.append(SegmentResult(name=query.text[:60] or "lesion", mask=mask, query=query,
                                          lesions=measure_lesions(image, mask)))
    with stage(rec, "write", device), tempfile.TemporaryDirectory() as tmp:
        write_seg_nrrd(Result(image=image, segments=segments, model_name=rec.model, model_version="0"),
                       Path(tmp) / "out.seg.nrrd")
    rec.total_s = time.perf_counter() - t0 + extra_s
    if count_flops and matmul_rate:
        with torch.no_grad():
            try:
                gflops, _ = count_gflops(lambda: model.predict(model_input, queries, settings), model)
                rec.gflops = gflops * scale
            except Exception as exc:  # noqa: BLE001 - a model the counter cannot trace keeps its timings
                rec.note += f"; FLOPs not counted ({type(exc).__name__})"
                rec.gflops = None
    if rec.gflops is not None and matmul_rate:
        rec.floor_s = rec.gflops / matmul_rate
        rec.efficiency = rec.floor_s / max(rec.stages["model"].seconds, 1e-9)
    rec.note = f"{len(queries)} query(ies)" + rec.note
    return rec
