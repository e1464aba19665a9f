"""English and 简体中文 through the standard library's ``gettext``.

The catalog is ``locale/zh_CN/LC_MESSAGES/dropblock_lab.po`` (source, checked in) and its compiled
``.mo`` (checked in too; ``python -m ui.i18n`` rebuilds it). English is the source language, so
``_("text")`` returns the text itself in English and its translation in Chinese.

Every string a visitor can see goes through ``_()``: labels, help texts, captions, messages, lesson
steps and figure labels. Strings with values use ``str.format`` *after* translation, never an
f-string inside ``_()``::

    st.caption(_("{n} channels of {total}").format(n=8, total=1024))

Text defined in ``models/`` (which never imports streamlit or this module) is marked with ``N_()``
there (an identity function, for extraction) and translated here at display time.

The language belongs to the session: the sidebar's switch and the URL's ``lang`` set
``st.session_state["lang"]``; outside a script run (worker threads, tests of plain functions) the
language is the one set with :func:`use_language` (English unless set).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
from pathlib import Path


DOMAIN = "dropblock_lab"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
LANGUAGES = {"en": "English", "zh": "简体中文"}
_GETTEXT_CODE = {"zh": "zh_CN"}

_fallback: contextvars.ContextVar[str] = contextvars.ContextVar("dropblock_lab_language", default="en")
MISSING: set[str] = set()  # msgids asked for in a non-English language with no translation (for tests)
_MISSING_MAX = 1000  # a long-running server never grows it without bound (a message may carry a value)


def _missing(message: str) -> None:
    if len(MISSING) < _MISSING_MAX:
        MISSING.add(message)


@functools.lru_cache(maxsize=len(LANGUAGES) + 1)  # bounded: whatever language code it is asked for
def catalog(lang: str) -> gettext.NullTranslations:
    if lang not in _GETTEXT_CODE:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[_GETTEXT_CODE[lang]], fallback=True)


def language() -> str:
    """The language of the running session (``st.session_state["lang"]``), else the fallback."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        run = get_script_run_ctx(suppress_warning=True)
        if run is not None:
            # set from the URL by the entrypoint (ui/settings.py init_from_url), then by the sidebar's switch
            try:  # one look (each is a point where Streamlit may stop the run for a newer one)
                lang = run.session_state["lang"]
            except KeyError:
                lang = None
            if lang in LANGUAGES:
                return lang
    except Exception:  # no streamlit runtime: plain functions, worker threads
        pass
    return _fallback.get()


@contextlib.contextmanager
def use_language(lang: str):
    """Translate into ``lang`` outside a script run (worker threads, tests)."""
    token = _fallback.set(lang if lang in LANGUAGES else "en")
    try:
        yield
    finally:
        _fallback.reset(token)


def _(message: str) -> str:
    """``message`` in the session's language."""
    lang = language()
    if lang == "en" or not any(ch.isalpha() for ch in message):  # "3/12", "": nothing to translate
        return message
    cat = catalog(lang)
    known = getattr(cat, "_catalog", {})
    if message not in known:
        _missing(message)
        return message
    return cat.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    lang = language()
    if lang == "en":
        return singular if n == 1 else plural
    cat = catalog(lang)
    if (singular, 0) not in getattr(cat, "_catalog", {}):
        _missing(singular)
    return cat.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is defined; translate it with ``_()`` where shown."""
    return message


def tr(message: str | BaseException) -> str:
    """A message from ``models/`` in the session's language.

    ``message`` is a :class:`models.text.Text` (template and fields: the template is translated,
    then formatted, its ``Text`` fields translated too), an exception carrying one (``ImageError``,
    ``SetError``, ``WeightsFileError``), or a string marked with ``N_`` (translated as it is).
    """
    from models.text import Joined, Text, text_of  # here: importing this module loads no torch (app.py)

    if isinstance(message, BaseException):
        message = text_of(message)
    if isinstance(message, Joined):
        return message.sep.join(tr(part) for part in message.parts)
    if isinstance(message, Text):
        if not message.fields:
            return _(message.template)
        fields = {k: tr(v) if isinstance(v, (Text, Joined)) else v for k, v in message.fields.items()}
        return _(message.template).format(**fields)
    return _(message)


_SEPARATORS = {"en": (", ", "; "), "zh": ("、", "；")}  # (between numbers or names, between clauses)


def listing(items, *, clauses: bool = False) -> str:
    """``items`` (strings) in one line with the language's separator: between numbers or names ", "
    (Chinese "、", so that a list of numbers never reads as decimals or thousands), between clauses
    "; " (Chinese "；"). Punctuation alone is not a message (``_()`` leaves it as it is), hence the table."""
    return _SEPARATORS.get(language(), _SEPARATORS["en"])[1 if clauses else 0].join(items)


def shown_text(value: str) -> str:
    """``value`` translated if it is a message from ``models/`` (a ``Text``), else as it is (a name, a number)."""
    from models.text import Joined, Text

    return tr(value) if isinstance(value, (Text, Joined)) else value


if __name__ == "__main__":  # python -m ui.i18n: extract, check and compile the catalogs
    import sys

    from ui.i18n_build import main

    sys.exit(main())
