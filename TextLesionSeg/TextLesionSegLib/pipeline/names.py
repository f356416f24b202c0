"""Segment names and tags as every output and terminal can hold them, reversibly.

Text (segment names, tags) reaches three readers of a ``.seg.nrrd``: ITK's NRRD reader (Teem) and
Slicer's storage node read UTF-8 header values intact and turn ``\\n``/``\\\\`` into a newline and a
backslash; slicerio (pynrrd) writes header lines as ASCII (a non-ASCII name raised
``UnicodeEncodeError``) and reads them as ASCII dropping every other byte ("Läsion" -> "Lsion",
Chinese -> ""), without un-escaping. A raw CR ends a header line for Teem (ITK refuses the file,
Slicer's process aborts) and a NUL cuts the value for ITK and Slicer. So names are first cleaned
(:func:`clean_name`: whitespace and line breaks -> one space, other control characters and lone
surrogates -> U+FFFD, said in a warning) and then written in a reversible ASCII escape
(:func:`header_text`: ``\\uXXXX``/``\\UXXXXXXXX`` for anything outside printable ASCII and for the
backslash itself) that all three readers return identically; :func:`unescape_header_text`
gives the name back.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from .result import Result


MAX_TAG_CHARS = 2000

_SURROGATES = re.compile("[\ud800-\udfff]")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})")


def _is_control(ch: str) -> bool:
    """A control character (C0, DEL, C1) or a lone surrogate (undecodable bytes of a command line)."""
    return unicodedata.category(ch) in ("Cc", "Cs")


def clean_name(name: Any) -> str:
    """The segment name every output holds: line breaks, tabs and runs of white space become one
    space; other control characters (NUL, ESC, DEL, C1) and lone surrogates become U+FFFD, visibly,
    never cut. Everything else (any script, astral characters, combining marks, RTL) is kept."""
    text = " ".join(str(name).split())  # str.split() also splits at \x1c-\x1f, \x85, U+2028/9
    return "".join("\ufffd" if _is_control(ch) else ch for ch in text)


def header_text(text: str, also: str = "") -> str:
    """``text`` as printable ASCII for a NRRD header line, reversibly.

    Every character outside printable ASCII, the backslash, the characters in ``also`` and spaces
    at either end (pynrrd strips header values, slicerio each tag) become ``\\uXXXX`` (or
    ``\\UXXXXXXXX`` above U+FFFF). No ``\\\\`` or ``\\n`` pair can appear, so Teem (ITK, Slicer),
    which un-escapes exactly those two, and pynrrd (slicerio), which un-escapes nothing, read back
    the same string. Inverse: :func:`unescape_header_text`.
    """
    out = []
    inner = len(text) - len(text.lstrip(" ")), len(text.rstrip(" "))
    for n, ch in enumerate(text):
        code = ord(ch)
        if 0x20 <= code < 0x7F and ch != "\\" and ch not in also and (ch != " " or inner[0] <= n < inner[1]):
            out.append(ch)
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)


def unescape_header_text(text: str) -> str:
    """Inverse of :func:`header_text`: the name or tag as it was before it was written."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)


def segment_name(name: Any, number: int) -> str:
    """The name the outputs give segment ``number`` (from 1): :func:`clean_name`, or
    ``Lesion <number>`` when nothing is left."""
    return clean_name(name) or f"Lesion {number}"


def header_name(name: Any, number: int = 1) -> str:
    """What a ``.seg.nrrd`` holds as a segment's name: :func:`segment_name`, escaped."""
    return header_text(segment_name(name, number))


def tag_text(value: Any) -> str:
    """A tag value: whole (up to :data:`MAX_TAG_CHARS`), escaped; '|' separates tags in the header."""
    text = replace_surrogates(str(value))
    text = text if len(text) <= MAX_TAG_CHARS else text[: MAX_TAG_CHARS - 1] + "…"
    return header_text(text, also="|")


def name_note(raw: Any, name: str, number: int) -> str | None:
    """The warning for segment ``number`` whose name ``raw`` was cleaned to ``name``, or None
    when there was nothing to say (only ordinary spaces were collapsed)."""
    if any(_is_control(ch) and not ch.isspace() for ch in str(raw)):
        return f"segment {number}: control characters in the name were replaced by U+FFFD: '{name}'"
    if name != raw and any(_is_control(ch) for ch in str(raw)):
        return f"segment {number}: line breaks or tabs in the name were replaced by spaces: '{name}'"
    return None


def sanitize_names(result: Result) -> list[str]:
    """Clean every segment name of ``result`` in place (:func:`clean_name`); returns, and adds to
    ``result.warnings``, one warning per name that had control characters. Idempotent
    (:func:`pipeline.run.segment` already gives clean names; a hand-made Result may not)."""
    notes = []
    for n, seg in enumerate(result.segments, start=1):
        name = segment_name(seg.name, n)
        note = name_note(seg.name, name, n)
        if note is not None:
            notes.append(note)
        seg.name = name
    result.warnings.extend(notes)
    return notes


def display_text(text: Any) -> str:
    """``text`` safe to print on a terminal: line breaks and tabs -> space, every other control
    character (ESC of an escape sequence, C1 CSI, NUL, BEL, DEL) and lone surrogates -> U+FFFD."""
    return "".join(" " if ch in "\t\n\r\x0b\x0c" else "\ufffd" if _is_control(ch) else ch for ch in str(text))


def replace_surrogates(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes of a command line) as U+FFFD: no encoder
    of a file format takes them."""
    return _SURROGATES.sub("\ufffd", text)
