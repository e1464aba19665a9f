"""Every setting a visitor controls, one row each: the URL parser, the widgets and the spec come from here.

A :class:`Setting` row holds a setting's URL key, session key, default, range and step (or
options, or on/off), label, help and widget, and the :class:`models.RegularizerSpec` field it
sets. The DropBlock parameters' defaults are the library's own (``RegularizerSpec()``), written
once there. From the table come:

* the URL's parsing on a session's first run (:func:`init_from_url`) and the share link
  (:func:`sync_url`);
* the check of every value read from session state (:func:`check`), which a client may have
  forged (``ui/widget_guard.py`` stops most before they get here);
* the widgets (:func:`widget`), in the sidebar, the presenter's control bar and a page's fragment;
* the spec the views compute with (:func:`spec`), and the projection of a spec onto the settings
  a view depends on (:func:`project`, used by ``ui/view.py``).

Parameters live in ``st.session_state`` under the rows' keys, so they persist across pages.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import streamlit as st

import models as M
from ui import layout
from ui.i18n import LANGUAGES, N_, _
from ui.text import plain

# option labels are English (marked with N_); show them with _(), e.g. format_func=lambda k: _(PLACEMENTS[k])
SAMPLES = {"coffee": N_("Coffee cup"), "chelsea": N_("Chelsea the cat"), "astronaut": N_("Astronaut"),
           "rocket": N_("Rocket launch")}
PLACEMENTS = {"after_group": N_("After one group"), "in_blocks": N_("Inside blocks of groups 3 & 4 (paper)")}
REGIONS = {"valid": N_("Valid region (paper)"), "everywhere": N_("Everywhere, truncated (timm/tutorial)")}
GAMMA_MODES = {"eq1": N_("Eq. (1) (paper)"), "calibrated": N_("Calibrated: expected drop = 1 − keep_prob")}
NORMALIZE = {"sample": N_("Per sample (MC samples independent)"), "batch": N_("Over the batch (TF/torchvision/timm)")}

_URL_MAX_CHARS = 32  # longer URL values are ignored without being parsed
_URL_SHOWN = 24  # characters of a URL value shown back
_URL_SKIP = ("embed", "embed_options")  # Streamlit's own parameters
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # ASCII digits only
_INT = re.compile(r"[+-]?[0-9]+")
_SPEC = M.RegularizerSpec()  # the library's defaults: the DropBlock rows' defaults


class Unusable(ValueError):
    """A value that cannot be used; the message says why."""


@dataclass(frozen=True)
class Setting:
    """One setting, one row.

    Attributes:
        url: its key in the URL's query string.
        key: its key in session state (the widget's key).
        default: the value without a URL or a widget.
        lo, hi, step: a number's range; ``step`` None means a whole number.
        options: a choice's values (keys) and their labels (N_-marked; values the labels).
        label, help: the widget's (N_-marked; translated when drawn).
        widget: ``"slider"``, ``"number"``, ``"select"``, ``"radio"`` or ``"toggle"``; a whole number's
            ``"select"`` offers lo..hi, each shown as ``shown_as``.
        field: the ``RegularizerSpec`` field it sets (None: not a spec field).
        negate: the field is the setting's negation (one shared mask = not per channel).
    """

    url: str
    key: str
    default: object
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    options: dict | None = None
    label: str = ""
    help: str | None = None
    widget: str = "select"
    field: str | None = None
    negate: bool = False
    shown_as: str | None = None  # a whole number's label in a select widget (N_-marked), e.g. "group {value}"

    def parse(self, text: str) -> tuple[object, str | None]:
        """A URL (or string) value: (value used, why it differs from the one given), or raises :class:`Unusable`."""
        if len(text) > _URL_MAX_CHARS:  # refused unread: no 5,000-digit number reaches int() or float()
            raise Unusable(_("longer than {n} characters").format(n=_URL_MAX_CHARS))
        text = text.strip()
        if not text:
            raise Unusable(_("empty"))
        if self.options is not None:
            if text not in [str(k) for k in self.options]:
                raise Unusable(_("not one of {options}").format(options=", ".join(map(str, self.options))))
            return next(k for k in self.options if str(k) == text), None
        if self.lo is None:
            return _flag(text)
        return self._number(text)

    def _number(self, text: str) -> tuple[float | int, str | None]:
        if self.step is None:
            if not _INT.fullmatch(text):
                raise Unusable(_("not a whole number"))
            given: float = int(text)  # at most _URL_MAX_CHARS digits: no overflow, no slow parse
        else:
            if not _FLOAT.fullmatch(text):
                raise Unusable(_("not a number"))
            given = float(text)
            if not math.isfinite(given):
                raise Unusable(_("not a finite number"))
        used = min(self.hi, max(self.lo, given))
        note = (_("below the minimum {lo:g}").format(lo=self.lo) if given < self.lo
                else _("above the maximum {hi:g}").format(hi=self.hi) if given > self.hi else None)
        if self.step is not None:
            steps = round(used / self.step)
            if note is None and abs(used / self.step - steps) > 1e-9:
                note = _("not a multiple of {step:g}").format(step=self.step)
            used = round(steps * self.step, 10)
        return (int(used) if self.step is None else used), note

    def check(self, value: object) -> tuple[object, str | None]:
        """A value from session state, checked exactly as the URL's text is: (value used, why it
        differs), or raises :class:`Unusable` (wrong type, not an option, not a finite number)."""
        if self.options is None and self.lo is None:  # on/off
            if not isinstance(value, bool):
                raise Unusable(_("not one of {options}").format(options="1, 0"))
            return value, None
        if self.options is not None:
            if isinstance(value, bool) or not isinstance(value, (str, int)) or value not in self.options:
                raise Unusable(_("not one of {options}").format(options=", ".join(map(str, self.options))))
            return value, None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Unusable(_("not a number"))
        if not math.isfinite(value):
            raise Unusable(_("not a finite number"))
        if self.step is None and value != int(value):
            raise Unusable(_("not a whole number"))
        return self.parse(repr(float(value)) if self.step is not None else str(int(value)))

    def shown(self, value: object) -> str:
        """A value as the notes show it."""
        if isinstance(value, bool):
            return _("on") if value else _("off")
        return f"{value:g}" if isinstance(value, float) else str(value)


def _flag(text: str) -> tuple[bool, None]:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True, None
    if low in ("0", "false", "no", "off"):
        return False, None
    raise Unusable(_("not one of {options}").format(options="1, 0, true, false, yes, no, on, off"))


SETTINGS = (
    Setting("image", "image", "coffee", options=SAMPLES, label=N_("Sample image")),
    Setting("kp", "keep_prob", _SPEC.keep_prob, 0.05, 1.0, 0.05, label=N_("keep_prob"), widget="slider",
            help=N_("Probability of keeping a unit; 1 − keep_prob is the drop budget."), field="keep_prob"),
    Setting("b", "block_size", _SPEC.block_size, 1, 15, label=N_("block_size"), widget="slider",
            help=N_("Side of the dropped square (clipped to the map)."), field="block_size"),
    Setting("seed", "seed", 0, 0, 10_000, label=N_("Seed"), widget="number",
            help=N_("Same seed, same masks: a rerun does not reshuffle.")),
    Setting("group", "group", _SPEC.group, 1, 4, label=N_("Group (for 'after one group')"), field="group",
            shown_as=N_("group {value}")),
    Setting("place", "placement", _SPEC.placement, options=PLACEMENTS, label=N_("Placement"), widget="radio",
            field="placement"),
    Setting("shared", "shared_mask", not _SPEC.per_channel, label=N_("One mask shared by all channels"),
            widget="toggle", field="per_channel", negate=True),
    Setting("region", "seed_region", _SPEC.seed_region, options=REGIONS, label=N_("DropBlock seeds"), widget="radio",
            field="seed_region"),
    Setting("gamma", "gamma_mode", _SPEC.gamma_mode, options=GAMMA_MODES, label=N_("DropBlock γ"), widget="radio",
            help=N_("Eq. (1) ignores overlapping blocks and drops a little less than asked."), field="gamma_mode"),
    Setting("norm", "normalize", _SPEC.normalize, options=NORMALIZE, label=N_("Normalisation count(M)/count_ones(M)"),
            widget="radio", help=N_("Algorithm 1 does not say over what M is counted."), field="normalize"),
    Setting("site", "act_site", _SPEC.act_site, options=M.SITE_ACTS, label=N_("Site inside blocks"), widget="radio",
            field="act_site"),
    Setting("lang", "lang", "en", options=LANGUAGES, label="Language / 语言"),
    Setting("step", "lesson_step", 1, 1, 8),  # the guided lesson's step (ui/lesson.py)
    Setting("present", layout.PRESENT, False, label=N_("Presenter mode"), widget="toggle",
            help=N_("A projector view: no sidebar, large type, the main figure at full width; "
                    "on the lesson, the arrow keys step. The link keeps it (present=1).")),
)
BY_URL = {row.url: row for row in SETTINGS}
BY_KEY = {row.key: row for row in SETTINGS}
LIVE = ("keep_prob", "block_size", "seed")  # the controls a page's fragment may draw
SPEC_KEYS = tuple(row.key for row in SETTINGS if row.field is not None)
MODEL_KEYS = ("arch", "weights")  # checked against the server's lists by ui/inputs.py
_KEPT = "_settings_kept"  # a plain session-state entry (no widget's): the settings' last values
_log = logging.getLogger("dropblock_lab")


def _label(row: Setting) -> str:
    return row.label if row.key == "lang" else _(row.label)


def _format(row: Setting) -> Callable[[object], str]:
    options = row.options
    return (lambda k: options[k]) if row.key == "lang" else (lambda k: _(options[k]))


def widget(key: str) -> None:
    """The setting's widget, in the current container, built from its row."""
    row = BY_KEY[key]
    common = {"key": row.key, "help": _(row.help) if row.help else None}
    if row.widget == "slider":
        st.slider(_label(row), row.lo, row.hi, step=row.step, **common)
    elif row.widget == "number":
        st.number_input(_label(row), row.lo, row.hi, **common)
    elif row.widget == "toggle":
        st.toggle(_label(row), **common)
    elif row.widget == "radio":
        st.radio(_label(row), list(row.options), format_func=_format(row), **common)
    elif row.options is None:  # a whole number from a list
        st.selectbox(_label(row), list(range(int(row.lo), int(row.hi) + 1)),
                     format_func=lambda v: _(row.shown_as).format(value=v), **common)
    else:
        st.selectbox(_label(row), list(row.options), format_func=_format(row), **common)


def live_widgets() -> None:
    """keep_prob, block_size and the seed, in the current container."""
    st.subheader(_("Regulariser"))
    for key in LIVE:
        widget(key)


def init_from_url() -> None:
    """On a session's first run, take the settings from the URL. A value that cannot be used is
    ignored (the default is used); one outside the range or steps is clamped; either way one
    message, on this first run, lists each parameter and what was used instead."""
    if st.session_state.get("_url_loaded"):
        return
    notes: list[str] = []
    # the language first, so every note is in it
    for row in sorted(SETTINGS, key=lambda row: row.url != "lang"):
        value, given, first = row.default, [], len(notes)
        if row.url in st.query_params:
            given = st.query_params.get_all(row.url)
            text = given[-1]
            try:
                value, why = row.parse(text)
                if why:
                    notes.append(_("**{key}** = {given} is {why}; using {used}.").format(
                        key=row.url, given=plain(text, _URL_SHOWN), why=why, used=row.shown(value)))
            except Unusable as why:
                notes.append(_("**{key}** = {given} is ignored ({why}); using the default {default}.").format(
                    key=row.url, given=plain(text, _URL_SHOWN), why=why, default=row.shown(row.default)))
        st.session_state.setdefault(row.key, value)
        if len(set(given)) > 1:  # after setting the value: "lang" given twice is said in the language used
            notes.insert(first, _("**{key}** is given {n} times; the last one is used.").format(key=row.url,
                                                                                             n=len(given)))
    unknown = [k for k in st.query_params if k not in BY_URL and k not in _URL_SKIP]
    if unknown:
        names = ", ".join(plain(k, _URL_SHOWN) for k in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        notes.append(_("Unknown parameters are ignored: {names}. Known: {known}.").format(
            names=names, known=", ".join(BY_URL)))
    st.session_state["_url_loaded"] = True
    if notes:
        st.warning(_("Some settings in the link could not be used as given:") + "\n\n"
                   + "\n".join(f"- {n}" for n in notes), icon="🔗")


def check(keys: Iterable[str] | None = None) -> None:
    """Every setting read from session state is checked against its row, exactly as the URL's
    values are: a value no widget offers (a path for the sample, a placement that does not exist,
    a seed of 10^300) is replaced by the default, one off the range or steps is clamped, before
    anything reads it. The server log gets one line, without the value."""
    for row in SETTINGS if keys is None else [BY_KEY[k] for k in keys]:
        if row.key not in st.session_state:
            continue
        value = st.session_state[row.key]
        try:
            used, _why = row.check(value)
        except Unusable:
            used = row.default
        if used != value or type(used) is not type(value):
            _log.warning("setting %s: a value no widget offers was replaced", row.url)
            st.session_state[row.key] = used


def keep(extra: Iterable[str] = MODEL_KEYS) -> None:
    """Widget values are dropped when a page without that widget runs; every page draws the
    sidebar, and re-assigning the keys keeps the values across page switches. Streamlit 1.67 also
    drops them when a page switch follows a fragment's own run (a page's control), even though the
    sidebar is drawn on every page: those come back from the copy :func:`remember` keeps."""
    keys = [row.key for row in SETTINGS] + list(extra)
    kept = st.session_state.get(_KEPT, {})
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
        elif key in kept:
            st.session_state[key] = kept[key]
    remember(keys)


def remember(keys: Iterable[str]) -> None:
    """Copy these settings' current values where Streamlit does not drop them (see :func:`keep`)."""
    kept = st.session_state.setdefault(_KEPT, {})
    kept.update({key: st.session_state[key] for key in keys if key in st.session_state})


def sync_url() -> None:
    """The settings into the URL, in one message and only what changed: each assignment to
    ``st.query_params`` is a message the browser acts on (14 per rerun when written key by key)."""
    want = {row.url: str(int(value) if isinstance(value, bool) else value)
            for row in SETTINGS for value in [st.session_state.get(row.key, row.default)]}
    changed = {k: v for k, v in want.items() if st.query_params.get_all(k) != [v]}  # a repeated key too
    if changed:
        st.query_params.update(changed)


def value(key: str) -> object:
    """A setting's current value (its default before the session has one)."""
    row = BY_KEY[key]
    return st.session_state.get(row.key, row.default)


def spec() -> M.RegularizerSpec:
    """The regulariser the settings describe (every spec field comes from its row)."""
    return _spec_of(value)


def default_spec() -> M.RegularizerSpec:
    """The regulariser of a session that has set nothing: every row at its default (no session needed)."""
    return _spec_of(lambda key: BY_KEY[key].default)


def _spec_of(value_of: Callable[[str], object]) -> M.RegularizerSpec:
    return M.RegularizerSpec(**{row.field: (not value_of(row.key)) if row.negate else value_of(row.key)
                                for row in SETTINGS if row.field is not None})


def project(spec: M.RegularizerSpec, depends: Iterable[str]) -> M.RegularizerSpec:
    """``spec`` with every field set by a setting not in ``depends`` back at its default: a view
    that does not depend on a setting is computed, and keyed, as if it had its default."""
    depends = set(depends)
    reset = {row.field: (not row.default) if row.negate else row.default
             for row in SETTINGS if row.field is not None and row.key not in depends}
    return dataclasses.replace(spec, **reset) if reset else spec
