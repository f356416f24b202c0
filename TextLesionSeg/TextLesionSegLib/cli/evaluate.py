"""``textlesionseg evaluate``: accuracy, detection and text sensitivity of one or more models.

    textlesionseg evaluate --model malenia-demo --model unet-demo --data SYNTH --split unseen --out EVAL
    textlesionseg evaluate --prompt-free --model malenia-demo --data SYNTH --out EVAL

Writes ``EVAL/evaluation.json``, ``EVAL/evaluation.md`` and PNG figures; with ``--prompt-free``
(no text: every lesion the model finds, with its predicted attributes) ``EVAL/prompt_free.json``,
``EVAL/prompt_free.md`` and ``EVAL/prompt_free_attributes.png``. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` parser."""
    p = subparsers.add_parser("evaluate", help="Dice, NSD, HD95, detection and text sensitivity on a dataset",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True,
                   help="registry name or weights folder (repeat to compare models in one run)")
    p.add_argument("--data", required=True, help="dataset folder as training reads it (SynthLesion/MSD layout with reports.csv, "
                   "MSD task, KiTS23), or a benchmark root with one such folder per split")
    p.add_argument("--split", default=None, help="only this split (e.g. seen, unseen, referring)")
    p.add_argument("--part", default="test", help="cases of this part when the data names parts: test (default), "
                   "train, or all; training cases are never a fair test")
    p.add_argument("--out", required=True, help="output folder for evaluation.json / .md / PNGs")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold (default 0.5)")
    p.add_argument("--overlap", type=float, default=0.5, help="sliding-window overlap of 3D models (default 0.5)")
    p.add_argument("--tolerance-mm", type=float, default=2.0, help="NSD tolerance in mm (default 2)")
    p.add_argument("--min-iou", type=float, default=0.1, help="IoU for a detection match (default 0.1)")
    p.add_argument("--max-cases", type=int, default=None, help="evaluate only the first N cases")
    p.add_argument("--no-text-sensitivity", action="store_true", help="skip swapped/empty-text runs")
    p.add_argument("--selection", choices=("both", "network", "measured"), default="both",
                   help="how a description's lesion is chosen: the network alone, with the measured-attribute "
                        "layer, or both side by side from one inference (default)")
    p.add_argument("--absent", type=int, default=2, metavar="N",
                   help="descriptions of lesions a case does not hold, asked per case (default 2; 0: none)")
    p.add_argument("--prompt-free", action="store_true", help="evaluate the prompt-free mode instead: detection, "
                   "Dice and attribute accuracy of every lesion found without text (models without it are skipped)")
    p.add_argument("--no-plots", action="store_true", help="write no PNG figures")
    p.add_argument("--overwrite", action="store_true", help="replace an existing evaluation in --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate each model on the cases and write the report."""
    from ..evaluation.cases import load_cases
    from ..models import registry
    from ..evaluation.report import write_report
    from ..evaluation.runner import EvalOptions, evaluate_modes
    from ..core.types import InferenceSettings
    from ..pipeline.selection import MODES

    out = Path(args.out)
    report_name = "prompt_free.json" if args.prompt_free else "evaluation.json"
    if (out / report_name).exists() and not args.overwrite:
        raise InputError(f"{out}/{report_name} exists; choose another --out or add --overwrite")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    if not 0.0 < args.threshold < 1.0:
        raise InputError("--threshold must be between 0 and 1")
    cases = load_cases(args.data, args.split, args.part)
    if args.absent < 0:
        raise InputError("--absent must be 0 or more")
    options = EvalOptions(tolerance_mm=args.tolerance_mm, min_iou=args.min_iou,
                          text_sensitivity=not args.no_text_sensitivity, max_cases=args.max_cases,
                          absent_per_case=args.absent)
    if not 0.0 <= args.overlap < 1.0:
        raise InputError("--overlap must be in [0, 1)")
    settings = InferenceSettings(device=args.device, threshold=args.threshold, overlap=args.overlap)
    if args.prompt_free:
        return _run_prompt_free(args, cases, settings, options, out, _meta(args, cases))
    modes = list(MODES) if args.selection == "both" else [args.selection]
    evaluations = []
    for spec in args.model:
        model = registry.load_segmenter(spec, args.device)
        evaluations += evaluate_modes(model, cases, modes, settings, options,
                                      progress=lambda msg: print(msg, file=sys.stderr))
    written = write_report(evaluations, out, _meta(args, cases), plots=not args.no_plots)
    for e in evaluations:
        d = e.to_dict()
        t = d["text_sensitivity"]
        a = d["absent"]
        absent = f"  absent: no segment {a['rejected']}/{a['n']}" if a["n"] else ""
        print(f"{e.model}: Dice {d['overall']['dice']['mean'] or 0:.3f}  NSD {d['overall']['nsd']['mean'] or 0:.3f}  "
              f"detection F1 {d['detection']['f1']:.3f}  text: {t['verdict']}{absent}")
        for layout, pub in d["published"].items():
            print(f"  {layout}'s own metrics: Global Dice {pub['global_dice']:.3f}  hit rate {pub['hit_rate']:.3f} "
                  f"({pub['n_findings']} findings)")
    print(f"wrote {written['markdown']} and {written['json']}")
    return 0


def _meta(args: argparse.Namespace, cases: list[Any]) -> dict[str, Any]:
    """Settings and the command line, written at the top of either report."""
    return {"data": str(args.data), "split": args.split, "part": args.part, "n_cases": len(cases[: args.max_cases] if args.max_cases else cases),
            "overlap": args.overlap, "tolerance_mm": args.tolerance_mm, "min_iou": args.min_iou, "threshold": args.threshold,
            "selection": getattr(args, "selection", None), "absent_per_case": getattr(args, "absent", None),
            "device": args.device, "command": "textlesionseg evaluate " + " ".join(shlex.quote(a) for a in sys.argv[2:])
            if len(sys.argv) > 1 and sys.argv[1] == "evaluate" else "textlesionseg evaluate ..."}


def _run_prompt_free(args: argparse.Namespace, cases: list[Any], settings: Any, options: Any, out: Path,
                     meta: dict[str, Any]) -> int:
    """Prompt-free evaluation of each model; models without the mode are reported as skipped."""
    from ..errors import ModelError
    from ..models import registry
    from ..evaluation.prompt_free import evaluate_prompt_free
    from ..evaluation.report import write_prompt_free_report

    evaluations = []
    for spec in args.model:
        e = evaluate_prompt_free(registry.load_segmenter(spec, args.device), cases, settings, options,
                                 progress=lambda msg: print(msg, file=sys.stderr))
        if e.skipped:
            print(f"skipped {e.model}: {e.skipped}", file=sys.stderr)
        evaluations.append(e)
    if all(e.skipped for e in evaluations):  # nothing measured: no report that looks like a result
        raise ModelError("; ".join(e.skipped for e in evaluations))
    written = write_prompt_free_report(evaluations, out, meta, plots=not args.no_plots)
    for e in evaluations:
        if not e.skipped:
            d = e.to_dict()
            acc = ", ".join(f"{a} {v['accuracy']:.2f} (chance {v['chance']:.2f})" for a, v in d["attributes"].items())
            print(f"{e.model}: detection P {d['detection']['precision']:.3f} R {d['detection']['recall']:.3f} "
                  f"F1 {d['detection']['f1']:.3f}  Dice {d['overall']['dice']['mean'] or 0:.3f}  attributes: {acc or '-'}")
    print(f"wrote {written['markdown']} and {written['json']}")
    return 0
