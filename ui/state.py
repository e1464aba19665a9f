"""Shared sidebar, URL parameters and caches: the one place pages get their inputs from.

* Parameters live in ``st.session_state`` (widget keys), so they persist across pages, and are
  mirrored into the URL query string so a teacher can share a link that opens the same view.
* ``st.cache_resource`` holds the models (a ``models.registry.ModelCache``: the default pinned, two
  others in an LRU, shared by every session and never modified; chosen only from server-side
  lists); each model's clean passes live with it (``models.fallback.cached_clean_pass``: an evicted
  model takes them along); ``st.cache_data`` holds decoded images; the results of the
  ``models.compute_*`` functions are cached by content in ``models/jobs.py`` (bounded, computed
  once across sessions, heavy ones on a queue), see "cached computations" below.
* Uploads are decoded in memory and never written to disk. The decoded picture (at most
  1024 px) and its cleaned name stay in this session's ``st.session_state`` (not a widget), so
  every page shows it until "Clear upload"; other sessions never see it.
* Everything a visitor controls (URL values, file names) is shown as plain text: truncated,
  stripped of control characters and put in a Markdown code span, never as Markdown.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import logging
import math
import os
import re
import runpy
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch
from streamlit.runtime.scriptrunner import get_script_run_ctx
from PIL import Image

import models as M
from models import jobs
from models.fallback import cached_clean_pass, compute_with_fallback
from models.keepgrid import compute_keep_prob_scan
from models.registry import ModelCache
from models.theory import compute_algorithm_steps, compute_depth_contrast, compute_mistakes, compute_tutorial_contrasts
from models.weights_files import ENV_WEIGHTS_DIR, WeightsFileError, list_weights_dir, operator_file, resolve_in_dir
from ui import layout
from ui.i18n import LANGUAGES, N_, _, ngettext, shown_text, tr

ASSETS = Path(__file__).resolve().parents[1] / "assets"
ENTRYPOINT = ASSETS.parent / "app.py"
SAMPLES = {"coffee": N_("Coffee cup"), "chelsea": N_("Chelsea the cat"), "astronaut": N_("Astronaut"),
           "rocket": N_("Rocket launch")}
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"]
MAX_UPLOAD_BYTES = 25 * 1024 * 1024

LESSON_URL = "Lesson"
NAV = [  # (page file, URL path ("" = the home page at "/"), title (translated when shown), icon)
    ("pages/0_Home.py", "", N_("Home"), "🧱"),
    ("pages/0_Lesson.py", LESSON_URL, N_("Lesson"), "🎓"),
    ("pages/1_Mask_explorer.py", "Mask_explorer", N_("Mask explorer"), "🔍"),
    ("pages/2_Compare_methods.py", "Compare_methods", N_("Compare methods"), "⚖️"),
    ("pages/3_CAM_shift.py", "CAM_shift", N_("CAM shift"), "🔥"),
    ("pages/4_Robustness_curve.py", "Robustness_curve", N_("Robustness curve"), "📉"),
    ("pages/5_Theory_and_schedule.py", "Theory_and_schedule", N_("Theory & schedule"), "📐"),
    ("pages/6_DropBlock_and_Dropout.py", "DropBlock_and_Dropout", N_("DropBlock + Dropout"), "🧩"),
    ("pages/7_Image_set.py", "Image_set", N_("Image set"), "🗂️"),
]
# option labels are English (marked with N_); show them with _(), e.g. format_func=lambda k: _(PLACEMENTS[k])
PLACEMENTS = {"after_group": N_("After one group"), "in_blocks": N_("Inside blocks of groups 3 & 4 (paper)")}
REGIONS = {"valid": N_("Valid region (paper)"), "everywhere": N_("Everywhere, truncated (timm/tutorial)")}
GAMMA_MODES = {"eq1": N_("Eq. (1) (paper)"), "calibrated": N_("Calibrated: expected drop = 1 − keep_prob")}
NORMALIZE = {"sample": N_("Per sample (MC samples independent)"), "batch": N_("Over the batch (TF/torchvision/timm)")}

MAX_NAME_CHARS = 255  # longer upload names are refused
_NAME_SHOWN = 48  # characters of a file name shown back
_URL_MAX_CHARS = 32  # longer URL values are ignored without being parsed
_URL_SHOWN = 24  # characters of a URL value shown back
_URL_SKIP = ("embed", "embed_options")  # Streamlit's own parameters
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # ASCII digits only
_INT = re.compile(r"[+-]?[0-9]+")


class _Unusable(ValueError):
    """A URL value that cannot be used; the message says why."""


def _number(lo: float, hi: float, step: float | None = None) -> Callable[[str], tuple[float | int, str | None]]:
    """Parser for a number in [lo, hi] (an int when ``step`` is None, else a float on the step
    grid), returning (value used, why it differs from the one given, or None)."""

    def parse(text: str) -> tuple[float | int, str | None]:
        if step is None:
            if not _INT.fullmatch(text):
                raise _Unusable(_("not a whole number"))
            given: float = int(text)  # at most _URL_MAX_CHARS digits: no overflow, no slow parse
        else:
            if not _FLOAT.fullmatch(text):
                raise _Unusable(_("not a number"))
            given = float(text)
            if not math.isfinite(given):
                raise _Unusable(_("not a finite number"))
        used = min(hi, max(lo, given))
        note = (_("below the minimum {lo:g}").format(lo=lo) if given < lo
                else _("above the maximum {hi:g}").format(hi=hi) if given > hi else None)
        if step is not None:
            steps = round(used / step)
            if note is None and abs(used / step - steps) > 1e-9:
                note = _("not a multiple of {step:g}").format(step=step)
            used = round(steps * step, 10)
        return (int(used) if step is None else used), note

    return parse


def _choice(options) -> Callable[[str], tuple[str, None]]:
    def parse(text: str) -> tuple[str, None]:
        if text not in options:
            raise _Unusable(_("not one of {options}").format(options=", ".join(options)))
        return text, None

    return parse


def _flag(text: str) -> tuple[bool, None]:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True, None
    if low in ("0", "false", "no", "off"):
        return False, None
    raise _Unusable(_("not one of {options}").format(options="1, 0, true, false, yes, no, on, off"))


@dataclass(frozen=True)
class Setting:
    """One setting, one row: its URL key, session key, default and what values it takes (a range
    and step, or options, or on/off). The URL parser, the check of every value read from session
    state (a widget's value as a client sent it) and the widgets' ranges all come from here."""

    url: str
    key: str
    default: object
    lo: float | None = None
    hi: float | None = None
    step: float | None = None  # None with lo/hi: a whole number
    options: dict | None = None  # a choice: its keys (labels as values)

    def parse(self, text: str) -> tuple[object, str | None]:
        """A URL (or string) value: (value used, why it differs), or raises _Unusable."""
        if self.options is not None:
            return _choice(self.options)(text)
        if self.lo is None:
            return _flag(text)
        return _number(self.lo, self.hi, self.step)(text)

    def check(self, value: object) -> tuple[object, str | None]:
        """A value from session state, checked exactly as the URL's text is: (value used, why it
        differs), or raises _Unusable (wrong type, not an option, not a finite number)."""
        if self.options is None and self.lo is None:  # on/off
            if not isinstance(value, bool):
                raise _Unusable(_("not one of {options}").format(options="1, 0"))
            return value, None
        if self.options is not None:
            if not isinstance(value, str):
                raise _Unusable(_("not one of {options}").format(options=", ".join(self.options)))
            return self.parse(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Unusable(_("not a number"))
        if not math.isfinite(value):
            raise _Unusable(_("not a finite number"))
        if self.step is None and value != int(value):
            raise _Unusable(_("not a whole number"))
        return _read_url_value(repr(float(value)) if self.step is not None else str(int(value)), self.parse)


SETTINGS = (
    Setting("image", "image", "coffee", options=SAMPLES),
    Setting("kp", "keep_prob", 0.9, 0.05, 1.0, 0.05),
    Setting("b", "block_size", 7, 1, 15),
    Setting("seed", "seed", 0, 0, 10_000),
    Setting("group", "group", 3, 1, 4),
    Setting("place", "placement", "after_group", options=PLACEMENTS),
    Setting("shared", "shared_mask", False),
    Setting("region", "seed_region", "valid", options=REGIONS),
    Setting("gamma", "gamma_mode", "eq1", options=GAMMA_MODES),
    Setting("norm", "normalize", "sample", options=NORMALIZE),
    Setting("site", "act_site", "after_act", options=M.SITE_ACTS),
    Setting("lang", "lang", "en", options=LANGUAGES),
    Setting("step", "lesson_step", 1, 1, 8),  # the guided lesson's step (ui/lesson.py)
    Setting("present", layout.PRESENT, False),
)
BY_URL = {row.url: row for row in SETTINGS}
BY_KEY = {row.key: row for row in SETTINGS}


def visible(text: str) -> str:
    """Control and format characters (NUL, bidi overrides, zero-width) written as escapes
    (``\\u200b``), so a value that holds them does not look like one that does not."""
    return "".join(ascii(ch)[1:-1] if unicodedata.category(ch)[0] == "C" else ch for ch in text)


def plain(text: str, limit: int, *, keep_end: int = 0) -> str:
    """Visitor-controlled text as inert Markdown: control and format characters (bidi overrides,
    zero-width) shown as escapes (:func:`visible`), truncated to ``limit`` characters (keeping the last ``keep_end``, for a
    file's extension), inside a code span, where Markdown, links, images, HTML, LaTeX and
    Streamlit's colour and icon directives are not interpreted."""
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
    Markdown: control and format characters shown as escapes (:func:`visible`), truncated to ``limit``
    characters (None: not truncated), every ASCII punctuation backslash-escaped (no links, images,
    HTML or emoji codes)."""
    text = visible(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


@dataclass(frozen=True, eq=False)
class Context:
    """Everything a page needs: the live model, the image, its clean pass and the parameters."""

    loaded: M.LoadedModel
    model_key: str
    image: Image.Image  # 224x224 crop the network sees
    image_key: str
    image_label: str  # Markdown-safe (an upload's name is a code span)
    clean: M.CleanPass
    spec: M.RegularizerSpec
    seed: int

    @property
    def backbone(self) -> M.Backbone:
        return self.loaded.backbone


def _init_from_url() -> None:
    """On a session's first run, take parameters from the URL. A value that cannot be used is
    ignored (the default is used); one outside the widget's range or steps is clamped; either
    way one message, on this first run, lists each parameter and what was used instead."""
    if st.session_state.get("_url_loaded"):
        return
    notes: list[str] = []
    # the language first, so every note is in it (the URL's "lang=zh%20" is read as zh, as here)
    for row in sorted(SETTINGS, key=lambda row: row.url != "lang"):
        url_key, key, default, parse = row.url, row.key, row.default, row.parse
        value, given, first = default, [], len(notes)
        if url_key in st.query_params:
            given = st.query_params.get_all(url_key)
            text = given[-1]
            try:
                value, why = _read_url_value(text, parse)
                if why:
                    notes.append(_("**{key}** = {given} is {why}; using {used}.").format(
                        key=url_key, given=plain(text, _URL_SHOWN), why=why, used=_shown(value)))
            except _Unusable as why:
                notes.append(_("**{key}** = {given} is ignored ({why}); using the default {default}.").format(
                    key=url_key, given=plain(text, _URL_SHOWN), why=why, default=_shown(default)))
        st.session_state.setdefault(key, value)
        if len(set(given)) > 1:  # after setting the value: "lang" given twice is said in the language used
            notes.insert(first, _("**{key}** is given {n} times; the last one is used.").format(
                key=url_key, n=len(given)))
    unknown = [k for k in st.query_params if k not in BY_URL and k not in _URL_SKIP]
    if unknown:
        names = ", ".join(plain(k, _URL_SHOWN) for k in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        notes.append(_("Unknown parameters are ignored: {names}. Known: {known}.").format(
            names=names, known=", ".join(BY_URL)))
    st.session_state["_url_loaded"] = True
    if notes:
        st.warning(_("Some settings in the link could not be used as given:") + "\n\n"
                   + "\n".join(f"- {n}" for n in notes), icon="🔗")


def _read_url_value(text: str, parse):
    if len(text) > _URL_MAX_CHARS:  # refused unread: no 5,000-digit number reaches int() or float()
        raise _Unusable(_("longer than {n} characters").format(n=_URL_MAX_CHARS))
    text = text.strip()
    if not text:
        raise _Unusable(_("empty"))
    return parse(text)


def _shown(value) -> str:
    if isinstance(value, bool):
        return _("on") if value else _("off")
    return f"{value:g}" if isinstance(value, float) else str(value)


_SETTINGS = [row.key for row in SETTINGS] + ["arch", "weights"]
_KEPT = "_settings_kept"  # a plain session-state entry (no widget's): the settings' last values


def _keep_widget_values() -> None:
    """Widget values are dropped when a page without that widget runs; every page draws the
    sidebar, and re-assigning the keys keeps the values across page switches. Streamlit 1.67 also
    drops them when a page switch follows a fragment's own run (a page's control), even though the
    sidebar is drawn on every page: those come back from the copy :func:`_remember` keeps."""
    kept = st.session_state.get(_KEPT, {})
    for key in _SETTINGS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
        elif key in kept:
            st.session_state[key] = kept[key]
    _remember(_SETTINGS)


def check_settings(keys=None) -> None:
    """Every setting read from session state is checked against its row, exactly as the URL's
    values are: a value a client sent that no widget offers (a path for the sample, a placement
    that does not exist, a seed of 10^300) is replaced by the default, one off the range or steps
    is clamped, before anything reads it. The server log gets one line, without the value."""
    for row in SETTINGS if keys is None else [BY_KEY[k] for k in keys]:
        if row.key not in st.session_state:
            continue
        value = st.session_state[row.key]
        try:
            used, _why = row.check(value)
        except _Unusable:
            used = row.default
        if used != value or type(used) is not type(value):
            logging.getLogger("dropblock_lab").warning("setting %s: a value no widget offers was replaced", row.url)
            st.session_state[row.key] = used


def _remember(keys) -> None:
    """Copy these settings' current values where Streamlit does not drop them (see above)."""
    kept = st.session_state.setdefault(_KEPT, {})
    kept.update({key: st.session_state[key] for key in keys if key in st.session_state})


def sync_url() -> None:
    """The settings into the URL, in one message and only what changed: each assignment to
    ``st.query_params`` is a message the browser acts on (14 per rerun when written key by key)."""
    want = {row.url: str(int(value) if isinstance(value, bool) else value)
            for row in SETTINGS for value in [st.session_state.get(row.key)]}
    changed = {k: v for k, v in want.items() if st.query_params.get_all(k) != [v]}  # a repeated key too
    if changed:
        st.query_params.update(changed)


# ------------------------------------------------------------------ caches


def _load_model(spec: M.ModelSpec, progress=None) -> M.LoadedModel:
    return M.load_spec(spec, progress=progress)


@st.cache_resource(show_spinner=False)
def _models() -> ModelCache:
    """Every session's models: the default pinned, two others in an LRU (see models/registry.py)."""
    return ModelCache(_load_model, capacity=2, remember=(WeightsFileError,), on_evict=jobs.release_memory)


@st.cache_data(show_spinner=False, max_entries=16)
def _decode(image_key: str, _data: bytes) -> Image.Image:
    """Upright RGB at most 1024 px on its long side, decoded once per image; keyed by the bytes'
    SHA-256, so a rerun hashes nothing (the crop is cached per model transform, _display_crop)."""
    return M.decode_image(_data)


@st.cache_data(show_spinner=False, max_entries=16)
def _display_crop(image_key: str, preprocess_key: str, _image: Image.Image, _preprocess: M.Preprocess) -> Image.Image:
    """Exactly the crop the network saw (the model's own transform), for overlays."""
    return _preprocess.crop(_image)


def _noted(result_and_note):
    """Show a fallback note, if any, and return the result."""
    result, note = result_and_note
    if note:
        st.warning(tr(note), icon="🐢")
    return result


_OPERATOR = "operator"  # weights option: the operator's file in $DROPBLOCK_LAB_WEIGHTS
_IN_DIR = "dir:"  # weights option prefix: a file of the operator's weights directory


def _weights_dir() -> str | None:
    """The operator's weights directory: $DROPBLOCK_LAB_WEIGHTS_DIR, else secrets.toml's ``weights_dir``."""
    value = os.environ.get(ENV_WEIGHTS_DIR, "").strip()
    if not value and st.secrets.load_if_toml_exists():
        value = str(st.secrets.get("weights_dir", "")).strip()
    return value or None


def _weights_options(arch: str) -> list[str]:
    """Server-side list only: the enum's versions, untrained, the operator's file and directory."""
    options = list(M.weight_choices(arch))
    if operator_file() is not None:
        options.insert(0, _OPERATOR)
    directory = _weights_dir()
    if directory:
        options += [_IN_DIR + name for name in list_weights_dir(directory)]
    return options


def _default_weights(arch: str) -> str:
    return _OPERATOR if arch == M.DEFAULT_ARCH and operator_file() is not None else M.weight_choices(arch)[0]


def _weights_label(option: str) -> str:
    if option == _OPERATOR:
        return _("operator's file {name}").format(name=operator_file().name)
    if option.startswith(_IN_DIR):
        name = option.removeprefix(_IN_DIR)
        return _("{name} (weights directory)").format(name=name if len(name) <= 60 else name[:59] + "…")
    if option == "untrained":
        return _("untrained")
    return option  # a torchvision weights version, e.g. IMAGENET1K_V2


def _spec(arch: str, weights: str) -> M.ModelSpec:
    """The model behind a sidebar choice; a directory file is resolved (and re-checked) now."""
    if weights == _OPERATOR:
        return M.ModelSpec(arch, "file", str(operator_file()))
    if weights.startswith(_IN_DIR):
        name = weights.removeprefix(_IN_DIR)
        return M.ModelSpec(arch, "file", resolve_in_dir(_weights_dir() or "", name), name)
    return M.ModelSpec(arch, weights)


def _model(arch: str, weights: str) -> M.LoadedModel:
    """The shared model for the sidebar's choice; a refused operator file gives a message and the default."""
    holder = st.empty()

    def progress(done: int, total: int) -> None:
        holder.progress(done / total if total else 0.0, text=_("Downloading weights: {mb:.0f} MB").format(mb=done / 1e6))

    def get(spec: M.ModelSpec) -> M.LoadedModel:
        if _models().peek(spec) is not None:
            return _models().get(spec)
        # pinned: the default, and the built-in default that stands in when the operator's file is refused
        pin = spec in (_spec(M.DEFAULT_ARCH, _default_weights(M.DEFAULT_ARCH)), M.ModelSpec())
        with st.spinner(_("Loading the model…")):
            return _models().get(spec, pin=pin, progress=progress)

    try:
        try:
            return get(_spec(arch, weights))
        except WeightsFileError as err:
            st.error(_("{error}. Showing the default model instead.").format(error=escaped(tr(err), 160)), icon="⚠️")
        default = _spec(M.DEFAULT_ARCH, _default_weights(M.DEFAULT_ARCH))
        try:
            return get(default)
        except WeightsFileError as err:  # the operator's own start-up file is refused
            if default != _spec(arch, weights):
                st.error(_("{error}. Showing the built-in default instead.").format(error=escaped(tr(err), 160)),
                         icon="⚠️")
            return get(M.ModelSpec())
    finally:
        holder.empty()


def _model_settings() -> tuple[str, str]:
    """The network and weights asked for (session state), made valid before anything uses them."""
    st.session_state.setdefault("arch", M.DEFAULT_ARCH)
    if st.session_state["arch"] not in M.ARCHITECTURES:
        st.session_state["arch"] = M.DEFAULT_ARCH
    arch = st.session_state["arch"]
    if st.session_state.get("weights") not in _weights_options(arch):
        st.session_state["weights"] = _default_weights(arch)
    return arch, st.session_state["weights"]


def _model_widgets() -> None:
    """The sidebar's Model subsection: a network of the ResNet family, then one of its weights."""
    arch = st.selectbox(_("Network"), list(M.ARCHITECTURES), format_func=M.ARCHITECTURES.get, key="arch",
                        help=_("torchvision's ResNet family; ResNet-50 is the paper's network."))
    st.selectbox(_("Weights"), _weights_options(arch), format_func=_weights_label, key="weights",
                 help=_("torchvision's weights versions, from the torch hub cache (downloaded on first "
                        "use when online), or the operator's files."))


# ------------------------------------------------------------------ sidebar


@dataclass(frozen=True, eq=False)
class Picture:
    """The image a session works on: a bundled sample or its upload, decoded once."""

    key: str  # SHA-256 of the file's bytes
    label: str  # Markdown-safe: a sample's title, or an upload's name as a code span
    image: Image.Image  # upright RGB, at most 1024 px on its long side


SAMPLE_FILES = {name: ASSETS / f"{name}.jpg" for name in SAMPLES}  # the only files a visitor can have opened


@functools.lru_cache(maxsize=len(SAMPLE_FILES))
def _sample_file(name: str) -> tuple[str, bytes]:
    data = SAMPLE_FILES[name].read_bytes()  # by key from the fixed dict: no path is built from input
    return hashlib.sha256(data).hexdigest(), data


def _sample(name: str) -> Picture:
    name = name if name in SAMPLE_FILES else BY_KEY["image"].default  # file and title of one sample
    key, data = _sample_file(name)
    return Picture(key, _(SAMPLES[name]), _decode(key, data))


def _uploader_key() -> str:
    """The uploader's widget key; a new one empties the widget (its value can't be set)."""
    n = st.session_state.get("_upload_generation", 0)
    return "upload" if n == 0 else f"upload_{n}"


def _clear_upload() -> None:
    """Back to the sample: forget the upload and start an empty uploader."""
    st.session_state.pop("_upload", None)
    st.session_state.pop("_upload_seen", None)
    st.session_state["_upload_generation"] = st.session_state.get("_upload_generation", 0) + 1


def _on_upload_change() -> None:
    if st.session_state.get(_uploader_key()) is None:  # removed with the uploader's ×
        _clear_upload()


def _take_upload(upload) -> str | None:
    """Check and decode a newly uploaded file once; keep it in the session, or return why not."""
    shown = plain(upload.name, _NAME_SHOWN, keep_end=6)
    if len(upload.name) > MAX_NAME_CHARS:
        return _("The file name {name} is {n:,} characters long; the limit is {limit}. Please rename the file and "
                 "upload it again. Showing the sample instead.").format(name=shown, n=len(upload.name),
                                                                        limit=MAX_NAME_CHARS)
    if upload.size > MAX_UPLOAD_BYTES:
        return _("{name} is {mb:.0f} MB; the limit is {limit} MB. Showing the sample instead.").format(
            name=shown, mb=upload.size / 2**20, limit=MAX_UPLOAD_BYTES // 2**20)
    data = upload.getvalue()
    try:
        image = M.decode_image(data)
    except M.ImageError as err:
        return _("{name} can't be used: {error} Showing the sample instead.").format(name=shown, error=tr(err))
    key = hashlib.sha256(data).hexdigest()
    st.session_state["_upload"] = Picture(key, shown, image)
    return None


def _current_picture() -> Picture:
    """The session's image: its upload (checked and decoded once per file, from the uploader's
    value in session state), else the chosen sample."""
    upload = st.session_state.get(_uploader_key())
    if upload is not None:
        seen = st.session_state.get("_upload_seen")
        if seen is None or seen[0] != upload.file_id:  # a new file: check and decode it once
            st.session_state.pop("_upload", None)
            st.session_state["_upload_seen"] = (upload.file_id, _take_upload(upload))
    picture = st.session_state.get("_upload")
    return picture if picture is not None else _sample(st.session_state["image"])


def _image_widgets() -> None:
    st.selectbox(_("Sample image"), list(SAMPLES), format_func=lambda k: _(SAMPLES[k]), key="image",
                 on_change=_clear_upload)
    upload = st.file_uploader(_("…or upload your own"), type=UPLOAD_TYPES, key=_uploader_key(),
                              on_change=_on_upload_change, max_upload_size=MAX_UPLOAD_BYTES // 2**20,
                              help=_("PNG, JPEG, WebP, GIF, BMP or TIFF, up to 25 MB and 40 MP, at most 20:1. "
                                     "Kept for this session on every page, never stored."))
    seen = st.session_state.get("_upload_seen")
    if upload is not None and seen is not None and seen[1]:
        st.error(seen[1])
    picture = st.session_state.get("_upload")
    if picture is not None:
        st.caption(_("Showing your upload {name} on every page.").format(name=picture.label))
        st.button(_("Clear upload"), key="clear_upload", on_click=_clear_upload, icon="✖️",
                  help=_("Forget the upload and go back to the sample image."))


def language_switch() -> None:
    """English / 简体中文, at the top of the sidebar; the URL's ``lang`` carries it."""
    st.selectbox("Language / 语言", list(LANGUAGES), format_func=LANGUAGES.get, key="lang")


def settings() -> tuple[Picture, str, str]:
    """The session's settings from session state, before anything is drawn: the widgets' values
    are there already (the browser sent them with the rerun), so the sidebar can be drawn last."""
    _keep_widget_values()
    check_settings()
    picture = _current_picture()
    arch, weights = _model_settings()
    sync_url()
    return picture, arch, weights


@dataclass
class SidebarSlots:
    """The sidebar's three parts, reserved at the start of a run so that each can be drawn later
    and in any order: the head (language, presenter mode, image), the regulariser's live controls
    (keep_prob, block_size, seed) and the tail (placement, more settings, model). ``live_claimed``:
    a page's fragment draws the live controls (:func:`live_controls_slot`), the sidebar does not."""

    head: object
    live: object
    tail: object
    live_claimed: bool = False


_SLOTS: contextvars.ContextVar[SidebarSlots | None] = contextvars.ContextVar("dropblock_lab_sidebar", default=None)


def live_controls_slot(on_projector=None):
    """For a page whose fragment redraws everything that depends on keep_prob, block_size and the
    seed (the mask explorer): the sidebar's place for those three controls, which the fragment then
    draws (:func:`live_widgets`), so that moving one reruns only the fragment, not the page, the
    rest of the sidebar and the model banner. In presenter mode (no sidebar to move them in):
    ``on_projector``, the page's own place for them, or None. None outside :func:`run_page`; the
    sidebar then draws them as usual."""
    slots = _SLOTS.get()
    if slots is None or (layout.presenting() and on_projector is None):
        return None
    slots.live_claimed = True
    return on_projector if layout.presenting() else slots.live


LIVE = ("keep_prob", "block_size", "seed")  # the controls a page's fragment may draw (live_controls_slot)


def live_widgets() -> None:
    """keep_prob, block_size and the seed, in the current container (ranges from SETTINGS)."""
    kp, b, seed = (BY_KEY[k] for k in LIVE)
    st.subheader(_("Regulariser"))
    st.slider(_("keep_prob"), kp.lo, kp.hi, step=kp.step, key=kp.key,
              help=_("Probability of keeping a unit; 1 − keep_prob is the drop budget."))
    st.slider(_("block_size"), b.lo, b.hi, key=b.key,
              help=_("Side of the dropped square (clipped to the map)."))
    st.number_input(_("Seed"), seed.lo, seed.hi, key=seed.key,
                    help=_("Same seed, same masks: a rerun does not reshuffle."))


def live(ctx: Context) -> Context:
    """``ctx`` with this run's keep_prob, block_size and seed (from session state: the browser sent
    them with the rerun). A fragment that owns the live controls calls it first (on a rerun of the
    fragment alone its ``ctx`` argument is the last full run's) and :func:`sync_url` at its end."""
    s = st.session_state
    check_settings(LIVE)
    _remember(LIVE)  # moved in a fragment's run: the next page keeps them
    kp, b, seed = float(s["keep_prob"]), int(s["block_size"]), int(s["seed"])
    if (kp, b, seed) == (ctx.spec.keep_prob, ctx.spec.block_size, ctx.seed):
        return ctx
    return dataclasses.replace(ctx, spec=dataclasses.replace(ctx.spec, keep_prob=kp, block_size=b), seed=seed)


def sidebar(slots: SidebarSlots) -> None:
    """Draw the shared sidebar. Pages draw it after their own content (see :func:`run_page`): a
    rerun's messages reach the browser in the order they are drawn, and a slider move's new masks
    should not wait behind twenty sidebar widgets the browser redraws first. The parts go into the
    places :func:`run_page` reserved; the live controls only if no page fragment owns them."""
    with slots.head:
        language_switch()
        st.toggle(_("Presenter mode"), key=layout.PRESENT,
                  help=_("A projector view: no sidebar, large type, the main figure at full width; "
                         "on the lesson, the arrow keys step. The link keeps it (present=1)."))
        st.subheader(_("Image"))
        _image_widgets()
    if not slots.live_claimed:
        with slots.live:
            live_widgets()
    with slots.tail:
        st.radio(_("Placement"), list(PLACEMENTS), format_func=lambda k: _(PLACEMENTS[k]), key="placement")
        with st.expander(_("More settings")):
            group = BY_KEY["group"]
            st.selectbox(_("Group (for 'after one group')"), list(range(group.lo, group.hi + 1)), key=group.key,
                         format_func=lambda g: _("group {g}").format(g=g))
            st.toggle(_("One mask shared by all channels"), key="shared_mask")
            st.radio(_("DropBlock seeds"), list(REGIONS), format_func=lambda k: _(REGIONS[k]), key="seed_region")
            st.radio(_("DropBlock γ"), list(GAMMA_MODES), format_func=lambda k: _(GAMMA_MODES[k]), key="gamma_mode",
                     help=_("Eq. (1) ignores overlapping blocks and drops a little less than asked."))
            st.radio(_("Normalisation count(M)/count_ones(M)"), list(NORMALIZE), format_func=lambda k: _(NORMALIZE[k]),
                     key="normalize", help=_("Algorithm 1 does not say over what M is counted."))
            st.radio(_("Site inside blocks"), list(M.SITE_ACTS), format_func=lambda k: _(M.SITE_ACTS[k]),
                     key="act_site")
        st.subheader(_("Model"))
        _model_widgets()


def context(picture: Picture, arch: str, weights: str) -> Context:
    """The page context: the model (loaded once per process), this image's clean pass, the spec."""
    loaded = _model(arch, weights)
    model_key = f"{loaded.summary}|{id(loaded)}"
    image, image_key, label = picture.image, picture.key, picture.label
    with st.spinner(_("Running the network once on this image…")):
        # kept with the model (models/fallback.py): an evicted model takes its clean passes along
        loaded, clean, note = cached_clean_pass(loaded, image_key, lambda: loaded.preprocess(image))
    if note:
        st.warning(tr(note), icon="🐢")
        model_key += "|cpu"
    # what the network saw, for overlays: the live model's own transform (ResNet V2 resizes to 232)
    image = _display_crop(image_key, repr(loaded.preprocess), _image=image, _preprocess=loaded.preprocess)
    s = st.session_state
    spec = M.RegularizerSpec(
        kind="dropblock", keep_prob=float(s["keep_prob"]), block_size=int(s["block_size"]),
        placement=s["placement"], group=int(s["group"]), per_channel=not s["shared_mask"],
        seed_region=s["seed_region"], gamma_mode=s["gamma_mode"], normalize=s["normalize"], act_site=s["act_site"],
    )
    return Context(loaded, model_key, image, image_key, label, clean, spec, int(s["seed"]))


def pages() -> list:
    """The navigation's pages, titles in this session's language (built on every run)."""
    return [st.Page(path, title=_(title), icon=icon, **({"url_path": url} if url else {"default": True}))
            for path, url, title, icon in NAV]


def init_session() -> None:
    """The entrypoint's first step, before the page config and the navigation's titles: the URL's
    settings on a session's first run (language, presenter mode, parameters)."""
    _init_from_url()


_ROUTED: contextvars.ContextVar[bool] = contextvars.ContextVar("dropblock_lab_routed", default=False)


@contextlib.contextmanager
def entrypoint():
    """app.py runs the chosen page inside this: the page then knows the entrypoint routed it."""
    token = _ROUTED.set(True)
    try:
        yield
    finally:
        _ROUTED.reset(token)


def run_page(draw: Callable[[Context], None]) -> None:
    """Set up a page (shared sidebar, model banner) and draw it; errors become friendly messages.
    The entrypoint (app.py) has set the page config and drawn the navigation."""
    if not _ROUTED.get():
        # Streamlit ran this page file by itself, as a legacy pages/ page: it does so (the folder is
        # named pages/) for a process's runs until one of them has called st.navigation, and for
        # every AppTest run. Run the entrypoint instead, which routes back here.
        runpy.run_path(str(ENTRYPOINT), run_name="__main__")
        return
    jobs.configure_process()  # once per process, whichever page a visitor opens first
    slots = SidebarSlots(st.sidebar.container(), st.sidebar.container(), st.sidebar.container())
    _SLOTS.set(slots)
    # The sidebar last (see sidebar()), and also after an error, so other settings can be chosen.
    with friendly_errors(), draw_after(lambda: sidebar(slots)):
        ctx = context(*settings())
        layout.style()
        model_banner(ctx)
        draw(ctx)


@contextlib.contextmanager
def draw_after(draw: Callable[[], None]):
    """Run the block, then ``draw()``: also when the block raises an error (which then goes on),
    not after Streamlit's own stop/rerun signals (BaseExceptions: the run is over)."""
    try:
        yield
    except Exception:
        draw()
        raise
    draw()


@contextlib.contextmanager
def friendly_errors():
    """Errors become a message that says what to do; the trace goes to the server log, never to
    the page (Streamlit's own stop/rerun signals are BaseExceptions and pass through)."""
    try:
        yield
    except M.ImageError as err:  # an image that passed the upload check but failed later
        st.error(_("This image can't be used: {error}").format(error=tr(err)))
    except Exception:  # never a traceback in front of a class or a stakeholder
        logging.getLogger("dropblock_lab").exception("page failed")
        st.error(_("Something went wrong while computing this view. Try other settings or another image; "
                   "the details are in the server log."))


def fragment(draw: Callable) -> Callable:
    """``st.fragment`` whose body fails like a page does (:func:`friendly_errors`): when a page's own
    control reruns only the fragment, no run_page is around it to catch an error."""

    @functools.wraps(draw)
    def guarded(*args, **kwargs):
        with friendly_errors():
            return draw(*args, **kwargs)

    return st.fragment(guarded)


def model_banner(ctx: Context) -> None:
    """Say plainly which network, weights and device are live (never a server path)."""
    loaded = ctx.loaded
    device = f"GPU ({device_name()})" if loaded.device.type == "cuda" else "CPU"
    weights = escaped(loaded.weights) if loaded.weights.startswith("file ") else shown_text(loaded.weights)  # an operator's name
    if layout.presenting():  # a projector: one line, model, image and parameters
        layout.presenter_bar(lambda params: presenter_line(ctx, device, params))
        return
    wanted = M.ARCHITECTURES.get(st.session_state.get("arch", M.DEFAULT_ARCH), "ResNet")
    # under the sidebar's Network and Weights (its last part; run_page reserved the parts before): what runs
    st.sidebar.caption((_("Running now: **{network}**, because no {wanted} weights could be loaded.")
                        if loaded.is_fallback else _("Running now: **{network}** · {weights}")).format(
        network=loaded.network, wanted=wanted, weights=weights))
    st.caption(_("Model: **{network}** · weights: **{weights}** · device: **{device}** · image: {image}").format(
        network=loaded.network + (_(" (instead of {wanted})").format(wanted=wanted) if loaded.is_fallback else ""),
        weights=weights, device=device, image=ctx.image_label))
    if loaded.notice and not loaded.is_fallback:
        st.warning(f"{escaped(tr(loaded.notice), 300)}.", icon="⚠️")
    if loaded.is_fallback:
        # Said once: on the first page a session opens with this model (and while it stays there), again
        # only when another network is asked for; the model line above names the network on every page.
        asked, run = (wanted, loaded.summary), get_script_run_ctx()
        page = run.page_script_hash if run is not None else ""
        told = st.session_state.get("_fallback_told")
        if told is None or told[0] != asked or told[1] == page:
            st.session_state["_fallback_told"] = (asked, page)
            st.warning(_("No {wanted} weights could be loaded on this server, so this runs **EfficientNet-Lite0 with "
                         "real ImageNet weights**, a smaller network: everything works the same way.").format(
                wanted=wanted), icon="ℹ️")
            with st.expander(_("Why, and how to get {wanted}").format(wanted=wanted)):
                st.markdown(_("Reason: {reason}. Its groups are EfficientNet-Lite0's 56/28/14/7 resolution stages. "
                              "To run {wanted}, put the torchvision checkpoint in the torch hub cache, or ask whoever "
                              "runs the server for a weights file.").format(
                    reason=escaped(tr(loaded.fallback_reason), 400), wanted=wanted))
    elif "untrained" in loaded.weights:
        st.warning(_("Untrained {network} (random weights), as chosen: predictions and CAMs are meaningless.").format(
            network=loaded.network))


def presenter_line(ctx: Context, device: str, params: str | None = None) -> str:
    """Model, image and parameters in one line (Markdown-safe): ``params``, the parameters the page's
    main figure uses where they are not the sidebar's (a lesson step's own), else the sidebar's."""
    loaded, spec = ctx.loaded, ctx.spec
    network = loaded.network + (_(" (fallback)") if loaded.is_fallback else "")
    if params is None:
        where = (_("after group {group}").format(group=spec.group) if spec.placement == "after_group"
                 else _("in the blocks of groups 3 & 4"))
        params = _("keep_prob **{kp:g}** · block_size **{b}** · seed **{seed}** · {where}").format(
            kp=spec.keep_prob, b=spec.block_size, seed=ctx.seed, where=where)
    return _("**{network}** · {device} · {image} · {params}").format(network=network, device=device,
                                                                     image=ctx.image_label, params=params)


def spec_notes(ctx: Context) -> None:
    """Friendly notes on parameters at their limits."""
    spec = ctx.spec
    if spec.keep_prob >= 1.0:
        st.info(_("keep_prob = 1: nothing is dropped, DropBlock is the identity (as at inference)."))
    if spec.placement == "after_group":
        size = ctx.clean.acts[spec.group].shape[-1]
        if spec.block_size >= size:
            st.info(_("block_size {b} covers the whole {size}×{size} map of group {group}: it is clipped to the map "
                      "and drops whole channels, like SpatialDropout.").format(b=spec.block_size, size=size,
                                                                             group=spec.group))


# ------------------------------------------------------------------ cached computations
#
# Results are cached by content (model, image hash, parameters, seed) in models/jobs.py, shared by
# every session: immutable dataclasses, handed out as they are (no copy per hit, unlike
# st.cache_data). Identical concurrent requests (a whole class on the teacher's link) compute once.
# Light views run in the session's own script thread; heavy ones (the robustness curve, CAM shift
# with many samples) queue on a pool of low-priority workers, one job per session, so they never
# stall slider moves; the page shows its place in the queue and the progress, and a rerun, another
# page or a closed tab stops waiting and cancels the job if no other session waits for it.

_LIGHT: jobs.SingleFlight = jobs.SingleFlight(max_entries=48)
# One heavy worker per core at the lowest priority: a curve takes the cores the slider moves leave
# idle, and the scheduler hands them back to a slider move at once (nice 19 weighs 15 against 1024).
_HEAVY = jobs.HeavyPool(workers=os.cpu_count() or 2, cache=jobs.SingleFlight(max_entries=16), nice=19)
HEAVY_CAM_SAMPLES = 32  # CAM shift with at least this many Monte Carlo samples goes to the heavy pool


def _key(name: str, ctx: Context, args: tuple, kwargs: dict) -> tuple:
    return name, ctx.model_key, ctx.image_key, args, tuple(sorted(kwargs.items()))


def _light(compute, ctx: Context, *args, **kwargs):
    key = _key(compute.__name__, ctx, args, kwargs)
    return _noted(_LIGHT.get(key, lambda: compute_with_fallback(compute, ctx.loaded, ctx.clean, *args, **kwargs)))


def _session_id() -> str:
    run = get_script_run_ctx()
    return run.session_id if run is not None else f"thread-{threading.get_ident()}"


def heavy(key: tuple, title: str, run: Callable[[jobs.Progress], object], *, keep: bool = True):
    """``run(progress)`` on the heavy pool, cached by ``key`` (which must name everything the result
    depends on; ``keep=False``: not held by the pool's cache, the caller keeps it); meanwhile show the
    queue position, then the progress. One heavy job per session: a
    new one, a rerun, another page or a closed tab releases the one it waited for, and the session's
    next job keeps its place in the queue (``HeavyPool.submit``).

    Stopping at once: each ``st`` call is where Streamlit stops this script for a rerun, another
    page or a closed tab, so while waiting, a pending stop or rerun triggers one right away (not at
    the next redraw). Inputs changed: Streamlit lets a fragment's rerun (a control inside the
    fragment moved) wait until the run in progress ends, so the job would run to 100% for nothing;
    a pending rerun of the fragment this job was asked from is made to preempt this run (the whole
    app's rerun from a full run, carrying every widget's state as the browser sends them; the
    fragment's own from a fragment run). Either way the job is released here and stops at its next
    progress step, and the next job of this session keeps its place."""
    hit = _HEAVY.cached(key)
    if hit is not None:
        return hit
    from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType
    from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

    run_ctx = get_script_run_ctx()
    requests = getattr(run_ctx, "script_requests", None)
    try:
        fragment = ThreadState.get().fragment_id
    except RuntimeError:  # no script run (bare mode, tests)
        fragment = None

    def interrupted() -> bool:
        """Whether the next st call stops this run (making a rerun of this job's fragment preempt it).
        Reads ScriptRequests' private state (Streamlit 1.67, pinned; tests/app/test_superseded_jobs.py
        checks it on the real server); without it, the wait stops at the next redraw as before."""
        if requests is None or getattr(requests, "_state", ScriptRequestType.CONTINUE) == ScriptRequestType.CONTINUE:
            return False
        with requests._lock:
            if requests._state != ScriptRequestType.RERUN:
                return requests._state == ScriptRequestType.STOP
            data = requests._rerun_data
            if not data.fragment_id_queue or data.is_fragment_scoped_rerun:
                return True  # a rerun that preempts this run anyway
            if fragment is None or fragment not in data.fragment_id_queue:
                return False  # another fragment's rerun: it waits for this run, which is still wanted
            in_fragment_run = bool(run_ctx.fragment_ids_this_run)
            requests._rerun_data = dataclasses.replace(
                data, fragment_id_queue=data.fragment_id_queue if in_fragment_run else [],
                is_fragment_scoped_rerun=in_fragment_run)
            return True

    owner = _session_id()
    job = _HEAVY.submit(owner, key, run, keep=keep)
    holder = st.empty()
    try:
        shown, last = None, 0.0
        while not job.wait(0.1):
            if interrupted():
                holder.empty()  # the yield point: Streamlit raises its rerun or stop here
                shown = None
            ahead = job.position()
            if ahead:
                text = ngettext("{title}: waiting for the server, {n} request ahead of yours…",
                                "{title}: waiting for the server, {n} requests ahead of yours…", ahead).format(
                    title=title, n=ahead)
            else:
                text = f"{title}: {tr(job.text)}" if job.text else f"{title}…"
            now = time.monotonic()
            # Redraw on change, and at least every second: each st call is where Streamlit stops
            # this script for a rerun, another page or a closed tab.
            if (text, round(job.fraction, 2)) != shown or now - last > 1.0:
                holder.progress(min(1.0, job.fraction), text=text)
                shown, last = (text, round(job.fraction, 2)), now
    finally:
        if not job.done.is_set():
            _HEAVY.release(owner, job)  # cancelled unless another session waits for it
        holder.empty()
    return job.value()


def heavy_cached(key: tuple):
    """The finished result for ``key`` if the heavy pool has it, else None (nothing is started)."""
    return _HEAVY.cached(key)


def _heavy(compute, ctx: Context, title: str, *args, with_progress: bool = False, **kwargs):
    """``compute(backbone, clean, *args, **kwargs)`` on the heavy pool (:func:`heavy`), with the
    CPU retry after a CUDA out-of-memory."""

    def run(progress: jobs.Progress):
        extra = {"progress": progress} if with_progress else {}
        return compute_with_fallback(compute, ctx.loaded, ctx.clean, *args, **kwargs, **extra)

    return _noted(heavy(_key(compute.__name__, ctx, args, kwargs), title, run))


def mask_sample(ctx: Context, n_channels: int = 8, channels: tuple[int, ...] | None = None) -> M.MaskSample:
    """The masks and feature maps at the site only (no layer after it): drawn before the network runs.
    ``channels``: show these (another sample's) instead of the most active ones the mask hit."""
    return _light(M.compute_mask_sample, ctx, ctx.spec, seed=ctx.seed, n_channels=n_channels, channels=channels)


def mask_outcome(ctx: Context) -> M.MaskOutcome:
    """Top-5 and CAMs without and with the masks of :func:`mask_sample` (same spec and seed)."""
    return _light(M.compute_mask_outcome, ctx, ctx.spec, seed=ctx.seed)


def comparison(ctx: Context, spec: M.RegularizerSpec) -> M.Comparison:
    return _light(M.compute_comparison, ctx, spec, seed=ctx.seed)


def dropblock_dropout(ctx: Context, spec: M.RegularizerSpec, fc_keep_prob: float, n_samples: int):
    return _light(M.compute_dropblock_dropout, ctx, spec, fc_keep_prob=fc_keep_prob, n_samples=n_samples,
                  seed=ctx.seed)


def cam_shift(ctx: Context, n_samples: int, class_idx: int | None) -> M.CamShift:
    if n_samples >= HEAVY_CAM_SAMPLES:
        return _heavy(M.compute_cam_shift, ctx, _("Sampling masks"), ctx.spec, n_samples=n_samples, seed=ctx.seed,
                      class_idx=class_idx)
    return _light(M.compute_cam_shift, ctx, ctx.spec, n_samples=n_samples, seed=ctx.seed, class_idx=class_idx)


def robustness_curve(ctx: Context, spec: M.RegularizerSpec, n_samples: int, keep_probs: tuple[float, ...],
                     **kwargs) -> M.RobustnessCurve:
    """The curve reports progress while it computes; the heavy pool shows it, or the queue position.

    The curve sweeps its own keep_probs and block sizes, so the sidebar's keep_prob and block_size are
    taken out of ``spec``: moving them does not recompute (or re-key) the same curve.
    """
    if not spec.group_params:
        spec = dataclasses.replace(spec, keep_prob=1.0, block_size=1)
    return _heavy(M.compute_robustness_curve, ctx, _("Computing the curve"), spec, keep_probs=tuple(keep_probs),
                  n_samples=n_samples, seed=ctx.seed, with_progress=True, **kwargs)


def second_models(ctx: Context) -> list[str]:
    """Weights options a second model can be (Figure 5(b), Figure 6): the sidebar's network with any
    other weights the server offers (the operator's files, other torchvision versions), not untrained.
    When the live model is the offline fallback, no torchvision version can be had: files only."""
    arch, current = _model_settings()
    files = ctx.loaded.fallback_reason is not None
    return [o for o in _weights_options(arch) if o not in (current, "untrained")
            and (not files or o == _OPERATOR or o.startswith(_IN_DIR))]


def second_model_label(option: str) -> str:
    return _weights_label(option)


def second_context(ctx: Context, weights: str) -> Context | None:
    """The page context with ``weights`` for the sidebar's network; None when that gives the same
    model as ``ctx`` (e.g. offline, where every ResNet version falls back to one network)."""
    arch, _current = _model_settings()
    other = context(_current_picture(), arch, weights)
    return None if other.loaded.summary == ctx.loaded.summary else other


def keep_prob_scan(ctx: Context, spec: M.RegularizerSpec, methods: tuple[tuple[str, int | None], ...],
                   coarse: tuple[float, ...] | None = None, n_samples: int = 4):
    """Where each method's class probability falls on this model and image (models/keepgrid.py)."""
    extra = {} if coarse is None else {"coarse": tuple(coarse)}
    # on the heavy pool: dozens of Monte Carlo passes on ResNet-50 must not hold up the sliders
    return _heavy(compute_keep_prob_scan, ctx, _("Measuring where the class probability falls"), spec,
                  methods=tuple(methods), n_samples=n_samples, seed=ctx.seed, **extra)


@st.cache_data(show_spinner=False, max_entries=32)
def algorithm_steps(size: int, keep_prob: float, block_size: int, seed: int, seed_region: str):
    return compute_algorithm_steps(size, size, keep_prob, block_size, seed=seed, seed_region=seed_region)


def mistakes(ctx: Context):
    """The recipes measured on this image's group-3 activation (cached by content like the views)."""
    spec = ctx.spec
    key = _key("compute_mistakes", ctx, (spec.keep_prob, spec.block_size), {"seed": ctx.seed})
    return _LIGHT.get(key, lambda: compute_mistakes(ctx.clean.acts[3], spec.keep_prob, spec.block_size, seed=ctx.seed))


def tutorial_contrasts(ctx: Context):
    return _light(compute_tutorial_contrasts, ctx, ctx.spec.keep_prob, seed=ctx.seed)


def depth_contrast(ctx: Context, keep_probs: tuple[float, ...]):
    """DropBlock in the shallow vs the deep groups at ``keep_probs`` (models/theory.py)."""
    return _light(compute_depth_contrast, ctx, tuple(keep_probs), seed=ctx.seed)


def device_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
