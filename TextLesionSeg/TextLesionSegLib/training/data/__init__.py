"""Training data: synthetic lesions with known attributes, public-dataset adapters, datasets.

Public names (imported lazily, so importing this package pulls in neither torch nor MONAI):

* :func:`synthesize_case`, :func:`make_host` - insert attribute-controlled lesions into a host;
* :func:`generate_dataset`, :func:`generate_split`, :func:`generate_benchmark` - MSD folders;
* :class:`LesionDataset` - one interface over synthetic, MSD, KiTS23, ReXGroundingCT and
  CVPR-BiomedSegFM data and prepared caches (image, instance labels, per-lesion attributes and
  report); :func:`read_attribute_table` for Malenia tables (flat, or the authors' workbook);
* :class:`TrainingWindows`, :func:`to_working_arrays` - working-grid training windows (MONAI crops).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "synthesize_case": ".synthesize", "SynthCase": ".synthesize", "SynthLesion": ".synthesize",
    "make_host": ".hosts", "Host": ".hosts", "HOST_NAMES": ".hosts",
    "LESION_TYPES": ".catalog", "sample_attributes": ".catalog",
    "make_report": ".report",
    "generate_dataset": ".generate", "generate_split": ".generate", "generate_benchmark": ".generate",
    "LesionDataset": ".dataset", "lesion_datasets": ".dataset", "LesionCase": ".dataset", "LesionRecord": ".dataset",
    "read_attribute_table": ".adapters", "TrainingWindows": ".transforms", "to_working_arrays": ".transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
