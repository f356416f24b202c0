"""The live preview under the description box: what the query parser understood, as HTML, in
the user's language (English or Chinese).

Each value says how it was read: stated values plainly, values the text implies with
"(implied)", values read by the text encoder with their similarity ("≈0.62"), and values the
knowledge table infers for the lesion type greyed and marked "(inferred)" — those are not what
the radiologist said, and the selection never uses them. Words the parser could not place are in
red with a "?".
"""

from __future__ import annotations

import html

#: LesionQuery fields shown, with their short labels, in reading order (English labels).
SHOWN_FIELDS: tuple[tuple[str, str], ...] = (
    ("organ", "organ"), ("side", "side"), ("sub_location", "where"), ("lesion_type", "type"),
    ("shape", "shape"), ("density", "density"), ("surface", "surface"), ("enhancement", "enhancement"),
)
_INFERRED_STYLE = "color:#888;font-style:italic"


def _fact(label: str, value: str, how: str, language: str, confidence: float | None) -> str:
    from ..query.display import label as word

    text = html.escape(f"{label}: {value}")
    if how == "implied":
        return f"{text} ({html.escape(word('implied', language))})"
    if how == "similar":
        return f"{text} (≈{confidence:.2f} {html.escape(word('similar', language))})" if confidence else text
    if how == "inferred":
        return f'<span style="{_INFERRED_STYLE}">{text} ({html.escape(word("inferred", language))})</span>'
    return text


def preview_html(text: str, max_chars: int = 40) -> str:
    """One line per description: its facts, unknown words in red, then the parser's message.

    Never raises: a parser failure is shown as text, so typing is never interrupted.
    """
    if not text or not text.strip():
        return ""
    try:
        from ..query import parse_text
        from ..query.display import label, rows

        parsed = parse_text(text)
    except Exception as error:  # noqa: BLE001 - the preview must never break typing
        return html.escape(f"Cannot read the text: {error}")
    lines = []
    language = parsed.queries[0].language if parsed.queries else "en"
    for query in parsed.queries:
        lang = query.language or "en"
        facts = [_fact(lab, value, how, lang, query.confidence.get(name)) for name, lab, value, how in rows(query, lang)]
        unknown = "".join(
            f' <span style="color:#c00">?{html.escape(word)}</span>' for word in query.unknown_words
        )
        title = query.text if len(query.text) <= max_chars else query.text[: max_chars - 1] + "…"
        empty = "no lesion facts" if lang == "en" else "未识别病灶特征"
        lines.append(f"<b>{html.escape(title)}</b>: {', '.join(facts) or html.escape(empty)}{unknown}")
    if parsed.queries and language == "zh":
        summary = label("lesions", "zh").format(n=len(parsed.queries))
        notes = "; ".join(parsed.warnings)
        lines.append(f"<i>{html.escape(summary + ('。 ' + notes if notes else '。'))}</i>")
    elif parsed.message:
        lines.append(f"<i>{html.escape(parsed.message)}</i>")
    return "<br>".join(lines)
