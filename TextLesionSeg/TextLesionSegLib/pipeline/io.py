"""Reading and writing images (NIfTI, NRRD, MetaImage, DICOM series) through SimpleITK.

Every failure a user can cause (missing file, truncated file, not an image, 2D/4D/RGB
images, several DICOM series) becomes an :class:`~TextLesionSegLib.errors.InputError` with one
line naming the problem. Writes are atomic (see :func:`atomic_output`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import InputError
from .geometry import Image

#: file name endings read as single files
IMAGE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")

#: DICOM tags copied into ``Image.metadata`` when present
_DICOM_TAGS = {"0008|0060": "modality", "0020|000e": "series_uid", "0008|103e": "series_description"}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in IMAGE_SUFFIXES:
        if name.endswith(s):
            return s
    return path.suffix.lower()


def _check_3d_scalar(sitk_image: Any, path: Path) -> None:
    """Refuse images the pipeline cannot segment: 2D, 4D, vector/RGB pixels."""
    dim = sitk_image.GetDimension()
    comps = sitk_image.GetNumberOfComponentsPerPixel()
    if comps != 1:
        raise InputError(f"{path}: has {comps} components per voxel (RGB or vector image); a scalar CT volume is needed")
    if dim == 2 or (dim == 3 and sitk_image.GetSize()[2] == 1):
        raise InputError(f"{path}: is a 2D image (size {sitk_image.GetSize()}); a 3D CT volume is needed")
    if dim != 3:
        raise InputError(f"{path}: is a {dim}D image (size {sitk_image.GetSize()}); a 3D CT volume is needed")


def list_dicom_series(folder: str | os.PathLike) -> list[str]:
    """Series instance UIDs of the DICOM series in ``folder`` (not recursive)."""
    import SimpleITK as sitk

    return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or ())


def _read_dicom_series(folder: Path, series_uid: str | None) -> tuple[Any, dict[str, Any]]:
    import SimpleITK as sitk

    uids = list_dicom_series(folder)
    if not uids:
        raise InputError(f"{folder}: folder holds no DICOM series (and is not an image file)")
    if series_uid is None:
        if len(uids) > 1:
            raise InputError(
                f"{folder}: holds {len(uids)} DICOM series; choose one with --series-uid: " + ", ".join(uids)
            )
        series_uid = uids[0]
    elif series_uid not in uids:
        raise InputError(f"{folder}: has no series {series_uid}; present: " + ", ".join(uids))
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    reader.LoadPrivateTagsOff()
    try:
        img = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{folder}: cannot read DICOM series {series_uid}: {_first_line(exc)}") from None
    meta: dict[str, Any] = {"series_uid": series_uid, "n_files": len(files)}
    for tag, key in _DICOM_TAGS.items():
        if reader.HasMetaDataKey(0, tag):
            meta[key] = reader.GetMetaData(0, tag).strip()
    return img, meta


def _first_line(exc: BaseException) -> str:
    """The most telling line of an ITK exception (they are multi-line)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "Description:" in ln:
            return ln.split("Description:", 1)[1].strip()
    return lines[-1] if lines else type(exc).__name__


def read_image(path: str | os.PathLike, series_uid: str | None = None) -> Image:
    """Read a 3D scalar image from a file or a DICOM series folder.

    Args:
        path: .nii/.nii.gz/.nrrd/.nhdr/.mha/.mhd file, or a folder holding a DICOM series.
        series_uid: which series to read when the folder holds several.

    Returns:
        An :class:`Image` whose metadata holds ``source_path`` and, when known, ``modality``.

    Raises:
        InputError: the path is missing or unreadable, or the image is not a 3D scalar volume.
    """
    import SimpleITK as sitk

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    meta: dict[str, Any] = {"source_path": str(p.resolve())}
    if p.is_dir():
        img, dmeta = _read_dicom_series(p, series_uid)
        meta.update(dmeta)
    else:
        if not os.access(p, os.R_OK):
            raise InputError(f"{p}: file is not readable (permission denied)")
        if p.stat().st_size == 0:
            raise InputError(f"{p}: file is empty")
        try:
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(p))
            img = reader.Execute()
        except RuntimeError as exc:
            msg = _first_line(exc)
            if "Could not create IO object" in str(exc) or "unable to determine imageio" in str(exc).lower():
                raise InputError(f"{p}: not an image file SimpleITK can read (NIfTI, NRRD, MHA, DICOM)") from None
            if "spacing" in msg.lower():
                raise InputError(f"{p}: voxel spacing is zero or invalid ({msg})") from None
            raise InputError(f"{p}: unreadable or truncated image: {msg}") from None
        for key in img.GetMetaDataKeys():
            if key in _DICOM_TAGS:
                meta[_DICOM_TAGS[key]] = img.GetMetaData(key).strip()
            elif key.lower() == "modality":  # e.g. a MetaImage "Modality = MET_MOD_CT" line
                meta.setdefault("modality", img.GetMetaData(key).strip().replace("MET_MOD_", ""))
    _check_3d_scalar(img, p)
    meta["pixel_type"] = img.GetPixelIDTypeAsString()
    return Image.from_sitk(img, **meta)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On any failure the temporary file is removed, so no partial output survives, and an
    existing file at ``path`` is untouched. The temporary name keeps the final suffix
    (``.seg.nrrd``, ``.nii.gz``...) because writers pick the format from it.
    """
    target = Path(path)
    check_writable(target, overwrite)
    suffix = "".join(target.suffixes[-2:]) if target.name.lower().endswith(".gz") else target.suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part{suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not overwrite and target.exists():  # appeared meanwhile: never clobber
            raise InputError(f"{target}: output file exists; use --overwrite to replace it")
        # mkstemp made the file private (0600); give it the mode any new file of the user gets
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> None:
    """Raise InputError unless ``path`` can be written (folder exists and is writable; no
    existing file unless ``overwrite``). Called for every output before the model runs."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: is a folder; give an output file name")
    if target.exists() and not overwrite:
        raise InputError(f"{target}: output file exists; use --overwrite to replace it")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{parent}: output folder does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{parent}: output folder is not writable")


def write_with(path: str | os.PathLike, writer: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Run ``writer(tmp_path)`` then move the result onto ``path`` atomically.

    OS errors (full disk, permissions) become InputError naming the file.
    """
    target = Path(path)
    try:
        with atomic_output(target, overwrite) as tmp:
            writer(tmp)
    except OSError as exc:
        raise InputError(f"{target}: cannot write: {exc.strerror or exc}") from None
    except RuntimeError as exc:  # SimpleITK reports IO failures as RuntimeError
        raise InputError(f"{target}: cannot write: {_first_line(exc)}") from None
    return target


def write_image(image: Image, path: str | os.PathLike, overwrite: bool = False, compress: bool = True) -> Path:
    """Write ``image`` (array and geometry) to a NIfTI/NRRD/MHA file, atomically."""
    import SimpleITK as sitk

    sitk_img = image.to_sitk()
    return write_with(path, lambda tmp: sitk.WriteImage(sitk_img, str(tmp), compress), overwrite)


def image_array_stats(image: Image) -> dict[str, float]:
    """Min, max, mean, SD and 1st/99th percentiles of the finite voxels (for ``info``)."""
    a = np.asarray(image.array)
    finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a.ravel()
    if finite.size == 0:
        return {"min": float("nan"), "max": float("nan"), "mean": float("nan"), "sd": float("nan")}
    sample = finite[:: max(1, finite.size // 2_000_000)]
    p1, p99 = np.percentile(sample, [1, 99])
    return {
        "min": float(finite.min()),
        "max": float(finite.max()),
        "mean": float(finite.mean(dtype=np.float64)),
        "sd": float(finite.std(dtype=np.float64)),
        "p1": float(p1),
        "p99": float(p99),
    }
