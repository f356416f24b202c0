"""Hosts: CTChest4 lungs by threshold against slicerio's own segmentation, phantom anatomy and HU."""

from __future__ import annotations

import os

import numpy as np
import pytest

from TextLesionSegLib.training.data import measure
from TextLesionSegLib.training.data.hosts import GRID_PRESETS, make_host
from TextLesionSegLib.training.data.synthesize import synthesize_case


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_ctchest4_lungs_match_slicerio_segmentation() -> None:
    import slicerio

    host = make_host("ctchest4", np.random.default_rng(0))
    seg = slicerio.read_segmentation(os.path.join(os.path.dirname(slicerio.__file__), "data", "Segmentation.seg.nrrd"))
    ref = np.transpose(seg["voxels"], (2, 1, 0))  # slicerio gives IJK; our arrays are KJI
    assert ref.shape == host.parts.shape
    labels = {s["name"]: s["labelValue"] for s in seg["segments"]}
    for side in ("left", "right"):
        assert _dice(host.mask("lung", side), ref == labels[f"{side} lung"]) > 0.9, side
    # the patient's left is +x in LPS: the left lung's mean x is greater than the right lung's
    xs = {side: host.image.kji_to_lps(np.argwhere(host.mask("lung", side)).mean(0))[0] for side in ("left", "right")}
    assert xs["left"] > xs["right"]
    assert host.phase == "non-contrast"


def test_abdomen_phantom_anatomy_and_hu() -> None:
    host = make_host("abdomen", np.random.default_rng(1), grid="small", phase="contrast-enhanced")
    hu = host.image.array
    means = {}
    for organ in ("liver", "spleen", "kidney", "pancreas", "colon", "fat", "spine", "aorta", "psoas muscle"):
        m = host.mask(organ, parenchyma_only=organ in ("liver", "kidney", "pancreas", "colon"))
        assert m.sum() > 50, organ
        means[organ] = float(np.median(hu[m]))
    assert 85 < means["liver"] < 130 and means["kidney"] > means["liver"] and means["aorta"] > 140
    assert means["fat"] < -70 and means["spine"] > 150 and 30 < means["psoas muscle"] < 80
    # both kidneys, on the right sides of the patient
    xl = host.image.kji_to_lps(np.argwhere(host.mask("kidney", "left")).mean(0))[0]
    xr = host.image.kji_to_lps(np.argwhere(host.mask("kidney", "right")).mean(0))[0]
    assert xl > 0 > xr
    # liver mostly on the patient's right (-x)
    assert host.image.kji_to_lps(np.argwhere(host.mask("liver")).mean(0))[0] < 0
    # noise and partial volume: a homogeneous region is not constant
    assert 5 < float(hu[host.mask("liver", "right", parenchyma_only=True)].std()) < 40


def test_chest_phantom_lobes_and_noncontrast() -> None:
    host = make_host("chest", np.random.default_rng(2), grid="small", phase="non-contrast")
    for side, lobes in (("left", ("upper lobe", "lower lobe")), ("right", ("upper lobe", "middle lobe", "lower lobe"))):
        for lobe in lobes:
            assert host.mask("lung", side, lobe).sum() > 20, (side, lobe)
    lung_hu = float(np.median(host.image.array[host.mask("lung")]))
    assert -900 < lung_hu < -750
    assert float(np.median(host.image.array[host.mask("pulmonary vessels")])) < 150  # no contrast
    # upper lobes above lower lobes
    z = {lobe: host.image.kji_to_lps(np.argwhere(host.mask("lung", "left", lobe)).mean(0))[2] for lobe in ("upper lobe", "lower lobe")}
    assert z["upper lobe"] > z["lower lobe"]


def test_lung2like_grid_and_host_determinism() -> None:
    shape, spacing = GRID_PRESETS["lung2like"]
    assert shape[1:] == (512, 512) and spacing[2] == 5.0 and 0.6 <= spacing[0] <= 0.8
    a = make_host("chest", np.random.default_rng(9), grid="small")
    b = make_host("chest", np.random.default_rng(9), grid="small")
    np.testing.assert_array_equal(a.image.array, b.image.array)
    np.testing.assert_array_equal(a.parts, b.parts)


def test_heterogeneous_lesions_vary_more_than_homogeneous() -> None:
    host = make_host("abdomen", np.random.default_rng(4), grid="medium", phase="contrast-enhanced")
    common = {"lesion_type": "hepatocellular carcinoma", "density": "hypodense", "shape": "round-like",
              "surface": "well-defined", "specific_features": [], "relation": "not closely related", "size_mm": [26, 24]}
    case = synthesize_case(host, [dict(common, density_variation="homogeneous"),
                                  dict(common, density_variation="heterogeneous")], np.random.default_rng(5))
    std = {l.attributes["density_variation"]: measure.core_stats(case.image.array, case.label == l.lesion_id,
                                                                 case.image.spacing)["std"] for l in case.lesions}
    assert std["heterogeneous"] > 1.3 * std["homogeneous"], std


def test_unknown_host_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown host"):
        make_host("lung2", np.random.default_rng(0))


def test_mass_effect_pushes_a_neighbour_away() -> None:
    from TextLesionSegLib.pipeline.geometry import Image
    from TextLesionSegLib.training.data.mass_effect import push_aside

    shape = (40, 40, 40)
    image = Image(np.zeros(shape, np.float32), spacing=(1.0, 1.0, 1.0), direction=np.diag([-1.0, -1.0, 1.0]))
    parts = np.zeros(shape, np.uint8)
    parts[:, :, 28:] = 1  # a neighbour (a wall) 8 voxels from the centre, along i
    hu = np.where(parts == 1, 50.0, -850.0).astype(np.float32)
    box = (slice(0, 40), slice(0, 40), slice(0, 40))
    centre = image.kji_to_lps(np.array([20.0, 20.0, 20.0]))
    new_hu, new_parts = push_aside(image, box, centre, 8.0, hu, parts, np.zeros(shape, bool))
    # the wall moved away from the lesion at the lesion's level...
    assert np.flatnonzero(new_parts[20, 20])[0] > 28
    # ...but not at the faces of the box, and labels stay labels
    assert np.flatnonzero(new_parts[0, 0])[0] == 28
    assert set(np.unique(new_parts)) <= {0, 1}
    assert new_hu.min() >= -850 - 1e-3 and new_hu.max() <= 50 + 1e-3
