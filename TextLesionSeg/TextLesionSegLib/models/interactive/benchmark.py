"""One click's CPU latency once the model is loaded, against a text model's segment in the same run.

Times (median of ``--repeat``): the network alone on a 96³ region (the issue's yardstick), one
whole click through the engine on a real CT (``pipeline.clicks.refine_lesion``: region cut,
preprocessing, network, back to the input grid, postprocessing, measurement), and the peer, one
``pipeline.run.segment`` of a description with a text model. ::

    OMP_NUM_THREADS=1 python -m TextLesionSegLib.models.interactive.benchmark ../shared/data/lung2_image.nrrd \\
        --point=-54.6,97.5,-250 --peer lsms-demo --text "mass in the left lung"
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable, Sequence


def median_seconds(run: Callable[[], Any], repeat: int) -> float:
    """Median wall time of ``repeat`` calls (one untimed call first: lazy imports, allocator)."""
    run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module doc."""
    import torch

    from ...models.registry import load_segmenter
    from ...pipeline.clicks import parse_point, refine_lesion
    from ...pipeline.io import read_image
    from ...pipeline.run import segment
    from ...training.clicks import Click

    p = argparse.ArgumentParser(prog="python -m TextLesionSegLib.models.interactive.benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image")
    p.add_argument("--point", required=True, help="R,A,S of the click (write --point=-54.6,... for negatives)")
    p.add_argument("--model", default="interactive-demo")
    p.add_argument("--weights", help="a weights folder instead of --model (a training run's best/)")
    p.add_argument("--peer", default="lsms-demo")
    p.add_argument("--text", default="mass in the left lung")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    image = read_image(args.image)
    point = parse_point(args.point, "--point")
    if args.weights:
        from .segmenter import InteractiveSegmenter

        model = InteractiveSegmenter.from_pretrained(args.weights)
    else:
        model = load_segmenter(args.model, "cpu")
    region = torch.rand((1, 1, 96, 96, 96))
    network_96 = median_seconds(lambda: model.refine(region, [Click((48, 48, 48), True)], None, (96, 96, 96)),
                                args.repeat)
    click = median_seconds(lambda: refine_lesion(image, [point], [], model), args.repeat)
    peer_model = load_segmenter(args.peer, "cpu")
    peer = median_seconds(lambda: segment(image, [args.text], peer_model), max(1, args.repeat // 2))
    print(json.dumps({"network_96cube_s": network_96, "click_through_engine_s": click,
                      f"peer_{args.peer}_segment_s": peer, "click_vs_peer": round(click / peer, 3),
                      "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
