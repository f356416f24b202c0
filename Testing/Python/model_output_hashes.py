"""Hashes of every registered model's weights and outputs on one fixed input (not a test).

For refactors that must not change what a model computes: run it on two checkouts and compare
the JSON files (issue 20's save/load and declaration rework was checked this way against b5633f4)::

    PYTHONPATH=CHECKOUT/TextLesionSeg OMP_NUM_THREADS=1 python Testing/Python/model_output_hashes.py OUT.json

Per model: sha256 (16 hex) of its state dict, its class, capabilities, preprocessing and calibrated
thresholds, and of ``candidate_maps`` for one description (text models) or ``refine`` for one
click (click models) on a seeded random ``(1, 1, 24, 64, 64)`` working-grid volume.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any


def digest(array: Any) -> str:
    """First 16 hex digits of the sha256 of an array's bytes (a tensor is moved to numpy first)."""
    import numpy as np

    if hasattr(array, "detach"):
        array = array.detach().cpu().contiguous().numpy()
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def model_hashes() -> dict[str, dict[str, Any]]:
    """The record of every model in the package's registry file (see the module docstring)."""
    import torch

    from TextLesionSegLib.models import registry
    from TextLesionSegLib.models.base import InferenceSettings
    from TextLesionSegLib.pipeline.clicks import Click
    from TextLesionSegLib.query import parse_text

    torch.set_num_threads(1)
    reg = registry.Registry([registry.REGISTRY_FILE])
    out = {}
    for entry in reg.list_models():
        seg = reg.load_segmenter(entry.name, "cpu")
        state = seg.model.state_dict()
        record: dict[str, Any] = {
            "state": digest(torch.cat([v.flatten().float() for _, v in sorted(state.items())])),
            "keys": len(state), "class": type(seg).__name__, "capabilities": sorted(seg.capabilities),
            "preprocessing": repr(seg.preprocessing), "min_scores": seg.min_scores,
        }
        volume = torch.rand(1, 1, 24, 64, 64, generator=torch.Generator().manual_seed(0))
        if "text" in seg.capabilities:
            with torch.no_grad():
                maps = seg.candidate_maps(volume, parse_text("round mass in the right lung").queries,
                                          InferenceSettings(device="cpu", amp=False))
            record["candidate_maps"] = [None if m is None else digest(m) for m in maps]
        if "clicks" in seg.capabilities:
            record["refine"] = digest(seg.refine(volume, [Click((12, 32, 32), True)]))
        out[entry.name] = record
    return out


if __name__ == "__main__":
    result = model_hashes()
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))
