"""Input grid -> model working grid, and back, with an exact physical inverse.

Forward (:func:`to_working_grid`): reorient so the direction is closest to identity in LPS
(SimpleITK ``DICOMOrient``: a permutation/flip only, no interpolation), resample to the model's
spacing (linear, field of view corner-aligned), window HU to 0..1, crop to the body with a
margin, pad up to the patch size. The result's geometry is kept in a :class:`WorkingGrid`.

Inverse (:meth:`WorkingGrid.to_input_grid`): every probability map is resampled *physically*
from the working grid onto the input image's own voxel grid (SimpleITK ``Resample`` with the
input geometry as reference). Crop, pad, flips, permutations and oblique directions are all
undone by that one physical resampling, because the working grid carries its true geometry;
voxels outside the working grid (cropped-away air) get probability 0.

Training code uses the same functions (and :func:`to_working_grid_label` for label maps),
so train and test inputs match.
"""

from __future__ import annotations

import itertools

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.types import PreprocessingConfig
from .geometry import Image

if TYPE_CHECKING:
    import torch

#: HU above which a voxel counts as body when cropping (air is about -1000, lung about -850..-500)
BODY_HU = -500.0
#: margin (mm) kept around the body bounding box
CROP_MARGIN_MM = 10.0


def geometry_only(shape_kji: tuple[int, int, int], spacing, origin, direction, **metadata: Any) -> Image:
    """An :class:`Image` that carries a grid but no voxel memory (a read-only zero view)."""
    arr = np.broadcast_to(np.zeros((), dtype=np.uint8), tuple(int(s) for s in shape_kji))
    return Image(array=arr, spacing=tuple(spacing), origin=np.asarray(origin), direction=np.asarray(direction),
                 metadata=dict(metadata))


def _resample(sitk_image: Any, grid: Image, interpolator: Any, default: float, pixel_type: Any) -> Any:
    """Resample ``sitk_image`` physically onto ``grid`` (identity transform)."""
    import SimpleITK as sitk

    return sitk.Resample(
        sitk_image,
        [int(s) for s in grid.size_ijk],
        sitk.Transform(),
        interpolator,
        tuple(float(v) for v in grid.origin),
        tuple(float(v) for v in grid.spacing),
        tuple(float(v) for v in grid.direction.ravel()),
        float(default),
        pixel_type,
    )


@dataclass
class WorkingGrid:
    """Where the working tensor sits in space, and how to get back to the input grid.

    Attributes:
        input: geometry of the input image (array is a zero view of its shape).
        working: geometry of the working tensor (shape (K, J, I) of the tensor).
        resampled: geometry of the reoriented, resampled volume before crop/pad.
        crop_start_kji / crop_stop_kji: body crop box on the resampled grid.
        pad_before_kji / pad_after_kji: padding added after the crop.
        config: the preprocessing configuration used.
    """

    input: Image
    working: Image
    resampled: Image
    crop_start_kji: tuple[int, int, int]
    crop_stop_kji: tuple[int, int, int]
    pad_before_kji: tuple[int, int, int]
    pad_after_kji: tuple[int, int, int]
    config: PreprocessingConfig

    def to_input_grid(self, prob: Any, nearest: bool = False) -> np.ndarray:
        """Map maps ``(Q, K, J, I)`` on the working grid to ``(Q, K', J', I')`` on the input grid.

        Linear interpolation (``nearest=True`` for label maps); outside the working grid -> 0.
        Accepts a numpy array or a torch tensor; returns float32 (or the input dtype if nearest).
        """
        import SimpleITK as sitk

        arr = prob.detach().cpu().numpy() if hasattr(prob, "detach") else np.asarray(prob)
        squeeze = arr.ndim == 3
        if squeeze:
            arr = arr[None]
        if arr.shape[1:] != self.working.array.shape:
            raise ValueError(f"maps of shape {arr.shape[1:]} are not on the working grid {self.working.array.shape}")
        interp = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
        out_dtype = arr.dtype if nearest else np.float32
        out = np.zeros((arr.shape[0],) + tuple(self.input.array.shape), dtype=out_dtype)
        for q in range(arr.shape[0]):
            box = self._input_box_of_nonzero(arr[q])
            if box is None:
                continue  # an empty map stays empty: nothing to resample
            sub = geometry_only(tuple(b - a for a, b in box), self.input.spacing,
                                self.input.kji_to_lps(np.array([a for a, _ in box], float)), self.input.direction)
            src = self.working.to_sitk(np.ascontiguousarray(arr[q].astype(out_dtype, copy=False)))
            res = _resample(src, sub, interp, 0.0, src.GetPixelID())
            out[q][tuple(slice(a, b) for a, b in box)] = sitk.GetArrayViewFromImage(res)
        return out[0] if squeeze else out

    def _input_box_of_nonzero(self, arr: np.ndarray) -> list[tuple[int, int]] | None:
        """Input-grid index box (KJI start/stop) holding every input voxel whose value can be
        non-zero after resampling ``arr``, or None if ``arr`` is all zero.

        Maps are mostly zero, and resampling a 512 x 512 x 300 input grid in full costs seconds:
        only this box is resampled. The nonzero box grows by one working voxel (the reach of
        linear interpolation) and one input voxel each way, so the result is the same (up to float
        rounding of the sub-grid origin).
        """
        nz = [np.flatnonzero(arr.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
        if any(len(n) == 0 for n in nz):
            return None
        lo = np.array([n[0] - 1 for n in nz], float)
        hi = np.array([n[-1] + 1 for n in nz], float)
        corners = np.array(list(itertools.product(*zip(lo, hi))))  # the box's 8 corners (KJI)
        kji = self.input.lps_to_kji(self.working.kji_to_lps(corners))
        shape = self.input.array.shape
        start = np.clip(np.floor(kji.min(axis=0)).astype(int) - 1, 0, shape)
        stop = np.clip(np.ceil(kji.max(axis=0)).astype(int) + 2, 0, shape)
        if np.any(stop <= start):
            return None  # the map's support lies outside the input grid
        return [(int(a), int(b)) for a, b in zip(start, stop)]

    def to_working_image(self, image: Image, nearest: bool = False, default: float = 0.0) -> np.ndarray:
        """Resample any image (e.g. a label map on its own grid) onto the working grid (K, J, I)."""
        import SimpleITK as sitk

        interp = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
        src = image.to_sitk()
        res = _resample(src, self.working, interp, default, src.GetPixelID())
        return sitk.GetArrayFromImage(res)


def _canonical(image: Image, lo: float, hi: float) -> Any:
    """SimpleITK image of ``image`` (float32, NaN/Inf -> window ends) reoriented closest to LPS identity."""
    import SimpleITK as sitk

    arr = np.asarray(image.array, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        arr = np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo)
    sitk_img = image.to_sitk(arr)
    if np.allclose(np.abs(image.direction), np.eye(3)) and np.all(np.diag(image.direction) > 0):
        return sitk_img
    # DICOMOrient only permutes/flips axes: no interpolation, geometry exact.
    return sitk.DICOMOrient(sitk_img, "LPS")


def resampled_geometry(oriented: Image, spacing: tuple[float, float, float] | None) -> Image:
    """Grid covering the same field of view (corner-aligned) as ``oriented`` at ``spacing``."""
    sp_in = np.asarray(oriented.spacing)
    sp = sp_in if spacing is None else np.asarray(spacing, dtype=float)
    size_ijk = np.maximum(1, np.round(np.asarray(oriented.size_ijk) * sp_in / sp)).astype(int)
    corner = oriented.origin - oriented.direction @ (sp_in / 2)
    origin = corner + oriented.direction @ (sp / 2)
    return geometry_only(tuple(size_ijk[::-1]), sp, origin, oriented.direction)


def body_box(hu_kji: np.ndarray, spacing_ijk: tuple[float, float, float]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Bounding box (start, stop) in KJI of voxels above :data:`BODY_HU`, with a margin."""
    mask = hu_kji > BODY_HU
    shape = hu_kji.shape
    if not mask.any():
        return (0, 0, 0), tuple(shape)
    margin = [int(np.ceil(CROP_MARGIN_MM / s)) for s in spacing_ijk[::-1]]
    start, stop = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        start.append(max(0, int(idx[0]) - margin[axis]))
        stop.append(min(shape[axis], int(idx[-1]) + 1 + margin[axis]))
    return tuple(start), tuple(stop)


def to_working_grid(image: Image, cfg: PreprocessingConfig) -> "tuple[torch.Tensor, WorkingGrid]":
    """Move ``image`` (HU) onto the model's working grid.

    Returns:
        ``(tensor, grid)``: float32 tensor ``(1, 1, K, J, I)`` in 0..1, and the
        :class:`WorkingGrid` that maps results back (``grid.to_input_grid``).
    """
    import SimpleITK as sitk
    import torch

    lo, hi = float(cfg.hu_window[0]), float(cfg.hu_window[1])
    oriented_sitk = _canonical(image, lo, hi)
    oriented = geometry_only(
        tuple(oriented_sitk.GetSize()[::-1]), oriented_sitk.GetSpacing(), oriented_sitk.GetOrigin(),
        np.array(oriented_sitk.GetDirection()).reshape(3, 3))
    target = resampled_geometry(oriented, cfg.spacing)
    if target.array.shape == oriented.array.shape and np.allclose(target.spacing, oriented.spacing):
        hu = sitk.GetArrayFromImage(oriented_sitk)
    else:
        # Outside the field of view is air: the window's low end maps it to 0.
        hu = sitk.GetArrayFromImage(_resample(oriented_sitk, target, sitk.sitkLinear, lo, sitk.sitkFloat32))
    del oriented_sitk
    if cfg.crop_foreground:
        start, stop = body_box(hu, target.spacing)
    else:
        start, stop = (0, 0, 0), tuple(hu.shape)
    hu = hu[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]]
    vol = np.clip((hu - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    del hu
    roi = tuple(int(r) for r in cfg.roi_size)
    need = [max(0, roi[a] - vol.shape[a]) for a in range(3)]
    before = tuple(n // 2 for n in need)
    after = tuple(n - n // 2 for n in need)
    if any(need):
        vol = np.pad(vol, list(zip(before, after)), mode="constant", constant_values=0.0)
    shift_ijk = (np.asarray(start) - np.asarray(before))[::-1].astype(float)
    origin = target.origin + target.direction @ (np.asarray(target.spacing) * shift_ijk)
    working = geometry_only(vol.shape, target.spacing, origin, target.direction)
    grid = WorkingGrid(
        input=geometry_only(image.array.shape[:3], image.spacing, image.origin, image.direction),
        working=working,
        resampled=target,
        crop_start_kji=tuple(int(v) for v in start),
        crop_stop_kji=tuple(int(v) for v in stop),
        pad_before_kji=before,
        pad_after_kji=after,
        config=cfg,
    )
    return torch.from_numpy(vol)[None, None], grid


def to_working_grid_label(label_image: Image, grid: WorkingGrid) -> np.ndarray:
    """A label map (any grid, e.g. the image's) on the working grid, nearest neighbour, (K, J, I)."""
    return grid.to_working_image(label_image, nearest=True, default=0)
