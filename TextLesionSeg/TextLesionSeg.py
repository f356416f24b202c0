"""TextLesionSeg: free-text lesion descriptions + a CT volume -> one editable segment per description.

This file is the thin Slicer shell Slicer scans for the module's classes. The panel, logic,
parameter node, dependency install and self-test are in ``TextLesionSegLib.ui``; runs are
controlled Qt-free by ``TextLesionSegLib.mrml.run_controller`` and executed by a background
worker process (``TextLesionSegLib.worker``) that keeps models loaded. Nothing heavy is
imported at file scope: Slicer loads this module at start-up, before torch, monai or
transformers are installed.
"""

import logging

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleWidget

from TextLesionSegLib import MINIMUM_SLICER
from TextLesionSegLib.ui.logic import TextLesionSegLogic  # noqa: F401  (Slicer convention: Module.Logic)
from TextLesionSegLib.ui.parameters import TextLesionSegParameterNode  # noqa: F401
from TextLesionSegLib.ui.self_test import TextLesionSegTest  # noqa: F401  (found by "Reload and Test")


class TextLesionSeg(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Text Lesion Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["TextLesionSeg team"]
        self.parent.helpText = _(
            "Type one lesion description per line (for example 'hypodense round mass in the right lobe "
            "of the liver'); Apply adds one segment per description, with measurements. Models run in a "
            "background process: Slicer stays responsive and Cancel stops the work at once. "
            "See docs/slicer.md in the extension's repository."
        )
        if (slicer.app.majorVersion, slicer.app.minorVersion) < MINIMUM_SLICER:
            logging.warning("TextLesionSeg needs 3D Slicer %d.%d or later; this is %s",
                            *MINIMUM_SLICER, slicer.app.applicationVersion)
        self.parent.acknowledgementText = _(
            "Models implemented from the Malenia (mask-attribute alignment) and LSMS (language-guided "
            "scale-aware medical segmentation) papers. Research use only: not a medical device."
        )


class TextLesionSegWidget(ScriptedLoadableModuleWidget):
    """Hosts the panel (``TextLesionSegLib.ui.widget.TextLesionSegPanel``) and forwards module events."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.panel = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        from TextLesionSegLib.ui.widget import TextLesionSegPanel

        self.panel = TextLesionSegPanel(self)

    def enter(self) -> None:
        if self.panel:
            self.panel.enter()

    def exit(self) -> None:
        if self.panel:
            self.panel.exit()

    def cleanup(self) -> None:
        if self.panel:
            self.panel.cleanup()
