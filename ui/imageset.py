"""The image-set page's inputs and views: which set, its predictions, its curves.

Everything that costs CPU runs on the heavy pool (``ui/view.py``), like the one-image curve: a visible
queue position and progress, one heavy job per session, cancellation checked before each image. Sets
are read in memory (``models/imageset.py``: each image decoded once, kept at the network's size,
within the set's pixel budget) and kept by the hash of their bytes (a few sets for every session);
the predictions and curves are views keyed by model, set, the settings they use and the seed.
Cancelling is a rerun: the session stops waiting, and the job stops at its next progress update
unless another session waits for the same result; nothing partial is kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator

import streamlit as st
from torch import Tensor

import models as M
from models import jobs
from models.imageset import (MAX_IMAGES, MAX_MEMBER_BYTES, MAX_TOTAL_BYTES, MAX_ZIP_BYTES, ImageSet,
                             network_inputs, read_files, read_zip)
from models.rounds import Partial
from models.setcurve import SetCurve, compute_set_curve_rounds, compute_set_predictions
from models.text import Text

from .i18n import N_, _

from .inputs import SAMPLE_FILES, UPLOAD_TYPES, Context
from .settings import SAMPLES
from .view import view
from .views import SWEEPS

SOURCES = {"bundled": N_("Bundled samples"), "files": N_("Upload several images"), "zip": N_("Upload a zip of images")}


@dataclasses.dataclass(frozen=True, eq=False)
class Files:
    """Uploaded bytes, known to a view by their hash (their bytes are never hashed again)."""

    kind: str  # "files" or "zip"
    key: str  # SHA-256 of the bytes (and names)
    label: object  # str or models.text.Text: the set's name
    payload: object  # [(name, bytes)] or the zip's bytes

    def __view__(self, depends):
        return ("files", self.kind, self.key), self


@view(depends=(), heavy=True, title=N_("Reading the images"), keep=4)
def read(files: Files, progress: jobs.Progress) -> ImageSet:
    """A set, read on the heavy pool with a progress bar (a rerun or a closed tab stops the reading
    before the next image); kept by the hash of its bytes, shared read-only (sets are immutable)."""
    reader = read_zip if files.kind == "zip" else read_files
    return reader(files.payload, files.label, progress=progress)


def bundled() -> ImageSet:
    files = [(label, SAMPLE_FILES[name].read_bytes()) for name, label in SAMPLES.items()]
    return read(Files("files", "bundled", Text(N_("the bundled samples")), files))


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
        return read(Files("files", key, Text(N_("{n} uploaded files"), n=len(files)), files))
    upload = st.file_uploader(_("A zip of images (up to {mb} MB)").format(mb=MAX_ZIP_BYTES // 2**20), type=["zip"],
                              key="set_zip", max_upload_size=MAX_ZIP_BYTES // 2**20,
                              help=_("Read in memory, never unpacked to disk."))
    if upload is None:
        return None
    data = upload.getvalue()
    return read(Files("zip", hashlib.sha256(data).hexdigest() + upload.name, upload.name, data))


def _inputs(loaded: M.LoadedModel, imageset: ImageSet) -> list[Tensor]:
    return network_inputs(imageset, loaded.preprocess)  # the weights' own transform, from the kept squares


@view(depends=(), heavy=True, title=N_("Running the network once on each image"))
def predictions(ctx: Context, imageset: ImageSet, progress: jobs.Progress) -> tuple[tuple[str, float], ...]:
    """Each image's clean top-1 (class name, probability), on the heavy pool (progress per image)."""
    top = compute_set_predictions(ctx.backbone, _inputs(ctx.loaded, imageset), progress=progress)
    return tuple((ctx.backbone.categories[c], p) for c, p in top)


@view(depends=SWEEPS, rounds=True, title=N_("Computing the curves"))
def set_curve(ctx: Context, imageset: ImageSet, n_samples: int, keep_probs: tuple[float, ...],
              progress: jobs.Progress) -> Iterator[Partial[SetCurve]]:
    """The set's curves, computed on the heavy pool like the one-image curve: queue position, then
    progress; a rerun (Cancel, another page) stops waiting and cancels it. They sweep their own
    keep_probs and block sizes: the sidebar's keep_prob and block_size neither recompute nor re-key them."""
    return compute_set_curve_rounds(ctx.backbone, _inputs(ctx.loaded, imageset), ctx.spec, keep_probs=keep_probs,
                                    n_samples=n_samples, seed=ctx.seed, progress=progress)
