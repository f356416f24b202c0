"""``textlesionseg parse``: show what the parser understands of lesion descriptions, as JSON.

``textlesionseg parse "TEXT" ["TEXT" …]`` or ``textlesionseg parse --file FILE`` (one description
per line; ``-`` reads standard input) prints
``{"inputs": [{"text", "queries": [{…, "inferred": {…}, "evidence": {…}, "confidence": {…},
"language"}], "message", "unknown_words": […]}]}``, one entry per input in order, ``null`` where
the text asserted nothing. English and Chinese are read alike; ``unknown_words`` flags every word
(or run of Chinese characters) the parser could not place, and each query repeats its own. Values
under ``inferred`` come from the knowledge table, not from the text. Exit code 0 even when
nothing was described (the message says why); 2 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``parse`` sub-command."""
    p = subparsers.add_parser(
        "parse",
        help="free-text lesion descriptions (English or Chinese) -> structured queries (JSON)",
        description="Parse free-text lesion descriptions (English or Chinese) into structured lesion queries and print"
                    " them as JSON; every word that could not be placed is listed under unknown_words.",
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="a description (several lesions may be in one text)")
    p.add_argument("--file", type=Path, metavar="FILE", help="text file, one description per line ('-' = stdin)")
    p.add_argument("--phrases", action="store_true",
                   help="add each query's 8 attribute phrases, referring sentence and Slicer terminology")
    p.add_argument("--indent", type=int, default=2, help="JSON indentation (0 = one line per document)")
    p.set_defaults(func=run)


def _read_lines(path: Path) -> list[str]:
    if str(path) == "-":
        return sys.stdin.read().splitlines()
    if not path.exists():
        raise InputError(f"text file not found: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    """Parse every input and print the JSON document."""
    from ..query import attribute_phrases, parse_text, referring_sentence, terminology_for

    texts = list(args.texts)
    if args.file is not None:
        texts += [line for line in _read_lines(args.file) if line.strip()]
    if not texts:
        raise InputError('nothing to parse: give a TEXT or --file FILE, e.g. textlesionseg parse "2 cm cyst in the left kidney"')
    inputs = []
    for text in texts:
        out = parse_text(text)
        entry = out.to_dict()
        if args.phrases:
            for q, d in zip(out.queries, entry["queries"]):
                d["phrases"] = attribute_phrases(q)
                d["referring_sentence"] = referring_sentence(q)
                d["terminology"] = terminology_for(q)
        inputs.append(entry)
    json.dump({"inputs": inputs}, sys.stdout, indent=args.indent or None, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
