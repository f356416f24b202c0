"""A tiny LSMS learns referring cases within CI time, through the real preprocessing and the real
(offline MiniLM) text encoder: the sentence picks the lesion, two descriptions of one scan give
two different lesions, and "left" means the patient's left whatever the file's axis order.

Scans: chest-like phantoms built in physical LPS space (body, two lungs, one lesion in each lung),
half of them stored with a Slicer/DICOM-like direction diag(-1, -1, 1), so their raw arrays run
right-to-left: a mirrored reading anywhere would swap the sides.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from TextLesionSegLib.models.base import InferenceSettings  # noqa: E402
from TextLesionSegLib.models.lsms.config import tiny_config  # noqa: E402
from TextLesionSegLib.models.lsms.model import LSMSModel  # noqa: E402
from TextLesionSegLib.models.lsms.segmenter import LSMSSegmenter  # noqa: E402
from TextLesionSegLib.models.lsms.slices import ReferringCase, ReferringSliceDataset, collate  # noqa: E402
from TextLesionSegLib.models.lsms.training import preprocessing_for  # noqa: E402
from TextLesionSegLib.pipeline.geometry import Image  # noqa: E402
from TextLesionSegLib.pipeline.preprocess import to_working_grid  # noqa: E402
from TextLesionSegLib.query.types import LesionQuery  # noqa: E402

LEFT = "a lesion in the left lung"
RIGHT = "a lesion in the right lung"
SPACING = (4.5, 4.5, 5.0)


def chest_case(seed: int, flipped: bool) -> tuple[Image, np.ndarray]:
    """(CT image, instance labels: 1 = lesion in the patient's LEFT lung, 2 = in the right)."""
    rng = np.random.default_rng(seed)
    shape = (3, 64, 64)
    direction = np.diag([-1.0, -1.0, 1.0]) if flipped else np.eye(3)
    centre = np.array([(n - 1) / 2 for n in shape[::-1]]) * SPACING
    img = Image(np.zeros(shape, np.float32), SPACING, origin=-direction @ centre, direction=direction)
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    lps = img.kji_to_lps(np.stack([k, j, i], axis=-1))
    x, y = lps[..., 0], lps[..., 1]
    hu = np.full(shape, -1000.0, np.float32)
    hu[(x / 130) ** 2 + (y / 95) ** 2 <= 1] = 40.0
    labels = np.zeros(shape, np.int16)
    for lesion, side in ((1, 1.0), (2, -1.0)):  # LPS x > 0 is the patient's left
        lung_x = side * 65
        hu[((x - lung_x) / 45) ** 2 + (y / 65) ** 2 <= 1] = -850.0
    for lesion, side in ((1, 1.0), (2, -1.0)):
        cx, cy = side * rng.uniform(50, 80), rng.uniform(-35, 35)
        r = rng.uniform(14, 20)
        inside = ((x - cx) ** 2 + (y - cy) ** 2 <= r * r)
        hu[inside] = 30.0
        labels[inside] = lesion
    hu += rng.normal(0, 10, shape).astype(np.float32)
    return img.with_array(hu), labels


def working_case(cfg, seed: int, flipped: bool) -> ReferringCase:
    img, labels = chest_case(seed, flipped)
    tensor, grid = to_working_grid(img, preprocessing_for(cfg))
    inst = grid.to_working_image(img.with_array(labels), nearest=True).astype(np.int32)
    return ReferringCase(tensor[0, 0].numpy(), inst, {1: [LEFT], 2: [RIGHT]}, f"case{seed}")


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    # One thread: on a shared 2-core machine more threads spin against other jobs (10x slower).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # with the text-free objectness output (issue 16), trained beside the referring mask
    cfg = tiny_config(spacing=SPACING, slice_size=64, context_slices=1, contrastive_weight=0.1, objectness_weight=1.0)
    model = LSMSModel(cfg)
    cases = [working_case(cfg, seed, flipped=bool(seed % 2)) for seed in range(4)]
    data = ReferringSliceDataset(cases, cfg.context_slices, cfg.slice_size, train=False, negatives_per_lesion=0)
    # the middle slice of each case, both lesions: 8 samples, one full batch per step
    batch = collate([data[n] for n, (_, _, k) in enumerate(data.index) if k == 1])
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    losses = []
    for step in range(150):
        out = model.training_loss(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    yield model.eval(), cases, losses
    torch.set_num_threads(threads)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def test_loss_falls_and_training_cases_are_referred(trained) -> None:
    model, cases, losses = trained
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    for case in cases:
        k = 1
        x = torch.from_numpy(case.volume[None, k - 1 : k + 2].copy())  # whole slice, as inference
        for lesion, text in ((1, LEFT), (2, RIGHT)):
            pred = model.predict_slices(x, [text])[0].numpy() > 0.5
            assert _dice(pred, case.instances[k] == lesion) > 0.8
            assert _dice(pred, case.instances[k] == 3 - lesion) < 0.1


@pytest.mark.parametrize("flipped", [False, True])
def test_two_descriptions_give_two_lesions_on_the_patients_sides(trained, flipped) -> None:
    """Whole path: input file grid -> working grid -> slices -> 3D candidates -> input grid.

    The scans are training scans (this is an overfitting test; generalisation is measured on
    SynthLesion in the model card); what is checked here is that the sentence, not the scan,
    decides, and that the answer lands on the patient's side in physical space when the file's
    arrays run right-to-left (flipped) as well as left-to-right.
    """
    model, _, _ = trained
    img, labels = chest_case(int(flipped), flipped)
    seg = LSMSSegmenter(model)
    tensor, grid = to_working_grid(img, seg.preprocessing)
    queries = [LesionQuery(text=LEFT, organ="lung", side="left"), LesionQuery(text=RIGHT, organ="lung", side="right")]
    prob = grid.to_input_grid(seg.predict(tensor, queries, InferenceSettings(threshold=0.5)))
    masks = prob > 0.5
    assert _dice(masks[0], labels == 1) > 0.6 and _dice(masks[0], labels == 2) < 0.1
    assert _dice(masks[1], labels == 2) > 0.6 and _dice(masks[1], labels == 1) < 0.1
    # and physically: the "left" answer lies at LPS x > 0, the patient's left
    assert img.kji_to_lps(np.argwhere(masks[0]).mean(axis=0))[0] > 20
    assert img.kji_to_lps(np.argwhere(masks[1]).mean(axis=0))[0] < -20


def test_objectness_output_marks_every_lesion_whatever_the_words(trained) -> None:
    """The text-free output learns the union of a slice's lesions: both lesions for either
    description, and for a sentence it never saw."""
    model, cases, _ = trained
    for case in cases:
        x = torch.from_numpy(case.volume[None, 0:3].copy())
        for text in (LEFT, RIGHT, "an irregular mass in the pancreatic head"):
            words, mask = model.encode_text([text])
            with torch.no_grad():
                every = torch.sigmoid(model(x, words, mask)["objectness"][0, 0]).numpy() > 0.5
            assert _dice(every, case.instances[1] > 0) > 0.8
