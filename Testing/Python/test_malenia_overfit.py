"""Malenia trains for real on tiny synthetic scans: it overfits, and text selects the lesion.

One tiny model is trained once per module (< ~60 s on one core) on 6 synthetic 32³ scans, four with
two lesions of different attributes and two with one of them: a bright round one in the left half of the patient and a dark
irregular one in the right half. Array axis I runs towards the patient's left (working grid, LPS).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from TextLesionSegLib.query import LesionQuery, attribute_phrases  # noqa: E402

N = 32
LEFT = LesionQuery(text="round hyperdense lesion in the left lung", organ="lung", side="left", shape="round-like",
                   density="hyperdense", density_variation="homogeneous", surface="well-defined")
RIGHT = LesionQuery(text="irregular hypodense lesion in the right lung", organ="lung", side="right", shape="irregular",
                    density="hypodense", density_variation="heterogeneous", surface="ill-defined")


def make_case(seed: int, keep: tuple[int, ...] = (1, 2)) -> dict:
    """32³ scan: lesion 1 (left: I high, bright, round), lesion 2 (right: I low, dark, elongated);
    ``keep`` names the lesions drawn (a scan with one of them teaches that the other may be absent)."""
    rng = np.random.default_rng(seed)
    img = (0.45 + 0.03 * rng.standard_normal((N, N, N))).astype(np.float32)
    inst = np.zeros((N, N, N), np.int16)
    k, j, i = np.mgrid[:N, :N, :N]
    c1 = (rng.integers(11, 21), rng.integers(11, 21), rng.integers(21, 25))
    r1 = rng.uniform(5, 6.5)
    m1 = (k - c1[0]) ** 2 + (j - c1[1]) ** 2 + (i - c1[2]) ** 2 < r1**2
    c2 = (rng.integers(11, 21), rng.integers(11, 21), rng.integers(7, 11))
    r2 = rng.uniform(5, 6.5)
    m2 = ((k - c2[0]) / 1.4) ** 2 + (j - c2[1]) ** 2 + ((i - c2[2]) * 1.3) ** 2 < r2**2
    dark = 0.15 + 0.05 * rng.standard_normal(int(m2.sum())).astype(np.float32)
    lesions = []
    if 1 in keep:
        img[m1], inst[m1] = 0.85, 1
        lesions.append({"label": 1, "phrases": attribute_phrases(LEFT)})
    if 2 in keep:
        img[m2], inst[m2] = dark, 2
        lesions.append({"label": 2, "phrases": attribute_phrases(RIGHT)})
    return {"image": img, "instances": inst, "lesions": lesions}


def train_tiny(tmp_path_factory, train_ds, val_ds, epochs: int, **model_overrides):
    """Train a tiny Malenia with the generic trainer on in-memory window datasets (the trainer
    protocol without a data folder); returns (trainer, run folder, summary)."""
    from TextLesionSegLib.models.malenia import training as mt
    from TextLesionSegLib.models.malenia.config import demo_config
    from TextLesionSegLib.training.trainer import Trainer

    class Module:
        build_model = staticmethod(mt.build_model)
        collate_fn = staticmethod(mt.collate_fn)
        evaluate_batch = staticmethod(mt.evaluate_batch)

        @staticmethod
        def build_datasets(config, data_dir):
            return train_ds, val_ds

    cache = tmp_path_factory.mktemp("text-cache")
    model_cfg = demo_config(roi_size=(N, N, N), cnn_channels=(8, 16, 32, 48), hidden_dim=48, mask_dim=16, num_tokens=4,
                            num_heads=4, ffn_dim=96, extra={"text_cache_dir": str(cache)}, **model_overrides)
    config = {"model": model_cfg.to_dict(),
              "train": {"epochs": epochs, "batch_size": 2, "lr": 3e-3, "warmup_steps": 5, "weight_decay": 0.0,
                        "val_every": epochs, "seed": 0}}
    run = tmp_path_factory.mktemp("run")
    trainer = Trainer(Module, config, run, run, device="cpu", show_progress=False)
    return trainer, run, trainer.fit()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Malenia trained with the generic trainer on 6 cases (2 with one lesion); returns (model, cases, run dir)."""
    from TextLesionSegLib.models.malenia import training as mt

    torch.set_num_threads(1)  # on a shared 2-core machine one thread is far faster than two
    cases = [make_case(s) for s in range(4)] + [make_case(4, keep=(1,)), make_case(5, keep=(2,))]
    trainer, run, summary = train_tiny(
        tmp_path_factory, mt.WindowDataset(cases, (N, N, N), samples=8, pos_fraction=1.0, intensity_jitter=0.0),
        mt.WindowDataset(cases, (N, N, N), train=False), epochs=24)
    return trainer.model.eval(), cases, run, summary


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def test_loss_falls_and_overfits(trained):
    model, cases, run, summary = trained
    import csv

    rows = list(csv.DictReader(open(run / "log.csv", encoding="utf-8")))
    assert float(rows[-1]["train_loss"]) < 0.6 * float(rows[0]["train_loss"])
    assert summary["last"]["val_dice"] > 0.9, summary["last"]


def test_two_descriptions_select_two_lesions(trained):
    """The same scan, two descriptions → two different lesions, each the described one."""
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.malenia.segmenter import MaleniaSegmenter

    model, cases, _, _ = trained
    seg = MaleniaSegmenter(model, name="tiny")
    case = make_case(99)  # unseen during training
    vol = torch.from_numpy(case["image"])[None, None]
    prob = seg.predict(vol, [LEFT, RIGHT], InferenceSettings(device="cpu", amp=False)).numpy()
    assert prob.shape == (2, N, N, N)
    left, right = prob[0] >= 0.5, prob[1] >= 0.5
    assert _dice(left, case["instances"] == 1) > 0.7
    assert _dice(right, case["instances"] == 2) > 0.7
    assert _dice(left, right) < 0.1


def test_prompt_free_finds_both_with_attributes(trained):
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.malenia.segmenter import MaleniaSegmenter

    model, cases, _, _ = trained
    seg = MaleniaSegmenter(model, name="tiny")
    case = make_case(98)
    found = seg.find_lesions(torch.from_numpy(case["image"])[None, None], InferenceSettings(device="cpu", amp=False))
    assert len(found) >= 2
    by_side = {}
    for les in found[:2]:
        mask = les["probability"].numpy() >= 0.5
        label = 1 if _dice(mask, case["instances"] == 1) > _dice(mask, case["instances"] == 2) else 2
        by_side[label] = les
    assert set(by_side) == {1, 2}
    assert by_side[1]["attributes"]["density"][0] == "hyperdense"
    assert by_side[2]["attributes"]["density"][0] == "hypodense"
    assert by_side[1]["attributes"]["location"][0] == "left lung"
    assert by_side[2]["attributes"]["location"][0] == "right lung"
    assert all(isinstance(les["lesion_type"], str) and les["lesion_type"] for les in found)


def test_text_guided_pass_also_gives_the_prompt_free_map(trained):
    """With a ``lesion_prior`` in its weights, ``candidate_maps`` returns, from the same forward
    passes, the prompt-free map (every lesion whatever the words): equal to what ``find_lesions``
    thresholds, and covering both lesions while each description's own map covers one. Without
    one (malenia-demo 0.2.0), no lesion map."""
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.malenia.inference import prompt_free_window
    from TextLesionSegLib.models.malenia.segmenter import MaleniaSegmenter
    from TextLesionSegLib.pipeline.inference import sliding_window_predict

    model, _, _, _ = trained
    seg = MaleniaSegmenter(model, name="tiny")
    case = make_case(96)
    vol = torch.from_numpy(case["image"])[None, None]
    settings = InferenceSettings(device="cpu", amp=False)
    assert seg.candidate_maps(vol, [LEFT, RIGHT], settings)[2] is None
    seg.read_min_scores({"selection": {"lesion_prior": 0.5}})
    prob, score, lesions = seg.candidate_maps(vol, [LEFT, RIGHT], settings)
    assert lesions.shape == (N, N, N)
    alone = sliding_window_predict(lambda p: prompt_free_window(model, p, seg.bank), seg.model_input(vol),
                                   seg.preprocessing.roi_size, settings)[0, 0]
    assert torch.allclose(lesions, alone.clamp(0, 1), atol=1e-5)
    every = lesions.numpy() >= 0.5
    assert _dice(every & (case["instances"] == 1), case["instances"] == 1) > 0.7
    assert _dice(every & (case["instances"] == 2), case["instances"] == 2) > 0.7


def test_prompt_free_lesions_are_26_connected(trained):
    """Cubes touching only at a corner are one lesion, as in the text-guided read-out, the report
    and Slicer's islands tool (prompt-free once used 6-connectivity and split them)."""
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.malenia.prompt_free import describe_components
    from TextLesionSegLib.models.malenia.segmenter import MaleniaSegmenter

    model, _, _, _ = trained
    seg = MaleniaSegmenter(model, name="tiny")
    volume = torch.from_numpy(make_case(97)["image"])[None, None]
    prob = torch.zeros(N, N, N)
    prob[4:9, 4:9, 4:9] = 0.9
    prob[9:14, 9:14, 9:14] = 0.9  # shares one corner with the first cube
    prob[20:25, 20:25, 20:25] = 0.9
    found = describe_components(seg, volume, prob, InferenceSettings(device="cpu", amp=False))
    sizes = sorted(int((les["probability"] >= 0.5).sum()) for les in found)
    assert sizes == [125, 250]


def test_attribute_probe_reads_what_the_tiny_model_learnt(trained):
    """The probe behind the card's diagnosis: matched tokens of a model that learnt the two
    lesions read their density and side right; the same network untrained does not."""
    from TextLesionSegLib.models.malenia import training as mt
    from TextLesionSegLib.models.malenia.attribute_probe import attribute_read_out
    from TextLesionSegLib.models.malenia.model import MaleniaModel

    model, cases, _, _ = trained
    windows = mt.WindowDataset(cases, (N, N, N), train=False)
    result = attribute_read_out(model, (windows[n] for n in range(len(windows))))
    assert result["windows"] == len(windows) and result["accuracy"]["density"][1] >= len(windows)
    assert result["accuracy"]["density"][0] >= 0.9 and result["accuracy"]["location"][0] >= 0.9
    torch.manual_seed(0)
    fresh = MaleniaModel(model.config)
    blind = attribute_read_out(fresh, (windows[n] for n in range(len(windows))))
    assert blind["accuracy"]["density"][0] < 0.9 and blind["mp_nce"] > result["mp_nce"]


def test_checkpoint_reload_gives_identical_outputs(trained, tmp_path):
    from TextLesionSegLib.models.malenia.model import MaleniaModel

    model, cases, run, _ = trained
    model.save_pretrained(tmp_path / "m")
    again = MaleniaModel.from_pretrained(tmp_path / "m")
    x = torch.from_numpy(cases[0]["image"])[None, None]
    with torch.no_grad():
        a, b = model(x), again(x)
    for k in range(3):
        assert torch.equal(a["masks"][k], b["masks"][k])
    assert torch.equal(a["object_logits"], b["object_logits"])
    # the trainer's own checkpoint folder loads too
    assert MaleniaModel.from_pretrained(run / "last").config.num_tokens == 4


def test_exported_weights_segment_without_a_text_encoder(trained, tmp_path, monkeypatch):
    """Shipped weights carry the stored phrase embeddings: known descriptions need no text model."""
    from TextLesionSegLib.models import text_encoders as te
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.malenia.segmenter import MaleniaSegmenter
    from TextLesionSegLib.models.malenia.training import export_for_inference

    model, cases, run, _ = trained
    model.save_pretrained(tmp_path / "ckpt")
    export_for_inference(tmp_path / "ckpt", tmp_path / "weights", trained_on="test")
    monkeypatch.setenv("TEXTLESIONSEG_CACHE", str(tmp_path / "empty-cache"))  # no disk cache to lean on
    seg = MaleniaSegmenter.from_pretrained(tmp_path / "weights", device="cpu")
    assert seg.model.config.extra["trained_on"] == "test"
    monkeypatch.setattr(te.TextEncoder, "_load", lambda self: (_ for _ in ()).throw(AssertionError("text model loaded")))
    case = make_case(97)
    prob = seg.predict(torch.from_numpy(case["image"])[None, None], [LEFT], InferenceSettings(device="cpu", amp=False))
    assert _dice(prob[0].numpy() >= 0.5, case["instances"] == 1) > 0.7
    # with training data (here a folder holding a dataset folder) its lesions' phrases ship too
    from test_eval_cases import write_tiny_dataset

    monkeypatch.undo()  # new phrases need the text model

    write_tiny_dataset(tmp_path / "data" / "tiny")
    export_for_inference(tmp_path / "ckpt", tmp_path / "weights2", data_dir=tmp_path / "data")
    with_data = set(MaleniaSegmenter.from_pretrained(tmp_path / "weights2", device="cpu").model.config.extra["known_phrases"])
    assert with_data > set(seg.model.config.extra["known_phrases"])


def test_hard_negative_windows_sit_on_tissue_air_borders_away_from_lesions():
    from TextLesionSegLib.models.malenia import training as mt

    case = make_case(0)
    img = case["image"]
    img[:, :, :4] = 0.0  # an air pocket along one side: its border with tissue is a hard negative
    ds = mt.WindowDataset([case], (16, 16, 16), samples=40, pos_fraction=0.0, hard_fraction=1.0, seed=3,
                          intensity_jitter=0.0)
    centres = ds._hard[0]
    assert len(centres) > 0
    assert np.all(np.abs(centres[:, 2] - 4) <= 2)  # at the air border, nowhere else
    near = np.array([[np.abs(c - np.argwhere(case["instances"] > 0)).sum(1).min()] for c in centres])
    assert near.min() > 2  # never on a lesion
    windows = [ds[i] for i in range(40)]
    assert sum(w["image"][0, :, :, :1].max() < 0.05 for w in windows) > 0  # some windows see the air edge
    off = mt.WindowDataset([case], (16, 16, 16), samples=4, pos_fraction=0.0)
    assert len(off._hard[0]) == 0  # off unless asked for


def test_training_windows_hold_lesions_anywhere_not_only_in_the_middle():
    """Windows centred on lesions teach 'lesions sit in the middle'; sliding windows see them anywhere."""
    from TextLesionSegLib.models.malenia import training as mt

    big = np.zeros((96, 96, 96), np.float32)
    inst = np.zeros((96, 96, 96), np.int16)
    inst[46:50, 46:50, 46:50] = 1  # a small lesion in the middle of the scan
    case = {"image": big, "instances": inst, "lesions": [{"label": 1, "phrases": attribute_phrases(LEFT)}]}
    ds = mt.WindowDataset([case], (48, 48, 48), samples=60, pos_fraction=1.0, intensity_jitter=0.0, seed=1)
    offsets = np.array([np.argwhere(w["masks"][0].numpy()).mean(0) - 23.5 for w in (ds[i] for i in range(60)) if len(w["masks"])])
    assert len(offsets) == 60  # the lesion is always inside the window
    assert np.abs(offsets).max() > 10 and offsets.std(axis=0).min() > 4  # and often far from its centre
    val = mt.WindowDataset([case], (48, 48, 48), train=False, seed=1)
    assert torch.equal(val[0]["masks"], val[0]["masks"]) and len(val[0]["masks"]) == 1  # fixed and holding it


def test_whole_volume_choice_when_each_window_sees_one_lesion(trained):
    """Two lesions far apart along K, so no window holds both: every window picks *some* token, yet
    each description must come back as its own lesion only — through the pipeline's shared
    selection, with the network's own token scores alone ("network" mode)."""
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.models.malenia.segmenter import MaleniaSegmenter
    from TextLesionSegLib.pipeline.answer import answer_queries

    model, cases, _, _ = trained
    top, bottom = make_case(97, keep=(1,)), make_case(96, keep=(2,))
    image = np.concatenate([bottom["image"], np.full((N, N, N), 0.45, np.float32), top["image"]])
    instances = np.concatenate([bottom["instances"], np.zeros((N, N, N), np.int16), top["instances"]])
    assert model.config.component_keep_ratio > 0
    seg = MaleniaSegmenter(model, name="tiny")
    settings = InferenceSettings(device="cpu", amp=False, overlap=0.5, extra={"selection": "network"})
    answers = answer_queries(seg, torch.from_numpy(image)[None, None], [LEFT, RIGHT], settings)
    left, right = answers[0].probability >= 0.5, answers[1].probability >= 0.5
    assert _dice(left, instances == 1) > 0.7 and not (left & (instances == 2)).any()
    assert _dice(right, instances == 2) > 0.7 and not (right & (instances == 1)).any()
