"""``textlesionseg synth``: synthetic CT lesions with known attributes, in the MSD layout.

Examples::

    textlesionseg synth --out data/synth --count 20 --seed 1 --hosts chest ctchest4 --lesions-per-case 2
    textlesionseg synth --out data/referring --count 10 --split referring
    textlesionseg synth --benchmark synthlesion --out data/SynthLesion
    textlesionseg synth --reading --out data/reading --count 60 --seed 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` parser."""
    from ..training.data.catalog import LESION_TYPES
    from ..training.data.hosts import GRID_PRESETS, HOST_NAMES

    p = subparsers.add_parser(
        "synth", help="generate synthetic lesions (MSD layout + reports.csv)",
        description="Insert attribute-controlled synthetic lesions into real CT (CTChest4) and procedural "
                    "chest/abdomen phantoms; write imagesTr/, labelsTr/ (instance labels), dataset.json and "
                    "reports.csv. Same seed, same bytes.")
    p.add_argument("--out", required=True, type=Path, help="output folder (must not exist or be empty)")
    p.add_argument("--count", type=int, default=None, help="number of cases (per part for --split; default 10)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default 0; with --split: fresh cases planned like the split's, "
                        "default the benchmark's own)")
    p.add_argument("--lesion-types", nargs="+", metavar="TYPE", default=None,
                   help=f"lesion types (quote names with spaces): {', '.join(LESION_TYPES)}")
    p.add_argument("--hosts", nargs="+", metavar="HOST", default=None, help=f"hosts: {', '.join(HOST_NAMES)}")
    p.add_argument("--lesions-per-case", type=int, default=1, help="lesions per case (default 1)")
    p.add_argument("--split", choices=("seen", "unseen", "referring"), default=None,
                   help="generate cases of one SynthLesion split instead of random ones")
    p.add_argument("--benchmark", choices=("synthlesion",), default=None,
                   help="write every split of the SynthLesion benchmark under --out")
    p.add_argument("--reading", action="store_true",
                   help="reading scenes: 2-4 lesions of one organ whose side, density, shape, size or margin "
                        "contrast, several sharing a model window (training data that needs the words)")
    p.add_argument("--grid", choices=tuple(GRID_PRESETS), default=None,
                   help="grid preset of the phantoms (default: drawn per case; lung2like = 512x512, 0.74 mm, 5 mm slices)")
    p.add_argument("--organ-masks", action="store_true", help="also write host organ labels (organsTr/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the requested dataset; bad options raise :class:`InputError` (exit code 2)."""
    from ..training.data import generate as gen

    progress = not args.no_progress
    if args.count is not None and args.count < 1:
        raise InputError("--count must be at least 1")
    if not 1 <= args.lesions_per_case <= 5:
        raise InputError("--lesions-per-case must be between 1 and 5")
    if args.benchmark:
        if args.split or args.hosts or args.lesion_types:
            raise InputError("--benchmark writes fixed splits; drop --split/--hosts/--lesion-types")
        out = gen.generate_benchmark(args.out, args.count, args.organ_masks, progress)
        print(f"wrote SynthLesion (seen, unseen, referring) to {out}")
        return 0
    if args.reading:
        if args.split or args.hosts or args.lesion_types or args.lesions_per_case != 1:
            raise InputError("--reading plans its own organs, hosts and lesions; drop --split/--hosts/"
                             "--lesion-types/--lesions-per-case")
        from ..training.data.reading import generate_reading

        count = 10 if args.count is None else args.count
        out = generate_reading(args.out, count, args.seed or 0, args.organ_masks, progress)
        print(f"wrote {count} reading scenes to {out}")
        return 0
    if args.split:
        if args.hosts or args.lesion_types:
            raise InputError("--split uses the benchmark's hosts and lesion types; drop --hosts/--lesion-types")
        out = gen.generate_split(args.out, args.split, args.count, None, args.organ_masks, progress, args.seed)
        print(f"wrote the SynthLesion {args.split} split to {out}")
        return 0
    try:
        gen.check_choices(args.hosts or gen.DEFAULT_HOSTS, args.lesion_types)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    count = 10 if args.count is None else args.count
    out = gen.generate_dataset(args.out, count, args.seed or 0, args.hosts or gen.DEFAULT_HOSTS, args.lesion_types,
                               args.lesions_per_case, args.organ_masks, progress, args.grid)
    print(f"wrote {count} cases to {out}")
    return 0
