"""Referring accuracy of an LSMS model on a referring split (SynthLesion ``referring``, test part).

    python -m TextLesionSegLib.models.lsms.referring_eval WEIGHTS_DIR DATA_DIR [--part test]

For every case, the described lesion's report goes through the whole product path
(``pipeline.run.segment``: the query parser, preprocessing, slice inference, 3D ranking, back to
the input grid, postprocessing). A case counts as correct when the segment's Dice with the
described lesion is > 0.5 and its Dice with every other lesion of the scan is < 0.1 (the
criterion of the LSMS issue). Prints one JSON line per case and a summary line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    denom = int(a.sum()) + int(b.sum())
    return 1.0 if denom == 0 else float(2 * np.logical_and(a, b).sum() / denom)


def evaluate(weights_dir: str | Path, data_dir: str | Path, part: str = "test", threads: int = 2,
             max_cases: int | None = None) -> dict[str, Any]:
    """Per-case rows and the accuracy; see the module docstring."""
    import torch

    from ...training.data import LesionDataset
    from ..base import InferenceSettings
    from ...pipeline.run import segment
    from .segmenter import LSMSSegmenter

    torch.set_num_threads(threads)
    model = LSMSSegmenter.from_pretrained(Path(weights_dir), "cpu")
    dataset = LesionDataset(data_dir, part=part)
    rows = []
    for n, case in enumerate(dataset):
        if max_cases and n >= max_cases:
            break
        for lesion in [l for l in case.lesions if l.described and l.report]:
            result = segment(case.image, [lesion.report], model, InferenceSettings(device="cpu"))
            pred = result.segments[0].mask > 0
            own = _dice(pred, case.label == lesion.lesion_id)
            others = [_dice(pred, case.label == o) for o in np.unique(case.label)
                      if o not in (0, lesion.lesion_id)]
            rows.append({"case_id": case.case_id, "lesion_id": int(lesion.lesion_id),
                         "organ": lesion.attributes.get("organ"), "dice": round(own, 3),
                         "max_other_dice": round(max(others, default=0.0), 3),
                         "correct": bool(own > 0.5 and all(d < 0.1 for d in others)),
                         "text": lesion.report})
    accuracy = float(np.mean([r["correct"] for r in rows])) if rows else 0.0
    return {"weights": str(weights_dir), "data": str(data_dir), "part": part, "cases": len(rows),
            "referring_accuracy": round(accuracy, 3),
            "mean_dice": round(float(np.mean([r["dice"] for r in rows])) if rows else 0.0, 3), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print rows then the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("data")
    parser.add_argument("--part", default="test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-cases", type=int)
    args = parser.parse_args(argv)
    out = evaluate(args.weights, args.data, args.part, args.threads, args.max_cases)
    for row in out.pop("rows"):
        print(json.dumps(row))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
