"""Evaluation cases, read through the training data API (``training.data.LesionDataset``).

Every layout the training reads is evaluated the same way: synthetic / SynthLesion folders and
any MSD-layout folder with a ``reports.csv`` (instance labels, one row per lesion with its type,
report, attributes, ``split`` and ``part``), MSD task folders and KiTS23 (each connected
component of a lesion class is one lesion), or a benchmark root holding one such folder per split
(``textlesionseg synth --benchmark``). Cases are listed without reading any image; a case's
image and instance labels are read when the runner reaches it (:meth:`Case.load`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..training.data.dataset import LesionDataset, LesionRecord, is_dataset_folder, lesion_datasets


@dataclass
class Case:
    """Case ``index`` of ``dataset``, with what the evaluation selects by before reading it.

    Attributes:
        case_id: the dataset's case id.
        dataset: the :class:`LesionDataset` holding the case.
        index: its index in ``dataset``.
        lesions: the reference lesions asked about. Where ``reports.csv`` lists them they are known
            before loading (and may be restricted to one split); for real datasets they are the
            label's components, filled in by :meth:`load`.
        split: the split all its lesions share ("" if none or mixed).
        part: "train"/"test" where the dataset states it, "" where it does not.
    """

    case_id: str
    dataset: LesionDataset
    index: int
    lesions: list[LesionRecord] = field(default_factory=list)
    split: str = ""
    part: str = ""

    def load(self) -> tuple[Any, np.ndarray]:
        """(image as ``pipeline.geometry.Image``, int32 instance label map KJI on the same grid).

        Lesions not asked about stay in the label map: they are the "other lesions" of text
        sensitivity.
        """
        case = self.dataset[self.index]
        if self.dataset.listed_lesions(self.index) is None:
            self.lesions = case.lesions
        else:  # keep the selection, with the voxel counts of the loaded records
            asked = {l.lesion_id for l in self.lesions}
            self.lesions = [l for l in case.lesions if l.lesion_id in asked]
        return case.image, case.label


def _cases_of(dataset: LesionDataset) -> list[Case]:
    """One :class:`Case` per case of ``dataset``, from its listing alone."""
    cases = []
    for index, source in enumerate(dataset.sources):
        lesions = dataset.listed_lesions(index) or []
        splits = {l.split for l in lesions if l.split}
        cases.append(Case(source.case_id, dataset, index, lesions, splits.pop() if len(splits) == 1 else "",
                          source.part))
    return cases


def load_cases(data_dir: str | Path, split: str | None = None, part: str | None = None) -> list[Case]:
    """Every case of a dataset folder (see the module docstring) or of a benchmark root holding one
    dataset per split, optionally only ``split`` / ``part``.

    A case belongs to ``split`` when its own split or any of its lesions' splits equals it; with a
    split, only the lesions of that split are kept (others remain in the label map and count as
    "other lesions" for text sensitivity). A benchmark root with a ``split`` sub-folder reads only
    that folder. ``part`` ("train"/"test"; None or "all" for every case) keeps the cases the
    dataset assigns to that part; cases whose part the dataset does not state are kept.

    Raises:
        InputError: missing folder, no labelled cases, or none in ``split`` / ``part``.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise InputError(f"data folder not found: {root}")
    folder = root / split if split and not is_dataset_folder(root) and (root / split).is_dir() else root
    cases = [c for dataset in lesion_datasets(folder, part="all") for c in _cases_of(dataset)]
    if part and part != "all":
        cases = [c for c in cases if not c.part or c.part == part]
        if not cases:
            raise InputError(f"{root}: no case in part '{part}'")
    if split:
        wanted = split.lower()
        picked = []
        for case in cases:
            if case.split.lower() == wanted:
                picked.append(case)
            elif any(l.split == wanted for l in case.lesions):
                case.lesions = [l for l in case.lesions if l.split == wanted]
                picked.append(case)
        if not picked:
            raise InputError(f"{root}: no case in split '{split}'")
        cases = picked
    return cases
