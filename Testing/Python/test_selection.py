"""The shared measured-attribute layer (``pipeline.candidates``) and selection
(``pipeline.selection``) on hand-made maps and CT values: side against the body's midline,
density against the surrounding tissue, organ context, size, shape, ordinal words, and "not
found" below the calibrated score — for every model, in both modes."""

from __future__ import annotations

import numpy as np
import pytest

from TextLesionSegLib.pipeline.body_frame import body_frame
from TextLesionSegLib.pipeline.candidates import find_candidates
from TextLesionSegLib.pipeline.selection import agreement, choose
from TextLesionSegLib.query.types import LesionQuery

SPACING = (2.0, 2.0, 5.0)


def _ball(shape, centre, radius):
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return ((k - centre[0]) * 2.5) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= radius**2


@pytest.fixture()
def scene():
    """A soft-tissue body (60 HU) symmetric about I = 47.5 with three blobs the "network" sees:
    big and dark (10 HU) on the patient's right (low I), small and bright (130 HU) on the left
    (superior), medium and dark (15 HU) on the left (inferior)."""
    shape = (20, 64, 96)
    hu = np.full(shape, -1000.0, np.float32)
    hu[:, 8:56, 8:88] = 60.0
    prob = np.zeros(shape, np.float32)
    blobs = {"big_right": ((10, 32, 25), 9, 10.0), "small_left": ((15, 30, 70), 4, 130.0),
             "mid_left": ((5, 34, 72), 6.5, 15.0)}
    masks = {}
    for name, (c, r, value) in blobs.items():
        masks[name] = _ball(shape, c, r)
        prob[masks[name]] = 0.9
        hu[masks[name]] = value
    frame = body_frame((hu > -500).astype(np.float32), 0.5)
    return hu, prob, masks, frame


def _candidates(hu, prob, frame, score=None):
    return find_candidates(prob, score, hu, frame, SPACING, threshold=0.5, min_mm3=10)


def _chosen(hu, prob, frame, masks, query, mode="measured", min_score=0.0, score=None):
    labels, cands = _candidates(hu, prob, frame, score)
    sel = choose(cands, query, mode, min_score)
    picked = [name for name, m in masks.items() if np.isin(labels[m], sel.labels).mean() > 0.9]
    return sel, picked


def test_candidates_are_measured_3d_components_without_specks(scene) -> None:
    hu, prob, masks, frame = scene
    prob = prob.copy()
    prob[0, 0, 0] = 0.95  # a one-voxel speck (20 mm³)
    labels, cands = find_candidates(prob, None, hu, frame, SPACING, 0.5, min_mm3=30)
    assert len(cands) == 3 and labels[0, 0, 0] == 0
    by_side = {c.side: c for c in cands if c.volume_mm3 > 5000}
    big = by_side["right"]
    assert big.volume_mm3 == pytest.approx(masks["big_right"].sum() * 20.0)
    assert big.core_hu == pytest.approx(10.0) and big.reference_hu == pytest.approx(60.0)
    assert big.body_xyz[0] < -0.3 and big.lung_context == 0.0
    assert big.diameter_mm == pytest.approx(36, abs=4)
    assert big.shape_index is not None and big.shape_index > 0.85
    assert big.elongation < 1.3  # a ball in millimetres, though its voxels are 2 x 2 x 5 mm


def test_a_vessel_like_candidate_is_elongated() -> None:
    shape = (20, 40, 60)
    hu = np.full(shape, 60.0, np.float32)
    prob = np.zeros(shape, np.float32)
    prob[8:11, 18:22, 5:55] = 0.9  # 100 mm long, 8 mm wide, 15 mm deep
    frame = body_frame(np.ones(shape, np.float32), 0.5)
    _, (tube,) = find_candidates(prob, None, hu, frame, SPACING, 0.5, min_mm3=10)
    assert tube.elongation > 4


@pytest.mark.parametrize("query, expected", [
    (LesionQuery(text="", side="right"), ["big_right"]),
    (LesionQuery(text="", side="left", density="hyperdense"), ["small_left"]),
    (LesionQuery(text="", side="left", density="hypodense"), ["mid_left"]),
    (LesionQuery(text="", size_mm=[8.0]), ["small_left"]),
])
def test_measured_attributes_pick_the_described_candidate(scene, query, expected) -> None:
    hu, prob, masks, frame = scene
    sel, picked = _chosen(hu, prob, frame, masks, query)
    assert sel.found and picked == expected


@pytest.mark.parametrize("ordinal, expected", [
    ("larger", "big_right"), ("smallest", "small_left"), ("second", "mid_left"),
    ("most inferior", "mid_left"), ("most superior", "small_left"),
])
def test_ordinal_words_choose_among_plausible_candidates(scene, ordinal, expected) -> None:
    hu, prob, masks, frame = scene
    sel, picked = _chosen(hu, prob, frame, masks, LesionQuery(text="", ordinal=ordinal))
    assert picked == [expected]


def test_network_mode_ignores_the_measurements(scene) -> None:
    """"network": only the network's own score ranks; the measured layer says nothing."""
    hu, prob, masks, frame = scene
    score = prob.copy()
    score[masks["mid_left"]] *= 0.9  # the network's confidence in each lesion for these words
    score[masks["small_left"]] *= 0.2
    score[masks["big_right"]] *= 0.5
    query = LesionQuery(text="", side="right")
    _, picked = _chosen(hu, prob, frame, masks, query, mode="network", score=score)
    assert picked == ["mid_left"]
    _, picked = _chosen(hu, prob, frame, masks, query, mode="measured", score=score)
    assert picked == ["big_right"]


def test_sub_location_breaks_ties_but_does_not_overrule_the_network(scene) -> None:
    hu, prob, masks, frame = scene
    prob = prob.copy()
    prob[masks["big_right"]] = 0.0  # two left blobs: small_left superior, mid_left inferior
    upper, lower = LesionQuery(text="", sub_location="upper lobe"), LesionQuery(text="", sub_location="lower lobe")
    assert _chosen(hu, prob, frame, masks, upper)[1] == ["small_left"]  # equal scores: the words decide
    assert _chosen(hu, prob, frame, masks, lower)[1] == ["mid_left"]
    prob[masks["small_left"]] = 0.6  # mid_left clearly more probable: "upper" must not move the pick
    assert _chosen(hu, prob, frame, masks, upper)[1] == ["mid_left"]


def test_not_found_is_an_answer(scene) -> None:
    """A description no candidate fits scores below the calibrated threshold: no segment, and a
    message naming the best candidate and what it disagrees on; below the probability threshold
    there is nothing to choose at all."""
    hu, prob, masks, frame = scene
    absent = LesionQuery(text="", side="right", density="hyperdense")
    sel, picked = _chosen(hu, prob, frame, masks, absent, min_score=0.3)
    assert not sel.found and picked == [] and sel.labels == []
    assert sel.message.startswith("not found:") and "side" in sel.message or "density" in sel.message
    present = LesionQuery(text="", side="right", density="hypodense")
    assert _chosen(hu, prob, frame, masks, present, min_score=0.3)[1] == ["big_right"]
    labels, cands = _candidates(hu, prob * 0.3, frame)
    empty = choose(cands, present, "measured", 0.0)
    assert not empty.found and "nothing above" in empty.message


def test_lung_context_and_organ_words() -> None:
    """"lung" prefers the blob in aerated lung; "liver" the one in soft tissue; lung lesions are
    compared with soft tissue (so a 40 HU nodule in lung is isodense, not hyperdense)."""
    shape = (6, 40, 80)
    hu = np.full(shape, 50.0, np.float32)
    hu[:, 5:35, 45:75] = -850.0  # left lung
    prob = np.zeros(shape, np.float32)
    lung_blob, wall_blob = _ball(shape, (3, 20, 60), 4), _ball(shape, (3, 20, 25), 4)
    hu[lung_blob] = 40.0
    prob[lung_blob], prob[wall_blob] = 0.8, 0.85
    frame = body_frame(np.ones(shape, np.float32), 0.5)
    labels, cands = find_candidates(prob, None, hu, frame, SPACING, 0.5, min_mm3=10)
    lung = choose(cands, LesionQuery(text="", organ="lung"), "measured")
    liver = choose(cands, LesionQuery(text="", organ="liver"), "measured")
    assert labels[lung_blob][0] in lung.labels and labels[wall_blob][0] in liver.labels
    in_lung = [c for c in cands if c.in_lung][0]
    assert in_lung.reference_hu == 40.0
    total, factors = agreement(in_lung, LesionQuery(text="", organ="lung", density="isodense"))
    assert factors["density"] == 1.0 and factors["organ"] == 1.0 and total == 1.0


def test_a_lung_lesion_is_judged_by_its_solid_part_not_its_aerated_rim() -> None:
    """A solid nodule whose mask takes in an aerated rim (thick slices) has a median far below soft
    tissue; it is still isodense ("soft-tissue density") and not ground glass, while a ground-glass
    lesion with no solid part stays hypodense."""
    shape = (6, 40, 80)
    hu = np.full(shape, 50.0, np.float32)
    hu[:, 5:35, 45:75] = -850.0  # left lung
    solid_core, mask = _ball(shape, (3, 20, 60), 2.5), _ball(shape, (3, 20, 60), 5)
    hu[mask] = -600.0  # the rim the mask takes in: partial volume with aerated lung
    hu[solid_core] = 40.0
    prob = np.where(mask, np.float32(0.9), np.float32(0.0))
    frame = body_frame(np.ones(shape, np.float32), 0.5)
    _, cands = find_candidates(prob, None, hu, frame, SPACING, 0.5, min_mm3=10)
    (nodule,) = cands
    assert nodule.in_lung and nodule.core_hu < -300 and nodule.high_hu > 0
    _, solid = agreement(nodule, LesionQuery(text="", organ="lung", density="isodense"))
    _, glass = agreement(nodule, LesionQuery(text="", organ="lung", density="hypodense"))
    assert solid["density"] == 1.0 and glass["density"] < 0.2
    hu[solid_core] = -600.0  # ground glass throughout
    _, cands = find_candidates(prob, None, hu, frame, SPACING, 0.5, min_mm3=10)
    _, glass = agreement(cands[0], LesionQuery(text="", organ="lung", density="hypodense"))
    assert glass["density"] == 1.0


def test_several_lesions_asked_for_keeps_every_fitting_candidate(scene) -> None:
    hu, prob, masks, frame = scene
    sel, picked = _chosen(hu, prob, frame, masks, LesionQuery(text="", side="left", count=2))
    assert sorted(picked) == ["mid_left", "small_left"]


def test_shape_and_liver_lobes_do_not_vote(scene) -> None:
    """Measured shape of a predicted mask and the side of a liver lobe did not help on validation
    data (docs/models/lsms.md, the selection module's docstring): they are reported, not used."""
    hu, prob, masks, frame = scene
    _, cands = _candidates(hu, prob, frame)
    for c in cands:
        _, factors = agreement(c, LesionQuery(text="", shape="irregular", organ="liver", side="left",
                                              sub_location="left lobe"))
        assert "shape" not in factors and "side" not in factors
        assert c.shape_index is None or 0.0 < c.shape_index <= 1.2


def test_text_free_lesion_map_adds_candidates_to_the_measured_mode_only(scene) -> None:
    """The words' map sees only big_right; the model's text-free lesion map sees all three. The
    measured mode measures all three and picks the small bright left one for "left hyperdense";
    the network mode never sees the lesion map. At equal agreement the candidate the network
    chose for the words wins (its base score is the network's, the others' LESION_PRIOR times
    their lesion score)."""
    from TextLesionSegLib.pipeline.candidates import cut_map
    from TextLesionSegLib.pipeline.selection import LESION_PRIOR, base_score

    hu, prob, masks, frame = scene
    text = np.where(masks["big_right"], 0.9, 0.0).astype(np.float32)
    lesions = prob.copy()
    labels, cands = find_candidates(cut_map(text, lesions, 0.5), None, hu, frame, SPACING, 0.5, 10, None, lesions, text)
    assert len(cands) == 3 and all(c.lesion_score == pytest.approx(0.9) for c in cands)
    by_name = {name: next(c for c in cands if np.isin(labels[m], [c.label]).all()) for name, m in masks.items()}
    assert by_name["big_right"].network_score == pytest.approx(0.9)
    assert by_name["small_left"].network_score == 0.0  # the words' map is empty there
    assert base_score(by_name["small_left"], "measured") == pytest.approx(LESION_PRIOR * 0.9)
    assert base_score(by_name["small_left"], "network") == 0.0
    sel = choose(cands, LesionQuery(text="", side="left", density="hyperdense"), "measured")
    assert sel.labels == [by_name["small_left"].label]
    assert choose(cands, LesionQuery(text="", density="hypodense"), "measured").labels == [by_name["big_right"].label]
    # without the lesion map there is nothing on the left to choose
    _, text_only = find_candidates(text, None, hu, frame, SPACING, 0.5, 10)
    assert len(text_only) == 1 and text_only[0].lesion_score is None


def test_answers_read_the_lesion_map_in_the_measured_mode_only(scene) -> None:
    """Through ``pipeline.answer``: a model whose maps say "big_right" for every description and
    whose lesion map holds all three lesions answers "left hyperdense" with small_left when
    measured, and with big_right (its words' map) when the network alone chooses."""
    import torch

    from TextLesionSegLib.models.base import InferenceSettings, LesionSegmenter, PreprocessingConfig
    from TextLesionSegLib.pipeline.answer import answers_from_maps

    hu, prob, masks, frame = scene

    class FixedMaps(LesionSegmenter):
        preprocessing = PreprocessingConfig(spacing=(SPACING[0], SPACING[1], SPACING[2]), hu_window=(-1000.0, 400.0))

        def predict(self, volume, queries, settings, progress=None):
            return torch.from_numpy(np.where(masks["big_right"], 0.9, 0.0)[None].astype(np.float32)).expand(
                len(queries), *hu.shape)

        def candidate_maps(self, volume, queries, settings, progress=None):
            return self.predict(volume, queries, settings), None, torch.from_numpy(prob)

    model = FixedMaps()
    volume = torch.from_numpy((hu + 1000.0) / 1400.0)[None, None]
    query = LesionQuery(text="", side="left", density="hyperdense")
    maps = model.candidate_maps(volume, [query], InferenceSettings())
    for mode, expected in (("measured", "small_left"), ("network", "big_right")):
        (answer,) = answers_from_maps(model, volume, maps, [query], InferenceSettings(), hu, SPACING, mode=mode)
        chosen = answer.probability > 0.5
        assert chosen[masks[expected]].all() and chosen.sum() < 1.3 * masks[expected].sum()


def test_lesion_map_blobs_never_merge_with_the_words_candidates(scene) -> None:
    """A lesion-map blob that touches the words' candidate (a neighbouring organ the objectness
    output half-marks) is not glued to it: the described lesion keeps its own extent, and a
    separate lesion-map blob is still its own candidate (pipeline.candidates.cut_map)."""
    from TextLesionSegLib.pipeline.candidates import cut_map

    hu, prob, masks, frame = scene
    text = np.where(masks["big_right"], 0.9, 0.0).astype(np.float32)
    lesions = np.where(masks["small_left"], 0.8, 0.0).astype(np.float32)
    halo = _ball(hu.shape, (10, 32, 25), 13) & ~masks["big_right"]  # a shell around big_right
    lesions[halo] = 0.7
    cut = cut_map(text, lesions, 0.5)
    assert np.array_equal(cut[masks["big_right"] | halo] >= 0.5, masks["big_right"][masks["big_right"] | halo])
    assert (cut[masks["small_left"]] == 0.8).all()
    labels, cands = find_candidates(cut, None, hu, frame, SPACING, 0.5, 10, None, lesions, text)
    assert len(cands) == 2
    big = next(c for c in cands if np.isin(labels[masks["big_right"]], [c.label]).all())
    assert big.voxels == int(masks["big_right"].sum())  # not grown by the halo
    assert cut_map(text, None, 0.5) is text and cut_map(text, np.zeros_like(text), 0.5) is text
