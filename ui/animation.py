"""The mask explorer's "Animation for slides": a GIF or MP4 of its masks over seeds or over a sweep.

Frames are the page's own picture (``compute_mask_sample`` through models/animation.py, drawn with
ui/render.py's tiles); rendering runs on the heavy pool (queue position, progress, cached by
content), only when asked for. GIF by Pillow, MP4 (H.264) by PyAV.
"""

from __future__ import annotations

import dataclasses
import logging

import streamlit as st

import models as M
from models import animation as A

from . import render
from .inputs import Context
from .settings import SPEC_KEYS
from .view import on_model, view
from .i18n import N_, _, language, ngettext, use_language

_SIZE_LABELS = {"small": N_("Small ({width} px)"), "medium": N_("Medium ({width} px)"), "large": N_("Large ({width} px)")}


def _draw(view: M.MaskSample, vmax: float, tile: int):
    """The page's mask grid, two rows: block mask M with seeds, then the feature maps after the drop."""
    return render.grid(render.mask_rows(view, ("blocks", "after"), vmax), size=tile)


def _captions(ctx: Context, form: str):
    """(value, view) -> caption lines, translated now, in the session's thread (the worker has no
    session language); numbers formatted apart from the words."""
    spec = ctx.spec
    title = {
        "seeds": _("seed {value} · realised drop {drop}"),
        "keep_prob": _("keep_prob {value} · realised drop {drop}"),
        "block_size": _("block_size {value} · realised drop {drop}"),
    }[form]
    where = (_("after group {group}").format(group=spec.group) if spec.placement == "after_group"
             else _("inside the blocks of groups 3 and 4"))
    fixed = {
        "seeds": _("keep_prob {keep_prob} · block_size {block_size} · {where}"),
        "keep_prob": _("block_size {block_size} · seed {seed} · {where}"),
        "block_size": _("keep_prob {keep_prob} · seed {seed} · {where}"),
    }[form].format(keep_prob=f"{spec.keep_prob:g}", block_size=spec.block_size, seed=ctx.seed, where=where)
    legend = _("Top: mask M (red dropped, yellow seeds). Bottom: feature maps after the drop, one colour scale.")

    def caption(value, view: M.MaskSample) -> list[str]:
        shown = f"{value:.2f}" if form == "keep_prob" else str(value)
        return [title.format(value=shown, drop=f"{view.realised_drop:.3f}"), fixed, legend]

    return caption


def _settings() -> tuple[A.AnimationSpec, str | None]:
    """The export's widgets; returns the spec and a note when the frame count was capped."""
    form = st.radio(_("What changes"), list(A.FORMS), format_func=lambda f: _(A.FORMS[f]), horizontal=True,
                    key="anim_form")
    start = stop = 0.0
    if form == "keep_prob":
        start, stop = st.slider(_("keep_prob range"), 0.05, 1.0, (0.5, 1.0), step=0.05, key="anim_kp_range",
                                help=_("Frames go from the highest keep_prob down to the lowest; the seed stays fixed."))
    elif form == "block_size":
        start, stop = st.slider(_("block_size range"), 1, 15, (1, 9), key="anim_b_range",
                                help=_("Frames go from the smallest block to the largest; the seed stays fixed."))
    left, mid, right = st.columns(3)
    frames = left.slider(_("Number of frames"), A.MIN_FRAMES, A.MAX_FRAMES, 12, key="anim_frames",
                         help=_("A seed animation shows seeds 0 to frames − 1."))
    size = mid.radio(_("Frame size"), list(A.WIDTHS), key="anim_size", horizontal=True,
                     format_func=lambda s: _(_SIZE_LABELS[s]).format(width=A.WIDTHS[s]))
    fmt = right.radio(_("File format"), list(A.FORMATS), key="anim_fmt", horizontal=True, format_func=str.upper)
    seconds = st.select_slider(_("Seconds per frame"), [0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0], 0.6,
                               key="anim_seconds")
    width = A.WIDTHS[size]
    cap = A.max_frames(width)
    st.caption(_("Caps, so one export takes a few seconds of the server: at most {small} frames small, "
                 "{medium} medium, {large} large.").format(
        small=A.max_frames(A.WIDTHS["small"]), medium=A.max_frames(A.WIDTHS["medium"]),
        large=A.max_frames(A.WIDTHS["large"])))
    note = None
    if frames > cap:
        note = _("{frames} frames is above the cap at this size; using {cap}.").format(frames=frames, cap=cap)
        frames = cap
    anim = A.AnimationSpec(form=form, frames=frames, width=width, fmt=fmt, start=float(start), stop=float(stop),
                           frame_ms=int(round(seconds * 1000)))
    shown = len(A.frame_values(anim))
    if shown < anim.frames:
        note = (ngettext("The range has {n} keep_prob value, so the animation has {n} frame.",
                         "The range has {n} keep_prob values, so the animation has {n} frames.", shown)
                if form == "keep_prob" else
                ngettext("The range has {n} block size, so the animation has {n} frame.",
                         "The range has {n} block sizes, so the animation has {n} frames.", shown)).format(n=shown)
    return anim, note


def _file_name(ctx: Context, anim: A.AnimationSpec) -> str:
    spec = ctx.spec
    what = {"seeds": f"seeds0-{anim.frames - 1}_kp{spec.keep_prob:g}_b{spec.block_size}",
            "keep_prob": f"kp{anim.stop:g}-{anim.start:g}_b{spec.block_size}_seed{ctx.seed}",
            "block_size": f"b{anim.start:g}-{anim.stop:g}_kp{spec.keep_prob:g}_seed{ctx.seed}"}[anim.form]
    return f"dropblock_{what}_{anim.width}px.{anim.fmt}"


def section(ctx: Context, view: M.MaskSample) -> None:
    """The "Animation for slides" expander of the mask explorer (inside its fragment). Its widgets are
    drawn only while it is open: a slider move on the page sends none of them."""
    box = st.expander(_("Animation for slides"), icon="🎞️", key="anim_open", on_change="rerun")
    if not box.open:
        return
    with box:
        st.caption(_("The picture above, animated: the block masks and the feature maps after the drop, "
                     "for seeds 0, 1, 2, … or over a range of keep_prob or block_size, other settings fixed."))
        anim, note = _settings()
        if note:
            st.info(note)
        n_channels = len(view.channels)
        seed = None if anim.form == "seeds" else ctx.seed  # seeds 0..N-1 do not depend on the sidebar's seed
        key = animation.key(ctx, n_channels, anim, language(), seed)[0]  # the render asked for, by its arguments
        if st.button(_("Render the animation"), key="anim_render", icon="🎬", type="primary"):
            st.session_state["anim_key"] = key
        if st.session_state.get("anim_key") != key:
            if "anim_key" in st.session_state:
                st.caption(_("The settings changed: render again to see them."))
            return
        try:
            result = animation(ctx, n_channels, anim, language(), seed)
        except Exception:  # the animation's own message (the page's guard would say less)
            logging.getLogger("dropblock_lab").exception("animation failed")
            st.session_state.pop("anim_key", None)
            st.error(_("The animation could not be rendered. Try other settings; the details are in the server log."))
            return
        _show(ctx, result)


@view(depends=SPEC_KEYS, heavy=True, title=N_("Rendering the animation"), keep=4)
def animation(ctx: Context, n_channels: int, anim: A.AnimationSpec, lang: str, seed: int | None,
              progress=None) -> A.Animation:
    """The frames of the mask grid as a GIF or MP4 (captions in ``lang``, the session's language);
    ``seed``: the sweep's fixed seed, None for seeds 0..N-1."""
    ctx = dataclasses.replace(ctx, seed=seed or 0)
    with use_language(lang):  # on a worker, which has no session
        caption = _captions(ctx, anim.form)
    return on_model(A.render_animation, ctx, ctx.spec, anim, seed=ctx.seed, n_channels=n_channels, draw=_draw,
                    caption=caption, progress=progress)


def _show(ctx: Context, result: A.Animation) -> None:
    width, height = result.size
    if result.mime == "image/gif":
        # the GIF's own bytes at its own width: Streamlit then passes them on as they are (a resize
        # or re-encode would keep only the first frame)
        st.image(result.data, width=width, output_format="auto")
    else:
        st.video(result.data, format="video/mp4", loop=True, autoplay=True, muted=True)
    st.caption(ngettext("{frames} frame · {width}×{height} px · {kb} KB · rendered in {seconds} s",
                        "{frames} frames · {width}×{height} px · {kb} KB · rendered in {seconds} s",
                        result.frames).format(
        frames=result.frames, width=width, height=height, kb=f"{len(result.data) / 1024:.0f}",
        seconds=f"{result.seconds:.1f}"))
    label = _("Download GIF") if result.mime == "image/gif" else _("Download MP4")
    st.download_button(label, result.data, file_name=_file_name(ctx, result.spec), mime=result.mime,
                       key="anim_download", icon="⬇️", on_click="ignore")
