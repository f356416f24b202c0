"""Metrics against analytic cases: overlapping spheres, shifted spheres, detection counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from TextLesionSegLib.evaluation.detection import match_lesions
from TextLesionSegLib.evaluation.metrics import dice_score, segmentation_metrics, summarize


def _sphere(shape_kji, spacing_ijk, centre_ijk_mm, radius_mm):
    """Binary sphere on a KJI grid; the centre is given in mm along I, J, K."""
    k, j, i = np.indices(shape_kji, dtype=float)
    sx, sy, sz = spacing_ijk
    cx, cy, cz = centre_ijk_mm
    return (i * sx - cx) ** 2 + (j * sy - cy) ** 2 + (k * sz - cz) ** 2 <= radius_mm**2


def _analytic_sphere_dice(radius: float, distance: float) -> float:
    """Dice of two equal spheres whose centres are ``distance`` apart (lens volume / sphere volume)."""
    lens = math.pi * (4 * radius + distance) * (2 * radius - distance) ** 2 / 12
    return lens / (4 / 3 * math.pi * radius**3)


def _analytic_nsd(radius: float, shift: float, tol: float) -> float:
    """Fraction of a sphere's surface within ``tol`` of the same sphere shifted by ``shift``.

    A point at polar cosine c lies at |sqrt(R^2 + d^2 - 2Rdc) - R| from the shifted surface, and
    surface area is uniform in c (Archimedes), so the fraction is the length of the c interval / 2.
    """
    c_lo = (radius**2 + shift**2 - (radius + tol) ** 2) / (2 * radius * shift)
    c_hi = (radius**2 + shift**2 - (radius - tol) ** 2) / (2 * radius * shift)
    return (min(c_hi, 1.0) - max(c_lo, -1.0)) / 2


def _analytic_hd95(radius: float, shift: float) -> float:
    c = np.linspace(-1, 1, 20001)
    return float(np.percentile(np.abs(np.sqrt(radius**2 + shift**2 - 2 * radius * shift * c) - radius), 95))


ISO = (0.5, 0.5, 0.5)
ANISO = (0.5, 0.5, 1.0)


@pytest.mark.parametrize("spacing", [ISO, ANISO])
@pytest.mark.parametrize("distance", [2.0, 5.0])
def test_dice_of_two_spheres_matches_lens_volume(spacing, distance):
    shape = (int(32 / spacing[2]), 64, 64)
    a = _sphere(shape, spacing, (16, 16, 16), 9.0)
    b = _sphere(shape, spacing, (16 + distance, 16, 16), 9.0)
    expected = _analytic_sphere_dice(9.0, distance)
    assert dice_score(a, b) == pytest.approx(expected, abs=0.01)
    assert segmentation_metrics(b, a, spacing).dice == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("axis", [0, 2])
def test_nsd_at_2mm_of_shifted_sphere(axis):
    shape = (64, 64, 64)
    centre = np.array([16.0, 16.0, 16.0])
    a = _sphere(shape, ISO, centre, 9.0)
    results = {}
    for shift in (1.0, 3.0, 5.0):
        offset = np.zeros(3)
        offset[axis] = shift
        b = _sphere(shape, ISO, centre + offset, 9.0)
        results[shift] = segmentation_metrics(b, a, ISO, tolerance_mm=2.0)
    # a 1 mm shift stays within the 2 mm tolerance everywhere: NSD is exactly 1
    assert results[1.0].nsd == pytest.approx(1.0, abs=1e-6)
    # beyond the tolerance, the analytic fraction (2/3 at 3 mm, 0.4 at 5 mm) within half a voxel's bias
    assert results[3.0].nsd == pytest.approx(_analytic_nsd(9.0, 3.0, 2.0), abs=0.05)
    assert results[5.0].nsd == pytest.approx(_analytic_nsd(9.0, 5.0, 2.0), abs=0.05)
    assert results[1.0].nsd > results[3.0].nsd > results[5.0].nsd


def test_nsd_honours_anisotropic_spacing():
    """3 mm along K is 3 voxels at 1 mm, not 6 as it would be if the spacing were ignored."""
    shape = (32, 64, 64)
    a = _sphere(shape, ANISO, (16, 16, 16), 9.0)
    b = _sphere(shape, ANISO, (16, 16, 19), 9.0)
    s = segmentation_metrics(b, a, ANISO, tolerance_mm=2.0)
    assert s.nsd == pytest.approx(_analytic_nsd(9.0, 3.0, 2.0), abs=0.1)
    assert s.hd95_mm == pytest.approx(_analytic_hd95(9.0, 3.0), abs=1.0)


@pytest.mark.parametrize("shift", [2.0, 4.0])
def test_hd95_of_known_shift(shift):
    shape = (64, 64, 64)
    a = _sphere(shape, ISO, (16, 16, 16), 9.0)
    b = _sphere(shape, ISO, (16, 16 + shift, 16), 9.0)
    hd = segmentation_metrics(b, a, ISO).hd95_mm
    assert hd == pytest.approx(_analytic_hd95(9.0, shift), abs=ISO[0])  # within one voxel


def test_empty_mask_conventions():
    z = np.zeros((8, 8, 8), bool)
    one = z.copy()
    one[3:5, 3:5, 3:5] = True
    both_empty = segmentation_metrics(z, z)
    assert (both_empty.dice, both_empty.nsd, both_empty.hd95_mm) == (1.0, 1.0, 0.0)
    missed = segmentation_metrics(z, one)
    assert missed.dice == 0.0 and missed.nsd == 0.0 and math.isinf(missed.hd95_mm)
    assert missed.to_dict()["hd95_mm"] is None
    perfect = segmentation_metrics(one, one)
    assert perfect.dice == 1.0 and perfect.nsd == 1.0 and perfect.hd95_mm == 0.0
    with pytest.raises(ValueError):
        segmentation_metrics(one, one[:4])


def test_detection_counts_one_to_one():
    ref = np.zeros((20, 40, 40), np.int16)
    ref[2:6, 2:8, 2:8] = 1  # found
    ref[10:14, 20:26, 20:26] = 2  # found by an oversized blob
    ref[2:5, 30:34, 30:34] = 3  # missed
    pred = np.zeros(ref.shape, bool)
    pred[2:6, 3:8, 2:8] = True  # IoU 0.83 with lesion 1
    pred[9:15, 19:27, 19:27] = True  # IoU ~0.37 with lesion 2
    pred[15:18, 2:5, 30:33] = True  # false positive, far from everything
    pred[10:12, 2:4, 2:4] = True  # false positive
    counts = match_lesions(pred, ref)
    assert (counts.tp, counts.fp, counts.fn) == (2, 2, 1)
    assert counts.precision == pytest.approx(0.5)
    assert counts.recall == pytest.approx(2 / 3)
    assert counts.f1 == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    assert sorted(m[0] for m in counts.matches) == [1, 2]


def test_detection_one_blob_over_two_lesions_counts_once():
    ref = np.zeros((10, 30, 30), np.int16)
    ref[3:7, 5:10, 5:10] = 1
    ref[3:7, 5:10, 11:16] = 2
    pred = np.zeros(ref.shape, bool)
    pred[3:7, 5:10, 5:16] = True
    counts = match_lesions(pred, ref)
    assert (counts.tp, counts.fp, counts.fn) == (1, 0, 1)
    total = counts + match_lesions(np.zeros_like(pred), ref)
    assert (total.tp, total.fp, total.fn) == (1, 0, 3)


def test_detection_min_iou_rejects_grazing_overlap():
    ref = np.zeros((10, 30, 30), np.int16)
    ref[2:8, 2:12, 2:12] = 1
    pred = np.zeros(ref.shape, bool)
    pred[2:8, 11:25, 2:12] = True  # touches one column of the lesion: IoU ~0.04
    assert match_lesions(pred, ref).tp == 0
    assert match_lesions(pred, ref, min_iou=0.01).tp == 1


def test_summarize_counts_infinite_separately():
    s = summarize([1.0, 3.0, float("inf")])
    assert s["n"] == 3 and s["n_infinite"] == 1 and s["mean"] == pytest.approx(2.0)
    assert summarize([])["mean"] is None
