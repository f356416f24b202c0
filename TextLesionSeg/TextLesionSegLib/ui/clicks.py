"""The panel's "+"/"−" points: Markups placement in the slice views, one click-model run per
point on the selected segment, "Undo click".

A thin shell: each placed point goes to ``TextLesionSegLogic.startClick`` (a ``refine`` request
in the warm worker, ``mrml.run_controller``), and the answer replaces only the selected segment
(``mrml.click_correction``, tested with real MRML). The points stay visible as two Markups
point lists, green for lesion and red for not-lesion.
"""

from typing import Optional

import slicer
import vtk
from slicer.i18n import tr as _

#: (node name, colour) of the point lists: "+" lesion, "−" not lesion
POINT_LISTS = {True: ("Lesion points (+)", (0.2, 0.8, 0.2)), False: ("Not-lesion points (-)", (0.9, 0.2, 0.2))}


class ClickSection:
    """Connects the "+", "−" and "Undo click" buttons to the logic."""

    def __init__(self, ui, logic, parameterNode, startPolling) -> None:
        """``parameterNode`` returns the panel's parameter node; ``startPolling`` starts its timer."""
        self.ui = ui
        self.logic = logic
        self._parameterNode = parameterNode
        self._startPolling = startPolling
        self._observed = []  # (point list, observer tag)
        self.correction = None  # the correction of the last click
        ui.includePointButton.connect("toggled(bool)", lambda on: self.onPlaceToggled(True, on))
        ui.excludePointButton.connect("toggled(bool)", lambda on: self.onPlaceToggled(False, on))
        ui.undoClickButton.connect("clicked(bool)", self.onUndoClick)

    def _pointList(self, positive: bool):
        name, colour = POINT_LISTS[positive]
        node = slicer.mrmlScene.GetFirstNodeByName(name)
        if node is None:
            node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
            node.CreateDefaultDisplayNodes()
            node.GetDisplayNode().SetSelectedColor(colour)
            node.GetDisplayNode().SetPointLabelsVisibility(False)
        return node

    def onPlaceToggled(self, positive: bool, on: bool) -> None:
        other = self.ui.excludePointButton if positive else self.ui.includePointButton
        if on and other.checked:
            other.checked = False  # its own toggled(False) ends the other placement
        self.stopPlacing()
        if not on:
            return
        node = self._pointList(positive)
        tag = node.AddObserver(slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent,
                               lambda caller, event, p=positive: self.onPointPlaced(caller, p))
        self._observed.append((node, tag))
        selection = slicer.app.applicationLogic().GetSelectionNode()
        selection.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
        selection.SetActivePlaceNodeID(node.GetID())
        interaction = slicer.app.applicationLogic().GetInteractionNode()
        interaction.SetPlaceModePersistence(1)
        interaction.SetCurrentInteractionMode(interaction.Place)

    def stopPlacing(self) -> None:
        for node, tag in self._observed:
            node.RemoveObserver(tag)
        self._observed = []
        interaction = slicer.app.applicationLogic().GetInteractionNode()
        if interaction.GetCurrentInteractionMode() == interaction.Place:
            interaction.SetCurrentInteractionMode(interaction.ViewTransform)

    def reset(self) -> None:
        """Buttons off, no placement (module exit, scene close)."""
        for button in (self.ui.includePointButton, self.ui.excludePointButton):
            button.blockSignals(True)
            button.checked = False
            button.blockSignals(False)
        self.stopPlacing()

    def onPointPlaced(self, pointList, positive: bool) -> None:
        p = self._parameterNode()
        segmentationNode = p.outputSegmentation if p else None
        segmentId = self.ui.segmentEditorWidget.currentSegmentID()
        if not segmentationNode or not segmentId or not p.inputVolume or self.logic.controller.busy:
            slicer.util.showStatusMessage(_("Wait for the running click or segmentation to finish.")
                                          if self.logic.controller.busy else
                                          _("Select a segment in the editor first."), 3000)
            pointList.RemoveNthControlPoint(pointList.GetNumberOfControlPoints() - 1)
            return
        ras = [0.0, 0.0, 0.0]
        pointList.GetNthControlPointPositionWorld(pointList.GetNumberOfControlPoints() - 1, ras)
        with slicer.util.tryWithErrorDisplay(_("Failed to run the click model.")):
            self.correction = self.logic.startClick(segmentationNode, segmentId, p.inputVolume, ras, positive,
                                                    self.logic.settingsFrom(p))
            slicer.util.showStatusMessage(_("Re-segmenting the lesion around the point..."))
            self._startPolling()

    def onRefined(self, event) -> None:
        """The controller's ``Refined`` event: the segment has its new voxels."""
        self.ui.undoClickButton.enabled = event.correction.can_undo
        slicer.util.showStatusMessage(" ".join([_("Segment updated from {n} point(s).").format(
            n=len(event.correction.clicks))] + list(event.warnings)), 4000)

    def onUndoClick(self) -> None:
        correction: Optional[object] = self.correction
        if correction is None or not correction.can_undo:
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to undo the click.")):
            correction.undo()
            self.syncPoints()
        self.ui.undoClickButton.enabled = correction.can_undo

    def syncPoints(self) -> None:
        """Show only the points the correction holds (after an undo, or a click whose run failed)."""
        if self.correction is None:
            return
        for positive in (True, False):
            node = self._pointList(positive)
            kept = [ras for ras, sign in self.correction.clicks if sign == positive]
            while node.GetNumberOfControlPoints() > len(kept):
                node.RemoveNthControlPoint(node.GetNumberOfControlPoints() - 1)
