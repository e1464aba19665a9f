"""Mask explorer: seed mask, block mask and feature maps before/after, with Eq. (1) filled in."""

from __future__ import annotations

import streamlit as st

from ui import export, layout, render, state


def page(ctx: state.Context) -> None:
    st.title("Mask explorer")
    st.markdown(
        "DropBlock samples **seeds** with probability γ, grows each into a **block_size × block_size** square, "
        "zeroes those units and rescales the rest by count(M)/count_ones(M) (Algorithm 1 of the paper)."
    )
    state.spec_notes(ctx)
    explorer(ctx)


@st.fragment  # moving the page's own control reruns only this part, not the sidebar and the model
def explorer(ctx: state.Context) -> None:
    n_channels = st.slider("Channels to show (the most active ones)", 2, 12, 8, key="explorer_channels")
    view = state.mask_view(ctx, n_channels)

    st.subheader(f"At the {view.site_label} · map {view.map_size[0]}×{view.map_size[1]}")
    st.latex(r"\gamma = \frac{1-\text{keep\_prob}}{b_h b_w}\cdot\frac{H W}{(H-b_h+1)(W-b_w+1)}")
    st.code(view.formula, language=None, wrap_lines=True)  # wraps on a phone

    cols = st.columns(4)
    cols[0].metric("γ (seed probability)", f"{view.gamma:.5f}")
    cols[1].metric("Target drop 1 − keep_prob", f"{view.target_drop:.3f}")
    cols[2].metric("Realised drop (this sample)", f"{view.realised_drop:.3f}",
                   delta=f"{view.realised_drop - view.target_drop:+.3f}", delta_color="off")
    if view.expected_drop is not None:
        cols[3].metric("Expected drop (overlaps counted)", f"{view.expected_drop:.3f}",
                       help="Eq. (1) ignores overlapping blocks; this is the exact expectation.")
    st.caption(f"Block {view.block[0]}×{view.block[1]} after clipping to the map · seeds: "
               f"{state.REGIONS[ctx.spec.seed_region].lower()} · "
               f"{'one mask shared by all channels' if not ctx.spec.per_channel else 'one mask per channel'}.")

    vmax = float(max(view.before.max(), view.after.max()))
    rows = [
        [render.mask_rgb(k, s) for k, s in zip(view.block_mask, view.seed_mask)],
        [render.mask_rgb(~s) for s in view.seed_mask],
        [render.colorize(a, "viridis", 0.0, vmax) for a in view.before],
        [render.colorize(a, "viridis", 0.0, vmax) for a in view.after],
    ]
    labels = ["block mask M", "seed mask", "before", "after (scaled)"]
    caption = (f"Masks drawn with seed {ctx.seed}. Channels {', '.join(map(str, view.channels))}. "
               "Yellow: seeds; red: dropped units. "
               "Features share one colour scale, so the rescaling of kept units is visible.")
    wide, narrow = layout.wide_and_narrow("mask-grid")
    with wide, layout.main_figure():
        render.show_image(render.grid(rows, labels=labels), "mask-explorer", caption=caption)
    with narrow, layout.main_figure("narrow"):  # a phone: the channels in rows of 4, so tiles stay large enough to see units
        half = (len(view.channels) + 1) // 2
        render.show_image(render.grid([r[:half] for r in rows] + [r[half:] for r in rows], labels=labels * 2),
                          "mask-explorer-narrow", caption=caption)
    export.mask_view(ctx, view)

    left, mid, right = st.columns([1, 1, 1.2])
    with left:
        render.show_image(render.overlay(ctx.image, view.cam_clean, float(view.cam_clean.max())), "cam-clean",
                          caption="CAM without DropBlock")
        export.cams(ctx, "cam-clean", float(view.cam_clean.max()), view.top5_clean[0][0], cam_clean=view.cam_clean)
    with mid:
        render.show_image(render.overlay(ctx.image, view.cam_dropped, float(view.cam_clean.max())), "cam-dropped",
                          caption="CAM with this mask (same scale)")
        export.cams(ctx, "cam-dropped", float(view.cam_clean.max()), view.top5_clean[0][0], cam_dropped=view.cam_dropped)
    with right:
        st.markdown("**Top-5 without → with this mask**")
        st.table(
            [{"without": f"{a} ({pa:.2f})", "with": f"{b} ({pb:.2f})"}
             for (a, pa), (b, pb) in zip(view.top5_clean, view.top5_dropped)], hide_index=True)
        export.top(ctx, "mask-explorer-top5", without=view.top5_clean, with_mask=view.top5_dropped)


state.run_page(page)
