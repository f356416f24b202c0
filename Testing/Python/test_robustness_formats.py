"""Every input format the README lists (NIfTI, NRRD, MHA/MHD, a DICOM series folder) is accepted
when it holds a CT, and refused with exit 2 (one line, nothing written) when it is damaged:
truncated data, unknown or invalid spacing, a DICOM series with a missing slice, a volume one or
two voxels thick. The CTs are real: slicerio's chest CT and pydicom's CT_small.dcm, resaved."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from test_cli_segment import TEXT
from test_engine_io import write_dicom_series
from test_engine_run import ThresholdSegmenter
from TextLesionSegLib.cli import main
from TextLesionSegLib.errors import InputError
from TextLesionSegLib.models import registry
from TextLesionSegLib.pipeline.geometry import Image
from TextLesionSegLib.pipeline.io import MIN_VOXELS_PER_AXIS, read_image
from TextLesionSegLib.pipeline.validate import ct_verdict, validate_image

FILE_FORMATS = (".nrrd", ".nhdr", ".mha", ".mhd", ".nii", ".nii.gz")
UID = "1.2.826.0.1.3680043.8.498.4711"


# ---- real CT inputs -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chest(ctchest_path) -> sitk.Image:
    """slicerio's real chest CT (128x128x34, int32 HU with -3024 outside the field of view) as int16."""
    return sitk.Cast(sitk.ReadImage(str(ctchest_path)), sitk.sitkInt16)


@pytest.fixture(scope="module")
def chest_crop(chest) -> sitk.Image:
    """A corner of the chest CT (48x48x8 voxels: body wall, lung and outside air) small enough for a CLI run."""
    return chest[0:48, 40:88, 10:18]


def _ct_small_series(folder: Path, n: int = 6, step: float = 5.0) -> list[Path]:
    """pydicom's real CT slice (CT_small.dcm, 128x128, 0.66 mm, rescale -1024) as an n-slice series."""
    pydicom = pytest.importorskip("pydicom")
    from pydicom.uid import generate_uid

    src = pydicom.data.get_testdata_file("CT_small.dcm")
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for k in range(n):
        ds = pydicom.dcmread(src)
        ds.SeriesInstanceUID = UID
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        pos = [float(v) for v in ds.ImagePositionPatient]
        pos[2] += step * k
        ds.ImagePositionPatient = pos
        ds.SliceLocation = pos[2]
        files.append(folder / f"ct_{k:03d}.dcm")
        ds.save_as(files[-1])
    return files


def _chest_series(chest_image: sitk.Image, folder: Path) -> list[Path]:
    """The chest CT written as a DICOM series, one file per slice (SimpleITK, with CT tags)."""
    write_dicom_series(folder, sitk.GetArrayFromImage(chest_image), chest_image.GetSpacing(),
                       chest_image.GetOrigin(), UID)
    return sorted(folder.glob("*.dcm"))


def _save(image: sitk.Image, path: Path, compress: bool = False) -> Path:
    sitk.WriteImage(image, str(path), compress)
    return path


def _assert_same_ct(img: Image, ref: sitk.Image) -> None:
    assert np.array_equal(img.array, sitk.GetArrayFromImage(ref))
    np.testing.assert_allclose(img.spacing, ref.GetSpacing(), rtol=1e-5)
    np.testing.assert_allclose(img.origin, ref.GetOrigin(), atol=1e-3)
    verdict = ct_verdict(img)
    assert verdict.looks_like_ct, verdict.reason
    validate_image(img, check_mem=False)


@pytest.mark.parametrize("suffix", FILE_FORMATS)
def test_every_listed_file_format_holding_a_ct_is_read_as_ct(tmp_path, chest, suffix):
    """MetaImage writes "Modality = MET_MOD_UNKNOWN": that says nothing, so the HU values decide."""
    img = read_image(_save(chest, tmp_path / f"chest{suffix}", compress=suffix in (".nrrd", ".nii.gz", ".mha")))
    _assert_same_ct(img, chest)
    assert "modality" not in img.metadata  # "UNKNOWN" is not kept as a modality


def test_dicom_series_and_multiframe_file_holding_a_ct_are_read_as_ct(tmp_path, chest):
    pydicom = pytest.importorskip("pydicom")
    _chest_series(chest, tmp_path / "chest")
    img = read_image(tmp_path / "chest")
    assert img.metadata["modality"] == "CT"
    _assert_same_ct(img, chest)

    _ct_small_series(tmp_path / "small")
    small = read_image(tmp_path / "small")
    assert small.array.shape == (6, 128, 128) and small.metadata["modality"] == "CT"
    np.testing.assert_allclose(small.spacing, (0.661468, 0.661468, 5.0), rtol=1e-5)
    assert ct_verdict(small).looks_like_ct and small.array.min() == -896  # rescale intercept applied
    validate_image(small, check_mem=False)

    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))  # one file holding a volume
    ds.NumberOfFrames = 6
    ds.PixelData = ds.PixelData * 6
    ds.save_as(tmp_path / "multiframe.dcm")
    frames = read_image(tmp_path / "multiframe.dcm")
    assert frames.array.shape == (6, 128, 128) and ct_verdict(frames).looks_like_ct


def test_a_single_dicom_slice_is_refused_as_2d_naming_the_folder(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    one = pydicom.data.get_testdata_file("CT_small.dcm")
    with pytest.raises(InputError, match="single 2D DICOM slice.*folder that holds the whole series"):
        read_image(one)
    (tmp_path / "one").mkdir()
    shutil.copy(one, tmp_path / "one" / "a.dcm")
    with pytest.raises(InputError, match=f"at least {MIN_VOXELS_PER_AXIS} voxels"):
        read_image(tmp_path / "one")


def test_unknown_modality_falls_back_to_the_hu_values(tmp_path, chest_crop):
    ct = Image(array=sitk.GetArrayFromImage(chest_crop))
    for unknown in ("UNKNOWN", "MET_MOD_UNKNOWN", "", None):
        ct.metadata["modality"] = unknown
        assert ct_verdict(ct).looks_like_ct, unknown
    mr = Image(array=np.random.default_rng(0).uniform(0, 800, (8, 20, 20)).astype(np.float32),
               metadata={"modality": "UNKNOWN"})
    assert "no air-like values" in ct_verdict(mr).reason  # unknown is not a pass: the values still decide
    path = _save(chest_crop, tmp_path / "mr.mha")  # a MetaImage that does say MR is refused as MR
    path.write_bytes(path.read_bytes().replace(b"NDims = 3\n", b"NDims = 3\nModality = MET_MOD_MR\n", 1))
    img = read_image(path)
    assert img.metadata["modality"] == "MR" and "modality tag is MR" in ct_verdict(img).reason


# ---- damaged inputs -----------------------------------------------------------------------

def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _truncated_files(chest_image: sitk.Image, d: Path) -> dict[str, Path]:
    """Real CT files cut short in every listed file format (and a gzip that is valid but short)."""
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, suffix, compress in (("nii", ".nii", False), ("nii.gz", ".nii.gz", True), ("nrrd", ".nrrd", False),
                                   ("nrrd gzip", ".nrrd", True), ("mha", ".mha", False), ("mha zlib", ".mha", True)):
        for keep in (0.5, 0.999):
            out[f"{name} {keep}"] = _truncate(_save(chest_image, d / f"{name.replace(' ', '_')}_{keep}{suffix}", compress), keep)
    raw = gzip.decompress(_save(chest_image, d / "whole.nii.gz", True).read_bytes())
    (d / "short_stream.nii.gz").write_bytes(gzip.compress(raw[: len(raw) // 2]))  # CRC fine, data short
    out["nii.gz short stream"] = d / "short_stream.nii.gz"
    _save(chest_image, d / "detached.mhd")
    _truncate(d / "detached.raw", 0.5)
    out["mhd raw"] = d / "detached.mhd"
    _save(chest_image, d / "detached.nhdr")
    _truncate(d / "detached.raw.gz" if (d / "detached.raw.gz").exists() else d / "detached.raw", 0.5)
    out["nhdr raw"] = d / "detached.nhdr"
    return out


def test_truncated_files_are_refused_in_every_format(tmp_path, chest):
    """ITK zero-fills a truncated .nii/.nii.gz without a word; the header's byte count catches it."""
    for label, path in _truncated_files(chest, tmp_path).items():
        with pytest.raises(InputError, match="truncated") as err:
            read_image(path)
        assert "\n" not in str(err.value), label


def _nifti_with_pixdim(chest_image: sitk.Image, path: Path, axis: int, value: float) -> Path:
    """A real CT saved as NIfTI-1 with pixdim[axis + 1] patched (ITK reads NaN/0/Inf there as 1 mm)."""
    _save(chest_image, path)
    data = bytearray(path.read_bytes())
    offset = 76 + 4 * (axis + 1)
    data[offset:offset + 4] = struct.pack("<f", value)
    path.write_bytes(bytes(data))
    return path


def _nhdr(d: Path, name: str, spacing_lines: str) -> Path:
    """A detached NRRD header over the chest's raw voxels (128x128x34 int16)."""
    return _header(d, f"{name}.nhdr", "NRRD0004\ntype: short\ndimension: 3\nsizes: 128 128 34\n" + spacing_lines
                   + "endian: little\nencoding: raw\ndata file: chest.raw\n")


def _header(d: Path, name: str, text: str) -> Path:
    (d / name).write_text(text, encoding="ascii")
    return d / name


def _bad_spacing_files(chest_image: sitk.Image, d: Path) -> dict[str, tuple[Path, str]]:
    d.mkdir(parents=True, exist_ok=True)
    sitk.GetArrayFromImage(chest_image).astype("<i2").tofile(d / "chest.raw")
    out = {}
    for word, value, shown in (("NaN", "nan", "is not given (NaN)"), ("Inf", "inf", "is inf mm"), ("zero", "0", "is 0 mm")):
        out[f"NRRD spacings {word}"] = (_nhdr(d, f"sp_{word}", f"spacings: 3 3 {value}\n"), f"axis 2 {shown}")
        out[f"NRRD space directions {word}"] = (
            _nhdr(d, f"sd_{word}", f"space: left-posterior-superior\nspace directions: ({value},0,0) (0,3,0) (0,0,10)\n"
                  "space origin: (0,0,0)\n"), f"axis 0 {shown}")
        out[f"MetaImage {word}"] = (_header(d, f"m_{word}.mhd", "ObjectType = Image\nNDims = 3\nDimSize = 128 128 34\n"
                                            f"ElementSpacing = 3 {value} 10\nElementType = MET_SHORT\n"
                                            "ElementByteOrderMSB = False\nElementDataFile = chest.raw\n"),
                                    f"axis 1 {shown}")
        out[f"NIfTI {word}"] = (_nifti_with_pixdim(chest_image, d / f"n_{word}.nii", 2, float(value)), f"axis 2 {shown}")
    out["NIfTI negative"] = (_nifti_with_pixdim(chest_image, d / "n_neg.nii", 0, -3.0), "axis 0 is -3 mm")
    return out


def test_unknown_or_invalid_spacing_is_refused_naming_it(tmp_path, chest):
    """NaN is NRRD's "unknown" and ITK reads it as 1 mm, as it does NIfTI pixdim NaN/0/Inf."""
    for label, (path, match) in _bad_spacing_files(chest, tmp_path).items():
        with pytest.raises(InputError, match=re.escape("voxel spacing along " + match)) as err:
            read_image(path)
        assert "\n" not in str(err.value), label


def test_negative_nrrd_and_metaimage_spacing_is_a_flipped_axis_not_an_error(tmp_path, chest):
    """Both formats allow a negative spacing (the axis runs the other way); ITK puts the sign into the
    direction, so every voxel stays where the header says: kept."""
    sitk.GetArrayFromImage(chest).astype("<i2").tofile(tmp_path / "chest.raw")
    nhdr = _nhdr(tmp_path, "neg", "spacings: -3 3 10\n")
    mhd = _header(tmp_path, "neg.mhd", "ObjectType = Image\nNDims = 3\nDimSize = 128 128 34\nElementSpacing = -3 3 10\n"
                  "ElementType = MET_SHORT\nElementByteOrderMSB = False\nElementDataFile = chest.raw\n")
    for path in (nhdr, mhd):
        img = read_image(path)
        assert img.spacing == (3.0, 3.0, 10.0)
        np.testing.assert_allclose(img.kji_to_lps(np.array([0, 0, 5])) - img.kji_to_lps(np.array([0, 0, 0])),
                                   [-15.0, 0.0, 0.0], atol=1e-9)


@pytest.mark.parametrize("builder", ["chest", "ct_small"])
def test_dicom_series_with_a_missing_slice_is_refused_naming_the_gap(tmp_path, chest, builder):
    """ITK reads it with the average spacing (everything below the gap misplaced) and one warning."""
    folder = tmp_path / "series"
    files = _chest_series(chest[:, :, :8], folder) if builder == "chest" else _ct_small_series(folder)
    z = [float(v) for v in (read_image(folder).origin[2] + np.arange(len(files)) * read_image(folder).spacing[2])]
    os.remove(files[3])
    with pytest.raises(InputError, match=rf"slice positions jump from {z[2]:.4g} to {z[4]:.4g} mm .*missing slices"):
        read_image(folder)


def test_dicom_series_with_a_duplicate_slice_is_refused(tmp_path):
    files = _ct_small_series(tmp_path / "series", n=5)
    pydicom = pytest.importorskip("pydicom")
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(files[2])
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(tmp_path / "series" / "copy.dcm")
    with pytest.raises(InputError, match="two slices at the same position"):
        read_image(tmp_path / "series")


def _thin_files(chest_image: sitk.Image, d: Path) -> dict[str, tuple[Path, str]]:
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for axis in range(3):
        lo = [0, 0, 0]
        hi = list(chest_image.GetSize())
        for n in (1, 2):
            hi[axis] = n
            crop = sitk.RegionOfInterest(chest_image, [h - l for h, l in zip(hi, lo)], lo)
            out[f"{n} along axis {axis}"] = (_save(crop, d / f"thin_{axis}_{n}.nrrd"), "2D image" if n == 1 else "too thin")
    return out


def test_one_or_two_voxel_thick_volumes_are_refused(tmp_path, chest):
    for label, (path, match) in _thin_files(chest, tmp_path).items():
        with pytest.raises(InputError, match=rf"{match}.*a 3D CT needs at least {MIN_VOXELS_PER_AXIS} voxels"):
            read_image(path)
        img = Image(array=sitk.GetArrayFromImage(sitk.ReadImage(str(path))))  # built in Python, not read
        with pytest.raises(InputError, match=f"{match}.*at least {MIN_VOXELS_PER_AXIS} voxels"):
            validate_image(img, check_mem=False)
    three = chest[:, :, :MIN_VOXELS_PER_AXIS]  # the thinnest accepted
    assert read_image(_save(three, tmp_path / "three.nrrd")).array.shape[0] == MIN_VOXELS_PER_AXIS


# ---- through the command line ----------------------------------------------------------------

@pytest.fixture
def test_model(monkeypatch):
    model = ThresholdSegmenter()
    monkeypatch.setattr(registry, "load_segmenter", lambda name, device="cpu", progress=None: model)
    monkeypatch.setattr(registry, "default_model_name", lambda *a, **k: "threshold-test")
    return model


@pytest.mark.parametrize("suffix", FILE_FORMATS + ("dicom",))
def test_cli_segments_a_ct_in_every_listed_format(tmp_path, capfd, chest_crop, test_model, suffix):
    if suffix == "dicom":
        _chest_series(chest_crop, tmp_path / "dicom")
        path = tmp_path / "dicom"
    else:
        path = _save(chest_crop, tmp_path / f"ct{suffix}", compress=suffix.endswith(".gz"))
    rc = main(["segment", str(path), "--text", TEXT, "--quiet", "--device", "cpu",
               "--output", str(tmp_path / "o.seg.nrrd")])
    err = capfd.readouterr().err
    assert rc == 0, err
    assert (tmp_path / "o.seg.nrrd").exists() and test_model.windows > 0


def test_cli_refuses_every_damaged_input_with_one_line_and_writes_nothing(tmp_path, capfd, chest, test_model):
    """Exit 2, exactly one line on stderr (the C++ readers' own messages included: capfd sees them),
    no traceback, nothing in the output folder, the model never run."""
    damaged: dict[str, tuple[Path, str]] = {}
    damaged.update({k: (p, "truncated") for k, p in _truncated_files(chest, tmp_path / "trunc").items()})
    damaged.update(_bad_spacing_files(chest, tmp_path / "spacing"))
    damaged.update(_thin_files(chest, tmp_path / "thin"))
    files = _ct_small_series(tmp_path / "gap")
    os.remove(files[2])
    damaged["DICOM missing slice"] = (tmp_path / "gap", "missing slices")
    pydicom = pytest.importorskip("pydicom")
    damaged["single DICOM slice"] = (Path(pydicom.data.get_testdata_file("CT_small.dcm")), "single 2D DICOM slice")
    outdir = tmp_path / "out"
    outdir.mkdir()
    capfd.readouterr()
    for label, (path, match) in damaged.items():
        rc = main(["segment", str(path), "--text", TEXT, "--quiet", "--output", str(outdir / "o.seg.nrrd"),
                   "--labelmap", str(outdir / "o.nii.gz"), "--report", str(outdir / "o.json")])
        err = capfd.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2, (label, err)
        assert len(lines) == 1 and "Traceback" not in err, (label, err)
        assert match in lines[0], (label, lines[0])
        assert list(outdir.iterdir()) == [], label
    assert test_model.windows == 0
