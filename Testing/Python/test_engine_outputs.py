"""Outputs read back: .seg.nrrd by slicerio (names, colors, terminology, tags, geometry, voxels),
the NIfTI labelmap, the JSON report, the PNG overlay; atomic writes leave no partial file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from test_engine_helpers import DIRECTIONS, add_ellipsoid, grid_image
from TextLesionSegLib.errors import InputError
from TextLesionSegLib.pipeline import names as output_names
from TextLesionSegLib.pipeline import outputs
from TextLesionSegLib.pipeline.io import read_image
from TextLesionSegLib.pipeline.measure import measure_lesions
from TextLesionSegLib.pipeline.result import Result, SegmentResult
from TextLesionSegLib.query.types import LesionQuery


def _result(direction=np.eye(3)) -> Result:
    img = grid_image((20, 40, 36), (0.8, 0.9, 2.5), direction, (10.0, -5.0, 30.0), fill=-1000.0)
    a = add_ellipsoid(img, (4.0, -5.0, 30.0), (6, 6, 6), 50.0)
    b = add_ellipsoid(img, (14.0, 0.0, 30.0), (5, 5, 8), 120.0)  # overlaps a little with a
    segs = []
    for n, (text, mask) in enumerate([("round mass | left", a), ("second lesion, enhancing", b)]):
        s = SegmentResult(name=text, mask=mask.astype(np.uint8), query=LesionQuery(text=text), score=0.8 - n / 10,
                          color=outputs.segment_color(n))
        s.lesions = measure_lesions(img, s.mask)
        segs.append(s)
    return Result(image=img, segments=segs, model_name="test-model", model_version="1.2",
                  timings={"inference": 1.5}, warnings=["a warning"])


@pytest.mark.parametrize("name", ["identity", "oblique"])
def test_seg_nrrd_read_back_by_slicerio(tmp_path, name):
    import slicerio

    res = _result(DIRECTIONS[name])
    path = outputs.write_seg_nrrd(res, tmp_path / "out.seg.nrrd")
    seg = slicerio.read_segmentation(str(path))
    np.testing.assert_allclose(np.asarray(seg["ijkToLPS"]), res.image.ijk_to_lps(), atol=1e-4)
    names = [s["name"] for s in seg["segments"]]
    assert names == ["round mass | left", "second lesion, enhancing"]  # '|' separates tags, not names
    colors = [tuple(np.round(s["color"], 3)) for s in seg["segments"]]
    assert len(set(colors)) == 2
    for s, src in zip(seg["segments"], res.segments):
        term = s["terminology"]
        assert term["type"][0] == "SCT" and term["type"][1]  # a SNOMED CT code
        assert s["tags"]["TextLesionSeg.Model"] == "test-model"
        assert s["tags"]["TextLesionSeg.ModelVersion"] == "1.2"
        assert float(s["tags"]["TextLesionSeg.Score"]) == pytest.approx(src.score)
        assert output_names.unescape_header_text(s["tags"]["TextLesionSeg.Query"]) == src.query.text  # '|' escaped
        # voxels of each segment come back where they were (layers, Fortran order I, J, K)
        layer = seg["voxels"][s["layer"]] if seg["voxels"].ndim == 4 else seg["voxels"]
        got = (layer == s["labelValue"]).transpose(2, 1, 0)
        np.testing.assert_array_equal(got, src.mask > 0)


def test_fallback_terminology_is_snomed_mass(tmp_path):
    res = _result()
    res.segments[0].terminology = {}
    term = outputs.to_slicerio_terminology(outputs.DEFAULT_TERMINOLOGY)
    assert term["category"] == ["SCT", "49755003", "Morphologically Altered Structure"]
    assert term["type"] == ["SCT", "4147007", "Mass"]


def test_labelmap_report_overlay(tmp_path):
    res = _result(DIRECTIONS["permuted"])
    lab = read_image(outputs.write_labelmap(res, tmp_path / "lab.nii.gz"))
    np.testing.assert_allclose(lab.direction, res.image.direction, atol=1e-5)
    assert set(np.unique(lab.array)) == {0, 1, 2}
    assert np.array_equal(lab.array == 2, res.segments[1].mask > 0)
    rep = json.loads(outputs.write_report(res, tmp_path / "r.json").read_text(encoding="utf-8"))
    assert rep["model"] == {"name": "test-model", "version": "1.2"}
    assert rep["segments"][0]["lesions"][0]["volume_ml"] == pytest.approx(res.segments[0].lesions[0].volume_ml)
    assert rep["warnings"] == ["a warning"] and rep["timings_s"]["inference"] == 1.5
    assert rep["input"]["size_ijk"] == [36, 40, 20]
    png = outputs.write_overlay_png(res, tmp_path / "o.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


@pytest.mark.parametrize("writer,name", [(outputs.write_seg_nrrd, "a.seg.nrrd"), (outputs.write_labelmap, "a.nii.gz"),
                                         (outputs.write_report, "a.json"), (outputs.write_overlay_png, "a.png")])
def test_existing_file_refused_and_kept(tmp_path, writer, name):
    path = tmp_path / name
    path.write_bytes(b"user data")
    with pytest.raises(InputError, match="exists"):
        writer(_result(), path)
    assert path.read_bytes() == b"user data"
    writer(_result(), path, overwrite=True)
    assert path.read_bytes() != b"user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import slicerio

    def disk_full(file, *args, **kwargs):
        Path(file).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(slicerio, "write_segmentation", disk_full)
    with pytest.raises(InputError, match="No space left"):
        outputs.write_seg_nrrd(_result(), tmp_path / "x.seg.nrrd")
    assert list(tmp_path.iterdir()) == []
    # an existing file survives a failed overwrite untouched
    keep = tmp_path / "k.seg.nrrd"
    keep.write_bytes(b"user data")
    with pytest.raises(InputError):
        outputs.write_seg_nrrd(_result(), keep, overwrite=True)
    assert keep.read_bytes() == b"user data" and [p.name for p in tmp_path.iterdir()] == ["k.seg.nrrd"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_unwritable_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InputError, match="not writable"):
            outputs.write_report(_result(), ro / "r.json")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc (a folder nobody can create files in)")
def test_folder_nobody_can_write_into():
    with pytest.raises(InputError, match="cannot write|not writable"):
        outputs.write_report(_result(), Path("/proc/self/textlesionseg-report.json"))
    assert not Path("/proc/self/textlesionseg-report.json").exists()


def test_overlay_same_picture_for_flipped_storage(tmp_path):
    """The overlay is drawn in patient space: a volume stored flipped gives the same picture."""
    import matplotlib.image as mpimg

    res = _result(DIRECTIONS["identity"])
    img = res.image
    flipped_img = img.with_array(img.array[:, ::-1, ::-1].copy())
    flipped_img.origin = img.kji_to_lps(np.array([0, img.array.shape[1] - 1, img.array.shape[2] - 1]))
    flipped_img.direction = img.direction @ np.diag([-1.0, -1.0, 1.0])
    flipped = Result(image=flipped_img, segments=[
        SegmentResult(name=s.name, mask=s.mask[:, ::-1, ::-1].copy(), color=s.color) for s in res.segments],
        model_name="m", model_version="1")
    a = mpimg.imread(outputs.write_overlay_png(res, tmp_path / "a.png"))
    b = mpimg.imread(outputs.write_overlay_png(flipped, tmp_path / "b.png"))
    assert a.shape == b.shape
    assert np.mean(np.abs(a - b)) < 0.01


def test_segments_share_layers_unless_they_overlap(tmp_path):
    import slicerio

    res = _result()
    img = res.image
    masks = []
    for centre, radius in [((4.0, -5.0, 30.0), 6.0), ((8.0, -5.0, 30.0), 5.0), ((16.0, 5.0, 30.0), 3.0)]:
        canvas = img.with_array(np.zeros(img.array.shape, np.float32))
        masks.append(add_ellipsoid(canvas, centre, (radius,) * 3, 1.0))
    assert np.any(masks[0] & masks[1]) and not np.any((masks[0] | masks[1]) & masks[2])
    res.segments = [SegmentResult(name=f"s{n}", mask=m.astype(np.uint8), color=outputs.segment_color(n))
                    for n, m in enumerate(masks)]
    layers, where = outputs.pack_layers([s.mask for s in res.segments])
    assert layers.shape[0] == 2 and where == [(0, 1), (1, 1), (0, 2)]
    seg = slicerio.read_segmentation(str(outputs.write_seg_nrrd(res, tmp_path / "x.seg.nrrd")))
    for s, src in zip(seg["segments"], res.segments):
        got = (seg["voxels"][s["layer"]] == s["labelValue"]).transpose(2, 1, 0)
        np.testing.assert_array_equal(got, src.mask > 0)
