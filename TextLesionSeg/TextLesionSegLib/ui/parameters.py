"""The module's state, saved with the scene (Slicer's ``parameterNodeWrapper``)."""

from typing import Annotated

from slicer import vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper


@parameterNodeWrapper
class TextLesionSegParameterNode:
    """Inputs of a run; widgets with a ``SlicerParameterName`` property in the .ui are bound to these."""

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
