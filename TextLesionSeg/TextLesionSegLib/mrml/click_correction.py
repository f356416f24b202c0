"""Correcting one segment by clicking: "+" and "−" points, each re-running the click model on the
lesion's region, replacing only that segment's voxels, undoable click by click.

A :class:`ClickCorrection` holds one segment's clicks (world RAS, as Slicer's Markups give them)
and, per click, the voxels before it. The run itself is the worker's ``refine`` request (or
``pipeline.clicks.refine_lesion`` in-process): :meth:`request_fields` says what to send,
:meth:`apply` writes the answer. Reading and writing go through :mod:`.segment_voxels`
(Slicer's per-segment extraction and replace-mode write), so no click ever changes another
segment, also when segments share a labelmap layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .segment_voxels import write_segment_mask

Point = tuple[float, float, float]


def mask_on_volume(segmentation_node: Any, segment_id: str, volume_node: Any) -> np.ndarray:
    """One segment's voxels (uint8 0/1, KJI) on ``volume_node``'s grid, through Slicer's export
    (only that segment, whatever layer it shares; transforms of either node applied)."""
    import vtk
    from vtk.util import numpy_support

    import slicer

    scene = segmentation_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__textlesionseg_click_prior__")
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
                segmentation_node, ids, labelmap, volume_node):
            raise RuntimeError(f"could not read segment '{segment_id}'")
        dims = labelmap.GetImageData().GetDimensions()
        values = numpy_support.vtk_to_numpy(labelmap.GetImageData().GetPointData().GetScalars())
        return (values.reshape(dims[2], dims[1], dims[0]) > 0).astype(np.uint8)
    finally:
        scene.RemoveNode(labelmap)


def _crop(mask: np.ndarray) -> tuple[tuple[int, int, int], np.ndarray]:
    """(first KJI corner, voxels of the bounding box): what undo keeps instead of a whole CT grid."""
    present = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    if not present[0].size:
        return (0, 0, 0), np.zeros((0, 0, 0), np.uint8)
    low = tuple(int(p[0]) for p in present)
    return low, mask[tuple(slice(p[0], p[-1] + 1) for p in present)].copy()  # type: ignore[return-value]


@dataclass
class ClickCorrection:
    """The clicks on one segment, in order, and the voxels before each (see the module doc)."""

    segmentation_node: Any
    segment_id: str
    volume_node: Any
    clicks: list[tuple[Point, bool]] = field(default_factory=list)
    #: per applied click: how many clicks came before it, and the voxels before it (box corner, box)
    _undo: list[tuple[int, tuple[int, int, int], np.ndarray]] = field(default_factory=list)
    #: the volume as the worker reads it, written once per correction (its warm cache then holds it)
    _input: Path | None = None

    @property
    def include(self) -> list[Point]:
        """The "+" clicks so far (world RAS)."""
        return [p for p, positive in self.clicks if positive]

    @property
    def exclude(self) -> list[Point]:
        """The "−" clicks so far (world RAS)."""
        return [p for p, positive in self.clicks if not positive]

    @property
    def can_undo(self) -> bool:
        """True while a click can be undone."""
        return bool(self._undo)

    def add_click(self, ras: Point, positive: bool) -> None:
        """Record a "+" (``positive``) or "−" click at world RAS ``ras``, before the model runs."""
        self.clicks.append((tuple(float(v) for v in ras), bool(positive)))  # type: ignore[arg-type]

    def discard_click(self) -> None:
        """Forget the last click when its run failed or was cancelled (its voxels were never written)."""
        applied = self._undo[-1][0] + 1 if self._undo else 0
        if len(self.clicks) > applied:
            self.clicks.pop()

    def current_mask(self) -> np.ndarray:
        """The segment's voxels now, on the volume's grid."""
        return mask_on_volume(self.segmentation_node, self.segment_id, self.volume_node)

    def request_fields(self, folder: str | Path | None = None) -> dict[str, Any]:
        """The ``refine`` request's click fields; the current voxels go to a ``.npy`` in ``folder``
        (default: the correction's own temporary folder, beside the volume written for the worker)."""
        folder = Path(folder) if folder is not None else self.input_path().parent
        prior = folder / f"prior-{len(self.clicks)}.npy"
        prior.parent.mkdir(parents=True, exist_ok=True)
        np.save(prior, self.current_mask(), allow_pickle=False)
        return {"include_points": [list(p) for p in self.include], "exclude_points": [list(p) for p in self.exclude],
                "prior_path": str(prior)}

    def input_path(self) -> Path:
        """The volume in world geometry as an uncompressed NRRD in a private temporary folder,
        written on the first click only."""
        if self._input is None:
            import tempfile

            from ..pipeline.io import write_image
            from .volumes import volume_to_image

            folder = Path(tempfile.mkdtemp(prefix="textlesionseg-clicks-"))
            self._input = write_image(volume_to_image(self.volume_node), folder / "input.nrrd", overwrite=True,
                                      compress=False)
        return self._input

    def close(self) -> None:
        """Delete the temporary folder (the volume copy and the priors); undo stays possible."""
        import shutil

        if self._input is not None:
            shutil.rmtree(self._input.parent, ignore_errors=True)
            self._input = None

    def apply(self, mask: np.ndarray) -> None:
        """Replace this segment's voxels by the model's answer to the last click (``mask``, KJI on
        the volume's grid), keeping the voxels before it for :meth:`undo`."""
        low, crop = _crop(self.current_mask())
        self._undo.append((max(0, len(self.clicks) - 1), low, crop))
        self._write(np.asarray(mask, np.uint8))

    def undo(self) -> bool:
        """Put back the voxels from before the last applied click and forget that click (and any
        after it); False when there is nothing to undo."""
        if not self._undo:
            return False
        n_before, low, crop = self._undo.pop()
        dims = self.volume_node.GetImageData().GetDimensions()
        mask = np.zeros((dims[2], dims[1], dims[0]), np.uint8)
        mask[tuple(slice(a, a + n) for a, n in zip(low, crop.shape))] = crop
        del self.clicks[n_before:]
        self._write(mask)
        return True

    def _write(self, mask: np.ndarray) -> None:
        # no generated-mask digest: the segment now holds the user's corrections, which a later
        # live re-threshold of the text model's map must not undo (segment_voxels.was_edited)
        from .segmentation import labelmap_from_mask

        like = labelmap_from_mask(np.zeros_like(mask), self.volume_node, self.segmentation_node)  # extent from 0
        write_segment_mask(self.segmentation_node, self.segment_id, mask, like)
