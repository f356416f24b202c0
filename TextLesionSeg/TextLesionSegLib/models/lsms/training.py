"""LSMS's side of the shared trainer protocol (``training.trainer``, ``textlesionseg train lsms``).

* :func:`build_model` — config dict -> :class:`LSMSModel` (its ``training_loss`` gives ``"loss"``).
* :func:`build_datasets` — MSD-layout folder + ``reports.csv`` -> referring slice datasets.
* :func:`evaluate_batch` — validation Dice of the described lesion.

The config dict's ``"model"`` holds ``preset`` (``demo`` | ``full`` | ``tiny``) and any
:class:`LSMSConfig` overrides; ``"data"`` may hold ``val_fraction``, ``negatives_per_lesion``,
``flip_probability``, ``max_cases``.
"""

from __future__ import annotations

import csv
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
    training on both keeps the model from depending on one style.
    """
    out = []
    report = _first(row, "report", "text", "description", "sentence")
    if report:
        out.append(report)
    organ = _first(row, "organ")
    side = _first(row, "side")
    where = " ".join(w for w in (side, _first(row, "sub_location"), organ) if w)
    kind = _first(row, "lesion_type") or "lesion"
    noun = kind.split()[-1] if kind else "lesion"
    if where:
        out.append(f"a {noun} in the {where}")
        density = _first(row, "density")
        if density and density not in ("1", "2", "3", "4"):
            out.append(f"the {density} {noun} in the {where}")
        out.append(f"{kind} of the {where}")
        if side and organ:
            out.append(f"a mass in the {side} {organ}")
    return list(dict.fromkeys(out)) or ["the lesion"]


def read_reports(path: Path) -> dict[str, dict[int, list[str]]]:
    """``reports.csv`` -> case id -> lesion id -> sentences."""
    table: dict[str, dict[int, list[str]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            case = _first(row, "case_id", "case")
            lesion = _first(row, "lesion_id", "lesion", "label")
            if not case or not lesion:
                continue
            table.setdefault(case, {})[int(float(lesion))] = sentences_for(row)
    return table


def load_cases(data_dir: Path, cfg: LSMSConfig, max_cases: int | None = None) -> list[ReferringCase]:
    """Every MSD case of ``data_dir`` with a report, moved onto the LSMS working grid."""
    from ...pipeline.io import read_image
    from ...pipeline.preprocess import to_working_grid

    data_dir = Path(data_dir)
    reports_path = data_dir / "reports.csv"
    if not reports_path.exists() or not (data_dir / "imagesTr").is_dir():
        raise InputError(f"{data_dir} needs imagesTr/, labelsTr/ and reports.csv (run: textlesionseg synth)")
    reports = read_reports(reports_path)
    cases = []
    for image_path in sorted((data_dir / "imagesTr").glob("*.nii*")):
        case_id = image_path.name.split(".nii")[0]
        case_id = case_id[:-5] if case_id.endswith("_0000") else case_id
        label_path = data_dir / "labelsTr" / image_path.name.replace("_0000", "")
        if case_id not in reports or not label_path.exists():
            continue
        tensor, grid = to_working_grid(read_image(image_path), preprocessing_for(cfg))
        instances = grid.to_working_image(read_image(label_path), nearest=True).astype(np.int32)
        present = {int(v) for v in np.unique(instances)} - {0}
        sentences = {lesion: s for lesion, s in reports[case_id].items() if lesion in present}
        if sentences:
            cases.append(ReferringCase(tensor[0, 0].numpy(), instances, sentences, case_id))
        if max_cases and len(cases) >= max_cases:
            break
    if not cases:
        raise InputError(f"no case of {data_dir} has both a label map and a report")
    return cases


def build_datasets(config: dict[str, Any], data_dir: Path):
    """(train, val) referring slice datasets; the last ``val_fraction`` of cases validate."""
    cfg = lsms_config(config)
    data = config.get("data", {})
    cases = load_cases(Path(data_dir), cfg, data.get("max_cases"))
    n_val = max(1, int(round(len(cases) * float(data.get("val_fraction", 0.15))))) if len(cases) > 1 else 0
    train_cases, val_cases = cases[: len(cases) - n_val], cases[len(cases) - n_val :] or cases
    kw = dict(context=cfg.context_slices, size=cfg.slice_size,
              negatives_per_lesion=int(data.get("negatives_per_lesion", 2)))
    train = ReferringSliceDataset(train_cases, train=True, flip_probability=float(data.get("flip_probability", 0.3)),
                                  seed=int(config.get("seed", 0)), **kw)
    val = ReferringSliceDataset(val_cases, train=False, **kw)
    train.collate_fn = val.collate_fn = collate  # type: ignore[attr-defined]
    return train, val


def evaluate_batch(model, batch: dict[str, Any]) -> dict[str, float]:
    """Mean Dice (threshold 0.5) of the described lesion over the batch's non-empty targets;
    slices with an empty target count as 1 when the prediction is empty too."""
    import torch

    with torch.no_grad():
        prob = model.predict_slices(batch["image"], batch["text"])
    pred = prob > model.config.threshold
    target = batch["label"][:, 0] > 0.5
    scores = []
    for p, t in zip(pred, target):
        denom = p.sum() + t.sum()
        scores.append(1.0 if denom == 0 else float(2 * (p & t).sum() / denom))
    return {"dice": float(np.mean(scores))}
