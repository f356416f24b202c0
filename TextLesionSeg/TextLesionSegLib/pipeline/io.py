"""Reading and writing images (NIfTI, NRRD, MetaImage, DICOM series) through SimpleITK.

Every failure a user can cause (missing file, truncated file, not an image, 2D/4D/RGB
images, too thin a volume, unknown or invalid spacing, several DICOM series, a DICOM series with
missing slices) becomes an :class:`~TextLesionSegLib.errors.InputError` with one line naming the
problem. Writes are atomic (see :func:`atomic_output`).

ITK does not refuse everything that is damaged, so the headers are checked here first:
a truncated NIfTI is read with its missing voxels zero-filled, a NIfTI ``pixdim`` or an NRRD
``spacings`` of NaN/0/Inf becomes 1 mm, and a DICOM series with a missing slice is read with the
average spacing. Each of these is refused instead (:func:`check_file_header`,
:func:`check_slice_positions`).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import InputError
from .geometry import Image

#: file name endings read as single files
IMAGE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")

#: modality values that say nothing (ct_verdict then judges by the voxel values)
UNKNOWN_MODALITIES = frozenset({"", "UNKNOWN", "MET_MOD_UNKNOWN", "NONE", "N/A"})

#: DICOM tags copied into ``Image.metadata`` when present
_DICOM_TAGS = {"0008|0060": "modality", "0020|000e": "series_uid", "0008|103e": "series_description"}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in IMAGE_SUFFIXES:
        if name.endswith(s):
            return s
    return path.suffix.lower()


#: fewest voxels a volume may have along any axis. Three, because the post-processing and the
#: measurements work on 3x3x3 neighbourhoods (connected components, hole filling, the surface
#: erosion behind the RECIST diameters): with one or two voxels along an axis every voxel is a
#: border voxel and those steps have nothing to work on. One voxel is a 2D image stored as 3D.
MIN_VOXELS_PER_AXIS = 3
NEEDS_3D = f"a 3D CT needs at least {MIN_VOXELS_PER_AXIS} voxels along each axis"


def _check_3d_scalar(sitk_image: Any, path: Path, dicom_file: bool = False) -> None:
    """Refuse images the pipeline cannot segment: 2D, 4D, vector/RGB pixels, too thin volumes."""
    dim = sitk_image.GetDimension()
    comps = sitk_image.GetNumberOfComponentsPerPixel()
    size = tuple(sitk_image.GetSize())
    if comps != 1:
        raise InputError(f"{path}: has {comps} components per voxel (RGB or vector image); a scalar CT volume is needed")
    if dim == 2 or (dim == 3 and 1 in size):
        hint = "; read the folder that holds the whole series instead" if dicom_file and dim == 3 and size[2] == 1 else ""
        kind = "a single 2D DICOM slice" if hint else "a 2D image"
        raise InputError(f"{path}: is {kind} (size {size}); {NEEDS_3D}{hint}")
    if dim != 3:
        raise InputError(f"{path}: is a {dim}D image (size {size}); a 3D CT volume is needed")
    if min(size) < MIN_VOXELS_PER_AXIS:
        raise InputError(f"{path}: is too thin for a 3D CT (size {size}); {NEEDS_3D}")


# ---- header checks (what ITK reads without a word) ---------------------------------------

#: DICOM slice positions may differ from the series' step by this fraction of the step, or by
#: SLICE_TOLERANCE_MM, whichever is larger (positions are stored as decimal strings)
SLICE_TOLERANCE_REL = 0.01
SLICE_TOLERANCE_MM = 0.01


def _spacing_problem(values: list[float], allow_negative: bool) -> str | None:
    """Why a list of per-axis spacings is unusable, or None."""
    for axis, v in enumerate(values):
        if math.isnan(v):
            return f"voxel spacing along axis {axis} is not given (NaN)"
        if math.isinf(v) or v == 0 or (v < 0 and not allow_negative):
            return f"voxel spacing along axis {axis} is {v:g} mm"
    return None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _nifti_header(path: Path) -> tuple[bytes, bool]:
    """First 540 bytes of a NIfTI file (decompressed when gzipped) and whether it is gzipped."""
    import gzip

    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as f:  # type: ignore[operator]
            return f.read(540), gz
    except (OSError, EOFError, zlib.error):
        return b"", gz


def _gunzipped_at_least(path: Path, need: int) -> tuple[int, str | None]:
    """Decompress ``path`` (gzip, any number of members) until ``need`` bytes came out.

    Returns (bytes obtained, None) when the stream holds ``need`` bytes, else the count and
    why it ended (truncated stream, damaged data). Output is counted, never kept.
    """
    total = 0
    dec = zlib.decompressobj(wbits=31)
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            while chunk:
                try:
                    out = dec.decompress(chunk, 1 << 24)
                except zlib.error as exc:
                    return total, f"damaged compressed data ({exc})"
                total += len(out)
                if total >= need:
                    return total, None
                if dec.unconsumed_tail:
                    chunk = dec.unconsumed_tail
                elif dec.eof:
                    chunk = dec.unused_data
                    if not chunk.strip(b"\0"):  # zero padding after the last member
                        return total, "ends early"
                    dec = zlib.decompressobj(wbits=31)
                else:
                    chunk = b""
    return total, ("ends early" if dec.eof else "compressed stream is cut short")


def _check_nifti(path: Path) -> None:
    """NIfTI-1/2 single file: pixdim of the three spatial axes, and enough voxel bytes.

    ITK reads pixdim NaN, 0 or Inf as 1 mm and zero-fills voxels missing from a truncated file.
    """
    head, gz = _nifti_header(path)
    if len(head) < 348:
        return  # too short to be NIfTI: ITK names the problem
    for endian in "<>":
        (hdr_size,) = struct.unpack(endian + "i", head[:4])
        if hdr_size in (348, 540):
            break
    else:
        return  # not NIfTI (ITK decides)
    if hdr_size == 348:
        if head[344:347] != b"n+1":
            return  # Analyze or a header/image pair: not a single-file NIfTI
        dims = struct.unpack(endian + "8h", head[40:56])
        bitpix = struct.unpack(endian + "h", head[72:74])[0]
        pixdim = struct.unpack(endian + "8f", head[76:108])
        vox_offset = int(struct.unpack(endian + "f", head[108:112])[0] or 352)
    else:
        if len(head) < 540 or head[4:7] != b"n+2":
            return
        bitpix = struct.unpack(endian + "h", head[14:16])[0]
        dims = struct.unpack(endian + "8q", head[16:80])
        pixdim = struct.unpack(endian + "8d", head[104:168])
        vox_offset = struct.unpack(endian + "q", head[168:176])[0]
    ndim = dims[0]
    if not 1 <= ndim <= 7 or bitpix <= 0 or any(d < 0 for d in dims[1 : ndim + 1]):
        return  # a header ITK refuses itself
    problem = _spacing_problem([float(v) for v in pixdim[1 : min(ndim, 3) + 1]], allow_negative=False)
    if problem:
        raise InputError(f"{path}: {problem} (NIfTI pixdim {tuple(round(float(v), 6) for v in pixdim[1:4])}); "
                         "lesions are measured with a known, positive voxel size")
    data = math.prod(dims[1 : ndim + 1]) * bitpix // 8
    need = max(vox_offset, hdr_size) + data
    if not gz:
        have = path.stat().st_size
        if have < need:
            raise InputError(f"{path}: truncated: the header describes {need} bytes (voxel data from byte "
                             f"{vox_offset}) but the file holds {have}")
        return
    with open(path, "rb") as f:  # fast path: the gzip trailer's length (mod 2**32) is the one expected
        f.seek(-4, os.SEEK_END)
        if struct.unpack("<I", f.read(4))[0] == need % (1 << 32):
            return
    have, why = _gunzipped_at_least(path, need)
    if why is not None:
        raise InputError(f"{path}: truncated or damaged: the header describes {need} bytes but the "
                         f"compressed data gives {have} ({why})")


def _text_header(path: Path, limit: int = 1 << 16) -> str:
    with open(path, "rb") as f:
        return f.read(limit).decode("latin-1")


def _check_nrrd(path: Path) -> None:
    """NRRD/NHDR: a NaN spacing ("unknown" in NRRD) is read by ITK as 1 mm; refuse it.

    Negative spacings are legal NRRD (the axis runs the other way; ITK folds the sign into the
    direction), so they are kept. Truncated data is refused by ITK itself.
    """
    head = _text_header(path)
    if not head.startswith("NRRD"):
        return
    fields: dict[str, str] = {}
    for line in re.split(r"\r?\n", head)[1:]:
        if not line.strip():
            break  # end of header
        if line.startswith("#") or ":" not in line or ":=" in line:
            continue  # comments and key:=value pairs
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    try:
        ndim = int(fields.get("dimension", "0"))
    except ValueError:
        return
    kinds = fields.get("kinds", "").split()
    if ndim != 3 or any(k.lower() not in ("domain", "space") for k in kinds):
        return  # not a 3D scalar grid: refused later with the right words
    if "space directions" in fields:
        vectors = re.findall(r"\(([^)]*)\)", fields["space directions"])
        lengths = [math.sqrt(sum(_float(c) ** 2 for c in v.split(","))) for v in vectors]
        problem = _spacing_problem(lengths, allow_negative=False)
        where = f"space directions {fields['space directions']}"
    elif "spacings" in fields:
        problem = _spacing_problem([_float(v) for v in fields["spacings"].split()], allow_negative=True)
        where = f"spacings {fields['spacings']}"
    else:
        return  # no spacing at all: ITK's 1 mm is the NRRD convention for "sample index"
    if problem:
        raise InputError(f"{path}: {problem} (NRRD {where}); lesions are measured with a known, positive voxel size")


#: bytes per MetaImage element type (types of uncertain size are not checked)
_MET_SIZES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}


def _check_metaimage(path: Path) -> None:
    """MHA/MHD: spacing finite and non-zero; raw data present and as long as the header says.

    ITK refuses both itself, but with "Refusing to change spacing from [1, 1, 1] to [0, 0, 0]"
    for NaN, "No such file or directory" for truncated data and extra lines on stderr.
    """
    head = _text_header(path)
    fields: dict[str, str] = {}
    header_len = 0
    for line in head.splitlines(keepends=True):
        header_len += len(line.encode("latin-1"))
        key, eq, value = line.partition("=")
        if not eq:
            return  # not a MetaImage text header
        fields[key.strip().lower()] = value.strip()
        if key.strip().lower() == "elementdatafile":
            break
    else:
        return
    try:
        ndim = int(fields.get("ndims", "0"))
        size = [int(v) for v in fields.get("dimsize", "").split()]
        channels = int(fields.get("elementnumberofchannels", "1"))
    except ValueError:
        return
    if ndim != 3 or len(size) != 3 or channels != 1:
        return
    spacing = fields.get("elementspacing") or fields.get("elementsize")
    if spacing:
        problem = _spacing_problem([_float(v) for v in spacing.split()], allow_negative=True)
        if problem:
            raise InputError(f"{path}: {problem} (MetaImage ElementSpacing {spacing}); "
                             "lesions are measured with a known, positive voxel size")
    data_file = fields["elementdatafile"]
    header_size = fields.get("headersize", "0")
    if data_file.upper() == "LOCAL":
        have = path.stat().st_size - header_len
    elif data_file.upper().startswith("LIST") or "%" in data_file or header_size.strip() != "0":
        return
    else:
        raw = path.parent / data_file
        if not raw.is_file():
            raise InputError(f"{path}: its data file {raw.name} (ElementDataFile) does not exist")
        have = raw.stat().st_size
    if fields.get("compresseddata", "false").lower() == "true":
        need_text = fields.get("compresseddatasize")
        if not need_text or not need_text.isdigit():
            return
        need = int(need_text)
    else:
        if fields.get("elementtype", "").upper() not in _MET_SIZES:
            return
        need = math.prod(size) * _MET_SIZES[fields["elementtype"].upper()]
    if have < need:
        raise InputError(f"{path}: truncated: the header describes {need} bytes of voxel data but the file holds {have}")


def check_file_header(path: str | os.PathLike) -> None:
    """Refuse, before ITK reads it, a file whose header ITK would silently paper over.

    NIfTI: non-positive/NaN/Inf pixdim, fewer bytes than the header describes (also inside
    .nii.gz). NRRD: NaN/zero/Inf spacing. MetaImage: NaN/zero/Inf spacing, missing or short data.
    Anything this cannot parse is left to ITK.
    """
    p = Path(path)
    suffix = _suffix(p)
    if suffix in (".nii", ".nii.gz"):
        _check_nifti(p)
    elif suffix in (".nrrd", ".nhdr"):
        _check_nrrd(p)
    elif suffix in (".mha", ".mhd"):
        _check_metaimage(p)


def check_slice_positions(positions: list[tuple[float, ...]], orientation: tuple[float, ...], where: str) -> None:
    """Refuse a DICOM series whose slices are not evenly spaced along the slice normal.

    ITK reads such a series (a missing slice, a duplicate) with the average spacing and one
    warning, so every lesion below the gap sits in the wrong place. Positions are
    ImagePositionPatient (0020,0032) in file order, orientation ImageOrientationPatient (0020,0037).
    """
    if len(positions) < 3 or len(orientation) != 6:
        return  # two slices have one step: nothing to compare
    normal = np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))
    if not np.all(np.isfinite(normal)) or np.linalg.norm(normal) < 1e-6:
        return
    in_file_order = np.asarray(positions, dtype=float) @ (normal / np.linalg.norm(normal))
    along = np.sort(in_file_order)  # GDCM leaves the files unsorted when two share a position
    steps = np.diff(along)
    step = float(np.median(steps))
    tol = max(SLICE_TOLERANCE_MM, SLICE_TOLERANCE_REL * step)
    for i, d in enumerate(steps):
        if d <= tol:
            raise InputError(f"{where}: two slices at the same position {along[i]:.4g} mm along the slice normal "
                             "(duplicate slices?)")
    for i, d in enumerate(steps):
        if abs(d - step) > tol:
            what = "jump" if d > step else "step"
            raise InputError(f"{where}: slice positions {what} from {along[i]:.4g} to {along[i + 1]:.4g} mm where "
                             f"the other slices are {step:.4g} mm apart (missing slices?)")
    file_steps = np.diff(in_file_order)
    if not (np.all(file_steps > 0) or np.all(file_steps < 0)):
        raise InputError(f"{where}: the slices could not be put in position order")


def _dicom_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(" ", "").strip("\\").split("\\"))
    except ValueError:
        return ()


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
    # ITK's multi-line "Non uniform sampling or missing slices" warning is replaced by
    # check_slice_positions' one-line refusal
    warn = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        img = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{folder}: cannot read DICOM series {series_uid}: {_first_line(exc)}") from None
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warn)
    if reader.HasMetaDataKey(0, "0020|0037"):
        positions = [_dicom_floats(reader.GetMetaData(i, "0020|0032")) if reader.HasMetaDataKey(i, "0020|0032") else ()
                     for i in range(len(files))]
        if all(len(p) == 3 for p in positions):
            check_slice_positions(positions, _dicom_floats(reader.GetMetaData(0, "0020|0037")),
                                  f"{folder}: DICOM series {series_uid}")
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
    dicom_file = False
    if p.is_dir():
        img, dmeta = _read_dicom_series(p, series_uid)
        meta.update(dmeta)
    else:
        if not os.access(p, os.R_OK):
            raise InputError(f"{p}: file is not readable (permission denied)")
        if p.stat().st_size == 0:
            raise InputError(f"{p}: file is empty")
        try:
            check_file_header(p)
        except OSError as exc:
            raise InputError(f"{p}: cannot read: {exc.strerror or exc}") from None
        except (ValueError, OverflowError, struct.error):
            pass  # a header these checks cannot parse is ITK's to judge
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
                dicom_file = True
            elif key.lower() == "modality":  # e.g. a MetaImage "Modality = MET_MOD_CT" line
                value = img.GetMetaData(key).strip().replace("MET_MOD_", "")
                if value.upper() not in UNKNOWN_MODALITIES:  # ITK: MET_MOD_UNKNOWN when a MetaImage names none
                    meta.setdefault("modality", value)
    _check_3d_scalar(img, p, dicom_file=dicom_file)
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
