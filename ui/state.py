"""Shared sidebar, URL parameters and caches: the one place pages get their inputs from.

* Parameters live in ``st.session_state`` (widget keys), so they persist across pages, and are
  mirrored into the URL query string so a teacher can share a link that opens the same view.
* ``st.cache_resource`` holds the model (one per weights choice, shared by every session and
  never modified) and each image's clean pass; ``st.cache_data`` holds decoded images and the
  results of the ``models.compute_*`` functions, bounded with ``max_entries``.
* Uploads are decoded in memory and never written to disk.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch
from PIL import Image

import models as M
from models.fallback import clean_pass_with_fallback, compute_with_fallback
from models.theory import compute_algorithm_steps, compute_mistakes, compute_tutorial_contrasts

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SAMPLES = {"coffee": "Coffee cup", "chelsea": "Chelsea the cat", "astronaut": "Astronaut", "rocket": "Rocket launch"}
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"]
MAX_UPLOAD_BYTES = 25 * 1024 * 1024

NAV = [
    ("app.py", "Home", "🧱"),
    ("pages/1_Mask_explorer.py", "Mask explorer", "🔍"),
    ("pages/2_Compare_methods.py", "Compare methods", "⚖️"),
    ("pages/3_CAM_shift.py", "CAM shift", "🔥"),
    ("pages/4_Robustness_curve.py", "Robustness curve", "📉"),
    ("pages/5_Theory_and_schedule.py", "Theory & schedule", "📐"),
    ("pages/6_DropBlock_and_Dropout.py", "DropBlock + Dropout", "🧩"),
]
PLACEMENTS = {"after_group": "After one group", "in_blocks": "Inside blocks of groups 3 & 4 (paper)"}
REGIONS = {"valid": "Valid region (paper)", "everywhere": "Everywhere, truncated (timm/tutorial)"}
GAMMA_MODES = {"eq1": "Eq. (1) (paper)", "calibrated": "Calibrated: expected drop = 1 − keep_prob"}
NORMALIZE = {"sample": "Per sample (MC samples independent)", "batch": "Over the batch (TF/torchvision/timm)"}

# URL key -> (session key, default, parser/validator)
_URL = {
    "image": ("image", "coffee", lambda v: v if v in SAMPLES else "coffee"),
    "kp": ("keep_prob", 0.9, lambda v: min(1.0, max(0.05, round(float(v) * 20) / 20))),
    "b": ("block_size", 7, lambda v: min(15, max(1, int(v)))),
    "seed": ("seed", 0, lambda v: min(10_000, max(0, int(v)))),
    "group": ("group", 3, lambda v: min(4, max(1, int(v)))),
    "place": ("placement", "after_group", lambda v: v if v in PLACEMENTS else "after_group"),
    "shared": ("shared_mask", False, lambda v: str(v).lower() in ("1", "true", "yes")),
    "region": ("seed_region", "valid", lambda v: v if v in REGIONS else "valid"),
    "gamma": ("gamma_mode", "eq1", lambda v: v if v in GAMMA_MODES else "eq1"),
    "norm": ("normalize", "sample", lambda v: v if v in NORMALIZE else "sample"),
    "site": ("act_site", "after_act", lambda v: v if v in M.SITE_ACTS else "after_act"),
}


@dataclass(frozen=True, eq=False)
class Context:
    """Everything a page needs: the live model, the image, its clean pass and the parameters."""

    loaded: M.LoadedModel
    model_key: str
    image: Image.Image  # 224x224 crop the network sees
    image_key: str
    image_label: str
    clean: M.CleanPass
    spec: M.RegularizerSpec
    seed: int

    @property
    def backbone(self) -> M.Backbone:
        return self.loaded.backbone


def _init_from_url() -> None:
    """On a session's first run, take parameters from the URL (invalid values fall back)."""
    if st.session_state.get("_url_loaded"):
        return
    for url_key, (key, default, parse) in _URL.items():
        value = default
        if url_key in st.query_params:
            try:
                value = parse(st.query_params[url_key])
            except (TypeError, ValueError):
                value = default
        st.session_state.setdefault(key, value)
    st.session_state["_url_loaded"] = True


def _keep_widget_values() -> None:
    """Widget values are dropped when a page without that widget runs; every page draws the
    sidebar, and re-assigning the keys keeps the values across page switches."""
    for key in [key for key, _, _ in _URL.values()] + ["weights", "weights_file"]:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _write_url() -> None:
    for url_key, (key, _, _) in _URL.items():
        value = st.session_state.get(key)
        st.query_params[url_key] = str(int(value) if isinstance(value, bool) else value)


# ------------------------------------------------------------------ caches


@st.cache_resource(show_spinner="Loading the model…", max_entries=3)
def _load_model(choice: str, weights_file: str, _progress=None) -> M.LoadedModel:
    return M.load_model(choice, weights_file or None, progress=_progress)


@st.cache_data(show_spinner=False, max_entries=16)
def _decode(data: bytes) -> Image.Image:
    """Upright RGB, at most 1024 px on its long side (the network's transform resizes it)."""
    return M.decode_image(data)


@st.cache_resource(show_spinner="Running the network once on this image…", max_entries=8, ttl=3600)
def _clean_pass(model_key: str, image_key: str, _loaded: M.LoadedModel, _image: Image.Image):
    """(model actually used, clean pass, note): on CUDA OOM the CPU copy of the model takes over."""
    bb = _loaded.backbone
    return clean_pass_with_fallback(_loaded, M.to_input(_image, bb.mean, bb.std))


def _noted(result_and_note):
    """Show a fallback note, if any, and return the result."""
    result, note = result_and_note
    if note:
        st.warning(note, icon="🐢")
    return result


def _model(choice: str, weights_file: str) -> M.LoadedModel:
    holder = st.empty()

    def progress(done: int, total: int) -> None:
        holder.progress(done / total if total else 0.0, text=f"Downloading weights: {done / 1e6:.0f} MB")

    try:
        return _load_model(choice, weights_file, _progress=progress)
    finally:
        holder.empty()


# ------------------------------------------------------------------ sidebar


def _image_from_sidebar() -> tuple[bytes, str]:
    st.selectbox("Sample image", list(SAMPLES), format_func=SAMPLES.get, key="image")
    upload = st.file_uploader("…or upload your own", type=UPLOAD_TYPES, key="upload",
                              help="PNG, JPEG, WebP, GIF, BMP or TIFF, up to 25 MB. Never stored.")
    sample = st.session_state["image"]
    sample_bytes = (ASSETS / f"{sample}.jpg").read_bytes()
    if upload is None:
        return sample_bytes, SAMPLES[sample]
    data = upload.getvalue()
    if len(data) > MAX_UPLOAD_BYTES:
        st.error(f"“{upload.name}” is {len(data) / 2**20:.0f} MB; the limit is 25 MB. Showing the sample instead.")
        return sample_bytes, SAMPLES[sample]
    try:
        _decode(data)
    except M.ImageError as err:
        st.error(f"“{upload.name}” can't be used: {err} Showing the sample instead.")
        return sample_bytes, SAMPLES[sample]
    return data, upload.name


def sidebar() -> Context:
    """Draw the shared sidebar and return the page context."""
    _init_from_url()
    _keep_widget_values()
    with st.sidebar:
        st.subheader("Image")
        data, label = _image_from_sidebar()
        st.subheader("Regulariser")
        st.slider("keep_prob", 0.05, 1.0, step=0.05, key="keep_prob",
                  help="Probability of keeping a unit; 1 − keep_prob is the drop budget.")
        st.slider("block_size", 1, 15, key="block_size", help="Side of the dropped square (clipped to the map).")
        st.number_input("Seed", 0, 10_000, key="seed", help="Same seed, same masks: a rerun does not reshuffle.")
        st.radio("Placement", list(PLACEMENTS), format_func=PLACEMENTS.get, key="placement")
        with st.expander("More settings"):
            st.selectbox("Group (for 'after one group')", [1, 2, 3, 4], key="group",
                         format_func=lambda g: f"group {g}")
            st.toggle("One mask shared by all channels", key="shared_mask")
            st.radio("DropBlock seeds", list(REGIONS), format_func=REGIONS.get, key="seed_region")
            st.radio("DropBlock γ", list(GAMMA_MODES), format_func=GAMMA_MODES.get, key="gamma_mode",
                     help="Eq. (1) ignores overlapping blocks and drops a little less than asked.")
            st.radio("Normalisation count(M)/count_ones(M)", list(NORMALIZE), format_func=NORMALIZE.get,
                     key="normalize", help="Algorithm 1 does not say over what M is counted.")
            st.radio("Site inside blocks", list(M.SITE_ACTS), format_func=M.SITE_ACTS.get, key="act_site")
        st.subheader("Model")
        choice = st.selectbox("ResNet-50 weights", list(M.WEIGHT_CHOICES), key="weights",
                              help="From the torch hub cache (downloaded on first use when online).")
        st.session_state.setdefault("weights_file", os.environ.get("DROPBLOCK_LAB_WEIGHTS", ""))
        weights_file = st.text_input("…or a local state-dict file", key="weights_file",
                                     help="Path to a ResNet-50 state dict on the server.")
    _write_url()

    loaded = _model(choice, weights_file.strip())
    model_key = f"{loaded.summary}|{weights_file}|{id(loaded)}"
    image = _decode(data)
    image_key = hashlib.sha256(data).hexdigest()[:16]
    loaded, clean, note = _clean_pass(model_key, image_key, loaded, image)
    if note:
        st.warning(note, icon="🐢")
        model_key += "|cpu"
    image = M.crop_for_display(image)  # what the network saw, for overlays
    s = st.session_state
    spec = M.RegularizerSpec(
        kind="dropblock", keep_prob=float(s["keep_prob"]), block_size=int(s["block_size"]),
        placement=s["placement"], group=int(s["group"]), per_channel=not s["shared_mask"],
        seed_region=s["seed_region"], gamma_mode=s["gamma_mode"], normalize=s["normalize"], act_site=s["act_site"],
    )
    return Context(loaded, model_key, image, image_key, label, clean, spec, int(s["seed"]))


def run_page(draw: Callable[[Context], None]) -> None:
    """Set up a page (shared sidebar, model banner) and draw it; errors become friendly messages."""
    st.set_page_config(page_title="DropBlock Lab", page_icon="🧱", layout="wide")
    with st.sidebar:
        for path, label, icon in NAV:
            st.page_link(path, label=label, icon=icon)
        st.divider()
    try:
        ctx = sidebar()
        model_banner(ctx)
        draw(ctx)
    except M.ImageError as err:  # an image that passed the upload check but failed later
        st.error(f"This image can't be used: {err}")
    except Exception:  # never a traceback in front of a class or a stakeholder
        logging.getLogger("dropblock_lab").exception("page failed")
        st.error("Something went wrong while computing this view. Try other settings or another image; "
                 "the details are in the server log.")


def model_banner(ctx: Context) -> None:
    """Say plainly which model, weights and device are live."""
    device = f"GPU ({device_name()})" if ctx.loaded.device.type == "cuda" else "CPU"
    st.caption(f"Model: **{ctx.loaded.summary.rsplit(' · ', 1)[0]}** · device: **{device}** · "
               f"image: {ctx.image_label}")
    if ctx.loaded.is_fallback:
        st.warning(
            "No ResNet-50 weights could be loaded, so this runs **EfficientNet-Lite0 with real ImageNet "
            f"weights** instead (groups = its 56/28/14/7 resolution stages). Reason: {ctx.loaded.fallback_reason}. "
            "Put `resnet50-11ad3fa6.pth` in the torch hub cache or name a file in the sidebar.",
            icon="ℹ️",
        )
    elif "untrained" in ctx.loaded.weights:
        st.warning("Untrained ResNet-50 (random weights), as chosen: predictions and CAMs are meaningless.")


def spec_notes(ctx: Context) -> None:
    """Friendly notes on parameters at their limits."""
    spec = ctx.spec
    if spec.keep_prob >= 1.0:
        st.info("keep_prob = 1: nothing is dropped, DropBlock is the identity (as at inference).")
    if spec.placement == "after_group":
        size = ctx.clean.acts[spec.group].shape[-1]
        if spec.block_size >= size:
            st.info(f"block_size {spec.block_size} covers the whole {size}×{size} map of group {spec.group}: "
                    "it is clipped to the map and drops whole channels, like SpatialDropout.")


# ------------------------------------------------------------------ cached computations


@st.cache_data(show_spinner=False, max_entries=24)
def _mask_view(model_key, image_key, spec, seed, n_channels, _ctx: Context):
    return compute_with_fallback(M.compute_mask_view, _ctx.loaded, _ctx.clean, spec, seed=seed, n_channels=n_channels)


def mask_view(ctx: Context, n_channels: int = 8) -> M.MaskView:
    return _noted(_mask_view(ctx.model_key, ctx.image_key, ctx.spec, ctx.seed, n_channels, _ctx=ctx))


@st.cache_data(show_spinner=False, max_entries=16)
def _comparison(model_key, image_key, spec, seed, _ctx: Context):
    return compute_with_fallback(M.compute_comparison, _ctx.loaded, _ctx.clean, spec, seed=seed)


def comparison(ctx: Context, spec: M.RegularizerSpec) -> M.Comparison:
    return _noted(_comparison(ctx.model_key, ctx.image_key, spec, ctx.seed, _ctx=ctx))


@st.cache_data(show_spinner="Sampling masks…", max_entries=16)
def _strategy(model_key, image_key, spec, fc_keep_prob, n_samples, seed, _ctx: Context):
    return compute_with_fallback(M.compute_dropblock_dropout, _ctx.loaded, _ctx.clean, spec,
                                 fc_keep_prob=fc_keep_prob, n_samples=n_samples, seed=seed)


def dropblock_dropout(ctx: Context, spec: M.RegularizerSpec, fc_keep_prob: float, n_samples: int):
    return _noted(_strategy(ctx.model_key, ctx.image_key, spec, fc_keep_prob, n_samples, ctx.seed, _ctx=ctx))


@st.cache_data(show_spinner="Sampling masks…", max_entries=16)
def _cam_shift(model_key, image_key, spec, seed, n_samples, class_idx, _ctx: Context):
    return compute_with_fallback(M.compute_cam_shift, _ctx.loaded, _ctx.clean, spec, n_samples=n_samples, seed=seed,
                                 class_idx=class_idx)


def cam_shift(ctx: Context, n_samples: int, class_idx: int | None) -> M.CamShift:
    return _noted(_cam_shift(ctx.model_key, ctx.image_key, ctx.spec, ctx.seed, n_samples, class_idx, _ctx=ctx))


# The curve reports progress while it computes, which st.cache_data cannot replay on a hit;
# it gets a small LRU of its own, shared by sessions (results are immutable) and locked.
_CURVES: OrderedDict[tuple, M.RobustnessCurve] = OrderedDict()
_CURVES_LOCK = threading.Lock()
_CURVES_MAX = 8


def robustness_curve(ctx: Context, spec: M.RegularizerSpec, n_samples: int, keep_probs: tuple[float, ...]):
    key = (ctx.model_key, ctx.image_key, spec, ctx.seed, n_samples, keep_probs)
    with _CURVES_LOCK:
        if key in _CURVES:
            _CURVES.move_to_end(key)
            return _CURVES[key]
    bar = st.progress(0.0, text="Computing the curve…")
    try:
        curve = _noted(compute_with_fallback(
            M.compute_robustness_curve, ctx.loaded, ctx.clean, spec, keep_probs=keep_probs, n_samples=n_samples,
            seed=ctx.seed, progress=lambda f, text: bar.progress(min(1.0, f), text=text),
        ))
    finally:
        bar.empty()
    with _CURVES_LOCK:
        _CURVES[key] = curve
        while len(_CURVES) > _CURVES_MAX:
            _CURVES.popitem(last=False)
    return curve


@st.cache_data(show_spinner=False, max_entries=32)
def algorithm_steps(size: int, keep_prob: float, block_size: int, seed: int, seed_region: str):
    return compute_algorithm_steps(size, size, keep_prob, block_size, seed=seed, seed_region=seed_region)


@st.cache_data(show_spinner="Measuring on this image's group-3 activation…", max_entries=32)
def _mistakes(model_key, image_key, keep_prob: float, block_size: int, seed: int, _ctx: Context):
    return compute_mistakes(_ctx.clean.acts[3], keep_prob, block_size, seed=seed)


def mistakes(ctx: Context):
    return _mistakes(ctx.model_key, ctx.image_key, ctx.spec.keep_prob, ctx.spec.block_size, ctx.seed, _ctx=ctx)


@st.cache_data(show_spinner="Running the tutorial's contrasts…", max_entries=16)
def _contrasts(model_key, image_key, keep_prob: float, seed: int, _ctx: Context):
    return compute_with_fallback(compute_tutorial_contrasts, _ctx.loaded, _ctx.clean, keep_prob, seed=seed)


def tutorial_contrasts(ctx: Context):
    return _noted(_contrasts(ctx.model_key, ctx.image_key, ctx.spec.keep_prob, ctx.seed, _ctx=ctx))


def device_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
