"""A session's inputs: its image (a bundled sample or its upload) and its model, and the page context.

* Samples are opened by name from a fixed dict (:data:`SAMPLE_FILES`): no path is ever built from
  what a visitor sends. Uploads are decoded in memory and never written to disk; the decoded
  picture (at most 1024 px) and its cleaned name stay in this session's ``st.session_state`` (not a
  widget), so every page shows it until "Clear upload"; other sessions never see it.
* Models come from one ``models.registry.ModelCache`` per process (``st.cache_resource``: the default
  pinned, two others in an LRU, shared by every session and never modified), chosen only from
  server-side lists: torchvision's weights versions, the operator's file and weights directory.
* :func:`context` gathers what every page needs: the live model, the image's crop and clean pass
  (kept with the model, ``models.fallback.cached_clean_pass``) and the settings' spec and seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image

import models as M
from models import jobs, offload
from models.fallback import cached_clean_pass
from models.registry import ModelCache
from models.weights_files import ENV_WEIGHTS_DIR, WeightsFileError, list_weights_dir, operator_file, resolve_in_dir
from ui import settings
from ui.view import view
from ui.i18n import _, tr
from ui.settings import SAMPLES
from ui.text import escaped, plain

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SAMPLE_FILES = {name: ASSETS / f"{name}.jpg" for name in SAMPLES}  # the only files a visitor can have opened
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"]
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_NAME_CHARS = 255  # longer upload names are refused
_NAME_SHOWN = 48  # characters of a file name shown back
ENV_PREPARE = "DROPBLOCK_LAB_PREPARE"  # "0": the bundled samples' shared results are not prepared at load
OPERATOR = "operator"  # weights option: the operator's file in $DROPBLOCK_LAB_WEIGHTS
IN_DIR = "dir:"  # weights option prefix: a file of the operator's weights directory


@dataclass(frozen=True, eq=False)
class Picture:
    """The image a session works on: a bundled sample or its upload, decoded once."""

    key: str  # SHA-256 of the file's bytes
    label: str  # Markdown-safe: a sample's title, or an upload's name as a code span
    image: Image.Image  # upright RGB, at most 1024 px on its long side


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

    def __view__(self, depends: frozenset[str]) -> tuple[tuple, Context]:
        """How a view (ui/view.py) sees this context: keyed by the model, the image and the settings
        in ``depends`` only, and computed with the others at their defaults."""
        spec = settings.project(self.spec, depends)
        seed = self.seed if "seed" in depends else 0
        projected = self if (spec, seed) == (self.spec, self.seed) else dataclasses.replace(self, spec=spec, seed=seed)
        return ("ctx", self.model_key, self.image_key, spec, seed), projected


# ------------------------------------------------------------------ the image


@view(depends=())
def _sample(name: str) -> tuple[str, Image.Image]:
    data = SAMPLE_FILES[name].read_bytes()  # by key from the fixed dict: no path is built from input
    return hashlib.sha256(data).hexdigest(), M.decode_image(data)


def sample(name: str) -> Picture:
    """A bundled sample by name (the default sample for any other name), decoded once per process."""
    name = name if name in SAMPLE_FILES else settings.BY_KEY["image"].default
    key, image = _sample(name)
    return Picture(key, _(SAMPLES[name]), image)


def _uploader_key() -> str:
    """The uploader's widget key; a new one empties the widget (its value can't be set)."""
    n = st.session_state.get("_upload_generation", 0)
    return "upload" if n == 0 else f"upload_{n}"


def clear_upload() -> None:
    """Back to the sample: forget the upload and start an empty uploader."""
    st.session_state.pop("_upload", None)
    st.session_state.pop("_upload_seen", None)
    st.session_state["_upload_generation"] = st.session_state.get("_upload_generation", 0) + 1


def _on_upload_change() -> None:
    if st.session_state.get(_uploader_key()) is None:  # removed with the uploader's ×
        clear_upload()


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
    st.session_state["_upload"] = Picture(hashlib.sha256(data).hexdigest(), shown, image)
    return None


def picture() -> Picture:
    """The session's image: its upload (checked and decoded once per file, from the uploader's
    value in session state), else the chosen sample."""
    upload = st.session_state.get(_uploader_key())
    if upload is not None:
        seen = st.session_state.get("_upload_seen")
        if seen is None or seen[0] != upload.file_id:  # a new file: check and decode it once
            st.session_state.pop("_upload", None)
            st.session_state["_upload_seen"] = (upload.file_id, _take_upload(upload))
    kept = st.session_state.get("_upload")
    return kept if kept is not None else sample(settings.value("image"))


def image_widgets() -> None:
    """The sidebar's Image subsection: the sample, or an upload kept for the session."""
    st.selectbox(_("Sample image"), list(SAMPLES), format_func=lambda k: _(SAMPLES[k]), key="image",
                 on_change=clear_upload)
    upload = st.file_uploader(_("…or upload your own"), type=UPLOAD_TYPES, key=_uploader_key(),
                              on_change=_on_upload_change, max_upload_size=MAX_UPLOAD_BYTES // 2**20,
                              help=_("PNG, JPEG, WebP, GIF, BMP or TIFF, up to 25 MB and 40 MP, at most 20:1. "
                                     "Kept for this session on every page, never stored."))
    seen = st.session_state.get("_upload_seen")
    if upload is not None and seen is not None and seen[1]:
        st.error(seen[1])
    kept = st.session_state.get("_upload")
    if kept is not None:
        st.caption(_("Showing your upload {name} on every page.").format(name=kept.label))
        st.button(_("Clear upload"), key="clear_upload", on_click=clear_upload, icon="✖️",
                  help=_("Forget the upload and go back to the sample image."))


# ------------------------------------------------------------------ the model


@st.cache_resource(show_spinner=False)
def models() -> ModelCache:
    """Every session's models: the default pinned, two others in an LRU (see models/registry.py)."""
    return ModelCache(_load, capacity=2, remember=(WeightsFileError,), on_evict=jobs.release_memory)


def _load(spec: M.ModelSpec, progress=None) -> M.LoadedModel:
    loaded = M.load_spec(spec, progress=progress)
    if loaded.device.type == "cpu":  # the heavy rounds get the cores this process's GIL leaves (models/offload.py)
        offload.helpers().start(preload=("ui.views",))
    return loaded


def _weights_dir() -> str | None:
    """The operator's weights directory: $DROPBLOCK_LAB_WEIGHTS_DIR, else secrets.toml's ``weights_dir``."""
    value = os.environ.get(ENV_WEIGHTS_DIR, "").strip()
    if not value and st.secrets.load_if_toml_exists():
        value = str(st.secrets.get("weights_dir", "")).strip()
    return value or None


def weights_options(arch: str) -> list[str]:
    """Server-side list only: the enum's versions, untrained, the operator's file and directory."""
    options = list(M.weight_choices(arch))
    if operator_file() is not None:
        options.insert(0, OPERATOR)
    directory = _weights_dir()
    if directory:
        options += [IN_DIR + name for name in list_weights_dir(directory)]
    return options


def _default_weights(arch: str) -> str:
    return OPERATOR if arch == M.DEFAULT_ARCH and operator_file() is not None else M.weight_choices(arch)[0]


def weights_label(option: str) -> str:
    if option == OPERATOR:
        return _("operator's file {name}").format(name=operator_file().name)
    if option.startswith(IN_DIR):
        name = option.removeprefix(IN_DIR)
        return _("{name} (weights directory)").format(name=name if len(name) <= 60 else name[:59] + "…")
    if option == "untrained":
        return _("untrained")
    return option  # a torchvision weights version, e.g. IMAGENET1K_V2


def _spec(arch: str, weights: str) -> M.ModelSpec:
    """The model behind a sidebar choice; a directory file is resolved (and re-checked) now."""
    if weights == OPERATOR:
        return M.ModelSpec(arch, "file", str(operator_file()))
    if weights.startswith(IN_DIR):
        name = weights.removeprefix(IN_DIR)
        return M.ModelSpec(arch, "file", resolve_in_dir(_weights_dir() or "", name), name)
    return M.ModelSpec(arch, weights)


def _get(spec: M.ModelSpec, holder) -> M.LoadedModel:
    # pinned: the default, and the built-in default that stands in when the operator's file is refused
    pin = spec in (_spec(M.DEFAULT_ARCH, _default_weights(M.DEFAULT_ARCH)), M.ModelSpec())
    if models().peek(spec) is not None:
        loaded = models().get(spec)
    else:
        def progress(done: int, total: int) -> None:
            holder.progress(done / total if total else 0.0,
                            text=_("Downloading weights: {mb:.0f} MB").format(mb=done / 1e6))

        with st.spinner(_("Loading the model…")):
            loaded = models().get(spec, pin=pin, progress=progress)
    # On every run, not only the one that loaded it (once per model; a set lookup after the first): that
    # run can stop at the spinner's end (a rerun or a closed tab is raised there), and the next finds it loaded.
    if pin and os.environ.get(ENV_PREPARE, "1").strip() != "0":
        from ui.prepare import prepare_samples  # builds on this module

        prepare_samples(loaded)  # the class's shared scans, before it asks
    return loaded


def model(arch: str, weights: str) -> M.LoadedModel:
    """The shared model for a choice; a refused operator file gives a message and the default."""
    holder = st.empty()
    try:
        try:
            return _get(_spec(arch, weights), holder)
        except WeightsFileError as err:
            st.error(_("{error}. Showing the default model instead.").format(error=escaped(tr(err), 160)), icon="⚠️")
        default = _spec(M.DEFAULT_ARCH, _default_weights(M.DEFAULT_ARCH))
        try:
            return _get(default, holder)
        except WeightsFileError as err:  # the operator's own start-up file is refused
            if default != _spec(arch, weights):
                st.error(_("{error}. Showing the built-in default instead.").format(error=escaped(tr(err), 160)),
                         icon="⚠️")
            return _get(M.ModelSpec(), holder)
    finally:
        holder.empty()


def model_choice() -> tuple[str, str]:
    """The network and weights asked for (session state), made valid before anything uses them."""
    st.session_state.setdefault("arch", M.DEFAULT_ARCH)
    if st.session_state["arch"] not in M.ARCHITECTURES:
        st.session_state["arch"] = M.DEFAULT_ARCH
    arch = st.session_state["arch"]
    if st.session_state.get("weights") not in weights_options(arch):
        st.session_state["weights"] = _default_weights(arch)
    return arch, st.session_state["weights"]


def model_widgets() -> None:
    """The sidebar's Model subsection: a network of the ResNet family, then one of its weights."""
    arch = st.selectbox(_("Network"), list(M.ARCHITECTURES), format_func=M.ARCHITECTURES.get, key="arch",
                        help=_("torchvision's ResNet family; ResNet-50 is the paper's network."))
    st.selectbox(_("Weights"), weights_options(arch), format_func=weights_label, key="weights",
                 help=_("torchvision's weights versions, from the torch hub cache (downloaded on first "
                        "use when online), or the operator's files."))


def second_models(ctx: Context) -> list[str]:
    """Weights options a second model can be (Figure 5(b), Figure 6): the sidebar's network with any
    other weights the server offers (the operator's files, other torchvision versions), not untrained.
    When the live model is the offline fallback, no torchvision version can be had: files only."""
    arch, current = model_choice()
    files = ctx.loaded.fallback_reason is not None
    return [o for o in weights_options(arch) if o not in (current, "untrained")
            and (not files or o == OPERATOR or o.startswith(IN_DIR))]


def second_context(ctx: Context, weights: str) -> Context | None:
    """The page context with ``weights`` for the sidebar's network; None when that gives the same
    model as ``ctx`` (e.g. offline, where every ResNet version falls back to one network)."""
    arch, _current = model_choice()
    other = context(picture(), arch, weights)
    return None if other.loaded.summary == ctx.loaded.summary else other


# ------------------------------------------------------------------ the context


@view(depends=(), keep=8)
def crop(image: Image.Image, preprocess: M.Preprocess) -> Image.Image:
    """Exactly the crop the network saw (the model's own transform), for overlays: made once per
    picture and transform (a few ms), and the same object on every rerun, so the pictures drawn
    over it are drawn once too. ``image``: a decoded sample or upload (by identity: both are decoded
    once, for the process or the session)."""
    return preprocess.crop(image)


def model_key(loaded: M.LoadedModel) -> str:
    """A loaded model's part of every view's key: its summary, and which load (a model loaded again
    after an eviction keys its results afresh)."""
    return f"{loaded.summary}|{id(loaded)}"


def sample_contexts(loaded: M.LoadedModel) -> Iterator[Context]:
    """The context of each bundled sample on ``loaded`` with every setting at its default, the default
    sample first: what a session that opens it and sets nothing gets (no session needed; a sample
    whose clean pass needed the CPU copy of a GPU model is left out)."""
    first = settings.BY_KEY["image"].default
    for name in sorted(SAMPLE_FILES, key=lambda n: n != first):
        key, image = _sample(name)
        _, clean, note = cached_clean_pass(loaded, key, lambda image=image: loaded.preprocess(image))
        if note:  # computed on the CPU copy: not this model's
            continue
        yield Context(loaded, model_key(loaded), crop(image, loaded.preprocess), key, SAMPLES[name], clean,
                      settings.default_spec(), int(settings.BY_KEY["seed"].default))


def context(pic: Picture, arch: str, weights: str) -> Context:
    """The page context: the model (loaded once per process), this image's clean pass, the settings' spec."""
    loaded = model(arch, weights)
    key = model_key(loaded)
    with st.spinner(_("Running the network once on this image…")):
        # kept with the model (models/fallback.py): an evicted model takes its clean passes along
        loaded, clean, note = cached_clean_pass(loaded, pic.key, lambda: loaded.preprocess(pic.image))
    if note:
        st.warning(tr(note), icon="🐢")
        key += "|cpu"
    # what the network saw, for overlays: the live model's own transform (ResNet V2 resizes to 232)
    image = crop(pic.image, loaded.preprocess)
    return Context(loaded, key, image, pic.key, pic.label, clean, settings.spec(), int(settings.value("seed")))
