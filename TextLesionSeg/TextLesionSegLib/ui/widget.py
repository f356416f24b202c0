"""The panel: inputs, Apply/Cancel with progress, the Lesions section, the embedded Segment Editor.

``TextLesionSegPanel`` is created by the module file's ``TextLesionSegWidget.setup`` and gets
its enter/exit/cleanup calls. Run state comes from the logic's Qt-free
:class:`~TextLesionSegLib.mrml.run_controller.RunController`, polled by a QTimer: the panel
only turns its events into widget states.
"""

import os
from typing import Optional

import qt
import slicer
import vtk
from slicer.i18n import tr as _
from slicer.util import VTKObservationMixin

from .clicks import ClickSection
from .logic import TextLesionSegLogic
from .results import ResultsSection

#: how often the panel polls the worker (ms): fast enough for a live progress bar, cheap when idle
POLL_INTERVAL_MS = 100


class TextLesionSegPanel(VTKObservationMixin):
    """The module panel; ``moduleWidget`` is the ``ScriptedLoadableModuleWidget`` that hosts it."""

    def __init__(self, moduleWidget) -> None:
        VTKObservationMixin.__init__(self)
        self.moduleWidget = moduleWidget
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        uiWidget = slicer.util.loadUI(moduleWidget.resourcePath("UI/TextLesionSeg.ui"))
        moduleWidget.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = TextLesionSegLogic()
        self.results = ResultsSection(self.ui, self.logic, lambda: self._parameterNode)
        self.clicks = ClickSection(self.ui, self.logic, lambda: self._parameterNode, lambda: self.pollTimer.start())

        self.pollTimer = qt.QTimer()
        self.pollTimer.setInterval(POLL_INTERVAL_MS)
        self.pollTimer.connect("timeout()", self.onPoll)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.descriptionsTextEdit.connect("textChanged()", self.onDescriptionsChanged)
        self.ui.modelSelector.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.deviceSelector.connect("currentIndexChanged(int)", self.onDeviceChanged)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputVolumeChanged)
        self.ui.outputSegmentationSelector.connect(
            "currentNodeChanged(vtkMRMLNode*)", self.ui.segmentationShow3DButton.setSegmentationNode)
        self.ui.advancedCollapsibleButton.connect("contentsCollapsed(bool)", self.onAdvancedToggled)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.openModelsFolderButton.connect("clicked(bool)", self.onOpenModelsFolder)
        self.ui.deleteModelsButton.connect("clicked(bool)", self.onDeleteModels)
        self.ui.importWeightsButton.connect("clicked(bool)", self.onImportWeights)
        self.ui.engineSelector.addItems(["local", "server"])
        self.restoreEngine()
        self.ui.engineSelector.connect("currentIndexChanged(int)", self.onEngineEdited)
        self.ui.serverUrlLineEdit.connect("editingFinished()", self.onEngineEdited)
        self.ui.tokenFileLineEdit.connect("editingFinished()", self.onEngineEdited)
        self.ui.tokenFileBrowseButton.connect("clicked(bool)", self.onBrowseTokenFile)
        self.ui.testConnectionButton.connect("clicked(bool)", self.onTestConnection)

        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditorNode())
        self.ui.deviceSelector.addItems(["auto", "cpu"])
        self.populateModels()
        self.initializeParameterNode()

    # ---- module life -------------------------------------------------------------------------
    def enter(self) -> None:
        self.initializeParameterNode()
        self.ui.segmentEditorWidget.installKeyboardShortcuts()  # Ctrl+Z/Ctrl+Y undo and redo edits
        self.preloadModel()

    def exit(self) -> None:
        self.results.setClickTool(None)
        self.clicks.reset()
        self.ui.segmentEditorWidget.setActiveEffect(None)  # leaving the module ends the editor effect
        self.ui.segmentEditorWidget.uninstallKeyboardShortcuts()
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def cleanup(self) -> None:
        self.pollTimer.stop()
        self.results.setClickTool(None)
        self.clicks.reset()
        self.logic.closeCorrections()
        self.removeObservers()
        self.logic.controller.stop()  # gives the worker's memory, GPU memory included, back

    def onSceneStartClose(self, caller, event) -> None:
        if self.logic.controller.busy:
            self.logic.controller.cancel()
        self.clicks.reset()
        self.logic.closeCorrections()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.moduleWidget.parent.isEntered:
            self.initializeParameterNode()

    def preloadModel(self) -> None:
        """Start the worker and load the chosen model while the user types (never installs)."""
        name = self._parameterNode.modelName if self._parameterNode else ""
        try:
            self.applyEngine()
        except Exception:  # an incomplete server choice: Apply will say what is missing
            return
        ready = not self.logic.missingDependencies(self._engineKind())
        if name and ready and self.logic.controller.preload(name, self._device()):
            self.pollTimer.start()

    # ---- parameter node ------------------------------------------------------------------------
    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume and not firstVolume.GetHideFromEditors():
                self._parameterNode.inputVolume = firstVolume

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # widgets with a SlicerParameterName property in the .ui are bound automatically
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            with slicer.util.NodeModify(self._parameterNode.parameterNode):
                self.ui.descriptionsTextEdit.setPlainText(self._parameterNode.descriptions)
                self._selectComboText(self.ui.modelSelector, self._parameterNode.modelName)
                self._selectComboText(self.ui.deviceSelector, self._parameterNode.device)
                if not self._parameterNode.modelName and self.ui.modelSelector.currentText:
                    self._parameterNode.modelName = self.ui.modelSelector.currentText
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        if self.logic.controller.busy:
            self.ui.applyButton.text = _("Cancel")
            self.ui.applyButton.enabled = True
            return
        self.ui.applyButton.text = _("Apply")
        p = self._parameterNode
        ready = bool(p and p.inputVolume and p.descriptions.strip() and p.modelName)
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = _("Segment every description") if ready else _(
            "Select a volume and a model, and type at least one description")

    @staticmethod
    def _selectComboText(combo, text: str) -> None:
        index = combo.findText(text) if text else -1
        if index >= 0:
            combo.currentIndex = index

    def _device(self) -> str:
        return self._parameterNode.device if self._parameterNode else "auto"

    # ---- inputs ------------------------------------------------------------------------------
    def populateModels(self, serverModels: Optional[list] = None) -> None:
        """Fill the model selector from the registry (a JSON read: no torch), or with the models a
        server named in Test connection."""
        current = self.ui.modelSelector.currentText
        self._serverModels = bool(serverModels)
        self.ui.modelSelector.clear()
        for name in serverModels or [entry.name for entry in self.logic.listModels()]:
            self.ui.modelSelector.addItem(name)
        self._selectComboText(self.ui.modelSelector, current if serverModels else self.logic.defaultModel())
        if self.ui.modelSelector.count == 0:
            self.ui.modelDescriptionLabel.text = _("No model is registered yet (see 'textlesionseg models').")

    def onModelChanged(self, index: int) -> None:
        name = self.ui.modelSelector.currentText
        if self._parameterNode and name:
            self._parameterNode.modelName = name
        self.ui.modelDescriptionLabel.text = self.logic.modelSummary(name) if name else ""
        if name and self.moduleWidget.parent.isEntered:
            self.preloadModel()

    def onDeviceChanged(self, index: int) -> None:
        if self._parameterNode and self.ui.deviceSelector.currentText:
            self._parameterNode.device = self.ui.deviceSelector.currentText

    def onAdvancedToggled(self, collapsed: bool) -> None:
        """Device status comes from the worker: Slicer's own process never imports torch."""
        if collapsed:
            return
        if self.logic.controller.compute:
            self.showCompute(self.logic.controller.compute)
        elif not self.logic.missingDependencies(self._engineKind()) and self.logic.controller.request_compute_status():
            self.ui.deviceStatusLabel.text = _("Asking the engine which devices it can use...")
            self.pollTimer.start()
        else:
            self.ui.deviceStatusLabel.text = _("Device status appears once the engine has started.")

    def showCompute(self, compute: dict) -> None:
        self.ui.deviceStatusLabel.text = compute.get("message", "")
        current = self.ui.deviceSelector.currentText
        self.ui.deviceSelector.clear()
        self.ui.deviceSelector.addItems(compute.get("choices") or ["auto", "cpu"])
        self._selectComboText(self.ui.deviceSelector, current)

    def onInputVolumeChanged(self, node) -> None:
        warning = self.logic.inputWarning(node) if node else None
        self.ui.inputWarningLabel.text = warning or ""
        self.ui.inputWarningLabel.visible = bool(warning)

    def onDescriptionsChanged(self) -> None:
        text = self.ui.descriptionsTextEdit.plainText
        if self._parameterNode and self._parameterNode.descriptions != text:
            self._parameterNode.descriptions = text
        self.ui.queryPreviewLabel.text = self.logic.previewHtml(text)

    # ---- run ---------------------------------------------------------------------------------
    def onApplyButton(self) -> None:
        controller = self.logic.controller
        if controller.busy:
            controller.cancel()
            self.showState(_("Cancelled: the scene is unchanged."), None, done=True)
            self._checkCanApply()
            return
        try:
            # tryWithErrorDisplay shows the one-line reason and re-raises
            with slicer.util.tryWithErrorDisplay(_("Failed to start the segmentation."), waitCursor=True):
                if self.logic.missingDependencies(self._engineKind()):
                    self.showState(_("Installing"), None)
                    if not self.logic.ensureDependencies(interactive=True, engine=self._engineKind()):
                        self.showState(_("Dependencies are not installed."), None, done=True)
                        return
                self.applyEngine()
                p = self._parameterNode
                controller.start(p.inputVolume, p.descriptions, p.modelName, self.logic.settingsFrom(p),
                                 roi_node=p.roi, keep_probability=p.keepProbability,
                                 segmentation_node=p.outputSegmentation)
                self.showState(_("Loading model"), None)
                self.pollTimer.start()
        except Exception as error:
            text = str(error).splitlines()[0] if str(error) else type(error).__name__
            self.showState(_("Failed: {message}").format(message=text), None, done=True)
        finally:
            self._checkCanApply()

    def onPoll(self) -> None:
        """Turn the controller's events into widget states; never blocks the UI."""
        from TextLesionSegLib.mrml.run_controller import ComputeStatus, Failed, Finished, Progress, Refined

        controller = self.logic.controller
        for event in controller.poll():
            if isinstance(event, Progress) and controller.busy:
                self.showState(event.text, event.percent)
            elif isinstance(event, Finished):
                self._parameterNode.outputSegmentation = event.imported.segmentation_node
                self.results.show(event)
                self.showState(event.summary(), 100, done=True)
            elif isinstance(event, Refined):
                self.clicks.onRefined(event)
                self.showState(_("Segment updated from the points."), 100, done=True)
            elif isinstance(event, Failed):
                self.clicks.syncPoints()  # a failed click's point goes with it
                self.showState(_("Failed: {message}").format(message=event.message), None, done=True)
            elif isinstance(event, ComputeStatus):
                self.showCompute(event.compute)
        if controller.idle:
            self.pollTimer.stop()
        self._checkCanApply()

    def showState(self, text: str, percent: Optional[int], done: bool = False) -> None:
        self.ui.statusLabel.text = text
        self.ui.progressBar.visible = not done
        if percent is None:
            self.ui.progressBar.setRange(0, 0)  # busy indicator
        else:
            self.ui.progressBar.setRange(0, 100)
            self.ui.progressBar.value = percent
        slicer.app.processEvents()

    # ---- engine: local worker or server (a workstation setting, kept in Slicer's settings) ---------
    ENGINE_KEYS = ("TextLesionSeg/Engine", "TextLesionSeg/ServerURL", "TextLesionSeg/TokenFile")

    def restoreEngine(self) -> None:
        settings = qt.QSettings()
        kind, url, tokenFile = (str(settings.value(key, "") or "") for key in self.ENGINE_KEYS)
        self._selectComboText(self.ui.engineSelector, kind or "local")
        self.ui.serverUrlLineEdit.text = url
        self.ui.tokenFileLineEdit.text = tokenFile
        self.onEngineEdited()

    def _engineKind(self) -> str:
        return self.ui.engineSelector.currentText or "local"

    def _engineValues(self) -> tuple:
        return (self.ui.engineSelector.currentText, self.ui.serverUrlLineEdit.text.strip(),
                self.ui.tokenFileLineEdit.text.strip())

    def onEngineEdited(self, *args) -> None:
        """Remember the choice; the engine itself switches at the next Apply (never mid-run)."""
        values = self._engineValues()
        settings = qt.QSettings()
        for key, value in zip(self.ENGINE_KEYS, values):
            settings.setValue(key, value)
        server = values[0] == "server"
        if not server and getattr(self, "_serverModels", False):
            self.populateModels()  # back to this computer's models
        for widget in (self.ui.serverUrlLineEdit, self.ui.tokenFileLineEdit, self.ui.tokenFileBrowseButton,
                       self.ui.testConnectionButton):
            widget.enabled = server
        self.ui.deviceSelector.enabled = not server  # a server uses its own device
        self.ui.engineStatusLabel.text = (_("Runs on the server: each run sends the volume (or its ROI) there.")
                                          if server else _("Runs on this computer: nothing leaves it."))

    def applyEngine(self) -> None:
        """Switch the controller to the chosen engine (raises with one line when incomplete)."""
        if not self.logic.controller.busy:
            self.logic.useEngine(*self._engineValues())

    def onBrowseTokenFile(self) -> None:
        path = qt.QFileDialog.getOpenFileName(None, _("Server token file"), self.ui.tokenFileLineEdit.text, "")
        if path:
            self.ui.tokenFileLineEdit.text = path
            self.onEngineEdited()

    def onTestConnection(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to test the connection."), waitCursor=True):
            ok, line, models = self.logic.testConnection(*self._engineValues()[1:])
            self.ui.engineStatusLabel.text = line if ok else _("Not connected: {reason}").format(reason=line)
            if ok and models:
                self.populateModels(models)  # the server's models, which this computer may not have

    # ---- models folder -------------------------------------------------------------------------
    def onOpenModelsFolder(self) -> None:
        folder = self.logic.modelsFolder()
        os.makedirs(folder, exist_ok=True)
        qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(folder)))

    def onDeleteModels(self) -> None:
        if slicer.util.confirmOkCancelDisplay(_("Delete every downloaded model from {folder}? Bundled demo models "
                                                "stay.").format(folder=self.logic.modelsFolder())):
            with slicer.util.tryWithErrorDisplay(_("Failed to delete the models.")):
                removed = self.logic.deleteDownloadedModels()
                slicer.util.showStatusMessage(_("{n} model folder(s) deleted.").format(n=len(removed)), 3000)

    def onImportWeights(self) -> None:
        name = self.ui.modelSelector.currentText
        path = qt.QFileDialog.getOpenFileName(None, _("Import weights for {name}").format(name=name), "",
                                              "safetensors (*.safetensors)")
        if path:
            with slicer.util.tryWithErrorDisplay(_("Failed to import the weights."), waitCursor=True):
                self.logic.importWeights(name, path)
                slicer.util.showStatusMessage(_("Weights imported for {name}.").format(name=name), 3000)
