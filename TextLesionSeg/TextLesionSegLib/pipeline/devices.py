"""What compute this process can use: the torch version, CUDA devices with free memory, the device choices.

Beside ``inference.resolve_device`` (which turns a choice into a ``torch.device``). The worker
answers ``status`` requests with :func:`compute_status`, so Slicer's own process never imports
torch or creates a CUDA context just to fill its device selector. Importable without torch;
when torch is not installed nothing here imports it (the version comes from package metadata).
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

NOT_INSTALLED = "PyTorch is not installed: it is installed on first Apply (PyTorch extension)."


def torch_status() -> dict[str, Any]:
    """Torch version and CUDA devices with free memory, without importing torch if absent.

    Returns ``{"installed": bool, "version": str|None, "cuda": [{"index", "name",
    "free_gb", "total_gb"}], "message": str}``. Never raises: a torch that is installed but
    cannot be imported, or a CUDA driver that fails, is reported in ``message``.
    """
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return {"installed": False, "version": None, "cuda": [], "message": NOT_INSTALLED}
    try:
        import torch  # only now: torch is present (seconds the first time, free once loaded)
    except Exception as exc:  # noqa: BLE001 - a broken install is a status, not a crash
        return {"installed": False, "version": version, "cuda": [],
                "message": f"PyTorch {version} is installed but cannot be imported: {exc}"}

    devices = []
    try:
        if torch.cuda.is_available():
            for index in range(torch.cuda.device_count()):
                free, total = torch.cuda.mem_get_info(index)
                devices.append({"index": index, "name": torch.cuda.get_device_name(index),
                                "free_gb": free / 2**30, "total_gb": total / 2**30})
    except Exception as exc:  # noqa: BLE001 - e.g. a driver/runtime mismatch: the CPU still works
        return {"installed": True, "version": version, "cuda": [],
                "message": f"PyTorch {version}, CUDA unusable ({exc}): runs on the CPU (slower)."}
    if devices:
        text = "; ".join(f"cuda:{d['index']} {d['name']} ({d['free_gb']:.1f} of {d['total_gb']:.1f} GB free)"
                         for d in devices)
        message = f"PyTorch {version}, CUDA: {text}"
    else:
        message = f"PyTorch {version}, no CUDA GPU: runs on the CPU (slower)."
    return {"installed": True, "version": version, "cuda": devices, "message": message}


def device_choices(status: dict[str, Any]) -> list[str]:
    """Items of the device selector: ``auto``, each ``cuda:N`` found, and ``cpu``."""
    return ["auto", *[f"cuda:{d['index']}" for d in status.get("cuda", [])], "cpu"]


def compute_status() -> dict[str, Any]:
    """:func:`torch_status` plus its ``choices`` (what the worker's ``status`` reply carries)."""
    status = torch_status()
    return {**status, "choices": device_choices(status)}


__all__ = ["compute_status", "device_choices", "torch_status", "NOT_INSTALLED"]
