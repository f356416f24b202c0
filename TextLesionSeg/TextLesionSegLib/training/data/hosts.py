"""Hosts for synthetic lesions: a CT image with labelled parts (organ, side, sub-location).

Every host carries its part label map, so organ masks, left/right and sub-locations come with
it. Hosts are built by name (:func:`make_host`): the real chest CT bundled with slicerio
(``ctchest4``, lungs found by thresholding) and procedural chest / abdominal phantoms at
several grids. ``../shared/data/lung2`` is the held-out real test scan and is never a host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...pipeline.geometry import Image


@dataclass(frozen=True)
class Part:
    """One labelled structure of a host.

    Attributes:
        name: readable name ("left lung upper lobe", "liver right lobe", ...).
        organ: organ a lesion may be attributed to ("lung", "liver", ...), or a tissue name.
        side: "left" / "right" (patient's) or None.
        sub_location: lobe / segment name within the organ, or None.
        parenchyma: True for the organ tissue a lesion's density is compared with.
    """

    name: str
    organ: str
    side: str | None = None
    sub_location: str | None = None
    parenchyma: bool = False


@dataclass
class Host:
    """A CT volume (HU, float32) with its part label map.

    Attributes:
        name: host kind ("ctchest4", "chest", "abdomen", ...).
        image: HU image; the array is float32 KJI.
        parts: uint8 label map on the image grid.
        part_table: label value -> :class:`Part`.
        phase: "contrast-enhanced" or "non-contrast" (the enhancement attribute).
        noise_sd: standard deviation (HU) of the image noise, given to lesion interiors too.
        soft_tissue_hu: the reference density of lung lesions (Malenia codes lung density
            relative to soft tissue).
        metadata: facts about the host; ``psf_mm`` (Gaussian sigma along I, J, K in mm) is the
            blur of its anatomy, which inserted lesions receive too so their edges are no sharper
            than the organs' (no shortcut for a model to learn).
    """

    name: str
    image: Image
    parts: np.ndarray
    part_table: dict[int, Part]
    phase: str = "non-contrast"
    noise_sd: float = 12.0
    soft_tissue_hu: float = 45.0
    metadata: dict = field(default_factory=dict)

    def part_ids(self, organ: str, side: str | None = None, sub_location: str | None = None,
                 parenchyma_only: bool = False) -> list[int]:
        """Labels of the parts of ``organ`` (optionally one side / sub-location)."""
        return [v for v, p in self.part_table.items()
                if p.organ == organ and (side is None or p.side == side)
                and (sub_location is None or p.sub_location == sub_location)
                and (not parenchyma_only or p.parenchyma)]

    def mask(self, organ: str, side: str | None = None, sub_location: str | None = None,
             parenchyma_only: bool = False) -> np.ndarray:
        """Boolean mask (KJI) of an organ, side or sub-location."""
        ids = self.part_ids(organ, side, sub_location, parenchyma_only)
        return np.isin(self.parts, np.asarray(ids, dtype=self.parts.dtype)) if ids else np.zeros(self.parts.shape, bool)

    def part_boxes(self) -> dict[int, tuple[slice, slice, slice]]:
        """Bounding box (KJI slices) of every part present, computed once per host."""
        if "_boxes" not in self.metadata:
            from scipy import ndimage

            found = ndimage.find_objects(self.parts)
            self.metadata["_boxes"] = {i + 1: b for i, b in enumerate(found) if b is not None}
        return self.metadata["_boxes"]

    def organs(self) -> list[str]:
        """Organs that have parenchyma parts (the organs lesions can be placed in)."""
        return sorted({p.organ for p in self.part_table.values() if p.parenchyma})


def centered_grid(shape_kji: tuple[int, int, int], spacing_ijk: tuple[float, float, float],
                  flip_xy: bool = False, center_lps=(0.0, 0.0, 0.0)) -> Image:
    """An empty float32 image whose centre sits at ``center_lps``.

    ``flip_xy`` gives direction diag(-1, -1, 1), the layout of most DICOM-derived volumes (and
    of CTChest4), so that phantoms exercise both axis conventions.
    """
    direction = np.diag([-1.0, -1.0, 1.0]) if flip_xy else np.eye(3)
    size_ijk = np.asarray(shape_kji[::-1], float)
    half = (size_ijk - 1) / 2 * np.asarray(spacing_ijk, float)
    origin = np.asarray(center_lps, float) - direction @ half
    return Image(array=np.zeros(shape_kji, np.float32), spacing=spacing_ijk, origin=origin, direction=direction)


#: grid presets (shape KJI, spacing IJK mm); "lung2like" matches a typical clinical chest CT:
#: 512x512 axial at 0.74 mm in-plane with 5 mm slices.
GRID_PRESETS: dict[str, tuple[tuple[int, int, int], tuple[float, float, float]]] = {
    "small": ((48, 128, 128), (3.0, 3.0, 6.0)),
    "medium": ((96, 192, 192), (2.0, 2.0, 3.0)),
    "large": ((128, 256, 256), (1.5, 1.5, 2.5)),
    "thick": ((64, 256, 256), (1.5, 1.5, 5.0)),
    "lung2like": ((64, 512, 512), (0.74, 0.74, 5.0)),
}

#: host names accepted by :func:`make_host` and ``textlesionseg synth --hosts``
HOST_NAMES: tuple[str, ...] = ("ctchest4", "ctchest4-lung2like", "chest", "chest-lung2like", "abdomen")

#: which organs each host kind offers lesions in
HOST_ORGANS: dict[str, tuple[str, ...]] = {
    "ctchest4": ("lung",),
    "ctchest4-lung2like": ("lung",),
    "chest": ("lung",),
    "chest-lung2like": ("lung",),
    "abdomen": ("liver", "kidney", "pancreas", "colon", "spleen"),
}


def make_host(name: str, rng: np.random.Generator, grid: str | None = None,
              phase: str | None = None) -> Host:
    """Build a host by name; ``grid`` picks a :data:`GRID_PRESETS` entry for phantoms.

    Raises:
        ValueError: unknown host name or grid preset.
    """
    if name not in HOST_NAMES:
        raise ValueError(f"unknown host '{name}' (choose from {', '.join(HOST_NAMES)})")
    if name.startswith("ctchest4"):
        from .host_ctchest import ctchest4_host

        return ctchest4_host(resample_lung2like=name.endswith("lung2like"), rng=rng)
    if name.endswith("lung2like"):
        grid = "lung2like"  # the point of these hosts is that grid
    elif grid is None:
        grid = str(rng.choice(["medium", "large", "thick"]))
    if grid not in GRID_PRESETS:
        raise ValueError(f"unknown grid preset '{grid}' (choose from {', '.join(GRID_PRESETS)})")
    shape, spacing = GRID_PRESETS[grid]
    flip = bool(rng.integers(2))
    if phase is None:
        phase = "contrast-enhanced" if rng.random() < 0.7 else "non-contrast"
    if name.startswith("chest"):
        from .phantom_chest import chest_phantom

        host = chest_phantom(centered_grid(shape, spacing, flip), rng, phase)
    else:
        from .phantom_abdomen import abdomen_phantom

        host = abdomen_phantom(centered_grid(shape, spacing, flip), rng, phase)
    host.metadata["grid"] = grid
    host.metadata["psf_mm"] = (0.8, 0.8, 0.8)  # the blur finish_ct gave the anatomy
    return host


def finish_ct(labels: np.ndarray, hu_table: dict[int, float], image: Image, rng: np.random.Generator,
              noise_sd: float, texture_sd: float = 6.0, blur_mm: float = 0.8) -> np.ndarray:
    """HU volume from a label map: per-label HU, organ texture, partial-volume blur, CT noise.

    Order matters for realism and speed: texture (low frequency, cheap upsampled field), then a
    small Gaussian blur standing in for the scanner's point spread (partial volume at organ
    borders), then slightly correlated noise, as reconstructed CT noise is.
    """
    from scipy import ndimage

    from .grid import smooth_noise

    lut = np.zeros(256, np.float32)
    for value, hu in hu_table.items():
        lut[value] = hu
    hu = lut[labels]
    hu += (texture_sd * smooth_noise(rng, labels.shape, 12)) * (hu > -500)
    sigma = [max(blur_mm / s, 0.3) for s in image.spacing[::-1]]
    hu = ndimage.gaussian_filter(hu, sigma=sigma, truncate=2.5)
    noise = rng.standard_normal(labels.shape, dtype=np.float32)
    noise = ndimage.uniform_filter1d(noise, 2, axis=2)  # correlate neighbours along i, as filtered back-projection does
    hu += noise * np.float32(noise_sd / np.sqrt(0.5))
    return hu
