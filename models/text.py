"""User-facing text defined in ``models/``, kept translatable without importing the UI.

``models/`` never imports streamlit nor ``ui/``, so it cannot translate. It marks its English
strings with :func:`N_` (an identity, for extraction by ``python -m ui.i18n``) and, where a
message has values in it, builds a :class:`Text`: a ``str`` holding the English sentence (so
``str(err)``, comparisons and logs are unchanged) that also keeps its template and fields, from
which ``ui.i18n.tr`` formats the translation::

    raise ImageError(Text(N_("The image is {width}x{height} pixels."), width=w, height=h))
    # str(err) == "The image is 5x7 pixels."; in Chinese the UI shows 图像为 5x7 像素。
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["N_", "Joined", "Text", "text_of"]


def N_(message: str) -> str:
    """Mark ``message`` for translation; returns it unchanged (the UI translates it when shown)."""
    return message


class Text(str):
    """An English sentence made from ``template.format(**fields)``, which remembers both.

    A field may itself be a :class:`Text` (or a marked string), translated with the template.
    """

    template: str
    fields: Mapping[str, object]

    def __new__(cls, template: str, **fields: object) -> Text:
        self = super().__new__(cls, template.format(**fields) if fields else template)
        self.template = template
        self.fields = fields
        return self

    def __reduce__(self):  # pickle as (template, fields), not as the formatted sentence
        return _rebuild, (self.template, dict(self.fields))


def _rebuild(template: str, fields: dict[str, object]) -> Text:
    return Text(template, **fields)


class Joined(str):
    """Messages joined by ``sep`` (a list of reasons), each translated on its own when shown."""

    parts: tuple[str, ...]
    sep: str

    def __new__(cls, parts, sep: str = "; ") -> Joined:
        parts = tuple(parts)
        self = super().__new__(cls, sep.join(parts))
        self.parts = parts
        self.sep = sep
        return self

    def __reduce__(self):
        return Joined, (self.parts, self.sep)


def text_of(error: BaseException) -> str:
    """The message of ``error``: its :class:`Text` argument if it has one, else ``str(error)``."""
    if error.args and isinstance(error.args[0], Text):
        return error.args[0]
    return str(error)
