"""The live preview under the description box: what the query parser understood, as HTML."""

from __future__ import annotations

import html

#: LesionQuery fields shown, with their short labels, in reading order.
SHOWN_FIELDS: tuple[tuple[str, str], ...] = (
    ("organ", "organ"), ("side", "side"), ("sub_location", "where"), ("lesion_type", "type"),
    ("shape", "shape"), ("density", "density"), ("surface", "surface"), ("enhancement", "enhancement"),
)


def preview_html(text: str, max_chars: int = 40) -> str:
    """One line per description: its facts, unknown words in red, then the parser's message.

    Never raises: a parser failure is shown as text, so typing is never interrupted.
    """
    if not text or not text.strip():
        return ""
    try:
        from ..query import parse_text

        parsed = parse_text(text)
    except Exception as error:  # noqa: BLE001 - the preview must never break typing
        return html.escape(f"Cannot read the text: {error}")
    lines = []
    for query in parsed.queries:
        facts = [f"{label}: {getattr(query, name)}" for name, label in SHOWN_FIELDS if getattr(query, name, None)]
        unknown = "".join(
            f' <span style="color:#c00">?{html.escape(word)}</span>' for word in query.unknown_words
        )
        title = query.text if len(query.text) <= max_chars else query.text[: max_chars - 1] + "…"
        lines.append(f"<b>{html.escape(title)}</b>: {html.escape(', '.join(facts) or 'no lesion facts')}{unknown}")
    if parsed.message:
        lines.append(f"<i>{html.escape(parsed.message)}</i>")
    return "<br>".join(lines)
