"""The benchmark's input volumes, written once as NRRD files so that "read" is a real file read.

* ``cube128``: 128^3 voxels at 1.5 mm, a soft-tissue body with a hypodense lesion (procedural).
* ``lung2``: the real chest CT of pyradiomics (512x512x61), from ``../shared/data`` or
  ``TextLesionSegLib.sample_data`` when present. Held out: a benchmark only runs it, never tunes on it.
* ``abdomen512``: a 512x512x300 synthetic abdomen (0.8x0.8x1.0 mm) from the synthetic-data
  module's abdominal phantom when installed, else a plain procedural body with organs and a lesion.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..pipeline.geometry import Image

TEXT_FOR_INPUT = {
    "cube128": ["a round hypodense lesion in the liver"],
    "lung2": ["a mass in the left lung"],
    "abdomen512": ["a round hypodense lesion in the liver"],
}


def _ellipsoid(shape_kji: tuple[int, int, int], spacing: tuple[float, float, float], centre_mm, radii_mm) -> np.ndarray:
    """Boolean ellipsoid by broadcasting (no full index grids: 512x512x300 fits in memory)."""
    axes = [(np.arange(n, dtype=np.float32) * s - c) / r
            for n, s, c, r in zip(shape_kji, spacing[::-1], centre_mm[::-1], radii_mm[::-1])]
    return (axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2 + axes[2][None, None, :] ** 2) <= 1.0


def procedural_body(shape_kji: tuple[int, int, int], spacing: tuple[float, float, float], seed: int = 0) -> Image:
    """Air, a fat/soft-tissue body, a liver-like organ and one hypodense lesion, with noise."""
    rng = np.random.default_rng(seed)
    ext = [n * s for n, s in zip(shape_kji[::-1], spacing)]  # I, J, K extents in mm
    centre = [e / 2 for e in ext]
    hu = np.full(shape_kji, -1000.0, np.float32)
    hu[_ellipsoid(shape_kji, spacing, centre, (ext[0] * 0.42, ext[1] * 0.35, ext[2] * 2))] = -90.0
    hu[_ellipsoid(shape_kji, spacing, centre, (ext[0] * 0.36, ext[1] * 0.29, ext[2] * 2))] = 40.0
    liver_c = (centre[0] - ext[0] * 0.12, centre[1], centre[2])
    hu[_ellipsoid(shape_kji, spacing, liver_c, (ext[0] * 0.16, ext[1] * 0.14, ext[2] * 0.35))] = 60.0
    hu[_ellipsoid(shape_kji, spacing, liver_c, (12.0, 12.0, 12.0))] = 10.0
    hu += rng.normal(0, 10, size=shape_kji).astype(np.float32)
    return Image(array=hu, spacing=spacing)


def abdomen512(seed: int = 0) -> Image:
    """512x512x300 abdomen: the synthetic-data phantom when available, else :func:`procedural_body`."""
    shape, spacing = (300, 512, 512), (0.8, 0.8, 1.0)
    try:
        from ..training.data.hosts import centered_grid
        from ..training.data.phantom_abdomen import abdomen_phantom
    except ImportError:
        return procedural_body(shape, spacing, seed)
    host = abdomen_phantom(centered_grid(shape, spacing), np.random.default_rng(seed))
    return host.image


def lung2_path() -> Path | None:
    """The real lung2 CT if this checkout can see it (``$TEXTLESIONSEG_LUNG2``, ../shared/data, sample_data's shared folders)."""
    env = os.environ.get("TEXTLESIONSEG_LUNG2")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data" / "lung2_image.nrrd")
    candidates.append(Path(__file__).resolve().parents[4] / "shared" / "data" / "lung2_image.nrrd")
    for c in candidates:
        if c.is_file():
            return c
    try:
        from .. import sample_data

        for folder in sample_data.shared_data_dirs():
            if (Path(folder) / "lung2_image.nrrd").is_file():
                return Path(folder) / "lung2_image.nrrd"
    except Exception:  # noqa: BLE001 - no sample data: the benchmark skips lung2 and says so
        return None
    return None


BUILDERS: dict[str, Callable[[], Image]] = {
    "cube128": lambda: procedural_body((128, 128, 128), (1.5, 1.5, 1.5)),
    "abdomen512": abdomen512,
}


def input_file(name: str, cache_dir: Path) -> Path:
    """Path of the NRRD file of input ``name``, writing it into ``cache_dir`` on first use."""
    from ..pipeline.io import write_image

    if name == "lung2":
        path = lung2_path()
        if path is None:
            raise InputError("lung2 is not available (no ../shared/data/lung2_image.nrrd; set TEXTLESIONSEG_LUNG2)")
        return path
    if name not in BUILDERS:
        raise InputError(f"unknown benchmark input '{name}' (known: cube128, lung2, abdomen512)")
    path = cache_dir / f"{name}.nrrd"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_image(BUILDERS[name](), path)
    return path
