"""Write an evaluation as ``evaluation.json``, ``evaluation.md`` and PNG figures into one folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from .runner import ModelEvaluation


def _f(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _row(name: str, s: dict[str, Any]) -> str:
    inf = s["hd95_mm"]["n_infinite"]
    hd = _f(s["hd95_mm"]["mean"], 1) + (f" ({inf} missed)" if inf else "")
    return f"| {name} | {s['n']} | {_f(s['dice']['mean'])} | {_f(s['nsd']['mean'])} | {hd} |"


def _header(title: str, meta: dict[str, Any]) -> list[str]:
    """Title, data, command and settings lines shared by both reports."""
    return ["# " + title, "", f"Data: `{meta.get('data')}`" + (f", split `{meta['split']}`" if meta.get("split") else ""),
            f"Command: `{meta.get('command', '')}`", f"Cases: {meta.get('n_cases')}; NSD tolerance "
            f"{meta.get('tolerance_mm')} mm; detection IoU ≥ {meta.get('min_iou')}; threshold {meta.get('threshold')}.",
            "", "HD95 means are over lesions the model found; missed lesions (empty output) are counted apart.", ""]


def _figures(meta: dict[str, Any]) -> list[str]:
    figs = meta.get("figures", [])
    return ["## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figs] + [""] if figs else []


def markdown(models: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The Markdown report: overall, per split, per type, detection, text sensitivity."""
    lines = _header("Evaluation", meta)
    header = ["| group | lesions | Dice | NSD | HD95 mm |", "|---|---|---|---|---|"]
    for m in models:
        lines += [f"## {m['model']} (version {m['version']})", ""]
        if m["errors"]:
            lines += [f"**{len(m['errors'])} case(s) failed**: " + "; ".join(m["errors"][:3]), ""]
        lines += header + [_row("all", m["overall"])]
        lines += [_row(f"split: {k}", v) for k, v in m["per_split"].items()]
        lines += [_row(k, v) for k, v in m["per_lesion_type"].items()]
        for layout, pub in (m.get("published") or {}).items():
            lines += ["", f"{layout}'s own metrics ({pub['n_findings']} findings; {pub['definition']}): "
                      f"Global Dice {_f(pub['global_dice'])}, hit rate {_f(pub['hit_rate'], 2)}."]
        d = m["detection"]
        lines += ["", f"Detection (lesion-wise): TP {d['tp']}, FP {d['fp']}, FN {d['fn']}; precision "
                  f"{_f(d['precision'])}, recall {_f(d['recall'])}, F1 {_f(d['f1'])}.", ""]
        t = m["text_sensitivity"]
        if t["n"]:
            lines += [f"Text sensitivity ({t['n']} descriptions in multi-lesion cases): follows the text "
                      f"{_f(t['follow_rate'], 2)} vs chance {_f(t['chance_rate'], 2)}; Dice own "
                      f"{_f(t['mean_dice_own'])}, after attribute swap {_f(t['mean_dice_swapped'])} "
                      f"(drop {_f(t['mean_dice_drop_swap'])}, {t['n_swapped']} swapped), with empty text "
                      f"{_f(t['mean_dice_empty'])}.", "", f"**Verdict: {t['verdict']}.**", ""]
        else:
            lines += ["Text sensitivity: no multi-lesion case in this data.", ""]
        a = m.get("absent") or {}
        if a.get("n"):
            lines += [f"Descriptions of lesions the case does not hold ({a['n']}): no segment for "
                      f"{a['rejected']} = {_f(a['rejected_rate'], 2)} (selection: {m.get('selection', '-')}).", ""]
        sec = m["seconds_per_case"]
        lines += [f"Time per case (CPU unless stated): mean {_f(sec['mean'], 1)} s.", ""]
    if len(models) > 1:
        lines += ["## Side by side", "", "| model | Dice | NSD | HD95 mm | det. F1 | follows text | chance | "
                  "absent: no segment |", "|---|---|---|---|---|---|---|---|"]
        for m in models:
            o, t, a = m["overall"], m["text_sensitivity"], m.get("absent") or {}
            lines.append(f"| {m['model']} | {_f(o['dice']['mean'])} | {_f(o['nsd']['mean'])} | "
                         f"{_f(o['hd95_mm']['mean'], 1)} | {_f(m['detection']['f1'])} | "
                         f"{_f(t['follow_rate'], 2)} | {_f(t['chance_rate'], 2)} | {_f(a.get('rejected_rate'), 2)} |")
        lines.append("")
    return "\n".join(lines + _figures(meta))


def write_report(evaluations: Sequence[ModelEvaluation], out_dir: Path, meta: dict[str, Any],
                 plots: bool = True) -> dict[str, Path]:
    """Write JSON, Markdown and figures to ``out_dir`` (created); returns the paths written."""
    from .plots import plot_overlay, plot_per_type, plot_sensitivity

    out_dir.mkdir(parents=True, exist_ok=True)
    models = [e.to_dict() for e in evaluations]
    written: dict[str, Path] = {}
    figures: list[str] = []
    if plots and any(m["n_lesions"] for m in models):
        figures.append(str(plot_per_type(models, out_dir / "per_type_dice.png")))
        if any(m["text_sensitivity"]["n"] for m in models):
            figures.append(str(plot_sensitivity(models, out_dir / "text_sensitivity.png")))
        for e in evaluations:
            for kind in ("best", "worst"):
                view = getattr(e, kind)
                if view is not None:
                    stem = e.model.replace(" (", "_").replace(")", "")  # "lsms-demo (network)" -> lsms-demo_network
                    figures.append(str(plot_overlay(view, out_dir / f"{stem}_{kind}.png", f"{e.model} {kind}")))
    meta = {**meta, "figures": figures}
    written["json"] = out_dir / "evaluation.json"
    written["json"].write_text(json.dumps({"meta": meta, "models": models}, indent=1, default=float), encoding="utf-8")
    written["markdown"] = out_dir / "evaluation.md"
    written["markdown"].write_text(markdown(models, meta), encoding="utf-8")
    return written


def _attribute_rows(attrs: dict[str, Any]) -> list[str]:
    rows = ["| attribute | lesions | answered | accuracy | chance (majority) |", "|---|---|---|---|---|"]
    rows += [f"| {a} | {v['n']} | {v['n_answered']} | {_f(v['accuracy'])} | {_f(v['chance'])} "
             f"({v['majority_value']}) |" for a, v in attrs.items()]
    return rows


def prompt_free_markdown(models: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The Markdown report of a prompt-free evaluation: detection, Dice per group, attribute accuracy."""
    lines = _header("Prompt-free evaluation", meta)
    lines += ["Every lesion of each case is a reference (described or not); a missed lesion scores Dice 0. "
              "Attribute accuracy is over matched lesions whose reference states the attribute; chance is "
              "always answering the most frequent reference value.", ""]
    for m in models:
        lines += [f"## {m['model']} (version {m['version']})", ""]
        if m["skipped"]:
            lines += [f"**Skipped**: {m['skipped']}.", ""]
            continue
        if m["errors"]:
            lines += [f"**{len(m['errors'])} case(s) failed**: " + "; ".join(m["errors"][:3]), ""]
        d = m["detection"]
        lines += [f"Detection: TP {d['tp']}, FP {d['fp']}, FN {d['fn']}; precision {_f(d['precision'])}, "
                  f"recall {_f(d['recall'])}, F1 {_f(d['f1'])} (every segment found).", ""]
        for key, label in (("at_model_threshold", "At the model's own score threshold"),
                           ("at_calibrated", "At the best-F1 threshold on this data (calibrate on validation data, "
                                             "not on a test split)")):
            p = m.get(key)
            if p:
                lines += [f"{label} {p['min_score']:.3f}: precision {_f(p['precision'])}, recall {_f(p['recall'])}, "
                          f"F1 {_f(p['f1'])} ({p['tp']} TP, {p['fp']} FP).", ""]
        lines += ["| group | lesions | Dice | NSD | HD95 mm |", "|---|---|---|---|---|", _row("all", m["overall"]),
                  _row("matched only", m["matched_only"])]
        for key in ("per_split", "per_lesion_type"):
            lines += [_row(f"{'split: ' if key == 'per_split' else ''}{k} (recall {_f(v['recall'], 2)})", v)
                      for k, v in m[key].items()]
        lines += [""] + (_attribute_rows(m["attributes"]) if m["attributes"] else ["No matched lesion with a "
                                                                                 "reference attribute."]) + [""]
        lines += [f"Time per case (CPU unless stated): mean {_f(m['seconds_per_case']['mean'], 1)} s.", ""]
    return "\n".join(lines + _figures(meta))


def write_prompt_free_report(evaluations: Sequence[Any], out_dir: Path, meta: dict[str, Any],
                             plots: bool = True) -> dict[str, Path]:
    """Write ``prompt_free.json``, ``prompt_free.md`` and the attribute-accuracy PNG to ``out_dir``."""
    from .plots import plot_attribute_accuracy

    out_dir.mkdir(parents=True, exist_ok=True)
    models = [e.to_dict() for e in evaluations]
    figures: list[str] = []
    measured = [m for m in models if not m["skipped"]]  # a skipped model would show as all-zero bars
    if plots and any(m["attributes"] for m in measured):
        figures.append(str(plot_attribute_accuracy(measured, out_dir / "prompt_free_attributes.png")))
    meta = {**meta, "mode": "prompt-free", "figures": figures}
    written = {"json": out_dir / "prompt_free.json", "markdown": out_dir / "prompt_free.md"}
    written["json"].write_text(json.dumps({"meta": meta, "models": models}, indent=1, default=float), encoding="utf-8")
    written["markdown"].write_text(prompt_free_markdown(models, meta), encoding="utf-8")
    return written
