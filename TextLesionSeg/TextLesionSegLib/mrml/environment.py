"""What the Slicer module must install before a first run, and what compute it can use.

Nothing here installs anything: the Slicer widget shows one confirmation listing
:func:`missing_requirements` and then calls Slicer's installer (``slicer.packaging.pip_ensure``
or ``slicer.util.pip_install``), and torch only through the PyTorch extension's
``PyTorchUtils``. Packages Slicer ships itself are never touched.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any, Callable

#: Slicer's own packages (replacing them breaks Slicer) and torch (installed only by
#: PyTorchUtils, which picks the CUDA build matching the driver).
PROTECTED_PACKAGES = frozenset({"numpy", "simpleitk", "vtk", "torch", "torchvision", "requests"})


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def read_requirements(path: str | Path) -> list[str]:
    """Requirement lines of a ``requirements.txt`` (comments and blanks dropped)."""
    lines = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def missing_requirements(requirements: list[str]) -> list[str]:
    """Requirements that are not installed or whose installed version is out of range.

    Protected packages (numpy, SimpleITK, vtk, torch...) are never reported: they are
    Slicer's, or PyTorchUtils'.
    """
    from packaging.requirements import Requirement

    missing = []
    for line in requirements:
        requirement = Requirement(line)
        if _normalise(requirement.name) in PROTECTED_PACKAGES:
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(line)
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            missing.append(line)
    return missing


def torch_status() -> dict[str, Any]:
    """Torch version and CUDA devices with free memory, without importing torch if absent.

    Returns ``{"installed": bool, "version": str|None, "cuda": [{"index", "name",
    "free_gb", "total_gb"}], "message": str}``.
    """
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return {"installed": False, "version": None, "cuda": [],
                "message": "PyTorch is not installed: it is installed on first Apply (PyTorch extension)."}
    import torch  # only now: the widget asks for this when the Advanced section opens

    devices = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            devices.append({"index": index, "name": torch.cuda.get_device_name(index),
                            "free_gb": free / 2**30, "total_gb": total / 2**30})
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


def ensure_dependencies(
    requirements_path: str | Path,
    confirm: Callable[[list[str]], bool],
    install_torch: Callable[[], None],
    install_packages: Callable[[list[str]], None],
) -> bool:
    """Install what is missing after ONE confirmation; returns False if the user declined.

    ``confirm(listed)`` shows the list and returns the user's answer; ``install_torch`` is the
    PyTorch extension's installer (torch first, so no later pip call pulls a CPU/CUDA wheel of
    its own as a dependency); ``install_packages(missing)`` is Slicer's pip installer. Nothing is
    asked or installed when everything is present.
    """
    missing = missing_requirements(read_requirements(requirements_path))
    torch_missing = importlib.util.find_spec("torch") is None
    if not missing and not torch_missing:
        return True
    listed = missing + (["torch (through the PyTorch extension)"] if torch_missing else [])
    if not confirm(listed):
        return False
    if torch_missing:
        install_torch()
    if missing:
        install_packages(missing)
    return True
