"""Soak benchmark: N consecutive requests on one worker; does its memory grow?

    python -m TextLesionSegLib.worker.soak                      # 20 requests, see below for the model
    python -m TextLesionSegLib.worker.soak --model malenia-demo --image ct.nrrd --text "..." --json out.json

Without ``--model`` it uses the default registered model (Malenia first); if there is none it
builds the tiny test segmenter of ``worker.testing`` (a real torch model, not a lesion model).
Without ``--image`` it segments a CT-like phantom (``--size`` voxels per side), and says so. The worker reports its own resident memory (VmRSS) after
every request. Growth compares the median RSS of the last 5 requests with that of the first 5
(single readings jitter by a few % as the allocator reuses memory); the raw last-vs-first
change and the peak are reported too. Exit code 0 when growth <= ``--max-growth`` (5 %), else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .client import WorkerClient


def soak(client: WorkerClient, request: dict[str, Any], n: int, timeout: float = 600.0) -> dict[str, Any]:
    """Run ``request`` ``n`` times on ``client``'s worker; RSS and seconds after each."""
    rows = []
    for i in range(n):
        started = time.perf_counter()
        final = client.request(dict(request), timeout)
        if final["type"] != "result":
            raise RuntimeError(f"request {i + 1} failed: {final.get('message')}")
        seconds = time.perf_counter() - started
        status = client.request({"type": "status"}, timeout)
        rows.append({"request": i + 1, "seconds": round(seconds, 3), "rss_bytes": status["rss_bytes"],
                     "model_load_count": final["model_load_count"]})
        # Results are the caller's: delete them so the disk does not fill during long soaks.
        for suffix in (".json", ".npz"):
            Path(final["result_path"]).with_suffix(suffix).unlink(missing_ok=True)
    rss = [r["rss_bytes"] for r in rows]
    first, last = rss[0], rss[-1]
    window = max(1, min(5, n // 4))
    # The allocator makes single readings jitter by a few %; compare medians of the ends too.
    head, tail = sorted(rss[:window])[window // 2], sorted(rss[-window:])[window // 2]
    return {
        "requests": n, "rows": rows, "rss_after_first_mb": round(first / 2**20, 1),
        "rss_after_last_mb": round(last / 2**20, 1), "rss_peak_mb": round(max(rss) / 2**20, 1),
        "growth_percent": round(100.0 * (tail - head) / head, 2),
        "growth_last_vs_first_percent": round(100.0 * (last - first) / first, 2),
        "growth_window": window,
        "model_loads": rows[-1]["model_load_count"],
        "median_seconds": sorted(r["seconds"] for r in rows)[n // 2],
    }


def _tiny_setup(folder: Path, size: int) -> tuple[dict[str, str], str, str]:
    from . import testing

    registry = testing.write_test_registry(folder, {"tiny-soak": {"roi_size": [32, 32, 32]}})
    image = testing.write_phantom(folder / "phantom.nrrd", size=size, lesion_radius_vox=size / 8)
    return {"TEXTLESIONSEG_EXTRA_REGISTRY": str(registry)}, "tiny-soak", str(image)


def main(argv: list[str] | None = None) -> int:
    """Command line of the soak benchmark; prints a table and a JSON summary."""
    parser = argparse.ArgumentParser(prog="python -m TextLesionSegLib.worker.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--model", help="registered model (default: first usable, else the tiny test model)")
    parser.add_argument("--image", help="CT to segment (default: a CT-like phantom of --size voxels per side)")
    parser.add_argument("--text", action="append", help="description(s); default one generic description")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=96, help="phantom edge in voxels (when no --image)")
    parser.add_argument("--max-growth", type=float, default=5.0, help="percent")
    parser.add_argument("--json", type=Path, help="write the summary here too")
    args = parser.parse_args(argv)

    env: dict[str, str] = {}
    model, image, note = args.model, args.image, ""
    folder = Path(tempfile.mkdtemp(prefix="textlesionseg-soak-"))
    if model is None:
        from ..errors import ModelError
        from ..models import registry

        try:
            model = registry.default_model_name()
        except ModelError:
            model = None
    if model is None:
        env, model, image = _tiny_setup(folder, args.size)
        note = "no trained model registered: tiny test segmenter (mean filter + threshold) on a phantom"
    elif image is None:
        from .testing import write_phantom

        image = str(write_phantom(folder / "phantom.nrrd", size=args.size, lesion_radius_vox=args.size / 8))
        note = f"CT-like phantom {args.size}^3 (1.5 x 1.5 x 2 mm), one +150 HU sphere"
    request = {"type": "segment", "image_path": image, "model": model, "output_dir": str(folder / "results"),
               "texts": args.text or ["round solid nodule in the right lung"], "settings": {"device": args.device}}
    client = WorkerClient(env=env, log_path=folder / "worker.log")
    try:
        summary = soak(client, request, args.requests)
    finally:
        client.stop()
    shutil.rmtree(folder, ignore_errors=True)  # phantom, test weights, log: all ours (kept on failure)
    summary.update(model=model, image=image, device=args.device, note=note, python=sys.version.split()[0],
                   cpu_count=os.cpu_count())
    for row in summary["rows"]:
        print(f"request {row['request']:>3}  {row['seconds']:>7.2f} s  RSS {row['rss_bytes'] / 2**20:8.1f} MiB")
    print(f"growth {summary['growth_percent']:+.2f} % (median of first/last {summary['growth_window']}; "
          f"last vs first {summary['growth_last_vs_first_percent']:+.2f} %), peak {summary['rss_peak_mb']} MiB, "
          f"model loads {summary['model_loads']}, median {summary['median_seconds']} s" + (f"  [{note}]" if note else ""))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0 if summary["growth_percent"] <= args.max_growth else 1


if __name__ == "__main__":
    sys.exit(main())
