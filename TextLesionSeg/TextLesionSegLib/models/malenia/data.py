"""Dataset folders (synthetic, MSD, KiTS23; see ``training.data``) → in-memory training cases on the working grid.

Each case is moved with the inference preprocessing (``pipeline.preprocess.to_working_grid``), so
a model trains on exactly the intensities and spacing it will see; lesion attributes from the CSV
become Malenia's 8 phrases through ``query.attribute_phrases`` (the same words as at inference).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from ..base import PreprocessingConfig
from .config import MaleniaConfig
from .phrases import lesion_phrase_sets


def preprocessing_for(cfg: MaleniaConfig) -> PreprocessingConfig:
    """The working grid Malenia trains on (the inference preprocessing of its config)."""
    return PreprocessingConfig(spacing=tuple(cfg.spacing), hu_window=tuple(cfg.hu_window), roi_size=tuple(cfg.roi_size),
                               crop_foreground=True)


def description_entry(text: str, stated: dict[str, Any]) -> dict[str, Any]:
    """A description as the model receives it at inference: the parser's reading of ``text``
    (the stated values if it reads no lesion) -> its 8 phrases and head targets."""
    from ...query import attribute_phrases, parse_text
    from ...query.types import LesionQuery
    from .heads import head_targets

    parsed = parse_text(text).queries
    query = parsed[0] if parsed else LesionQuery(text=text, **{k: v for k, v in stated.items() if k != "size_mm"})
    return {"text": text, "phrases": list(attribute_phrases(query)), "targets": head_targets(query)}


def load_cases(data_dir: Path, cfg: MaleniaConfig, max_cases: int | None = None,
               attributes: str | Path | None = None, part: str = "train", descriptions: bool = False,
               seed: int = 0, layout: str | None = None) -> list[dict[str, Any]]:
    """Read the training cases of any folder ``training.data.LesionDataset`` reads (synthetic MSD
    layout + ``reports.csv``, MSD task folders, KiTS23, ReXGroundingCT, CVPR-BiomedSegFM, a prepared
    cache; ``attributes``: a Malenia-format table; ``layout``: force one), or of a folder of such folders, onto the working grid (``part``: which part of data that names parts).

    Returns cases ``{"id", "image" (K,J,I) float32 0..1, "instances" (K,J,I) int16, "lesions"}``;
    each lesion also carries its head targets (``values``). With ``descriptions``, each case also
    gets varied descriptions of its lesions and of lesions it does not hold
    (``training.data.descriptions``), as :func:`description_entry` reads them.
    """
    from ...training.data import lesion_datasets
    from ...training.data.cache import on_working_grid

    datasets = lesion_datasets(data_dir, part=part, attributes=attributes, layout=layout)
    prep = preprocessing_for(cfg)
    from ...training.data.descriptions import case_descriptions, case_organs
    from .heads import head_targets

    rng = np.random.default_rng(seed)
    cases = []
    for case in itertools.islice(itertools.chain(*datasets), max_cases or None):
        vol, inst = on_working_grid(case, prep)
        inst = inst.astype(np.int16)
        lesions = [{"label": int(r.lesion_id), **lesion_phrase_sets(r.as_row(), rng), "values": head_targets(r.attributes)}
                   for r in case.lesions]
        item = {"id": case.case_id, "image": vol, "instances": inst, "lesions": lesions}
        if descriptions:
            present = {int(v) for v in np.unique(inst)} - {0}
            described, absent = case_descriptions(
                {int(r.lesion_id): dict(r.attributes) for r in case.lesions if r.lesion_id in present}, rng,
                case_organs(case), reports={int(r.lesion_id): r.report for r in case.lesions if r.report})
            item["descriptions"] = {i: [description_entry(t, st) for t, st in texts] for i, texts in described.items()}
            item["absent"] = [description_entry(t, st) for t, st in absent]
        cases.append(item)
    if not cases:
        raise InputError(f"{data_dir}: no {part} cases")
    return cases
