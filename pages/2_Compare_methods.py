"""Dropout, SpatialDropout, Cutout and DropBlock side by side at one drop budget."""

from __future__ import annotations

import streamlit as st

from ui import export, render, state


def page(ctx: state.Context) -> None:
    spec = ctx.spec
    st.title("Compare methods")
    st.markdown(
        f"All four drop **{1 - spec.keep_prob:.0%}** of the units (keep_prob {spec.keep_prob:g}): Dropout and "
        f"SpatialDropout and DropBlock (b={spec.block_size}) at the output of group {spec.group}, Cutout as one "
        "square on the input image. Same seed, same image."
    )
    state.spec_notes(ctx)
    views = state.comparison(ctx)
    clean_top = ctx.backbone.categories[ctx.clean.top1]
    vmax = float(max(v.cam.max() for v in views))

    cols = st.columns(len(views))
    for col, view in zip(cols, views):
        with col:
            st.subheader(view.label)
            st.caption(f"{view.site_label} · realised drop {view.realised_drop:.3f}")
            mask = render.mask_rgb(view.mask)
            if view.label == "Cutout":
                dropped = render.colorize(view.dropped, "gray")
            else:
                dropped = render.colorize(view.dropped, "viridis", 0.0)
            render.show_image(render.grid([[mask, dropped]], size=160), f"compare-{view.label.lower()}",
                              caption="mask · most active channel after the drop")
            export.maps(ctx, f"compare-{view.label.lower()}", f"{view.label} at {view.site_label}: mask (H, W) bool, "
                        "True = kept; dropped (H, W) float32", mask=view.mask, dropped=view.dropped)
            render.show_image(render.overlay(ctx.image, view.cam, vmax), f"compare-cam-{view.label.lower()}",
                              caption=f"CAM for “{clean_top}” (shared scale)")
            export.cams(ctx, f"compare-cam-{view.label.lower()}", vmax, clean_top, cam=view.cam)
            st.metric(f"p({clean_top})", f"{view.class_prob:.3f}",
                      delta=f"{view.class_prob - float(ctx.clean.probs[0, ctx.clean.top1]):+.3f}")
            st.table(render.top_table(view.top5), hide_index=True)
            export.top(ctx, f"compare-top5-{view.label.lower()}", **{view.label.lower(): view.top5})


state.run_page(page)
