"""Dropout, SpatialDropout, Cutout and DropBlock side by side at one drop budget, with its units."""

from __future__ import annotations

import dataclasses

import streamlit as st

from ui import export, layout, render, state


@st.fragment
def comparison(ctx: state.Context) -> None:
    spec = ctx.spec
    mode = st.radio("DropBlock γ on this page", list(state.GAMMA_MODES), format_func=state.GAMMA_MODES.get,
                    index=list(state.GAMMA_MODES).index(spec.gamma_mode), horizontal=True, key="compare_gamma",
                    help="Starts at the sidebar's choice. Calibrated γ makes the expected drop exactly 1 − keep_prob.")
    result = state.comparison(ctx, dataclasses.replace(spec, gamma_mode=mode))
    h, w = result.map_size
    st.markdown(
        f"DropBlock γ at group {result.group} ({h}×{w}, b={spec.block_size}): Eq. (1) gives "
        f"**{result.gamma_eq1:.5f}** (exact expected drop {result.expected_eq1:.4f}, because blocks overlap); "
        f"calibrated **{result.gamma_calibrated:.5f}** (expected drop {1 - spec.keep_prob:.4f}). "
        f"Using: **{state.GAMMA_MODES[mode]}**."
    )
    st.caption("Uses the sidebar's " + ", ".join(result.honoured) + ". Ignores: " + "; ".join(result.ignored) + ".")
    clean_top = ctx.backbone.categories[ctx.clean.top1]
    clean_prob = float(ctx.clean.probs[0, ctx.clean.top1])
    vmax = float(max(v.cam.max() for v in result.views))

    cols = layout.main_figure().columns(len(result.views))
    for col, view in zip(cols, result.views):
        with col:
            st.subheader(view.label)
            st.markdown(
                f"realised drop **{view.realised_drop:.3f}** (mean of {result.n_samples} draws; "
                f"target {view.target_drop:.3f}; this draw {view.sample_drop:.3f})  \n"
                f"unit: {view.unit}"
            )
            st.caption(view.site_label)
            mask = render.mask_rgb(view.mask)
            if view.site_label == "input image":
                dropped = render.colorize(view.dropped, "gray")
            else:
                dropped = render.colorize(view.dropped, "viridis", 0.0)
            slug = view.label.lower().replace(" ", "-").replace("(", "").replace(")", "")
            render.show_image(render.grid([[mask, dropped]], size=160), f"compare-{slug}",
                              caption="mask · most active channel after the drop")
            export.maps(ctx, f"compare-{slug}", f"{view.label} at {view.site_label}: mask (H, W) bool, "
                        "True = kept; dropped (H, W) float32", mask=view.mask, dropped=view.dropped)
            render.show_image(render.overlay(ctx.image, view.cam, vmax), f"compare-cam-{slug}",
                              caption=f"CAM for “{clean_top}” (shared scale)")
            export.cams(ctx, f"compare-cam-{slug}", vmax, clean_top, cam=view.cam)
            st.metric(f"p({clean_top})", f"{view.class_prob:.3f}", delta=f"{view.class_prob - clean_prob:+.3f}")
            st.table(render.top_table(view.top5), hide_index=True)
            export.top(ctx, f"compare-top5-{slug}", **{slug.replace("-", "_"): view.top5})


def page(ctx: state.Context) -> None:
    spec = ctx.spec
    st.title("Compare methods")
    st.markdown(
        f"Every method is asked to drop **{1 - spec.keep_prob:.0%}** (keep_prob {spec.keep_prob:g}). Dropout, "
        f"SpatialDropout, Cutout (one square per map) and DropBlock (b={spec.block_size}) act on the same feature "
        f"map, the output of group {spec.group}, so their drops count the same units; the original Cutout cuts "
        "one square from the input image, so its drop counts image pixels. Same seed, same image."
    )
    state.spec_notes(ctx)
    comparison(ctx)


state.run_page(page)
