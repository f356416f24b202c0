"""The panel's Lesions section: table, review, click corrections, live threshold.

Every action here changes one segment (the one selected in the table or the editor) and saves
an undo state first, so Ctrl+Z in the embedded Segment Editor reverts it; no action changes
another segment's voxels (``TextLesionSegLib.mrml.correction``).
"""

import time
from typing import Optional

import qt
import slicer
import vtk
from slicer.i18n import tr as _


class ResultsSection:
    """Connects the Lesions widgets of the panel to the logic."""

    def __init__(self, ui, logic, parameterNode) -> None:
        """``parameterNode`` is a callable returning the panel's current parameter node."""
        self.ui = ui
        self.logic = logic
        self._parameterNode = parameterNode
        self.rows = []
        self._clickObservations = []
        self._lastThresholdUndo = 0.0
        ui.lesionTableWidget.setColumnCount(len(logic.tableHeaders()))
        ui.lesionTableWidget.setHorizontalHeaderLabels(logic.tableHeaders())
        ui.liveThresholdSliderWidget.enabled = False
        ui.exportCsvButton.connect("clicked(bool)", self.onExportCsv)
        ui.lesionTableWidget.connect("cellClicked(int,int)", self.onLesionRowClicked)
        ui.acceptLesionButton.connect("clicked(bool)", lambda: self.onReview(accept=True))
        ui.rejectLesionButton.connect("clicked(bool)", lambda: self.onReview(accept=False))
        ui.keepLesionButton.connect("toggled(bool)", lambda on: self.onClickToolToggled("keep", on))
        ui.removeLesionButton.connect("toggled(bool)", lambda on: self.onClickToolToggled("remove", on))
        ui.liveThresholdSliderWidget.connect("valueChanged(double)", self.onLiveThreshold)
        ui.dropProbabilityButton.connect("clicked(bool)", self.onDropProbabilityMaps)

    def segmentationNode(self):
        node = self._parameterNode()
        return node.outputSegmentation if node else None

    # ---- table ---------------------------------------------------------------------------------
    def show(self, finished) -> None:
        """Fill the table and the editor from a :class:`~TextLesionSegLib.mrml.run_controller.Finished`."""
        self.rows = finished.rows
        table = self.ui.lesionTableWidget
        table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            for c, text in enumerate(self.logic.tableCells(row)):
                table.setItem(r, c, qt.QTableWidgetItem(text))
        self.ui.segmentEditorWidget.setSegmentationNode(finished.imported.segmentation_node)
        self.ui.segmentEditorWidget.setSourceVolumeNode(self._parameterNode().inputVolume)
        if finished.imported.segment_ids:
            self.ui.segmentEditorWidget.setCurrentSegmentID(finished.imported.segment_ids[0])
        hasMaps = bool(finished.imported.probability_nodes)
        self.ui.liveThresholdSliderWidget.enabled = hasMaps
        self.ui.dropProbabilityButton.enabled = hasMaps
        self.ui.liveThresholdSliderWidget.blockSignals(True)  # showing the value is not a re-threshold
        self.ui.liveThresholdSliderWidget.value = self._parameterNode().threshold
        self.ui.liveThresholdSliderWidget.blockSignals(False)
        self.ui.resultsCollapsibleButton.collapsed = False

    def selectedRow(self) -> Optional[dict]:
        row = self.ui.lesionTableWidget.currentRow()
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def _setNote(self, text: str) -> None:
        column = len(self.logic.tableHeaders()) - 1  # the Note column is last
        self.ui.lesionTableWidget.setItem(self.ui.lesionTableWidget.currentRow(), column, qt.QTableWidgetItem(text))

    def onExportCsv(self) -> None:
        path = qt.QFileDialog.getSaveFileName(None, _("Export lesion table"), "lesions.csv", "CSV (*.csv)")
        if path:
            with slicer.util.tryWithErrorDisplay(_("Failed to write the CSV file.")):
                self.logic.writeCsv(self.rows, path)

    def onLesionRowClicked(self, row: int, column: int) -> None:
        if not 0 <= row < len(self.rows):
            return
        segmentId = self.logic.segmentIdOfRow(self.segmentationNode(), self.rows[row])
        if segmentId:
            self.ui.segmentEditorWidget.setCurrentSegmentID(segmentId)
        if self.rows[row].get("centroid_ras"):
            self.logic.centreViewsOn(self.rows[row]["centroid_ras"])

    def onReview(self, accept: bool) -> None:
        row = self.selectedRow()
        segmentId = self.logic.segmentIdOfRow(self.segmentationNode(), row) if row else ""
        if not segmentId:
            slicer.util.showStatusMessage(_("Select a lesion row whose segment still exists."), 3000)
            return
        self.ui.segmentEditorWidget.saveStateForUndo()  # Ctrl+Z brings a rejected lesion back
        with slicer.util.tryWithErrorDisplay(_("Failed to record the review.")):
            removed = self.logic.reviewSegment(self.segmentationNode(), segmentId, accept, row.get("centroid_ras"))
            notes = {"accepted": _("accepted"), "lesion": _("rejected (lesion removed)"),
                     "segment": _("rejected (segment removed)")}
            self._setNote(notes[removed])

    # ---- corrections -------------------------------------------------------------------------
    def onLiveThreshold(self, value: float) -> None:
        segmentationNode = self.segmentationNode()
        if not segmentationNode or not self.ui.liveThresholdSliderWidget.enabled:
            return
        segmentId = self.ui.segmentEditorWidget.currentSegmentID()
        if not segmentId:
            slicer.util.showStatusMessage(_("Select a segment in the editor first."), 3000)
            return
        # one undo state per drag, not one per intermediate value (states are full copies)
        now = time.monotonic()
        if now - self._lastThresholdUndo > 1.0:
            self.ui.segmentEditorWidget.saveStateForUndo()
        self._lastThresholdUndo = now
        outcome = self.logic.rethresholdSegments(segmentationNode, [segmentId], value,
                                                 self.ui.overwriteEditsCheckBox.checked)
        if outcome.edited:
            slicer.util.showStatusMessage(_("You edited this segment: the threshold leaves it as it is "
                                            "(tick 'Also re-threshold a segment I edited' to replace it)."), 5000)
        elif outcome.without_map:
            slicer.util.showStatusMessage(_("This segment has no kept probability map."), 3000)

    def onDropProbabilityMaps(self) -> None:
        segmentationNode = self.segmentationNode()
        if segmentationNode is None:
            return
        removed = self.logic.dropProbabilityMaps(segmentationNode)
        self.ui.liveThresholdSliderWidget.enabled = False
        self.ui.dropProbabilityButton.enabled = False
        slicer.util.showStatusMessage(_("{n} probability map(s) deleted.").format(n=removed), 3000)

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
            if mode is None:
                for button in (self.ui.keepLesionButton, self.ui.removeLesionButton):
                    button.blockSignals(True)
                    button.checked = False
                    button.blockSignals(False)
            return
        layoutManager = slicer.app.layoutManager()
        for name in layoutManager.sliceViewNames():
            interactor = layoutManager.sliceWidget(name).sliceView().interactorStyle().GetInteractor()
            tag = interactor.AddObserver(vtk.vtkCommand.LeftButtonPressEvent,
                                         lambda caller, event, m=mode: self.onSliceClick(m), 1.0)
            self._clickObservations.append((interactor, tag))

    def onSliceClick(self, mode: str) -> None:
        segmentationNode = self.segmentationNode()
        segmentId = self.ui.segmentEditorWidget.currentSegmentID()
        if not segmentationNode or not segmentId:
            slicer.util.showStatusMessage(_("Select a segment in the editor first."), 3000)
            return
        ras = [0.0, 0.0, 0.0]
        slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLCrosshairNode").GetCursorPositionRAS(ras)
        self.ui.segmentEditorWidget.saveStateForUndo()  # Ctrl+Z in the editor undoes the change
        if not self.logic.correctLesion(segmentationNode, segmentId, ras, mode):
            slicer.util.showStatusMessage(_("No lesion of the selected segment under the click."), 3000)
