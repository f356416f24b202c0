"""PNG figures of an evaluation: per-type Dice bars, best/worst overlays, prompt-free attribute
accuracy (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: CT display window for the overlays (soft tissue) [chosen]
DISPLAY_WINDOW = (-160.0, 240.0)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_per_type(models: Sequence[dict[str, Any]], path: Path, metric: str = "dice") -> Path:
    """Grouped bars: mean ``metric`` per lesion type, one bar per model, with the lesion count."""
    plt = _pyplot()
    types = sorted({t for m in models for t in m["per_lesion_type"]})
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(types) + 2), 3.6), dpi=90)
    x = np.arange(len(types))
    for n, m in enumerate(models):
        vals = [(m["per_lesion_type"].get(t, {}).get(metric, {}) or {}).get("mean") for t in types]
        ax.bar(x + n * width - 0.4 + width / 2, [v or 0.0 for v in vals], width, label=m["model"])
    counts = [max((m["per_lesion_type"].get(t, {}).get("n", 0) for m in models), default=0) for t in types]
    ax.set_xticks(x, [f"{t}\n(n={c})" for t, c in zip(types, counts)], rotation=30, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"mean {metric}")
    ax.set_title(f"{metric} per lesion type")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_overlay(view: Any, path: Path, title: str) -> Path:
    """CT slice with the reference (green) and prediction (red) outlines."""
    plt = _pyplot()
    lo, hi = DISPLAY_WINDOW
    fig, ax = plt.subplots(figsize=(3.6, 3.8), dpi=90)
    ax.imshow(np.clip(view.ct, lo, hi), cmap="gray", vmin=lo, vmax=hi, aspect=view.aspect)
    if view.ref.any():
        ax.contour(view.ref.astype(float), levels=[0.5], colors="lime", linewidths=1.0)
    if view.pred.any():
        ax.contour(view.pred.astype(float), levels=[0.5], colors="red", linewidths=1.0)
    text = view.text if len(view.text) <= 60 else view.text[:59] + "…"
    ax.set_title(f"{title}: {view.case_id} Dice {view.dice:.2f}\n{text}", fontsize=7)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_sensitivity(models: Sequence[dict[str, Any]], path: Path) -> Path:
    """Follow rate per model next to the chance level a text-blind model can reach."""
    plt = _pyplot()
    names = [m["model"] for m in models]
    follow = [m["text_sensitivity"].get("follow_rate") or 0.0 for m in models]
    chance = [m["text_sensitivity"].get("chance_rate") or 0.0 for m in models]
    fig, ax = plt.subplots(figsize=(max(3.5, 1.2 * len(names) + 1.5), 3.2), dpi=90)
    x = np.arange(len(names))
    ax.bar(x - 0.2, follow, 0.4, label="follows text")
    ax.bar(x + 0.2, chance, 0.4, label="chance (text-blind)", color="gray")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of descriptions")
    ax.legend(fontsize=7)
    ax.set_title("Does the output follow the text?", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_attribute_accuracy(models: Sequence[dict[str, Any]], path: Path) -> Path:
    """Prompt-free attribute accuracy: one bar per model and attribute, chance as a black tick."""
    plt = _pyplot()
    attrs = list(dict.fromkeys(a for m in models for a in m.get("attributes", {})))
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(attrs) + 2), 3.6), dpi=90)
    x = np.arange(len(attrs))
    for n, m in enumerate(models):
        xs = x + n * width - 0.4 + width / 2
        stats = [m.get("attributes", {}).get(a) for a in attrs]
        ax.bar(xs, [s["accuracy"] if s else 0.0 for s in stats], width, label=m["model"])
        # chance depends on which lesions the model matched, so each model gets its own tick
        ax.hlines([s["chance"] if s else np.nan for s in stats], xs - width / 2, xs + width / 2, colors="black",
                  linewidths=1.5, label="chance (majority answer)" if n == 0 else None)
    ax.set_xticks(x, attrs, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy on matched lesions")
    ax.set_title("Prompt-free attribute accuracy", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
