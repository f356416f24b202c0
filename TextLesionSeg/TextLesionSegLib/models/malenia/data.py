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


def load_cases(data_dir: Path, cfg: MaleniaConfig, max_cases: int | None = None,
               attributes: str | Path | None = None, part: str = "train") -> list[dict[str, Any]]:
    """Read the training cases of any folder ``training.data.LesionDataset`` reads (synthetic MSD
    layout + ``reports.csv``, MSD task folders, KiTS23; ``attributes``: a Malenia-format table), or
    of a folder of such folders, onto the working grid (``part``: which part of data that names parts).

    Returns cases ``{"id", "image" (K,J,I) float32 0..1, "instances" (K,J,I) int16, "lesions"}``.
    """
    from ...pipeline.preprocess import to_working_grid, to_working_grid_label
    from ...training.data import lesion_datasets

    datasets = lesion_datasets(data_dir, part=part, attributes=attributes)
    prep = PreprocessingConfig(spacing=tuple(cfg.spacing), hu_window=tuple(cfg.hu_window), roi_size=tuple(cfg.roi_size),
                               crop_foreground=True)
    rng = np.random.default_rng(0)
    cases = []
    for case in itertools.islice(itertools.chain(*datasets), max_cases or None):
        vol, grid = to_working_grid(case.image, prep)
        inst = to_working_grid_label(case.image.with_array(case.label), grid).astype(np.int16)
        lesions = [{"label": int(r.lesion_id), **lesion_phrase_sets(r.as_row(), rng)} for r in case.lesions]
        cases.append({"id": case.case_id, "image": vol[0, 0].numpy(), "instances": inst, "lesions": lesions})
    if not cases:
        raise InputError(f"{data_dir}: no {part} cases")
    return cases
