"""Mask explorer: seed mask, block mask and feature maps before/after, with Eq. (1) filled in."""

from __future__ import annotations

import time

import streamlit as st

import models as M
from ui import animation, banner, export, frame, layout, render, settings, views
from ui.i18n import _, listing, shown_text, tr
from ui.inputs import Context

SEND_MASKS_S = 0.01  # after the masks: the event loop's moment to send them (see body)


def page(ctx: Context) -> None:
    st.title(_("Mask explorer"))
    st.markdown(_(
        "DropBlock samples **seeds** with probability γ, grows each into a **block_size × block_size** square, "
        "zeroes those units and rescales the rest by count(M)/count_ones(M) (Algorithm 1 of the paper)."
    ))
    # Eq. (1) itself does not change with the controls: outside the fragment, KaTeX typesets it once
    st.latex(r"\gamma = \frac{1-\text{keep\_prob}}{b_h b_w}\cdot\frac{H W}{(H-b_h+1)(W-b_w+1)}")
    if layout.presenting():  # no sidebar: the three controls in a compact bar, their moves rerun the page
        with frame.live_controls_slot(on_projector=layout.control_bar()):
            settings.live_widgets()
        explorer(ctx, None)
    else:
        explorer(ctx, frame.live_controls_slot())


@frame.fragment  # keep_prob, block_size, the seed and the channels shown rerun only this part
def explorer(ctx: Context, controls) -> None:
    def draw_controls() -> None:  # last, as the sidebar is: the masks reach the browser first
        if controls is not None:
            with controls:
                settings.live_widgets()

    with frame.draw_after(draw_controls):
        body(frame.live(ctx))  # on a rerun of this part alone, ctx is the last full run's
    settings.sync_url()  # a link to this view, once the rest is on its way


def body(ctx: Context) -> None:
    # The masks are drawn first and the network runs while the browser draws them; everything above
    # and beside them goes into places reserved here and is filled after (Streamlit keeps the order
    # of the places, not of the drawing). The channels slider's value is in session state already.
    notes, channels_box, head = st.container(), st.container(), st.container()
    view = views.mask_sample(ctx, int(st.session_state.get("explorer_channels", 8)))

    rows = ("blocks", "seeds", "before", "after")  # one tile grid for every screen: rows of 4 on a phone
    labels = [_("block mask M"), _("seed mask"), _("before"), _("after (scaled)")]
    caption = _("Masks drawn with seed {seed}. {chosen} Channels {channels}. Yellow: seeds; red: dropped units. "
                "Features share one colour scale, so the rescaling of kept units is visible.").format(
        seed=ctx.seed, chosen=render.channels_note(view), channels=listing(map(str, view.channels)))
    with layout.main_figure():
        render.show_mask_grid(view, rows, labels, "mask-explorer", caption)
    # The interpreter left to the event loop for a moment, so that it sends the masks now: the rest
    # of the run is Python-heavy and would make the send wait for the GIL at each step (the masks
    # were painted ~15 ms later at the median: bench/load.py --slider-probe).
    time.sleep(SEND_MASKS_S)
    try:  # then the rest of the network, for the same masks (CAMs and top-5), while the browser draws
        out = views.mask_outcome(ctx)
    except Exception as err:  # the masks' numbers and the animation are still shown, then the message
        out = err

    with notes:
        banner.spec_notes(ctx)
    with channels_box:
        st.slider(_("Channels to show (the most active ones)"), 2, 12, 8, key="explorer_channels")
    with head:
        numbers(ctx, view)
    export.mask_view(ctx, view)
    animation.section(ctx, view)  # "Animation for slides": GIF/MP4 over seeds or a sweep

    if isinstance(out, Exception):
        raise out

    outcome(ctx, out)


def numbers(ctx: Context, view: M.MaskSample) -> None:
    """Above the masks: the site and map, Eq. (1) filled in, γ and the drops, the block and the seeds."""
    st.subheader(_("At the {site} · map {h}×{w}").format(site=tr(view.site_label), h=view.map_size[0],
                                                        w=view.map_size[1]))
    st.code(shown_text(view.formula), language=None, wrap_lines=True)  # wraps on a phone

    cols = st.columns(4)
    cols[0].metric(_("γ (seed probability)"), f"{view.gamma:.5f}")
    cols[1].metric(_("Target drop (1 − keep_prob)/4") if view.target_quartered else _("Target drop 1 − keep_prob"),
                   f"{view.target_drop:.3f}",
                   help=_("Group 3 in the paper's placement: γ is divided by 4 there (Sec. 4.1.1), so the "
                          "target is a quarter of 1 − keep_prob.") if view.target_quartered else None)
    cols[2].metric(_("Realised drop (this sample)"), f"{view.realised_drop:.3f}",
                   delta=f"{view.realised_drop - view.target_drop:+.3f}", delta_color="off")
    if view.expected_drop is not None:
        cols[3].metric(_("Expected drop (overlaps counted)"), f"{view.expected_drop:.3f}",
                       help=_("Eq. (1) ignores overlapping blocks; this is the exact expectation."))
    st.caption(_("Block {bh}×{bw} after clipping to the map · seeds: {region} · {sharing}.").format(
        bh=view.block[0], bw=view.block[1], region=_(settings.REGIONS[ctx.spec.seed_region]),
        sharing=_("one mask shared by all channels") if not ctx.spec.per_channel else _("one mask per channel")))


def outcome(ctx: Context, out: M.MaskOutcome) -> None:
    """Under the masks: the CAMs without and with this mask, and the top-5 before and after."""
    left, mid, right = st.columns([1, 1, 1.2])
    clean = views.model_cam(ctx, ctx.clean.top1)  # the same for every mask: its picture is drawn once
    vmax = float(clean.cam.max())
    with left:
        render.show_overlay(ctx.image, clean.cam, vmax, "cam-clean", _("CAM without DropBlock"))
        export.cams(ctx, "cam-clean", vmax, out.top5_clean[0][0], cam_clean=clean.cam)
    with mid:
        render.show_overlay(ctx.image, out.cam_dropped, vmax, "cam-dropped", _("CAM with this mask (same scale)"))
        export.cams(ctx, "cam-dropped", vmax, out.top5_clean[0][0], cam_dropped=out.cam_dropped)
    with right:
        st.markdown(_("**Top-5 without → with this mask**"))
        st.table(
            [{_("without"): f"{a} ({pa:.2f})", _("with"): f"{b} ({pb:.2f})"}
             for (a, pa), (b, pb) in zip(out.top5_clean, out.top5_dropped)], hide_index=True)
        export.top(ctx, "mask-explorer-top5", without=out.top5_clean, with_mask=out.top5_dropped)


frame.page(page)
