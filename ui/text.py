"""Visitor-controlled text, shown inert: file names, URL values, reasons that name them.

Everything a visitor controls is shown as plain text: control and format characters written as
escapes, truncated, and either inside a Markdown code span (:func:`plain`) or with every ASCII
punctuation backslash-escaped (:func:`escaped`), never interpreted as Markdown, HTML or LaTeX.
"""

from __future__ import annotations

import re
import unicodedata


def visible(text: str) -> str:
    """Control and format characters (NUL, bidi overrides, zero-width) written as escapes
    (``\\u200b``), so a value that holds them does not look like one that does not."""
    return "".join(ascii(ch)[1:-1] if unicodedata.category(ch)[0] == "C" else ch for ch in text)


def plain(text: str, limit: int, *, keep_end: int = 0) -> str:
    """Visitor-controlled text as inert Markdown: :func:`visible`, truncated to ``limit`` characters
    (keeping the last ``keep_end``, for a file's extension), inside a code span, where Markdown,
    links, images, HTML, LaTeX and Streamlit's colour and icon directives are not interpreted."""
    was_long = len(text) > 4 * limit
    if was_long:  # bound the work on a huge string: its head and tail are all that can be shown
        text = text[: 2 * limit] + text[-2 * limit :]
    text = visible(text)
    text = " ".join(text.replace("`", "'").split())
    if len(text) > limit or was_long:
        text = text[: limit - keep_end - 1] + "…" + (text[-keep_end:] if keep_end else "")
    return f"`{text}`" if text else "(empty)"


def escaped(text: str, limit: int | None = 80) -> str:
    """Untrusted text inside a sentence (a file name, a reason naming one), shown verbatim through
    Markdown: :func:`visible`, truncated to ``limit`` characters (None: not truncated), every ASCII
    punctuation backslash-escaped (no links, images, HTML or emoji codes)."""
    text = visible(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)
