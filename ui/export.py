"""Data downloads next to the PNG downloads: the numbers behind each picture, table and curve.

The bytes are built only when the button is clicked (``st.download_button`` takes a callable,
and ``on_click="ignore"`` keeps the click from rerunning the page). The builders are in
``models/export.py``; this module adds what every file records about the run: model, weights,
device, image hash, parameters and seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import streamlit as st
import torch
import torchvision

from models import export as E

from . import layout
from .i18n import _
from .inputs import Context

Top = Sequence[tuple[str, float]]


def data_download(label: str, make_bytes: Callable[[], bytes], file_name: str, mime: str) -> None:
    """A download button whose bytes are made by ``make_bytes()`` when clicked, not on every rerun
    (none while a view in rounds draws a draft: it comes with the final result)."""
    if layout.drafting():
        return
    st.download_button(label, make_bytes, file_name=file_name, mime=mime, key=f"data-{file_name}",
                       on_click="ignore", icon=":material/table_view:")


def meta(ctx: Context, what: str, **params: object) -> dict[str, object]:
    """What a file records so its result can be reproduced."""
    return {
        "app": "DropBlock Lab",
        "what": what,
        "model": ctx.loaded.summary,
        "weights": ctx.loaded.weights,
        "device": str(ctx.loaded.device),
        "image": ctx.image_label,
        "image_sha256_prefix": ctx.image_key,
        "spec": E.spec_meta(ctx.spec),
        "seed": ctx.seed,
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__},
        **params,
    }


def npz(ctx: Context, name: str, arrays: Callable[[], Mapping[str, object]], what: str, **params: object) -> None:
    """An NPZ download of ``arrays()`` with the run's metadata."""
    data_download(_("Download data (NPZ)"), lambda: E.npz_bytes(arrays(), meta(ctx, what, **params)),
                  f"{name}.npz", "application/octet-stream")


def csv(ctx: Context, name: str, rows: Callable[[], Sequence[Mapping[str, object]]], what: str,
        **params: object) -> None:
    """A CSV download of ``rows()`` with the run's metadata as ``#`` comment lines."""
    data_download(_("Download data (CSV)"), lambda: E.csv_bytes(rows(), meta(ctx, what, **params)),
                  f"{name}.csv", "text/csv")


# ------------------------------------------------------------------ one line per page


def mask_view(ctx: Context, view, name: str = "mask-explorer") -> None:
    """Masks (bool) and feature maps before/after of the Mask explorer's grid."""
    npz(ctx, name, lambda: E.mask_view_arrays(view),
        "seed_mask/block_mask (k, H, W) bool, True = kept for block_mask; before/after (k, H, W) float32 at "
        "the site; channels: which channel each row is", site=view.site_label, gamma=view.gamma,
        realised_drop=view.realised_drop, feature_colour_scale={"colormap": "viridis", "vmin": 0.0,
        "vmax": float(max(view.before.max(), view.after.max()))})


def cams(ctx: Context, name: str, vmax: float | None, class_name: str, *, diverging: bool = False,
         **cams: torch.Tensor) -> None:
    """Raw CAMs (224, 224) float32, before any clipping or colour scaling, with the scale used.

    ``diverging``: a signed difference drawn blue-white-red, symmetric around 0 (``vmax`` unused).
    """
    if diverging:
        m = max(float(c.abs().max()) for c in cams.values()) or 1.0
        scale = {"colormap": "RdBu_r", "vmin": -m, "vmax": m, "resolution": E.CAM_SCALE["resolution"]}
    else:
        scale = {**E.CAM_SCALE, "vmax": None if vmax is None else float(vmax)}
    npz(ctx, name, lambda: cams, f"class activation maps for “{class_name}” (Zhou et al. 2016), raw",
        class_name=class_name, colour_scale=scale)


def maps(ctx: Context, name: str, what: str, **arrays: object) -> None:
    """Any named maps or masks as computed."""
    npz(ctx, name, lambda: arrays, what)


def top(ctx: Context, name: str, **columns: Top) -> None:
    """Top-k tables side by side as CSV."""
    csv(ctx, name, lambda: E.top_rows(columns), "top-k classes and probabilities")


def rows(ctx: Context, name: str, what: str, make_rows: Callable[[], Sequence[Mapping[str, object]]],
         **params: object) -> None:
    """A table or curve already laid out as rows."""
    csv(ctx, name, make_rows, what, **params)


def curve(ctx: Context, curve, name: str = "robustness-curve", **params: object) -> None:
    """A ``RobustnessCurve`` as CSV (one row per method and keep_prob)."""
    csv(ctx, name, lambda: E.curve_rows(curve), "class probability and top-1 agreement vs keep_prob",
        class_idx=curve.class_idx, clean_prob=curve.clean_prob, **params)
