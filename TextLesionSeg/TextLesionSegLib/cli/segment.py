"""``textlesionseg segment``: one 3D segment per free-text description of a CT.

Examples::

    textlesionseg segment ct.nrrd --text "round hypodense mass in the right lung" --output out.seg.nrrd
    textlesionseg segment dicom_folder/ --series-uid 1.2.3 --text-file findings.txt \\
        --output out.seg.nrrd --labelmap out.nii.gz --report out.json --overlay out.png
    textlesionseg segment ct.nii.gz --find-lesions --output all.seg.nrrd

Every input and output is checked before the model is loaded: a bad input, an existing
output (without ``--overwrite``) or an unwritable folder exits 2 with one line, and nothing is
written. No trained model registered -> exit 3.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..core.settings import SETTINGS as _S
from ..core.settings import cli_type

LABELMAP_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")


def register(subparsers: Any) -> None:
    """Add the ``segment`` sub-command."""
    p = subparsers.add_parser(
        "segment", help="segment the lesions described in free text",
        description="Segment one lesion per description. Exit codes: 0 ok, 1 internal error, 2 bad input, "
        "3 model/weights problem, 4 not enough memory, 5 remote engine problem (--server).",
    )
    p.add_argument("image", metavar="IMAGE", help="CT volume (.nrrd, .nii[.gz], .mha, .mhd) or a DICOM series folder")
    p.add_argument("--text", action="append", default=[], metavar="DESCRIPTION",
                   help="a lesion description; repeat for several lesions (one segment each)")
    p.add_argument("--text-file", type=Path, metavar="FILE", help="descriptions, one per non-empty line")
    p.add_argument("--model", metavar="NAME", help="registered model (see 'textlesionseg models') or a weights folder "
                   "(model.safetensors + config.json); default: the first usable")
    p.add_argument("--device", default=_S["device"].default, type=cli_type("device"), help=_S["device"].cli_help())
    p.add_argument("--output", "-o", required=True, type=Path, metavar="OUT.seg.nrrd", help="Slicer segmentation file")
    p.add_argument("--labelmap", type=Path, metavar="OUT.nii.gz", help="also write a labelmap (value n = segment n) and, beside it, "
                   "NAME.labels.csv naming each value (a Slicer color table)")
    p.add_argument("--report", type=Path, metavar="OUT.json", help="also write a JSON report with measurements")
    p.add_argument("--overlay", type=Path, metavar="OUT.png", help="also write a PNG with contours on the CT")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    # ranges, defaults and help of the inference options come from the one settings table
    for name in ("threshold", "overlap", "sw_batch_size"):
        p.add_argument(_S[name].cli, type=cli_type(name), default=_S[name].default, help=_S[name].cli_help())
    p.add_argument("--find-lesions", action="store_true", help="prompt-free: segment every lesion the model finds")
    p.add_argument("--include-point", action="append", default=[], metavar="R,A,S",
                   help="a click on the lesion, RAS millimetres (Slicer's world coordinates); repeatable. Alone it "
                        "defines one lesion; with --text it overrules the words. Write --include-point=-54.6,97.5,-250 "
                        "when the first number is negative")
    p.add_argument("--exclude-point", action="append", default=[], metavar="R,A,S",
                   help="a click on something that is not the lesion (RAS mm); repeatable")
    p.add_argument("--click-model", metavar="NAME", default=None,
                   help="registered model that takes the clicks, or its weights folder (default: interactive-demo)")
    p.add_argument("--selection", choices=_S["selection"].choices, default=_S["selection"].default,
                   help=_S["selection"].cli_help())
    p.add_argument("--allow-non-ct", action="store_true", help=_S["allow_non_ct"].help)
    p.add_argument("--low-memory", action="store_true", help=_S["low_memory"].help)
    p.add_argument("--series-uid", metavar="UID", help="DICOM series to read when the folder holds several")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument("--server", metavar="URL", help="run on a remote engine ('textlesionseg serve') instead of here: "
                   "the image (and any points) is sent to it; its device and models are used (docs/server.md)")
    p.add_argument("--token-file", type=Path, metavar="FILE", help="the server's token (with --server; else "
                   "$TEXTLESIONSEG_TOKEN)")
    p.set_defaults(func=run)


def collect_texts(args: argparse.Namespace) -> list[str]:
    """Descriptions from ``--text`` and ``--text-file`` (InputError when unusable)."""
    texts = list(args.text or [])
    if args.text_file is not None:
        f = Path(args.text_file)
        if not f.is_file():
            raise InputError(f"{f}: text file not found")
        try:
            content = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{f}: cannot read text file as UTF-8: {exc}") from None
        lines = [ln.strip() for ln in content.splitlines() if ln.strip()]
        if not lines:
            raise InputError(f"{f}: text file holds no description")
        texts += lines
    clicks = bool(getattr(args, "include_point", None) or getattr(args, "exclude_point", None))
    if args.find_lesions:
        if texts or clicks:
            raise InputError("--find-lesions is prompt-free: give it without --text/--text-file/--include-point")
        return []
    if not texts and not clicks:
        raise InputError('no description given: add --text "..." (or --text-file, --include-point R,A,S, or --find-lesions)')
    return texts


def collect_points(args: argparse.Namespace) -> tuple[list, list]:
    """``--include-point`` / ``--exclude-point`` values as RAS tuples (InputError when malformed)."""
    from ..pipeline.clicks import parse_point

    include = [parse_point(t, "--include-point") for t in getattr(args, "include_point", None) or []]
    exclude = [parse_point(t, "--exclude-point") for t in getattr(args, "exclude_point", None) or []]
    if exclude and not include and not args.text and args.text_file is None:
        raise InputError("--exclude-point needs an --include-point on the lesion (or a --text that finds it)")
    return include, exclude


def check_outputs(args: argparse.Namespace) -> list[Path]:
    """Every output path: right suffix, distinct, writable, not existing (unless --overwrite)."""
    from ..pipeline.io import check_writable

    if not str(args.output).lower().endswith(".seg.nrrd"):
        raise InputError(f"{args.output}: --output must end in .seg.nrrd")
    if args.labelmap is not None and not str(args.labelmap).lower().endswith(LABELMAP_SUFFIXES):
        raise InputError(f"{args.labelmap}: --labelmap must end in one of {', '.join(LABELMAP_SUFFIXES)}")
    if args.report is not None and not str(args.report).lower().endswith(".json"):
        raise InputError(f"{args.report}: --report must end in .json")
    if args.overlay is not None and not str(args.overlay).lower().endswith(".png"):
        raise InputError(f"{args.overlay}: --overlay must end in .png")
    from ..pipeline.outputs import label_names_path

    names = None if args.labelmap is None else label_names_path(args.labelmap)  # the labelmap's sidecar
    paths = [p for p in (args.output, args.labelmap, names, args.report, args.overlay) if p is not None]
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise InputError("two outputs name the same file")
    if Path(args.image).resolve() in resolved:
        raise InputError(f"{args.image}: an output would overwrite the input image")
    for p in paths:
        check_writable(p, args.overwrite)
    return paths


def check_options(args: argparse.Namespace) -> None:
    """Inference options against the settings table (argparse's ``type=`` checks them already;
    this catches a Namespace built by a script): ``InputError`` naming the option and its range."""
    for name in ("device", "threshold", "overlap", "sw_batch_size", "selection"):
        setattr(args, name, _S[name].check(getattr(args, name), label=_S[name].cli))


class StageProgress:
    """``progress(stage, fraction)`` drawn as one tqdm bar per stage on stderr.

    Bars are drawn only on a terminal: in logs and pipes they would bury the one-line errors.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet or sys.stderr is None or not sys.stderr.isatty()
        self.stage: str | None = None
        self.bar: Any = None

    def __call__(self, stage: str, fraction: float | None) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=100, desc=f"{stage:>20}", file=sys.stderr, leave=False,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")
        if fraction is not None and self.bar is not None:
            self.bar.n = int(round(100 * max(0.0, min(1.0, fraction))))
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def write_outputs(result: Any, args: argparse.Namespace) -> list[Path]:
    """Write every requested output, all together or none (:func:`outputs.write_all`)."""
    from ..pipeline import outputs

    return outputs.write_all(result, output=args.output, labelmap=args.labelmap, report=args.report,
                             overlay=args.overlay, overwrite=args.overwrite)


def summarize(result: Any) -> str:
    """Human summary on stdout: one line per segment (user text made terminal-safe)."""
    from ..pipeline.names import display_text as shown

    lines = [f"model {shown(result.model_name)} {shown(result.model_version)}"]
    for s in result.segments:
        if not s.found:
            lines.append(f"  {shown(s.name)}: NOT FOUND - {shown(s.selection.get('message', 'no matching lesion'))}")
            continue
        vol = sum(m.volume_ml for m in s.lesions)
        longest = max((m.longest_axial_mm for m in s.lesions), default=0.0)
        lines.append(f"  {shown(s.name)}: {len(s.lesions)} lesion(s), {vol:.2f} mL, longest axial {longest:.1f} mm, "
                     f"score {s.score:.2f}")
    return "\n".join(lines)


def say(text: str, stream: Any = None) -> None:
    """Print ``text`` (already terminal-safe) so that a terminal or pipe whose encoding lacks
    some characters (a cp1252 console, PYTHONIOENCODING=ascii) gets ``\\uXXXX`` for them instead
    of a UnicodeEncodeError after the outputs are written."""
    stream = sys.stdout if stream is None else stream
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        text = text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        text = text.encode("ascii", "backslashreplace").decode("ascii")
    print(text, file=stream)


def remote_engine(args: argparse.Namespace) -> Any:
    """The ``--server`` engine (its handshake done: unreachable, token or version -> exit 5), or None."""
    if not getattr(args, "server", None):
        if getattr(args, "token_file", None) is not None:
            raise InputError("--token-file goes with --server URL")
        return None
    from ..worker.remote_engine import RemoteEngine

    engine = RemoteEngine(args.server, token_file=args.token_file)
    engine.info()
    return engine


def run(args: argparse.Namespace) -> int:
    """Check everything, load the model, segment, write; returns the exit code."""
    from ..core.types import InferenceSettings
    from ..pipeline.inference import resolve_device
    from ..pipeline.io import read_image
    from ..pipeline.run import find_lesions, parse_queries, segment
    from ..pipeline.validate import validate_image

    check_options(args)
    texts = collect_texts(args)
    include, exclude = collect_points(args)
    check_outputs(args)
    device = resolve_device(args.device) if not getattr(args, "server", None) else args.device
    image = read_image(args.image, series_uid=args.series_uid)
    # Input problems are reported before a model is loaded (memory is checked with the model's grid).
    validate_image(image, allow_non_ct=args.allow_non_ct, check_mem=False)  # warnings come with the result
    if texts:
        parse_queries(texts)
    from ..models import registry
    from ..pipeline.clicks import check_points, load_click_model

    check_points(image, include, exclude)  # outside the image: exit 2 before a model loads

    engine = remote_engine(args)
    if engine is not None:  # the server's registry and device decide (None: its default model)
        model = args.model
    elif not (texts or args.find_lesions):  # clicks alone: the click model segments
        model = load_click_model(args.click_model or args.model, str(device))
    else:  # a registry name or a weights folder (a training run's best/, a GPU job's weights/)
        model = registry.load_segmenter(args.model or registry.default_model_name(prompt_free=args.find_lesions),
                                        str(device))
    if engine is not None:  # a name for the server (beside descriptions refused by pipeline.run in one line)
        clicker = args.click_model
    else:
        clicker = load_click_model(args.click_model, str(device)) if texts and (include or exclude) else None
    settings = InferenceSettings(
        device=str(device), overlap=args.overlap, sw_batch_size=args.sw_batch_size, threshold=args.threshold,
        low_memory=args.low_memory, extra={"allow_non_ct": args.allow_non_ct, "selection": args.selection},
    )
    progress = StageProgress(args.quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # notes reach the user through result.warnings
            if args.find_lesions:
                result = find_lesions(image, model, settings, progress, server=engine)
            else:
                result = segment(image, texts, model, settings, progress, server=engine, include_points=include,
                                 exclude_points=exclude, click_model=clicker)
    finally:
        progress.close()
    from ..pipeline.names import display_text, sanitize_names

    sanitize_names(result)  # names as every output will hold them (a warning if one had control characters)
    for w in result.warnings:
        say(f"textlesionseg: warning: {display_text(w)}", sys.stderr)
    if not result.segments:
        say("no lesion found; nothing written")
        return 0
    paths = write_outputs(result, args)
    say(summarize(result))
    say("wrote " + ", ".join(display_text(p) for p in paths))
    return 0
