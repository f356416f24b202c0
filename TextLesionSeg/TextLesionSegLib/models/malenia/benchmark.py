"""Cost of Malenia per window: parameters, GFLOPs, forward time and peak memory, next to MONAI's
SwinUNETR-48 alone (the backbone), so the ratio shows what the mask tokens, alignment and CMKI cost.

Run: ``python -m TextLesionSegLib.models.malenia.benchmark [--roi 96] [--threads 1] [--repeats 3]``.
Each measurement runs in its own process so peak RSS belongs to one model only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _build(kind: str):
    import torch

    from .config import MaleniaConfig, demo_config
    from .model import MaleniaModel

    if kind == "swinunetr":
        from monai.networks.nets import SwinUNETR

        return SwinUNETR(in_channels=1, out_channels=2, feature_size=48), None
    cfg = MaleniaConfig() if kind == "malenia-full" else demo_config()
    model = MaleniaModel(cfg)
    emb = torch.randn(1, cfg.num_attributes, cfg.text_dim)  # one description's 8 embeddings (stored)
    return model, emb


def _forward(model, emb, x):
    """One window: Malenia = backbone + decoder + one text-guided CMKI mask; SwinUNETR = its logits."""
    if emb is None:
        return model(x)
    out = model(x)
    return model.inject(out["tokens"][-1][0, :1], emb, out["keys"], out["size"])["prob"]


def measure_one(kind: str, roi: int, threads: int, repeats: int) -> dict:
    """Time (best of ``repeats``) and peak RSS of one forward pass, plus parameters and GFLOPs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, emb = _build(kind)
    model.eval()
    x = torch.rand(1, 1, roi, roi, roi)
    with torch.no_grad():
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            _forward(model, emb, x)
            times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the FLOP count (it keeps a graph)
    counter = FlopCounterMode(display=False)  # under no_grad its module hooks fail in torch 2.13
    with counter:
        _forward(model, emb, x)
    return {"model": kind, "roi": roi, "threads": threads, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
            "gflops": round(counter.get_total_flops() / 1e9, 1), "forward_s": round(min(times), 3),
            "peak_rss_MB": round(peak, 0)}


def main(argv: list[str] | None = None) -> int:
    """Measure the three models, print a Markdown table (and JSON lines with ``--json``)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--roi", type=int, default=96)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--models", nargs="+", default=["swinunetr", "malenia-full", "malenia-demo"])
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(args.one, args.roi, args.threads, args.repeats)))
        return 0
    rows = []
    for kind in args.models:
        out = subprocess.run([sys.executable, "-m", __spec__.name if __spec__ else "TextLesionSegLib.models.malenia.benchmark",
                              "--one", kind, "--roi", str(args.roi), "--threads", str(args.threads),
                              "--repeats", str(args.repeats)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"| model | params (M) | GFLOPs / {args.roi}³ window | forward (s, {args.threads} thread) | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params_M']} | {r['gflops']} | {r['forward_s']} | {r['peak_rss_MB']:.0f} |")
    base = {r["model"]: r for r in rows}.get("swinunetr")
    full = {r["model"]: r for r in rows}.get("malenia-full")
    if base and full:
        print(f"\nMalenia-full / SwinUNETR-48: time {full['forward_s'] / base['forward_s']:.2f}x, "
              f"GFLOPs {full['gflops'] / base['gflops']:.2f}x, peak RSS {full['peak_rss_MB'] / base['peak_rss_MB']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
