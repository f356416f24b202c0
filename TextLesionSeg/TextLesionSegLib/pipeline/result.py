"""What a segmentation run returns, before it becomes files or Slicer segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..query.types import LesionQuery
from .geometry import Image


@dataclass
class LesionMeasurement:
    """Measurements of one connected lesion (RECIST-style diameters in mm, volume in mL)."""

    label: int
    voxel_count: int
    volume_ml: float
    longest_axial_mm: float
    perpendicular_axial_mm: float
    longest_3d_mm: float
    mean_hu: float
    sd_hu: float
    centroid_ras: tuple[float, float, float]


@dataclass
class SegmentResult:
    """One output segment: the answer to one description (or one lesion found prompt-free).

    ``mask`` is a uint8 KJI array on the *input* image grid; ``probability`` (float32, same
    grid) is kept when asked so a viewer can re-threshold without re-running the model.
    """

    name: str
    mask: np.ndarray
    query: LesionQuery | None = None
    probability: np.ndarray | None = None
    score: float = 0.0
    color: tuple[float, float, float] = (0.9, 0.3, 0.3)
    terminology: dict[str, Any] = field(default_factory=dict)
    lesions: list[LesionMeasurement] = field(default_factory=list)
    predicted_attributes: dict[str, Any] = field(default_factory=dict)
    lesion_type: str | None = None
    #: how the lesion was chosen among the candidates (``pipeline.selection.Selection.to_dict``):
    #: ``found`` False means the described lesion is not in the scan (an empty mask, on purpose)
    selection: dict[str, Any] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        """False when the selection answered "not found" (the mask is empty on purpose); True
        where no selection was made (prompt-free lesions, results from older versions)."""
        return bool(self.selection.get("found", True))


@dataclass
class Result:
    """All segments of one run, on the geometry of ``image`` (the input volume)."""

    image: Image
    segments: list[SegmentResult]
    model_name: str
    model_version: str
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
