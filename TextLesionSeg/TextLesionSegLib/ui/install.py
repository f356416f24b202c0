"""Install the module's Python requirements after one confirmation; torch only through PyTorchUtils.

Never called at import or start-up, and never by the self-test; Slicer's numpy, SimpleITK and
vtk are never replaced (``mrml.environment.PROTECTED_PACKAGES``).
"""

import importlib
import os
import sys
from typing import Optional

import slicer
from slicer.i18n import tr as _


def requirements_path() -> str:
    """``python-requirements.txt``: installed next to the module, or the repository's."""
    module_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    installed = os.path.join(module_dir, "Resources", "python-requirements.txt")
    source = os.path.join(os.path.dirname(module_dir), "python-requirements.txt")
    return installed if os.path.exists(installed) else source


def missing_dependencies(engine: str = "local") -> list:
    """What :func:`ensure_dependencies` would install (torch included unless ``engine`` is
    "server"); empty when ready."""
    from TextLesionSegLib.mrml.environment import missing_dependencies as missing

    return missing(requirements_path(), engine)


def slicer_pip_module():
    """Slicer's ``slicer.packaging`` when it has ``pip_ensure`` (Slicer >= 5.11), else None."""
    try:
        module = importlib.import_module("slicer.packaging")
    except ImportError:
        return None
    return module if hasattr(module, "pip_ensure") else None


def _install_torch() -> None:
    try:
        import PyTorchUtils
    except ImportError as error:
        raise RuntimeError(_("This module needs the PyTorch extension: install it from the Extensions "
                             "Manager and restart Slicer.")) from error
    if not PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=">=2.1"):
        raise RuntimeError(_("PyTorch could not be installed; see the PyTorch Utils module."))


def _install_packages(missing: list) -> None:
    from TextLesionSegLib.mrml.environment import PROTECTED_PACKAGES

    pip_module = slicer_pip_module()
    if pip_module is not None:
        requirements = pip_module.load_requirements(requirements_path())
        pip_module.pip_ensure(requirements, prompt_install=False, requester="TextLesionSeg",
                              skip_packages=sorted(PROTECTED_PACKAGES))
        return
    # older Slicer: ranges only; Slicer's own packages are not in the list
    slicer.util.pip_install(missing)
    # an upgraded package that was already imported needs a restart (pip_ensure asks itself)
    names = {req.split(">")[0].split("<")[0].split("=")[0].strip().replace("-", "_") for req in missing}
    if names & set(sys.modules) and slicer.util.confirmYesNoDisplay(
            _("Some updated packages were already loaded. Restart Slicer now to use them?")):
        slicer.util.restart()


def ensure_dependencies(confirm: Optional[bool] = True, engine: str = "local") -> bool:
    """Install what is missing after one confirmation; False when the user declined.

    ``confirm=False`` installs without asking (scripts that chose to install). ``engine="server"``:
    only what the panel needs when its runs go to a server (no torch).
    """
    from TextLesionSegLib.mrml.environment import ensure_dependencies as ensure

    def ask(listed) -> bool:
        if not confirm:
            return True
        return slicer.util.confirmOkCancelDisplay(
            _("TextLesionSeg needs these Python packages (installed once; this may take several minutes):"),
            detailedText="\n".join(listed))

    return ensure(requirements_path(), ask, _install_torch, _install_packages, engine)
