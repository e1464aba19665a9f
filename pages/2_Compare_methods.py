"""Dropout, SpatialDropout, Cutout and DropBlock side by side at one drop budget, with its units."""

from __future__ import annotations

import dataclasses

import streamlit as st

from ui import banner, charts, chartview, export, frame, layout, paper, render, settings, view, views
from ui.i18n import _, shown_text, tr
from ui.inputs import Context


@frame.fragment
def comparison(ctx: Context) -> None:
    spec = ctx.spec
    mode = st.radio(_("DropBlock γ on this page"), list(settings.GAMMA_MODES), format_func=lambda k: _(settings.GAMMA_MODES[k]),
                    index=list(settings.GAMMA_MODES).index("calibrated"), horizontal=True, key="compare_gamma",
                    help=_("Starts at the calibrated γ, whatever the sidebar says: this page compares methods at one "
                           "drop budget, and only the calibrated γ makes DropBlock's expected drop exactly "
                           "1 − keep_prob. Eq. (1) is one click away."))
    parts = views.comparison(ctx, dataclasses.replace(spec, gamma_mode=mode))
    view.progressive(parts, lambda result: draw_comparison(ctx, mode, result))


def draw_comparison(ctx: Context, mode: str, result) -> None:
    """γ, the drop rates so far (the mean over the draws made: a first answer after two, then 64) and
    every method's pictured draw."""
    spec = ctx.spec
    h, w = result.map_size
    st.markdown(_(
        "DropBlock γ at group {group} ({h}×{w}, b={b}): Eq. (1) gives **{eq1:.5f}** (exact expected drop "
        "{expected:.4f}, because blocks overlap); calibrated **{calibrated:.5f}** (expected drop {target:.4f}). "
        "Using: **{mode}**."
    ).format(group=result.group, h=h, w=w, b=spec.block_size, eq1=result.gamma_eq1, expected=result.expected_eq1,
             calibrated=result.gamma_calibrated, target=1 - spec.keep_prob, mode=_(settings.GAMMA_MODES[mode])))
    st.markdown(_("With Eq. (1)'s γ DropBlock would drop **{expected:.4f}** on average, **{short:.1%}** short of the "
                  "budget {target:.4f}: Eq. (1) counts overlapping blocks twice (the paper: “only an "
                  "approximation”).").format(expected=result.expected_eq1, target=1 - spec.keep_prob,
                                             short=1 - result.expected_eq1 / max(1 - spec.keep_prob, 1e-12)))
    if result.cutout_side:
        st.caption(_("Cutout cuts whole squares only: the side closest to the budget is round(√({target:.2f}·{h}·{w})) "
                     "= {side}, so it drops {side}² / ({h}·{w}) = **{drop:.3f}**, not {target:.3f}. Its square is one "
                     "per sample, shared by all channels of that sample, as the original Cutout cuts the same square "
                     "from every colour channel of the image.").format(
            target=1 - spec.keep_prob, h=h, w=w, side=result.cutout_side,
            drop=result.cutout_side ** 2 / (h * w)))
    st.caption(_("Uses the sidebar's {honoured}. Ignores: {ignored}.").format(
        honoured=", ".join(_(x) for x in result.honoured), ignored="; ".join(_(x) for x in result.ignored)))
    chartview.show_charts("compare-drops", charts.describe_comparison_drops, result)
    draw_methods(ctx, result)


def draw_methods(ctx: Context, result) -> None:
    clean_top = ctx.backbone.categories[ctx.clean.top1]
    clean_prob = float(ctx.clean.probs[0, ctx.clean.top1])
    vmax = float(max(v.cam.max() for v in result.views))

    cols = layout.main_figure().columns(len(result.views))
    for col, method in zip(cols, result.views):
        with col:
            st.subheader(shown_text(method.label))
            st.markdown(_(
                "realised drop **{realised:.3f}** (mean of {n} draws; target {target:.3f}; this draw {sample:.3f})"
            ).format(realised=method.realised_drop, n=result.n_samples, target=method.target_drop, sample=method.sample_drop)
                + "  \n" + _("unit: {unit}").format(unit=tr(method.unit)))
            st.caption(tr(method.site_label))
            slug = method.label.lower().replace(" ", "-").replace("(", "").replace(")", "")
            render.show_picture(render.method_tiles, method, name=f"compare-{slug}",
                                caption=(_("mask · channel {c} after the drop (the most active one this draw dropped "
                                         "units in)").format(c=method.channel) if method.channel is not None
                                       else _("mask · the image after the drop")))
            export.maps(ctx, f"compare-{slug}", f"{method.label} at {method.site_label}: mask (H, W) bool, "
                        "True = kept; dropped (H, W) float32", mask=method.mask, dropped=method.dropped)
            render.show_overlay(ctx.image, method.cam, vmax, f"compare-cam-{slug}",
                                _("CAM for “{name}” (shared scale)").format(name=clean_top))
            export.cams(ctx, f"compare-cam-{slug}", vmax, clean_top, cam=method.cam)
            st.metric(_("p({name}) in this draw").format(name=clean_top), f"{method.class_prob:.3f}",
                      delta=f"{method.class_prob - clean_prob:+.3f}",
                      help=_("One draw, the one pictured; the realised drop above is the mean of {n} draws.").format(
                          n=result.n_samples))
            st.table(render.top_table(method.top5), hide_index=True)
            export.top(ctx, f"compare-top5-{slug}", **{slug.replace("-", "_"): method.top5})


def page(ctx: Context) -> None:
    spec = ctx.spec
    st.title(_("Compare methods"))
    st.markdown(_(
        "Every method is asked to drop **{drop:.0%}** (keep_prob {kp:g}). Dropout, SpatialDropout, Cutout (one "
        "square per map) and DropBlock (b={b}) act on the same feature map, the output of group {group}, so their "
        "drops count the same units; the original Cutout cuts one square from the input image, so its drop counts "
        "image pixels. Same seed, same image."
    ).format(drop=1 - spec.keep_prob, kp=spec.keep_prob, b=spec.block_size, group=spec.group))
    banner.spec_notes(ctx)
    comparison(ctx)
    paper.results(("imagenet",), ("vs_dropout", "spatial", "cutout", "cutout_imagenet", "per_channel"))


frame.page(page)
