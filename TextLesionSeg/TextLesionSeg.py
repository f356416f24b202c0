"""TextLesionSeg: free-text lesion descriptions + a CT volume -> one editable segment per description.

This file is the thin Slicer shell (Module, Widget, Logic, Test). The work happens in
``TextLesionSegLib``: ``mrml`` (scene glue, tested with pytest and slicer-core), ``worker`` (a
persistent background process that keeps models loaded), ``query`` (the text parser) and
``models.registry`` (weights). Nothing heavy is imported at file scope: Slicer loads this module
at start-up, before torch, monai or transformers are installed.
"""

import logging
import os
import shutil
import sys
import time
from typing import Annotated, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

#: how often the widget polls the worker (ms): fast enough for a live progress bar, cheap when idle
POLL_INTERVAL_MS = 100


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
        self.parent.acknowledgementText = _(
            "Models implemented from the Malenia (mask-attribute alignment) and LSMS (language-guided "
            "scale-aware medical segmentation) papers. Research use only: not a medical device."
        )


@parameterNodeWrapper
class TextLesionSegParameterNode:
    """The module's state; saved with the scene."""

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    roi: vtkMRMLMarkupsROINode
    descriptions: str = ""
    modelName: str = ""
    device: str = "auto"
    threshold: Annotated[float, WithinRange(0.05, 0.95)] = 0.5
    overlap: Annotated[float, WithinRange(0.0, 0.9)] = 0.5
    lowMemory: bool = False
    keepProbability: bool = True


class TextLesionSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: inputs, Apply/Cancel with progress, lesion table, correction tools, editor."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._rows = []
        self._clickObservations = []
        self._lastThresholdUndo = 0.0

    # ---- set-up ------------------------------------------------------------------------------
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/TextLesionSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = TextLesionSegLogic()

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
            "currentNodeChanged(vtkMRMLNode*)", self.ui.segmentationShow3DButton.setSegmentationNode
        )
        self.ui.advancedCollapsibleButton.connect("contentsCollapsed(bool)", self.onAdvancedToggled)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsv)
        self.ui.lesionTableWidget.connect("cellClicked(int,int)", self.onLesionRowClicked)
        self.ui.keepLesionButton.connect("toggled(bool)", lambda on: self.onClickToolToggled("keep", on))
        self.ui.removeLesionButton.connect("toggled(bool)", lambda on: self.onClickToolToggled("remove", on))
        self.ui.liveThresholdSliderWidget.connect("valueChanged(double)", self.onLiveThreshold)
        self.ui.openModelsFolderButton.connect("clicked(bool)", self.onOpenModelsFolder)
        self.ui.deleteModelsButton.connect("clicked(bool)", self.onDeleteModels)
        self.ui.importWeightsButton.connect("clicked(bool)", self.onImportWeights)

        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditorNode())
        self.ui.deviceSelector.addItems(["auto", "cpu"])
        self.ui.lesionTableWidget.setColumnCount(len(self.logic.tableHeaders()))
        self.ui.lesionTableWidget.setHorizontalHeaderLabels(self.logic.tableHeaders())
        self.ui.liveThresholdSliderWidget.enabled = False
        self.populateModels()
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.pollTimer.stop()
        self.setClickTool(None)
        self.removeObservers()
        if self.logic:
            self.logic.stopWorker()  # gives the worker's GPU memory back

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setClickTool(None)
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def onSceneStartClose(self, caller, event) -> None:
        if self.logic.busy:
            self.pollTimer.stop()
            self.logic.cancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume:
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
                # a new scene: the shown (first) model is the chosen one
                if not self._parameterNode.modelName and self.ui.modelSelector.currentText:
                    self._parameterNode.modelName = self.ui.modelSelector.currentText
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        if self.logic.busy:
            self.ui.applyButton.text = _("Cancel")
            self.ui.applyButton.enabled = True
            return
        self.ui.applyButton.text = _("Apply")
        ready = bool(self._parameterNode and self._parameterNode.inputVolume and self._parameterNode.descriptions.strip()
                     and self._parameterNode.modelName)
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = _("Segment every description") if ready else _(
            "Select a volume and a model, and type at least one description")

    @staticmethod
    def _selectComboText(combo, text: str) -> None:
        index = combo.findText(text) if text else -1
        if index >= 0:
            combo.currentIndex = index

    # ---- inputs ------------------------------------------------------------------------------
    def populateModels(self) -> None:
        """Fill the model selector from the registry (a JSON read: no torch)."""
        self.ui.modelSelector.clear()
        for entry in self.logic.listModels():
            self.ui.modelSelector.addItem(entry.name)
        self._selectComboText(self.ui.modelSelector, self.logic.defaultModel())
        if self.ui.modelSelector.count == 0:
            self.ui.modelDescriptionLabel.text = _("No model is registered yet (see 'textlesionseg models').")

    def onModelChanged(self, index: int) -> None:
        name = self.ui.modelSelector.currentText
        if self._parameterNode and name:
            self._parameterNode.modelName = name
        self.ui.modelDescriptionLabel.text = self.logic.modelSummary(name) if name else ""

    def onDeviceChanged(self, index: int) -> None:
        if self._parameterNode and self.ui.deviceSelector.currentText:
            self._parameterNode.device = self.ui.deviceSelector.currentText

    def onAdvancedToggled(self, collapsed: bool) -> None:
        """Show torch/CUDA status only when asked: it imports torch, which takes seconds."""
        if collapsed:
            return
        status = self.logic.computeStatus()
        self.ui.deviceStatusLabel.text = status["message"]
        current = self.ui.deviceSelector.currentText
        self.ui.deviceSelector.clear()
        self.ui.deviceSelector.addItems(status["choices"])
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
        if self.logic.busy:
            self.logic.cancel()
            self.pollTimer.stop()
            self.showState(_("Cancelled: the scene is unchanged."), None, done=True)
            return
        try:
            # tryWithErrorDisplay shows the one-line reason and re-raises
            with slicer.util.tryWithErrorDisplay(_("Failed to start the segmentation."), waitCursor=True):
                self.showState(_("Installing"), None)
                if not self.logic.ensureDependencies(interactive=True):
                    self.showState(_("Dependencies are not installed."), None, done=True)
                    return
                p = self._parameterNode
                self.logic.start(p.inputVolume, p.descriptions, p.modelName, self.logic.settingsFrom(p),
                                 roiNode=p.roi, keepProbability=p.keepProbability,
                                 segmentationNode=p.outputSegmentation)
                self.showState(_("Loading model"), None)
                self.pollTimer.start()
        except Exception as error:
            self.logic.discard()
            self.showState(_("Failed: {message}").format(message=str(error).splitlines()[0] if str(error) else
                                                         type(error).__name__), None, done=True)
        finally:
            self._checkCanApply()

    def onPoll(self) -> None:
        """Read what the worker said since the last tick; never blocks the UI."""
        for message in self.logic.poll():
            kind = message.get("type")
            if kind == "progress":
                self.showState(*self.logic.progressState(message))
            elif kind == "result":
                self.pollTimer.stop()
                self.showState(_("Importing"), None)
                try:
                    with slicer.util.tryWithErrorDisplay(_("Failed to import the result."), waitCursor=True):
                        imported, rows = self.logic.finish(message)
                        self._parameterNode.outputSegmentation = imported.segmentation_node
                        self.showResults(imported, rows)
                        warnings = " ".join(message.get("warnings") or [])
                        self.showState(_("Done: {count} segment(s) added. {warnings}").format(
                            count=len(imported.segment_ids), warnings=warnings).strip(), 100, done=True)
                except Exception:
                    self.showState(_("Failed to import the result."), None, done=True)
            elif kind == "error":
                self.pollTimer.stop()
                self.logic.discard()
                self.showState(_("Failed: {message}").format(message=message.get("message", "")), None, done=True)
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

    def showResults(self, imported, rows) -> None:
        self._rows = rows
        table = self.ui.lesionTableWidget
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(self.logic.tableCells(row)):
                table.setItem(r, c, qt.QTableWidgetItem(text))
        self.ui.segmentEditorWidget.setSegmentationNode(imported.segmentation_node)
        self.ui.segmentEditorWidget.setSourceVolumeNode(self._parameterNode.inputVolume)
        self.ui.liveThresholdSliderWidget.enabled = bool(imported.probability_nodes)
        self.ui.liveThresholdSliderWidget.value = self._parameterNode.threshold
        self.ui.resultsCollapsibleButton.collapsed = False

    # ---- results and correction ----------------------------------------------------------
    def onExportCsv(self) -> None:
        path = qt.QFileDialog.getSaveFileName(None, _("Export lesion table"), "lesions.csv", "CSV (*.csv)")
        if path:
            with slicer.util.tryWithErrorDisplay(_("Failed to write the CSV file.")):
                self.logic.writeCsv(self._rows, path)

    def onLesionRowClicked(self, row: int, column: int) -> None:
        centroid = self._rows[row].get("centroid_ras") if 0 <= row < len(self._rows) else None
        if centroid:
            self.logic.centreViewsOn(centroid)

    def onLiveThreshold(self, value: float) -> None:
        segmentationNode = self._parameterNode.outputSegmentation if self._parameterNode else None
        if segmentationNode and self.ui.liveThresholdSliderWidget.enabled:
            # one undo state per drag, not one per intermediate value (states are full copies)
            now = time.monotonic()
            if now - self._lastThresholdUndo > 1.0:
                self.ui.segmentEditorWidget.saveStateForUndo()
            self._lastThresholdUndo = now
            segmentId = self.ui.segmentEditorWidget.currentSegmentID()
            if not segmentId:
                slicer.util.showStatusMessage(_("Select a segment in the editor first."), 3000)
                return
            outcome = self.logic.rethresholdSegments(segmentationNode, [segmentId], value)
            if outcome.edited:
                slicer.util.showStatusMessage(_("The segment was edited; the threshold leaves it as it is."), 3000)

    def onClickToolToggled(self, mode: str, on: bool) -> None:
        other = self.ui.removeLesionButton if mode == "keep" else self.ui.keepLesionButton
        if on and other.checked:
            other.checked = False
        self.setClickTool(mode if on else None)

    def setClickTool(self, mode: Optional[str]) -> None:
        """Observe left clicks in the slice views while a keep/remove tool is on."""
        for interactor, tag in self._clickObservations:
            interactor.RemoveObserver(tag)
        self._clickObservations = []
        if mode is None or not slicer.app.layoutManager():
            return
        layoutManager = slicer.app.layoutManager()
        for name in layoutManager.sliceViewNames():
            interactor = layoutManager.sliceWidget(name).sliceView().interactorStyle().GetInteractor()
            tag = interactor.AddObserver(vtk.vtkCommand.LeftButtonPressEvent,
                                         lambda caller, event, m=mode: self.onSliceClick(m), 1.0)
            self._clickObservations.append((interactor, tag))

    def onSliceClick(self, mode: str) -> None:
        segmentationNode = self._parameterNode.outputSegmentation if self._parameterNode else None
        segmentId = self.ui.segmentEditorWidget.currentSegmentID()
        if not segmentationNode or not segmentId:
            slicer.util.showStatusMessage(_("Select a segment in the editor first."), 3000)
            return
        ras = [0.0, 0.0, 0.0]
        slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLCrosshairNode").GetCursorPositionRAS(ras)
        self.ui.segmentEditorWidget.saveStateForUndo()  # Ctrl+Z in the editor undoes the change
        if not self.logic.correctLesion(segmentationNode, segmentId, ras, mode):
            slicer.util.showStatusMessage(_("No lesion of the selected segment under the click."), 3000)

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


class TextLesionSegLogic(ScriptedLoadableModuleLogic):
    """Everything the panel does, usable without it (scripts, the self-test).

    The worker runs requests in another process (``TextLesionSegLib.worker.client.WorkerClient``);
    :meth:`poll` must be called regularly (the widget uses a QTimer). :meth:`process` runs the same
    request synchronously, in this process.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._client = None
        self._context = None
        self._segmentationNode = None
        self._requestId = None

    def getParameterNode(self):
        return TextLesionSegParameterNode(super().getParameterNode())

    # ---- environment ---------------------------------------------------------------------------
    def requirementsPath(self) -> str:
        """``python-requirements.txt``: installed next to the module, or the repository's."""
        installed = os.path.join(os.path.dirname(__file__), "Resources", "python-requirements.txt")
        source = os.path.join(os.path.dirname(os.path.dirname(__file__)), "python-requirements.txt")
        return installed if os.path.exists(installed) else source

    def ensureDependencies(self, interactive: bool = True) -> bool:
        """Install what is missing after one confirmation; torch only through PyTorchUtils.

        Never called at import or start-up; Slicer's numpy, SimpleITK and vtk are never replaced.
        Returns False when the user declined.
        """
        from TextLesionSegLib.mrml.environment import PROTECTED_PACKAGES, ensure_dependencies

        def confirm(listed):
            if not interactive:
                return True
            return slicer.util.confirmOkCancelDisplay(
                _("TextLesionSeg needs these Python packages (installed once; this may take several minutes):"),
                detailedText="\n".join(listed))

        def installTorch():
            try:
                import PyTorchUtils
            except ImportError as error:
                raise RuntimeError(_("This module needs the PyTorch extension: install it from the Extensions "
                                     "Manager and restart Slicer.")) from error
            if not PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=">=2.1"):
                raise RuntimeError(_("PyTorch could not be installed; see the PyTorch Utils module."))

        def installPackages(missing):
            pipModule = self._slicerPipModule()
            if pipModule is not None:  # Slicer >= 5.11
                requirements = pipModule.load_requirements(self.requirementsPath())
                pipModule.pip_ensure(requirements, prompt_install=False, requester="TextLesionSeg",
                                     skip_packages=sorted(PROTECTED_PACKAGES))
            else:  # older Slicer: ranges only; Slicer's own packages are not in the list
                slicer.util.pip_install(missing)
                # an upgraded package that was already imported needs a restart (pip_ensure asks itself)
                names = {req.split(">")[0].split("<")[0].split("=")[0].strip().replace("-", "_") for req in missing}
                if names & set(sys.modules) and slicer.util.confirmYesNoDisplay(
                        _("Some updated packages were already loaded. Restart Slicer now to use them?")):
                    slicer.util.restart()

        return ensure_dependencies(self.requirementsPath(), confirm, installTorch, installPackages)

    @staticmethod
    def _slicerPipModule():
        """Slicer's dependency helper with ``pip_ensure`` (``slicer.pydeps``; first released as
        ``slicer.packaging``), or None on Slicer <= 5.10."""
        import importlib

        for name in ("slicer.pydeps", "slicer.packaging"):
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            if hasattr(module, "pip_ensure"):
                return module
        return None

    def computeStatus(self) -> dict:
        """Torch/CUDA status text and device choices for the Advanced section."""
        from TextLesionSegLib.mrml.environment import device_choices, torch_status

        status = torch_status()
        return {"message": status["message"], "choices": device_choices(status)}

    def inputWarning(self, volumeNode) -> Optional[str]:
        from TextLesionSegLib.mrml.volumes import ct_warning

        return ct_warning(volumeNode)

    # ---- text and models -----------------------------------------------------------------------
    @staticmethod
    def previewHtml(text: str) -> str:
        """What the parser understood, one line per description (unknown words in red)."""
        from TextLesionSegLib.mrml.preview import preview_html

        return preview_html(text)

    def listModels(self) -> list:
        from TextLesionSegLib.models.registry import list_models

        try:
            return list_models()
        except Exception as error:  # a broken registry file must not break the panel
            logging.error(f"TextLesionSeg: cannot read the model registry: {error}")
            return []

    @staticmethod
    def defaultModel() -> str:
        """The registry's preferred usable model (registry.DEFAULT_PREFERENCE), or "" when there is none."""
        from TextLesionSegLib.errors import ModelError
        from TextLesionSegLib.models.registry import default_model_name

        try:
            return default_model_name()
        except ModelError:
            return ""

    def modelSummary(self, name: str) -> str:
        """One line: description, licence and where the weights are."""
        from TextLesionSegLib.models.registry import get_entry, weights_status

        entry = get_entry(name)
        status = weights_status(name)
        return _("{description} (licence {license}; weights {state})").format(
            description=entry.description, license=entry.license, state=status.state)

    def modelsFolder(self) -> str:
        from TextLesionSegLib.models.registry import default_cache_dir

        return str(default_cache_dir())

    def deleteDownloadedModels(self) -> list:
        from TextLesionSegLib.models.registry import clear_cache

        self.stopWorker()  # a loaded model may hold the files open (Windows)
        return clear_cache()

    def importWeights(self, name: str, path: str):
        from TextLesionSegLib.models.registry import import_local_weights

        return import_local_weights(name, path)

    @staticmethod
    def settingsFrom(parameterNode) -> dict:
        return {"device": parameterNode.device, "threshold": parameterNode.threshold,
                "overlap": parameterNode.overlap, "low_memory": parameterNode.lowMemory}

    # ---- running ---------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return bool(self._client and self._client.busy)

    def _workerClient(self):
        if self._client is None:
            from TextLesionSegLib.worker.client import WorkerClient

            # PythonSlicer is Slicer's Python launcher; sys.executable is the Slicer application itself.
            self._client = WorkerClient(python_executable=shutil.which("PythonSlicer") or sys.executable)
        return self._client

    def start(self, volumeNode, descriptions, modelName: str, settings: dict, roiNode=None,
              keepProbability: bool = True, segmentationNode=None) -> None:
        """Send a segmentation request to the background worker; follow it with :meth:`poll`."""
        from TextLesionSegLib.mrml.session import prepare_run

        request, self._context = prepare_run(volumeNode, descriptions, modelName, settings, roiNode, keepProbability)
        self._segmentationNode = segmentationNode
        self._requestId = self._workerClient().submit(request)

    def poll(self) -> list:
        """Messages of the current request since the last call (never blocks)."""
        if not self._client:
            return []
        # an earlier, cancelled request's messages are not this run's
        return [m for m in self._client.poll() if m.get("id") in (None, self._requestId)]

    @staticmethod
    def progressState(message: dict):
        from TextLesionSegLib.mrml.session import progress_state

        return progress_state(message)

    def finish(self, resultMessage: dict):
        """Import the worker's result into the scene; returns (imported, lesion rows)."""
        from TextLesionSegLib.mrml.session import finish_run

        try:
            imported, rows, _result = finish_run(self._context, resultMessage["result_path"], self._segmentationNode)
            self._fillTableNode(rows)
            return imported, rows
        finally:
            self.discard()

    def discard(self) -> None:
        from TextLesionSegLib.mrml.session import discard_run

        discard_run(self._context)
        self._context = None

    def cancel(self) -> None:
        """Kill the running job's process tree; nothing is added to the scene."""
        if self._client:
            self._client.cancel()
            self._client.poll()  # drop the "cancelled" message: the panel already says so
        self._requestId = None
        self.discard()

    def stopWorker(self) -> None:
        """Stop the worker process (frees its GPU memory); the next run starts a fresh one."""
        if self._client:
            self._client.stop()
        self._client = None

    def process(self, volumeNode, descriptions, modelName: str, settings: Optional[dict] = None, roiNode=None,
                keepProbability: bool = True, segmentationNode=None):
        """Run synchronously in this process (scripts, self-test); returns (imported, rows)."""
        from TextLesionSegLib.mrml.session import prepare_run
        from TextLesionSegLib.worker.server import run_request_sync

        request, self._context = prepare_run(volumeNode, descriptions, modelName, settings or {}, roiNode,
                                             keepProbability)
        self._segmentationNode = segmentationNode
        message = run_request_sync(request)
        if message.get("type") != "result":
            self.discard()
            raise RuntimeError(message.get("message", "segmentation failed"))
        return self.finish(message)

    # ---- results -----------------------------------------------------------------------------------
    @staticmethod
    def tableHeaders() -> list:
        from TextLesionSegLib.mrml.table import COLUMNS

        return [_(header) for _key, header in COLUMNS]

    @staticmethod
    def tableCells(row: dict) -> list:
        from TextLesionSegLib.mrml.table import table_cells

        return table_cells(row)

    def _fillTableNode(self, rows) -> None:
        from TextLesionSegLib.mrml.table import fill_table_node

        tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", slicer.mrmlScene.GenerateUniqueName("Lesions"))
        fill_table_node(tableNode, rows)

    @staticmethod
    def writeCsv(rows, path: str) -> None:
        from TextLesionSegLib.mrml.table import write_csv

        write_csv(rows, path)

    @staticmethod
    def centreViewsOn(ras) -> None:
        """Jump every slice view to a lesion centroid (RAS)."""
        slicer.modules.markups.logic().JumpSlicesToLocation(*[float(c) for c in ras], True)

    @staticmethod
    def segmentEditorNode():
        node = slicer.mrmlScene.GetSingletonNode("TextLesionSeg", "vtkMRMLSegmentEditorNode")
        if node is None:
            node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
            node.SetSingletonTag("TextLesionSeg")
        return node

    @staticmethod
    def correctLesion(segmentationNode, segmentId: str, ras, mode: str) -> bool:
        from TextLesionSegLib.mrml.correction import lesion_under_point

        return lesion_under_point(segmentationNode, segmentId, tuple(ras), mode)

    @staticmethod
    def rethresholdSegments(segmentationNode, segmentIds, threshold: float, overwriteEdited: bool = False):
        """Re-threshold the given segments from their kept probability maps (no model run); a
        segment edited since it was generated is left alone unless ``overwriteEdited``."""
        from TextLesionSegLib.mrml.correction import rethreshold_segments

        return rethreshold_segments(segmentationNode, segmentIds, threshold, overwriteEdited)


class TextLesionSegTest(ScriptedLoadableModuleTest):
    """Self-test inside Slicer: the whole flow on a synthetic CT with a bundled demo model."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_TextLesionSeg_wholeFlow()

    def test_TextLesionSeg_wholeFlow(self) -> None:
        import numpy as np

        from TextLesionSegLib.models.registry import default_model_name, list_models, weights_status

        self.delayDisplay("Starting the TextLesionSeg self-test")
        logic = TextLesionSegLogic()
        if not logic.ensureDependencies(interactive=False):
            self.skipTest("dependencies not installed")
        models = [m.name for m in list_models() if weights_status(m.name).state == "bundled"]
        self.assertTrue(models, "no bundled demo model to test with")
        if default_model_name() in models:  # the model the panel offers first
            models.insert(0, default_model_name())

        # A synthetic CT: air, a water-density body and a +150 HU ball ("lesion") in it.
        k, j, i = np.mgrid[:48, :64, :64]
        array = np.full((48, 64, 64), -1000, dtype=np.int16)
        array[4:-4, 6:-6, 6:-6] = 30
        array[(k - 24) ** 2 + (j - 32) ** 2 + (i - 36) ** 2 <= 36] = 150
        volume = slicer.util.addVolumeFromArray(array, ijkToRAS=np.diag([-1.5, -1.5, 2.0, 1.0]), name="synthetic CT")

        imported, rows = logic.process(volume, "round hyperdense lesion in the liver", models[0],
                                       {"device": "cpu"}, keepProbability=True)
        segmentation = imported.segmentation_node.GetSegmentation()
        self.assertEqual(segmentation.GetNumberOfSegments(), 1)
        self.assertEqual(segmentation.GetNthSegment(0).GetName(), "round hyperdense lesion in the liver")
        self.assertTrue(segmentation.GetNthSegment(0).GetTerminology())
        self.assertTrue(rows)
        outcome = logic.rethresholdSegments(imported.segmentation_node, imported.segment_ids, 0.7)
        self.assertEqual(len(outcome.changed), len(imported.probability_nodes))
        self.delayDisplay("TextLesionSeg self-test passed")
