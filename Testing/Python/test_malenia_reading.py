"""Malenia with the words given a job (issue 16): position channels, attribute heads and the token
choice against "none", trained for real on tiny scans whose two lesions lie on opposite sides of
one window. The network alone ("network" selection, no measured layer) must tell them apart by
the words, answer "not found" for a lesion that is not there, and give the same physical answer
for a flipped storage of the scan."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_malenia_overfit import LEFT, N, RIGHT, make_case, train_tiny  # noqa: E402

from TextLesionSegLib.query import attribute_phrases  # noqa: E402


def _entry(query) -> dict:
    from TextLesionSegLib.models.malenia.heads import head_targets

    return {"phrases": attribute_phrases(query), "targets": head_targets(query)}


def reading_case(seed: int, keep: tuple[int, ...] = (1, 2)) -> dict:
    """make_case with head values and descriptions: each lesion's own, and the missing one's as
    the description of a lesion the scan does not hold."""
    from TextLesionSegLib.models.malenia.heads import head_targets

    case = make_case(seed, keep)
    own = {1: LEFT, 2: RIGHT}
    for les in case["lesions"]:
        les["values"] = head_targets(own[les["label"]])
    case["descriptions"] = {label: [_entry(own[label])] for label in keep}
    case["absent"] = [_entry(own[label]) for label in (1, 2) if label not in keep]
    return case


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    """A tiny Malenia with position channels, heads, choice and text-seg losses, trained on 10 scans."""
    from TextLesionSegLib.models.malenia import training as mt
    from TextLesionSegLib.pipeline.body_frame import body_level

    torch.set_num_threads(1)
    cases = [reading_case(s) for s in range(4)] + [reading_case(4 + s, keep=((1,), (2,))[s % 2]) for s in range(6)]
    level = body_level((-175.0, 250.0))
    train = mt.WindowDataset(cases, (N, N, N), samples=8, pos_fraction=1.0, intensity_jitter=0.0, level=level,
                             description_mix=(0.5, 0.1, 0.4))
    trainer, _, summary = train_tiny(tmp_path_factory, train, mt.WindowDataset(cases, (N, N, N), train=False, level=level),
                                     epochs=60, position_channels=True, attribute_heads=True, w_heads=1.0,
                                     w_choice=1.0, w_text_seg=0.5)
    return trainer.model.eval(), summary


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def _network_answers(model, image: np.ndarray, queries):
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.malenia.segmenter import MaleniaSegmenter
    from TextLesionSegLib.pipeline.answer import answer_queries

    settings = InferenceSettings(device="cpu", amp=False, extra={"selection": "network"})
    return answer_queries(MaleniaSegmenter(model, name="tiny"), torch.from_numpy(image)[None, None], queries, settings)


def test_the_reading_losses_fall(reader):
    _, summary = reader
    last = summary["last"]
    assert last["train_choice"] < 0.7 and last["train_heads"] < 0.3, last
    assert last["val_dice"] > 0.8 and last["val_none_ok"] == 1.0, last


def test_two_descriptions_pick_two_lesions_of_one_window_by_the_network_alone(reader):
    model, _ = reader
    case = make_case(99)  # both lesions, one 32³ window, unseen in training
    left, right = (a.probability >= 0.5 for a in _network_answers(model, case["image"], [LEFT, RIGHT]))
    assert _dice(left, case["instances"] == 1) > 0.7 and _dice(right, case["instances"] == 2) > 0.7
    assert (left & right).sum() < 0.05 * min(left.sum(), right.sum())  # two different lesions


def test_a_description_of_an_absent_lesion_gives_an_empty_mask(reader):
    model, _ = reader
    only_left = make_case(98, keep=(1,))
    answers = _network_answers(model, only_left["image"], [RIGHT, LEFT])
    assert not (answers[0].probability >= 0.5).any()  # "the right one" is not there
    assert _dice(answers[1].probability >= 0.5, only_left["instances"] == 1) > 0.7


def test_heads_read_the_attributes_of_matched_tokens(reader):
    """Prompt-free read-out: the heads name side and density of each lesion found."""
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.malenia.segmenter import MaleniaSegmenter

    model, _ = reader
    case = make_case(97)
    found = MaleniaSegmenter(model, name="tiny").find_lesions(torch.from_numpy(case["image"])[None, None],
                                                               InferenceSettings(device="cpu", amp=False))
    named = {}
    for les in found:
        mask = les["probability"].numpy() >= 0.5
        label = 1 if _dice(mask, case["instances"] == 1) > _dice(mask, case["instances"] == 2) else 2
        named[label] = les["attributes"]
    assert named[1]["location"][0] == "left lung" and named[1]["density"][0] == "hyperdense"
    assert named[2]["location"][0] == "right lung" and named[2]["density"][0] == "hypodense"


def test_a_flipped_storage_gives_the_same_physical_answer(reader):
    """Through the whole pipeline: the scan stored left-right flipped (direction -1 along I) reads
    "left" from the patient's left, not from the array's high indices."""
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.malenia.segmenter import MaleniaSegmenter
    from TextLesionSegLib.pipeline.geometry import Image
    from TextLesionSegLib.pipeline.run import segment

    model, _ = reader
    seg = MaleniaSegmenter(model, name="tiny")
    case = make_case(96)
    hu = (-175.0 + 425.0 * case["image"]).astype(np.float32)
    spacing = tuple(model.config.spacing)
    plain = Image(array=hu, spacing=spacing, origin=np.zeros(3), direction=np.eye(3))
    far = spacing[0] * (N - 1)
    flipped = Image(array=np.ascontiguousarray(hu[:, :, ::-1]), spacing=spacing, origin=np.array([far, 0.0, 0.0]),
                    direction=np.diag([-1.0, 1.0, 1.0]))
    settings = InferenceSettings(device="cpu", amp=False, extra={"selection": "network", "allow_non_ct": True})
    a = segment(plain, [LEFT.text], seg, settings).segments[0].mask > 0
    b = segment(flipped, [LEFT.text], seg, settings).segments[0].mask > 0
    lesion = case["instances"] == 1
    assert _dice(a, lesion) > 0.7 and _dice(b[:, :, ::-1], lesion) > 0.7
