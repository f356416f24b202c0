"""The one place that knows how voxels sit in space.

Conventions, stated once:

* **Arrays are KJI**: ``array[k, j, i]`` as SimpleITK's ``GetArrayFromImage`` and Slicer's
  ``arrayFromVolume`` return them (slice, row, column).
* **ITK files are LPS**: ``origin`` and ``direction`` of :class:`Image` are in LPS millimetres,
  as SimpleITK reports them. ``direction[:, n]`` is the unit vector of index axis n (I, J, K).
* **Slicer is RAS**: ``IJKToRAS`` matrices and RAS points are produced only by the functions here.

Every other module passes an :class:`Image` (which carries its geometry) and calls these
functions instead of flipping signs or reversing axes itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

#: Multiplying an LPS point by this gives RAS, and vice versa (the map is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def lps_to_ras(points: np.ndarray) -> np.ndarray:
    """Convert points (..., 3) from LPS to RAS (or back: the map is an involution)."""
    return np.asarray(points, dtype=float) @ LPS_TO_RAS


ras_to_lps = lps_to_ras

#: direction cosines smaller than this are exactly 0: round-off dust, far below any header's
#: printed precision (a 1e-12 cosine moves a point 500 mm away by 5e-10 mm)
NEGLIGIBLE_COSINE = 1e-12


@dataclass
class Image:
    """A 3D scalar image with its physical geometry.

    Attributes:
        array: voxel values in KJI order.
        spacing: voxel size along I, J, K in mm.
        origin: LPS position (mm) of the centre of voxel (0, 0, 0).
        direction: 3x3 LPS direction cosines; column n is index axis n (I, J, K).
        metadata: free-form facts carried along (modality, source path, series UID, ...).
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = np.asarray(self.origin, dtype=float).reshape(3)
        direction = np.array(self.direction, dtype=float).reshape(3, 3)
        # Entries like 1e-298 (round-off of oblique rotations) make ITK's SVD fail and its resampler
        # silently return zeros; a direction cosine that small is 0 for any physical purpose.
        direction[np.abs(direction) < NEGLIGIBLE_COSINE] = 0.0
        self.direction = direction

    # ---- sizes -------------------------------------------------------------------------
    @property
    def size_ijk(self) -> tuple[int, int, int]:
        """Number of voxels along I, J, K (SimpleITK's ``GetSize`` order)."""
        k, j, i = self.array.shape[:3]
        return (i, j, k)

    def with_array(self, array: np.ndarray, **metadata: Any) -> "Image":
        """A new image on the same grid holding ``array`` (KJI, same shape)."""
        if array.shape[:3] != self.array.shape[:3]:
            raise ValueError(f"array shape {array.shape} does not match grid {self.array.shape}")
        return replace(self, array=array, metadata={**self.metadata, **metadata})

    # ---- matrices ----------------------------------------------------------------------
    def ijk_to_lps(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping continuous (i, j, k) indices to LPS mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def ijk_to_ras(self) -> np.ndarray:
        """4x4 matrix mapping (i, j, k) to RAS mm: what Slicer's ``GetIJKToRASMatrix`` holds."""
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        return flip @ self.ijk_to_lps()

    # ---- points ------------------------------------------------------------------------
    def kji_to_lps(self, kji: np.ndarray) -> np.ndarray:
        """Physical LPS positions (..., 3) of array indices (..., 3) given in KJI order."""
        ijk = np.asarray(kji, dtype=float)[..., ::-1]
        m = self.ijk_to_lps()
        return ijk @ m[:3, :3].T + m[:3, 3]

    def kji_to_ras(self, kji: np.ndarray) -> np.ndarray:
        """Physical RAS positions (..., 3) of array indices given in KJI order."""
        return lps_to_ras(self.kji_to_lps(kji))

    def lps_to_kji(self, lps: np.ndarray) -> np.ndarray:
        """Continuous KJI array indices (..., 3) of LPS points (..., 3)."""
        m = self.ijk_to_lps()
        ijk = (np.asarray(lps, dtype=float) - m[:3, 3]) @ np.linalg.inv(m[:3, :3]).T
        return ijk[..., ::-1]

    def ras_to_kji(self, ras: np.ndarray) -> np.ndarray:
        """Continuous KJI array indices of RAS points."""
        return self.lps_to_kji(ras_to_lps(ras))

    # ---- SimpleITK ---------------------------------------------------------------------
    @classmethod
    def from_sitk(cls, sitk_image: Any, **metadata: Any) -> "Image":
        """Wrap a 3D SimpleITK image (array copied, geometry kept)."""
        import SimpleITK as sitk

        return cls(
            array=sitk.GetArrayFromImage(sitk_image),
            spacing=sitk_image.GetSpacing(),
            origin=np.array(sitk_image.GetOrigin()),
            direction=np.array(sitk_image.GetDirection()).reshape(3, 3),
            metadata=dict(metadata),
        )

    def to_sitk(self, array: np.ndarray | None = None) -> Any:
        """A SimpleITK image of ``array`` (default: this image's) on this image's grid."""
        import SimpleITK as sitk

        out = sitk.GetImageFromArray(self.array if array is None else array)
        out.SetSpacing(self.spacing)
        out.SetOrigin(tuple(self.origin))
        out.SetDirection(tuple(self.direction.ravel()))
        return out

    # ---- Slicer ------------------------------------------------------------------------
    @classmethod
    def from_ijk_to_ras(cls, array_kji: np.ndarray, ijk_to_ras: np.ndarray, **metadata: Any) -> "Image":
        """Build an image from a KJI array and a 4x4 IJK-to-RAS matrix (Slicer's volume nodes).

        The matrix may include a parent transform already hardened into it; any shear or
        non-orthogonality is kept in ``direction`` (columns normalised, not orthogonalised).
        """
        m = np.asarray(ijk_to_ras, dtype=float).reshape(4, 4)
        to_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ m
        columns = to_lps[:3, :3]
        spacing = np.linalg.norm(columns, axis=0)
        if np.any(spacing <= 0):
            raise ValueError("IJK-to-RAS matrix has a zero-length axis")
        return cls(
            array=array_kji,
            spacing=tuple(spacing),
            origin=to_lps[:3, 3],
            direction=columns / spacing,
            metadata=dict(metadata),
        )


def same_grid(a: Image, b: Image, tol: float = 1e-4) -> bool:
    """True when two images share shape, spacing, origin and direction (within ``tol``)."""
    return (
        a.array.shape[:3] == b.array.shape[:3]
        and np.allclose(a.spacing, b.spacing, atol=tol)
        and np.allclose(a.origin, b.origin, atol=tol)
        and np.allclose(a.direction, b.direction, atol=tol)
    )
