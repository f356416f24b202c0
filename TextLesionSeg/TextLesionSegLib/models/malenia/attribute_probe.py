"""Can the tokens read attributes? Accuracy of the prompt-free attribute read-out on lesion windows.

    python -m TextLesionSegLib.models.malenia.attribute_probe WEIGHTS DATA [--part train] [--cases 20] [--windows 60]

Windows are cut around lesions as in validation (``training.WindowDataset``: one per lesion, the
lesion at a fixed seeded place), each lesion gets its token by the trainer's own Hungarian matching, and that token's
nearest stored value per attribute (``inference.predict_attributes``, the prompt-free read-out) is
compared with the lesion's true value. Run on the *train* part it asks whether the alignment has
learnt anything at all; on a test part, whether it generalises. Also prints the last block's
MP-NCE on the same windows. Attributes whose true value is "unspecified" are skipped. A model
with attribute heads (:mod:`.heads`) is read out through them as well ("heads": side, density,
shape, ... as categories), beside the embedding read-out of the paper.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch


@torch.no_grad()
def attribute_read_out(model: Any, samples: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``{"accuracy": {attribute: (fraction, lesions)}, "mp_nce": mean, "windows": n}`` over
    window samples of :class:`.training.WindowDataset` (windows without a lesion are skipped)."""
    from ...query.types import ATTRIBUTE_NAMES
    from ...training.losses import mp_nce_loss
    from .inference import predict_attributes
    from .segmenter import MaleniaSegmenter
    from .training import bank_groups, collate_fn

    model.eval()
    bank = MaleniaSegmenter(model).bank
    readable = [set(group) for group in bank_groups()]  # per attribute, its values other than "unspecified"
    hits: dict[str, list[bool]] = defaultdict(list)
    head_hits: dict[str, list[bool]] = defaultdict(list)
    losses = []
    for sample in samples:
        batch = collate_fn([sample])
        gt = batch["masks"][0].float()
        if gt.shape[0] == 0:
            continue
        out = model(batch["image"])
        positives = batch["positives"][0]
        index, aligned = model.alignment_candidates([p for lesion in positives for p in lesion] + batch["bank"])
        pos, rows, cols = model.match_lesions(out, 0, gt, positives, index, aligned)
        tokens = out["align"][-1][0, rows]
        losses.append(float(mp_nce_loss(tokens, aligned, pos[cols], model.temperature)))
        for token, lesion in zip(predict_attributes(model, tokens, bank), cols.tolist()):
            for a, (value, _) in enumerate(token):
                truth = readable[a].intersection(positives[lesion])
                if truth:
                    hits[ATTRIBUTE_NAMES[a]].append(bank.phrases[a][value] in truth)
        if model.heads is not None and batch["values"][0]:
            from .heads import HEADS

            log_probs = model.heads(out["head_inputs"][0, rows])
            for n, lesion in enumerate(cols.tolist()):
                for h, head in enumerate(HEADS):
                    truth = batch["values"][0][lesion][h]
                    if truth >= 0:
                        head_hits[head].append(int(log_probs[head][n].argmax()) == truth)
    out = {"accuracy": {name: (float(np.mean(v)), len(v)) for name, v in hits.items()},
           "mp_nce": float(np.mean(losses)) if losses else float("nan"), "windows": len(losses)}
    if head_hits:
        out["heads"] = {name: (float(np.mean(v)), len(v)) for name, v in head_hits.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: print the read-out accuracy per attribute and the MP-NCE."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--part", default="train", help="train (default) or test")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--windows", type=int, default=60)
    args = parser.parse_args(argv)
    from .data import load_cases
    from .model import MaleniaModel
    from .training import WindowDataset

    torch.set_num_threads(1)
    model = MaleniaModel.from_pretrained(args.weights)
    from ...pipeline.body_frame import body_level

    cases = load_cases(args.data, model.config, max_cases=args.cases, part=args.part)
    level = body_level(model.config.hu_window) if model.config.position_channels else None
    windows = WindowDataset(cases, model.config.roi_size, train=False, seed=1, level=level)  # one fixed window per lesion
    result = attribute_read_out(model, (windows[n] for n in range(min(args.windows, len(windows)))))
    print(f"{args.weights} ({args.part} part, {result['windows']} windows): MP-NCE {result['mp_nce']:.3f}")
    print("  embedding read-out (nearest stored value, the paper's):")
    for name, (acc, n) in result["accuracy"].items():
        print(f"    {name:18s} {acc:.2f} of {n}")
    if "heads" in result:
        print("  attribute heads:")
        for name, (acc, n) in result["heads"].items():
            print(f"    {name:18s} {acc:.2f} of {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
