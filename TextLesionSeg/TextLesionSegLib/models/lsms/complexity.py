"""Parameters and GFLOPs of LSMS per 512x512 slice, beside a CLIPSeg-size model built in the same run.

    python -m TextLesionSegLib.models.lsms.complexity [--size 512] [--tokens 20]
    python -m TextLesionSegLib.models.lsms.complexity --latency WEIGHTS_DIR --size 208 --threads 2

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions and
attention; one multiply-add = 2 FLOPs), for the vision-language network without its text
encoder, and separately for the text encoders on one sentence of ``--tokens`` tokens. Random
weights: cost does not depend on training. The peer is ``transformers``' CLIPSeg
(``CLIPSegForImageSegmentation`` with its default ViT-B/16 configuration, the model medvlsm
fine-tunes), run at the same 512x512 input with interpolated position embeddings.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _flops(fn: Any) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def lsms_cost(preset: str, size: int, tokens: int, **overrides: Any) -> dict[str, Any]:
    """Parameters (millions) and GFLOPs of one LSMS preset (with config ``overrides``) on a
    ``size``-square slice."""
    import torch

    from .model import LSMSModel, count_parameters
    from .training import PRESETS

    model = LSMSModel(PRESETS[preset](**overrides)).eval()
    cfg = model.config
    x = torch.rand(1, cfg.slice_channels, size, size)
    words = torch.randn(1, tokens, cfg.text_dim)
    mask = torch.ones(1, tokens, dtype=torch.bool)
    label = f"LSMS {preset}" + "".join(f", {k}={v}" for k, v in overrides.items())
    return {"model": label, "params_M": round(count_parameters(model) / 1e6, 2),
            "gflops": round(_flops(lambda: model(x, words, mask)), 2), "text_model": cfg.text_model}


def text_cost(kind: str, tokens: int) -> dict[str, Any]:
    """Parameters and GFLOPs of a text encoder (BERT-base or MiniLM-L6 shape) on one sentence."""
    import torch
    from transformers import BertConfig, BertModel

    cfg = BertConfig() if kind == "bert-base-uncased" else BertConfig(
        hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    model = BertModel(cfg).eval()
    ids = torch.randint(1000, 2000, (1, tokens))
    return {"model": f"text: {kind}", "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "gflops": round(_flops(lambda: model(input_ids=ids)), 2)}


def clipseg_cost(size: int, tokens: int) -> dict[str, Any]:
    """CLIPSeg (ViT-B/16 image + text towers, decoder) on one ``size``-square image and sentence."""
    import torch
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

    model = CLIPSegForImageSegmentation(CLIPSegConfig()).eval()
    pixels = torch.rand(1, 3, size, size)
    ids = torch.randint(1000, 2000, (1, tokens))
    gflops = _flops(lambda: model(input_ids=ids, pixel_values=pixels, interpolate_pos_encoding=True))
    return {"model": "CLIPSeg (ViT-B/16, with its text tower)",
            "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2), "gflops": round(gflops, 2)}


def slice_latency(weights_dir: str, size: int, threads: int, repeats: int = 20, batch: int = 8) -> dict[str, Any]:
    """Median seconds per slice of a trained model's network (text encoded once, as inference does)."""
    import statistics
    import time

    import torch

    from .model import LSMSModel

    torch.set_num_threads(threads)
    model = LSMSModel.from_pretrained(weights_dir)
    words, mask = model.encode_text(["a mass in the left lung"])
    x = torch.rand(batch, model.config.slice_channels, size, size)
    times = []
    with torch.no_grad():
        model(x, words.expand(batch, -1, -1), mask.expand(batch, -1))  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x, words.expand(batch, -1, -1), mask.expand(batch, -1))
            times.append((time.perf_counter() - t0) / batch)
    return {"weights": weights_dir, "slice": f"{size}x{size}", "threads": threads, "batch": batch,
            "median_ms_per_slice": round(1000 * statistics.median(times), 1),
            "min_ms_per_slice": round(1000 * min(times), 1)}


def main(argv: list[str] | None = None) -> int:
    """Print the table as JSON lines."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--latency", metavar="WEIGHTS_DIR", help="time a trained model per slice instead")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.latency:
        print(json.dumps(slice_latency(args.latency, args.size, args.threads)))
        return 0
    torch.set_num_threads(1)
    rows = [lsms_cost("full", args.size, args.tokens),
            lsms_cost("full", args.size, args.tokens, decoder_fuse="separable"),
            lsms_cost("demo", args.size, args.tokens),
            text_cost("bert-base-uncased", args.tokens), text_cost("all-MiniLM-L6-v2", args.tokens),
            clipseg_cost(args.size, args.tokens)]
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
