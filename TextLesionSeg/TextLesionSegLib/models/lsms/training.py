"""LSMS's side of the shared trainer protocol (``training.trainer``, ``textlesionseg train lsms``).

* :func:`build_model` — config dict -> :class:`LSMSModel` (its ``training_loss`` gives ``"loss"``).
* :func:`build_datasets` — MSD-layout folder + ``reports.csv`` -> referring slice datasets.
* :func:`evaluate_batch` — validation Dice of the described lesion.

The config dict's ``"model"`` holds ``preset`` (``demo`` | ``full`` | ``tiny``) and any
:class:`LSMSConfig` overrides; ``"data"`` may hold ``val_fraction``, ``negatives_per_lesion``,
``flip_probability``, ``max_cases``, ``background_per_lesion``, ``absent_per_lesion``,
``descriptions`` (``varied``: :mod:`training.data.descriptions`, default; ``templates``: the
fixed sentences of :func:`sentences_for`, as lsms-demo 0.4.0 was trained) and
``descriptions_per_lesion``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from .config import LSMSConfig, demo_config, full_config, tiny_config
from .slices import ReferringCase, ReferringSliceDataset, collate

PRESETS = {"demo": demo_config, "full": full_config, "tiny": tiny_config}


def lsms_config(config: dict[str, Any]) -> LSMSConfig:
    """The :class:`LSMSConfig` a training config dict describes."""
    model_cfg = dict(config.get("model", {}))
    preset = model_cfg.pop("preset", "demo")
    if preset not in PRESETS:
        raise InputError(f"unknown LSMS preset '{preset}'; choose one of {sorted(PRESETS)}")
    return PRESETS[preset](**{k: tuple(v) if isinstance(v, list) else v for k, v in model_cfg.items()})


def build_model(config: dict[str, Any]):
    """A fresh :class:`LSMSModel` for ``config`` (trainer protocol)."""
    from .model import LSMSModel

    return LSMSModel(lsms_config(config))


def preprocessing_for(cfg: LSMSConfig):
    """The pipeline's :class:`PreprocessingConfig` for an LSMS config (shared by train and test)."""
    from ..base import PreprocessingConfig

    return PreprocessingConfig(spacing=tuple(cfg.spacing), hu_window=tuple(cfg.hu_window),
                               roi_size=(1, 32, 32), crop_foreground=True)


def _first(row: dict[str, str], *names: str) -> str:
    for n in names:
        if row.get(n) not in (None, ""):
            return str(row[n])
    return ""


def sentences_for(row: dict[str, str]) -> list[str]:
    """The report sentence of a lesion plus short referring variants built from its attributes.

    Users type short phrases ("a mass in the left lung") as well as report-style sentences;
    training on both keeps the model from depending on one style. Variants that would also fit
    another lesion of the same scan are removed by :func:`unambiguous`.
    """
    out = []
    report = _first(row, "report", "text", "description", "sentence")
    if report:
        out.append(report)
    organ, side, sub = _first(row, "organ"), _first(row, "side"), _first(row, "sub_location")
    if sub and side and side not in sub:
        sub = f"{side} {sub}"
    where = f"{sub} of the {organ}" if sub and organ else (f"{side} {organ}".strip() if organ else "")
    kind = _first(row, "lesion_type") or "lesion"
    noun = kind.split()[-1]
    density, shape = _first(row, "density"), _first(row, "shape")
    if where:
        out.append(f"a {noun} in the {where}")
        if density:
            out.append(f"the {density} {noun} in the {where}")
        if density and shape:
            out.append(f"{shape} {density} lesion in the {where}")
        if side and organ in ("lung", "kidney"):
            out.append(f"a mass in the {side} {organ}")
            if density:
                out.append(f"{density} lesion in the {side} {organ}")
    return list(dict.fromkeys(out)) or ["the lesion"]


def unambiguous(sentences: dict[int, list[str]]) -> dict[int, list[str]]:
    """Drop a lesion's variant sentences that another lesion of the same scan also has (the first
    sentence, the report, is always kept: it is what the data says describes that lesion)."""
    out = {}
    for lesion, texts in sentences.items():
        others = {t for other, ts in sentences.items() if other != lesion for t in ts}
        out[lesion] = texts[:1] + [t for t in texts[1:] if t not in others]
    return out


def varied_sentences(case: Any, present: set[int], rng: np.random.Generator, per_lesion: int = 6,
                     absent: int = 6) -> tuple[dict[int, list[str]], list[str]]:
    """Each present lesion's report plus varied descriptions that fit it alone, and descriptions
    of lesions the case does not hold (``training.data.descriptions``)."""
    from ...training.data.descriptions import case_descriptions, case_organs

    lesions = [l for l in case.lesions if l.lesion_id in present and (l.report or l.attributes)]
    described, missing = case_descriptions({int(l.lesion_id): dict(l.attributes) for l in lesions}, rng,
                                           case_organs(case), per_lesion, absent,
                                           reports={int(l.lesion_id): l.report for l in lesions if l.report})
    sentences = {i: [t for t, _ in texts] or ["the lesion"] for i, texts in described.items()}
    return sentences, [t for t, _ in missing]


def load_cases(data_dir: Path, cfg: LSMSConfig, max_cases: int | None = None,
               part: str = "train", descriptions: str = "varied", per_lesion: int = 6,
               absent: int = 6, seed: int = 0, attributes: str | Path | None = None,
               layout: str | None = None) -> list[ReferringCase]:
    """Cases of ``data_dir`` (any layout ``training.data.LesionDataset`` reads: synthetic with
    ``reports.csv``, MSD, KiTS23, ReXGroundingCT, CVPR-BiomedSegFM, a prepared cache; or a folder of
    such datasets; ``attributes``: a Malenia-format table; ``layout``: force one) on the LSMS working grid.

    Every lesion with a description becomes a referring target in turn (the others in its scan
    are its distractors); a lesion without one stays in the label map as a distractor only.
    ``descriptions``: "varied" (:func:`varied_sentences`, with absent descriptions) or
    "templates" (:func:`sentences_for`, no absent ones).
    """
    from ...pipeline.body_frame import body_level
    from ...training.data import lesion_datasets
    from ...training.data.cache import on_working_grid

    if descriptions not in ("varied", "templates"):
        raise InputError(f"data.descriptions must be 'varied' or 'templates', not '{descriptions}'")
    rng = np.random.default_rng(seed)
    level = body_level(cfg.hu_window)
    cases: list[ReferringCase] = []
    for dataset in lesion_datasets(data_dir, part=part, attributes=attributes, layout=layout):
        for case in dataset:
            volume, instances = on_working_grid(case, preprocessing_for(cfg))
            present = {int(v) for v in np.unique(instances)} - {0}
            if descriptions == "varied":
                sentences, missing = varied_sentences(case, present, rng, per_lesion, absent)
            else:
                sentences = unambiguous({int(l.lesion_id): sentences_for(l.as_row())
                                         for l in case.lesions if l.lesion_id in present and (l.report or l.attributes)})
                missing = []
            if sentences:
                cases.append(ReferringCase(volume, instances, sentences, case.case_id, missing, level))
            if max_cases and len(cases) >= max_cases:
                return cases
    if not cases:
        raise InputError(f"no {part} case of {data_dir} has both a label map and a lesion description")
    return cases


def build_datasets(config: dict[str, Any], data_dir: Path):
    """(train, val) referring slice datasets; the last ``val_fraction`` of cases validate."""
    cfg = lsms_config(config)
    data = config.get("data", {})
    cases = load_cases(Path(data_dir), cfg, data.get("max_cases"), descriptions=str(data.get("descriptions", "varied")),
                       per_lesion=int(data.get("descriptions_per_lesion", 6)), absent=int(data.get("absent_descriptions", 6)),
                       seed=int(config.get("seed", 0)), attributes=data.get("attributes"), layout=data.get("layout"))
    n_val = max(1, int(round(len(cases) * float(data.get("val_fraction", 0.15))))) if len(cases) > 1 else 0
    train_cases, val_cases = cases[: len(cases) - n_val], cases[len(cases) - n_val :] or cases
    kw = dict(context=cfg.context_slices, size=cfg.slice_size,
              negatives_per_lesion=int(data.get("negatives_per_lesion", 2)),
              background_per_lesion=int(data.get("background_per_lesion", 0)),
              absent_per_lesion=int(data.get("absent_per_lesion", 0)), position=cfg.position_channels)
    train = ReferringSliceDataset(train_cases, train=True, flip_probability=float(data.get("flip_probability", 0.3)),
                                  seed=int(config.get("seed", 0)), **kw)
    val = ReferringSliceDataset(val_cases, train=False, **kw)
    return train, val


def training_texts(datasets: Any) -> list[str]:
    """Every sentence training (and validation) on ``datasets`` encodes: each lesion's descriptions,
    the descriptions of lesions a case does not hold, and their left-right swapped twins (the flip
    augmentation's)."""
    from .slices import swap_left_right

    texts = {t for ds in datasets for case in ds.cases for ts in case.sentences.values() for t in ts}
    texts |= {t for ds in datasets for case in ds.cases for t in case.absent}
    return sorted(texts | {swap_left_right(t) for t in texts})


def text_features(model, datasets: Any) -> dict[str, Any]:
    """Sentence -> frozen word features ``(L, text_dim)`` for :func:`training_texts` (a prepared
    cache stores them, so training on it needs no text encoder)."""
    if model.config.finetune_text:
        return {}  # a text model that trains has no fixed features to store
    texts = training_texts(datasets)
    for start in range(0, len(texts), 64):
        model.encode_text(texts[start : start + 64])  # fills the model's per-sentence cache
    return {t: model._text_cache[t][0] for t in texts}


def model_section(saved: dict[str, Any]) -> dict[str, Any]:
    """A training config's ``model`` section from a weights folder's ``config.json`` values
    (fine-tuning from them): on the demo preset, whose defaults fill any key the folder predates."""
    return {"preset": "demo", **saved}


def dry_run_model(model: dict[str, Any], demo_model: dict[str, Any]) -> None:
    """Shrink a full config's ``model`` section in place for a dry run (the code path only)."""
    model["slice_size"] = 64


def preprocessing(config: dict[str, Any]):
    """The working grid of a training config (``textlesionseg prepare`` writes its cache on it)."""
    return preprocessing_for(lsms_config(config))


#: the trainer's batch assembly (tensors stacked, sentences kept as a list)
collate_fn = collate


def evaluate_batch(model, batch: dict[str, Any]) -> dict[str, float]:
    """Mean Dice (threshold 0.5) of the described lesion over the batch's non-empty targets;
    slices with an empty target count as 1 when the prediction is empty too."""
    import torch

    with torch.no_grad():
        prob = model.predict_slices(batch["image"], batch["text"], batch.get("position"))
    pred = prob > model.config.threshold
    target = batch["label"][:, 0] > 0.5
    scores = []
    for p, t in zip(pred, target):
        denom = p.sum() + t.sum()
        scores.append(1.0 if denom == 0 else float(2 * (p & t).sum() / denom))
    return {"dice": float(np.mean(scores))}
