"""``TextLesionSegLogic``: everything the panel does, usable without it (scripts, the self-test).

A thin Slicer shell: runs go through :class:`~TextLesionSegLib.mrml.run_controller.RunController`
(a background worker on Slicer's ``PythonSlicer``), scene work through ``TextLesionSegLib.mrml``.
Nothing heavy is imported here: torch, monai and transformers live in the worker process.
"""

import logging
import shutil
import sys
from typing import Optional

import slicer
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from .parameters import TextLesionSegParameterNode


class TextLesionSegLogic(ScriptedLoadableModuleLogic):
    """Models, runs, results, corrections and review of the Text Lesion Segmentation module.

    :attr:`controller` runs requests in another process; its ``poll`` must be called regularly
    (the widget uses a QTimer). :meth:`process` runs the same request synchronously, here.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        from TextLesionSegLib.mrml.run_controller import RunController

        self.controller = RunController(self._newWorkerClient)
        self._engine = None  # the EngineChoice in use (None: the local worker, not chosen yet)
        self._corrections = {}  # (segmentation ID, segment ID, volume ID) -> ClickCorrection

    def getParameterNode(self):
        return TextLesionSegParameterNode(super().getParameterNode())

    @staticmethod
    def _newWorkerClient():
        from TextLesionSegLib.worker.client import WorkerClient

        # PythonSlicer is Slicer's Python launcher; sys.executable is the Slicer application itself.
        return WorkerClient(python_executable=shutil.which("PythonSlicer") or sys.executable)

    # ---- engine: local worker or server ----------------------------------------------------
    def useEngine(self, kind: str, url: str = "", tokenFile: str = "") -> None:
        """Run the next requests on ``kind`` ("local" or "server" at ``url`` with the token in
        ``tokenFile``); raises ``InputError`` when the choice is incomplete."""
        from TextLesionSegLib.worker.engines import EngineChoice

        choice = EngineChoice(kind, url.strip(), tokenFile.strip())
        if choice != self._engine:
            self.controller.use_client_factory(choice.client_factory(shutil.which("PythonSlicer") or sys.executable))
            self._engine = choice

    @staticmethod
    def testConnection(url: str, tokenFile: str) -> tuple:
        """(ok, one line, the server's model names): its version, device and models, or why it cannot be used."""
        from TextLesionSegLib.worker.engines import test_connection

        return test_connection(url, tokenFile)

    # ---- environment ---------------------------------------------------------------------------
    @staticmethod
    def ensureDependencies(interactive: bool = True, engine: str = "local") -> bool:
        """Install missing requirements after one confirmation; False when the user declined.
        With ``engine="server"`` only the panel's own (no torch: the server runs the models)."""
        from .install import ensure_dependencies

        return ensure_dependencies(confirm=interactive, engine=engine)

    @staticmethod
    def missingDependencies(engine: str = "local") -> list:
        """Requirements still to install (torch included unless ``engine="server"``); empty when ready."""
        from .install import missing_dependencies

        return missing_dependencies(engine)

    @staticmethod
    def inputWarning(volumeNode) -> Optional[str]:
        from TextLesionSegLib.mrml.volumes import ct_warning

        return ct_warning(volumeNode)

    # ---- text and models -----------------------------------------------------------------------
    @staticmethod
    def previewHtml(text: str) -> str:
        """What the parser understood, one line per description (unknown words in red)."""
        from TextLesionSegLib.mrml.preview import preview_html

        return preview_html(text)

    @staticmethod
    def listModels() -> list:
        from TextLesionSegLib.models.registry import list_models

        try:
            return list_models()
        except Exception as error:  # a broken registry file must not break the panel
            logging.error(f"TextLesionSeg: cannot read the model registry: {error}")
            return []

    @staticmethod
    def defaultModel() -> str:
        """The registry's preferred usable model, or "" when there is none."""
        from TextLesionSegLib.errors import ModelError
        from TextLesionSegLib.models.registry import default_model_name

        try:
            return default_model_name()
        except ModelError:
            return ""

    @staticmethod
    def modelSummary(name: str) -> str:
        """One line: description, licence and where the weights are."""
        from TextLesionSegLib.models.registry import get_entry, weights_status

        from TextLesionSegLib.errors import ModelError

        try:
            entry = get_entry(name)
        except ModelError:  # one of the server's models, not registered on this computer
            return _("A model of the server (not on this computer).")
        return _("{description} (licence {license}; weights {state})").format(
            description=entry.description, license=entry.license, state=weights_status(name).state)

    @staticmethod
    def modelsFolder() -> str:
        from TextLesionSegLib.models.registry import default_cache_dir

        return str(default_cache_dir())

    def deleteDownloadedModels(self) -> list:
        from TextLesionSegLib.models.registry import clear_cache

        self.controller.stop()  # a loaded model may hold the files open (Windows)
        return clear_cache()

    @staticmethod
    def importWeights(name: str, path: str):
        from TextLesionSegLib.models.registry import import_local_weights

        return import_local_weights(name, path)

    @staticmethod
    def settingsFrom(parameterNode) -> dict:
        return {"device": parameterNode.device, "threshold": parameterNode.threshold,
                "overlap": parameterNode.overlap, "low_memory": parameterNode.lowMemory}

    # ---- running -------------------------------------------------------------------------------
    def process(self, volumeNode, descriptions, modelName: str, settings: Optional[dict] = None, roiNode=None,
                keepProbability: bool = True, segmentationNode=None):
        """Run synchronously in this process (scripts, self-test); returns (imported, rows)."""
        from TextLesionSegLib.mrml.session import discard_run, finish_run, prepare_run
        from TextLesionSegLib.worker.server import run_request_sync

        request, context = prepare_run(volumeNode, descriptions, modelName, settings or {}, roiNode, keepProbability)
        try:
            message = run_request_sync(request)
            if message.get("type") != "result":
                raise RuntimeError(message.get("message", "segmentation failed"))
            imported, rows, _result = finish_run(context, message["result_path"], segmentationNode)
            return imported, rows
        finally:
            discard_run(context)

    # ---- results -------------------------------------------------------------------------------
    @staticmethod
    def tableHeaders() -> list:
        from TextLesionSegLib.mrml.table import COLUMNS

        return [_(header) for _key, header in COLUMNS]

    @staticmethod
    def tableCells(row: dict) -> list:
        from TextLesionSegLib.mrml.table import table_cells

        return table_cells(row)

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
    def segmentIdOfRow(segmentationNode, row: dict) -> str:
        """The segment ID of a lesion-table row ("" when the segment is gone)."""
        if segmentationNode is None:
            return ""
        return segmentationNode.GetSegmentation().GetSegmentIdBySegmentName(str(row.get("segment", ""))) or ""

    # ---- corrections and review (one segment at a time; no other segment changes) ---------------
    @staticmethod
    def correctLesion(segmentationNode, segmentId: str, ras, mode: str) -> bool:
        from TextLesionSegLib.mrml.correction import lesion_under_point

        return lesion_under_point(segmentationNode, segmentId, tuple(ras), mode)

    def clickCorrection(self, segmentationNode, segmentId: str, volumeNode):
        """The clicks and per-click undo of one segment (``mrml.click_correction``), kept while the
        module lives so "Undo click" and later clicks continue the same correction."""
        from TextLesionSegLib.mrml.click_correction import ClickCorrection

        key = (segmentationNode.GetID(), segmentId, volumeNode.GetID())
        if key not in self._corrections:
            self._corrections[key] = ClickCorrection(segmentationNode, segmentId, volumeNode)
        return self._corrections[key]

    def startClick(self, segmentationNode, segmentId: str, volumeNode, ras, positive: bool, settings: dict):
        """Add a "+" (``positive``) or "−" point to a segment's correction and run it in the worker
        with the click model; the controller's ``Refined`` event says when the segment changed."""
        from TextLesionSegLib.pipeline.clicks import default_click_model

        correction = self.clickCorrection(segmentationNode, segmentId, volumeNode)
        correction.add_click(tuple(ras), positive)
        self.controller.start_refine(correction, default_click_model(), settings)
        return correction

    def closeCorrections(self) -> None:
        """Delete the corrections' temporary files (scene close, module cleanup)."""
        for correction in self._corrections.values():
            correction.close()
        self._corrections = {}

    @staticmethod
    def rethresholdSegments(segmentationNode, segmentIds, threshold: float, overwriteEdited: bool = False):
        """Re-threshold the given segments from their kept probability maps (no model run); a
        segment edited since it was generated is left alone unless ``overwriteEdited``."""
        from TextLesionSegLib.mrml.correction import rethreshold_segments

        return rethreshold_segments(segmentationNode, segmentIds, threshold, overwriteEdited)

    @staticmethod
    def dropProbabilityMaps(segmentationNode) -> int:
        """Delete the hidden probability volumes of a segmentation; returns how many."""
        from TextLesionSegLib.mrml.volumes import remove_probability_volumes

        return remove_probability_volumes(segmentationNode)

    @staticmethod
    def hasProbabilityMaps(segmentationNode) -> bool:
        from TextLesionSegLib.mrml.volumes import probability_volumes

        return bool(segmentationNode is not None and probability_volumes(segmentationNode))

    @staticmethod
    def reviewSegment(segmentationNode, segmentId: str, accept: bool, ras=None) -> str:
        """Accept one segment (a saved tag), or reject the lesion of a table row centred at ``ras``
        (the whole segment when it is its only lesion, or when no centre is known). Returns
        "accepted", "lesion" or "segment"."""
        from TextLesionSegLib.mrml.review import accept_segment, reject_lesion, reject_segment

        if accept:
            accept_segment(segmentationNode, segmentId)
            return "accepted"
        if ras is None:
            reject_segment(segmentationNode, segmentId)
            return "segment"
        return reject_lesion(segmentationNode, segmentId, tuple(ras))
