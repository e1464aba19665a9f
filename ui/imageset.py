"""The image-set page's inputs and caches: which set, its predictions, its curves.

Everything that costs CPU runs on the heavy pool (``ui.state.heavy``), like the one-image curve: a
visible queue position and progress, one heavy job per session, cancellation checked before each
image. Sets are read in memory (``models/imageset.py``: each image decoded once, kept at the
network's size, within the set's pixel budget) and kept by the hash of their bytes (``_SETS``, a few
sets for every session); the predictions and curves are cached by model, set, parameters and seed.
Cancelling is a rerun: the session stops waiting, and the job stops at its next progress update
unless another session waits for the same result; nothing partial is kept.
"""

from __future__ import annotations

import dataclasses
import hashlib

import streamlit as st
from torch import Tensor

import models as M
from models import jobs
from models.imageset import (MAX_IMAGES, MAX_MEMBER_BYTES, MAX_TOTAL_BYTES, MAX_ZIP_BYTES, ImageSet,
                             network_inputs, read_files, read_zip)
from models.setcurve import SetCurve, compute_set_curve, compute_set_predictions
from models.text import Text

from .i18n import N_, _

from .state import ASSETS, UPLOAD_TYPES, Context, heavy, heavy_cached

# The bundled set (#23): openly licensed photos of ImageNet classes that the fallback model
# (EfficientNet-Lite0) classifies right; source, author, licence and clean top-1 of each in
# assets/ATTRIBUTION.md. A fixed tuple: no path is built from input.
BUNDLED_SET = ("coffee.jpg", "chelsea.jpg") + tuple(f"set/{name}.jpg" for name in (
    "aitzgorri", "binoculars", "broccoli", "brown_bear", "cameraman", "castle", "chameleon", "cups", "djembe",
    "dragonfly", "dromedary", "fig", "fire_engine", "forest_stream", "gerbera_orange", "gerbera_yellow", "goose",
    "guitar", "hen", "honey_bee", "ladybird", "lemons", "paintbrushes", "picos_de_europa", "rowing_boats",
    "sea_lion", "spaniels", "summer_palace", "suspension_bridge", "wall_clock"))
SOURCES = {"bundled": N_("Bundled samples"), "files": N_("Upload several images"), "zip": N_("Upload a zip of images")}


_SETS: jobs.SingleFlight[ImageSet] = jobs.SingleFlight(max_entries=4)  # sets read, by the hash of their bytes


def _read(kind: str, key: str, label: str, payload) -> ImageSet:
    """A set, by the hash of its bytes (shared read-only: sets are immutable), read on the heavy pool
    with a progress bar; a rerun or a closed tab stops the reading before the next image."""
    held = _SETS.peek(key)
    if held is not None:
        return held

    def run(progress: jobs.Progress) -> ImageSet:
        return read_zip(payload, label, progress=progress) if kind == "zip" else read_files(payload, label,
                                                                                           progress=progress)

    imageset = heavy(("set_read", kind, key), _("Reading the images"), run, keep=False)  # held in _SETS
    _SETS.put(key, imageset)
    return imageset


def bundled() -> ImageSet:
    files = [(name.rpartition("/")[2], (ASSETS / name).read_bytes()) for name in BUNDLED_SET]
    return _read("files", "bundled", Text(N_("the bundled samples")), files)


def choose_set() -> ImageSet | None:
    """Draw the set's source widgets; the set, or None while nothing is uploaded.

    Raises:
        models.imageset.SetError: a zip that cannot be read at all.
    """
    source = st.radio(_("Images"), list(SOURCES), format_func=lambda k: _(SOURCES[k]), horizontal=True, key="set_source")
    if source == "bundled":
        return bundled()
    if source == "files":
        uploads = st.file_uploader(
            _("Images (up to {n} are used, {mb} MB each, {total} MB in all)").format(
                n=MAX_IMAGES, mb=MAX_MEMBER_BYTES // 2**20, total=MAX_TOTAL_BYTES // 2**20),
            type=UPLOAD_TYPES, accept_multiple_files=True, key="set_files", max_upload_size=MAX_MEMBER_BYTES // 2**20,
            help=_("Decoded in memory, never stored."))
        if not uploads:
            return None
        files = [(u.name, u.getvalue()) for u in uploads]
        key = hashlib.sha256(b"".join(hashlib.sha256(d).digest() + n.encode() for n, d in files)).hexdigest()
        return _read("files", key, Text(N_("{n} uploaded files"), n=len(files)), files)
    upload = st.file_uploader(_("A zip of images (up to {mb} MB)").format(mb=MAX_ZIP_BYTES // 2**20), type=["zip"],
                              key="set_zip", max_upload_size=MAX_ZIP_BYTES // 2**20,
                              help=_("Read in memory, never unpacked to disk."))
    if upload is None:
        return None
    data = upload.getvalue()
    return _read("zip", hashlib.sha256(data).hexdigest() + upload.name, upload.name, data)


def _inputs(loaded: M.LoadedModel, imageset: ImageSet) -> list[Tensor]:
    return network_inputs(imageset, loaded.preprocess)  # the weights' own transform, from the kept squares


def predictions(ctx: Context, imageset: ImageSet) -> tuple[tuple[str, float], ...]:
    """Each image's clean top-1 (class name, probability), on the heavy pool (progress per image)."""
    def run(progress: jobs.Progress) -> tuple[tuple[str, float], ...]:
        top = compute_set_predictions(ctx.backbone, _inputs(ctx.loaded, imageset), progress=progress)
        return tuple((ctx.backbone.categories[c], p) for c, p in top)

    return heavy(("set_predictions", ctx.model_key, imageset.key), _("Running the network once on each image"), run)


def curve_spec(spec: M.RegularizerSpec) -> M.RegularizerSpec:
    """The spec the curves depend on: they sweep their own keep_probs and block sizes, so the sidebar's
    keep_prob and block_size are taken out (moving them neither recomputes nor re-keys the curves)."""
    return spec if spec.group_params else dataclasses.replace(spec, keep_prob=1.0, block_size=1)


def curve_key(ctx: Context, imageset: ImageSet, n_samples: int, keep_probs: tuple[float, ...]) -> tuple:
    return ("set_curve", ctx.model_key, imageset.key, curve_spec(ctx.spec), ctx.seed, n_samples, keep_probs)


def cached_curve(key: tuple) -> SetCurve | None:
    return heavy_cached(key)


def set_curve(ctx: Context, imageset: ImageSet, n_samples: int, keep_probs: tuple[float, ...]) -> SetCurve:
    """The set's curves, cached by content, computed on the heavy pool like the one-image curve:
    queue position, then progress; a rerun (Cancel, another page) stops waiting and cancels it."""
    def run(progress):
        return compute_set_curve(ctx.backbone, _inputs(ctx.loaded, imageset), curve_spec(ctx.spec), keep_probs=keep_probs,
                                 n_samples=n_samples, seed=ctx.seed, progress=progress)

    return heavy(curve_key(ctx, imageset, n_samples, keep_probs), _("Computing the curves"), run)
