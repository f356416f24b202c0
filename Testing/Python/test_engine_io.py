"""Image reading: formats, DICOM series (one, several, pick by UID), and every unreadable input."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from test_engine_helpers import DIRECTIONS, grid_image
from TextLesionSegLib.errors import InputError
from TextLesionSegLib.pipeline.io import list_dicom_series, read_image, write_image


def write_dicom_series(folder, array_kji, spacing, origin, series_uid, modality="CT"):
    """Write a KJI int16 array as one DICOM series (one file per slice), axial, identity direction."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(array_kji.shape[0]):
        sl = sitk.GetImageFromArray(array_kji[k].astype(np.int16))
        pos = (origin[0], origin[1], origin[2] + k * spacing[2])
        sl.SetSpacing((spacing[0], spacing[1]))
        sl.SetOrigin(pos[:2])
        tags = {
            "0008|0060": modality, "0020|000e": series_uid, "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|0013": str(k + 1), "0020|0032": "\\".join(f"{v:.4f}" for v in pos),
            "0020|0037": "1\\0\\0\\0\\1\\0", "0028|0030": f"{spacing[1]}\\{spacing[0]}", "0018|0050": str(spacing[2]),
            "0008|0018": f"{series_uid}.{k + 1}", "0010|0010": "Test^Phantom",
        }
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{series_uid[-4:]}_{k:03d}.dcm"))
        writer.Execute(sl)


def _ct(shape=(6, 16, 20)):
    rng = np.random.default_rng(1)
    return (rng.integers(-1000, 400, size=shape)).astype(np.int16)


def test_dicom_series_one_and_several(tmp_path):
    a, b = _ct(), _ct((5, 16, 20))
    write_dicom_series(tmp_path / "one", a, (0.7, 0.8, 2.5), (-10.0, 20.0, 30.0), "1.2.3.4.1001")
    img = read_image(tmp_path / "one")
    assert img.array.shape == a.shape and np.array_equal(img.array, a)
    np.testing.assert_allclose(img.spacing, (0.7, 0.8, 2.5), atol=1e-4)
    np.testing.assert_allclose(img.origin, (-10.0, 20.0, 30.0), atol=1e-3)
    assert img.metadata["modality"] == "CT" and img.metadata["series_uid"] == "1.2.3.4.1001"
    write_dicom_series(tmp_path / "one", b, (0.7, 0.8, 3.0), (0.0, 0.0, 0.0), "1.2.3.4.2002")
    assert sorted(list_dicom_series(tmp_path / "one")) == ["1.2.3.4.1001", "1.2.3.4.2002"]
    with pytest.raises(InputError, match=r"2 DICOM series.*1\.2\.3\.4\.1001.*1\.2\.3\.4\.2002|2 DICOM series.*2002.*1001"):
        read_image(tmp_path / "one")
    picked = read_image(tmp_path / "one", series_uid="1.2.3.4.2002")
    assert picked.array.shape == b.shape and np.array_equal(picked.array, b)
    with pytest.raises(InputError, match="no series 9.9"):
        read_image(tmp_path / "one", series_uid="9.9")


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no DICOM series"):
        read_image(tmp_path)


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.float64, np.int16, np.float32])
def test_voxel_types_kept(tmp_path, dtype):
    img = grid_image((5, 6, 7), (1.0, 2.0, 3.0), DIRECTIONS["oblique"], (0, 0, 0), fill=0, dtype=dtype)
    img.array[:] = np.arange(img.array.size).reshape(img.array.shape) % 100
    back = read_image(write_image(img, tmp_path / "t.nrrd"))
    assert back.array.dtype == np.dtype(dtype) and np.array_equal(back.array, img.array)


def _write_raw(tmp_path, name, header_extra, directions="(1,0,0) (0,1,0) (0,0,1)"):
    (np.arange(1000) - 500).astype("<i2").tofile(tmp_path / f"{name}.raw")
    (tmp_path / f"{name}.nhdr").write_text(
        "NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 10 10 10\n"
        f"space directions: {directions}\nspace origin: (0,0,0)\nendian: little\nencoding: raw\n"
        f"data file: {name}.raw\n{header_extra}"
    )
    return tmp_path / f"{name}.nhdr"


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.nrrd")
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_image(tmp_path / "empty.nii.gz")
    (tmp_path / "notes.txt").write_text("not an image", encoding="utf-8")
    with pytest.raises(InputError, match="not an image"):
        read_image(tmp_path / "notes.txt")
    good = write_image(grid_image((20, 30, 30), (1, 1, 1), np.eye(3), (0, 0, 0)), tmp_path / "g.nrrd")
    (tmp_path / "trunc.nrrd").write_bytes(good.read_bytes()[:400])
    with pytest.raises(InputError, match="truncated"):
        read_image(tmp_path / "trunc.nrrd")
    with pytest.raises(InputError, match="spacing"):
        read_image(_write_raw(tmp_path, "zero", "", "(1,0,0) (0,0,0) (0,0,1)"))


def test_not_3d_scalar(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((20, 30), np.int16)), str(tmp_path / "two.nrrd"))
    with pytest.raises(InputError, match="2D image"):
        read_image(tmp_path / "two.nrrd")
    vol = sitk.GetImageFromArray(np.zeros((4, 20, 30), np.int16))
    sitk.WriteImage(sitk.JoinSeries([vol, vol]), str(tmp_path / "four.nii.gz"))
    with pytest.raises(InputError, match="4D image"):
        read_image(tmp_path / "four.nii.gz")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 20, 30, 3), np.uint8), isVector=True), str(tmp_path / "rgb.mha"))
    with pytest.raises(InputError, match="RGB"):
        read_image(tmp_path / "rgb.mha")


def test_sheared_direction_is_read_then_refused_by_validation(tmp_path):
    from TextLesionSegLib.pipeline.validate import validate_image

    img = read_image(_write_raw(tmp_path, "shear", "", "(1,0,0) (0.5,1,0) (0,0,1)"))
    with pytest.raises(InputError, match="not orthonormal"):
        validate_image(img)


def test_written_files_get_the_users_usual_mode(tmp_path):
    """Atomic writes go through a private temporary file; the result must not stay private (0600)."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = write_image(grid_image((4, 8, 8), (1, 1, 1), np.eye(3), (0, 0, 0)), tmp_path / "m.nrrd")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
