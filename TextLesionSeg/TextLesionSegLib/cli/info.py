"""``textlesionseg info IMAGE``: geometry, HU statistics and whether the image looks like CT.

Examples::

    textlesionseg info ct.nrrd
    textlesionseg info dicom_folder/ --series-uid 1.2.3 --json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np


def register(subparsers: Any) -> None:
    """Add the ``info`` sub-command."""
    p = subparsers.add_parser("info", help="print an image's geometry and HU statistics")
    p.add_argument("image", metavar="IMAGE", help="volume file or DICOM series folder")
    p.add_argument("--series-uid", metavar="UID", help="DICOM series to read when the folder holds several")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def image_info(image: Any) -> dict[str, Any]:
    """Everything ``info`` reports, as a JSON-ready dict."""
    from ..pipeline.io import image_array_stats
    from ..pipeline.validate import ct_verdict

    verdict = ct_verdict(image)
    return {
        "path": image.metadata.get("source_path"),
        "pixel_type": image.metadata.get("pixel_type", str(image.array.dtype)),
        "modality": image.metadata.get("modality"),
        "size_ijk": [int(v) for v in image.size_ijk],
        "spacing_mm": [float(v) for v in image.spacing],
        "origin_lps": [float(v) for v in image.origin],
        "direction_lps": image.direction.tolist(),
        "ijk_to_ras": image.ijk_to_ras().tolist(),
        "extent_mm": [float(n * s) for n, s in zip(image.size_ijk, image.spacing)],
        "intensity": image_array_stats(image),
        "looks_like_ct": verdict.looks_like_ct,
        "ct_reason": verdict.reason,
    }


def _matrix(m: list[list[float]], indent: str) -> str:
    return "\n".join(indent + "  ".join(f"{v:10.4f}" for v in row) for row in m)


def format_info(info: dict[str, Any]) -> str:
    """Human-readable text of :func:`image_info`."""
    st = info["intensity"]
    size = " x ".join(str(v) for v in info["size_ijk"])
    spacing = " x ".join(f"{v:.4g}" for v in info["spacing_mm"])
    lines = [
        f"image:       {info['path']}",
        f"size (IJK):  {size} voxels, {info['pixel_type']}",
        f"spacing:     {spacing} mm",
        f"extent:      {' x '.join(f'{v:.1f}' for v in info['extent_mm'])} mm",
        f"origin LPS:  {', '.join(f'{v:.3f}' for v in info['origin_lps'])} mm",
        "direction (LPS, columns = I, J, K):",
        _matrix(info["direction_lps"], "    "),
        "IJK to RAS (Slicer):",
        _matrix(info["ijk_to_ras"], "    "),
        f"intensity:   min {st['min']:.1f}, max {st['max']:.1f}, mean {st['mean']:.1f}, SD {st['sd']:.1f}"
        + (f", 1st..99th percentile {st['p1']:.1f}..{st['p99']:.1f}" if "p1" in st else ""),
        f"modality:    {info['modality'] or 'not recorded'}",
        f"looks like CT: {'yes' if info['looks_like_ct'] else 'no'} ({info['ct_reason']})",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the image's information; returns the exit code."""
    from ..pipeline.io import read_image

    image = read_image(args.image, series_uid=args.series_uid)
    info = image_info(image)
    if args.json:
        print(json.dumps(info, indent=2, default=lambda o: np.asarray(o).tolist()))
    else:
        print(format_info(info))
    return 0
