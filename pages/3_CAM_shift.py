"""CAM (Zhou et al. 2016) without vs with DropBlock: one sample, the Monte Carlo mean, the shift."""

from __future__ import annotations

import streamlit as st

from ui import banner, charts, chartview, checkpoints, export, frame, layout, paper, render, view, views
from ui.i18n import _
from ui.inputs import Context


def page(ctx: Context) -> None:
    st.title(_("CAM shift"))
    st.markdown(_(
        "Class activation maps weight the last conv features by the classifier's weights for one class. "
        "Applying DropBlock at inference shows which evidence the prediction leans on, and how it moves."
    ))
    banner.spec_notes(ctx)
    shift_view(ctx)
    two_models(ctx)
    paper.results((), ("cam",))


@frame.fragment
def two_models(ctx: Context) -> None:
    st.header(_("Two checkpoints: the paper's Figure 6"))
    other = checkpoints.second_model(ctx, "cam_model")
    if other is None:
        return
    class_idx = ctx.clean.top1
    cams = [views.model_cam(c, class_idx) for c in (ctx, other)]
    vmax = float(max(c.cam.max() for c in cams))
    cols = st.columns(2)  # the page's main figure is the shift above
    for col, name, c, cam in zip(cols, ("A", "B"), (ctx, other), cams):
        with col:
            render.show_overlay(c.image, cam.cam, vmax, f"cam-model-{name.lower()}",
                                _("{name}: {model} · CAM for “{cls}” (shared scale)").format(
                                    name=name, model=c.loaded.summary, cls=cam.class_name))
            export.cams(ctx, f"cam-model-{name.lower()}", vmax, cam.class_name, cam=cam.cam)
            st.metric(_("p({cls})").format(cls=cam.class_name), f"{cam.prob:.3f}")
            st.markdown(_("CAM entropy **{entropy:.3f}** (1 = flat) · area above half its maximum **{area:.1%}** · "
                          "own top-1: {top1}").format(entropy=cam.spread.entropy, area=cam.spread.area_half_max,
                                                      top1=cam.top1_name))
    a, b = cams
    st.caption(_("Spread measured on each model's clean CAM for the same class: entropy of the CAM normalised to "
                 "sum 1 (÷ log of the pixel count), and the share of pixels at or above half its maximum. B − A: "
                 "entropy {de:+.3f}, area {da:+.1%}. The paper's Figure 6 finds the model trained with DropBlock "
                 "spread over several regions: a larger entropy and area for it would agree.").format(
        de=b.spread.entropy - a.spread.entropy, da=b.spread.area_half_max - a.spread.area_half_max))


@frame.fragment  # samples and class rerun only this part, not the sidebar and the model
def shift_view(ctx: Context) -> None:
    c1, c2 = st.columns(2)
    n_samples = c1.select_slider(_("Monte Carlo samples"), [1, 4, 8, 16, 32], value=16, key="cam_samples")
    top5 = ctx.clean.probs[0].topk(5).indices.tolist()
    class_idx = c2.selectbox(_("Class"), top5, format_func=lambda i: ctx.backbone.categories[i], key="cam_class")
    view.progressive(views.cam_shift(ctx, n_samples, class_idx), lambda shift: draw_shift(ctx, shift))


def draw_shift(ctx: Context, shift) -> None:
    """The CAMs, the numbers and the stability of one round (the first after a sample or two, then
    refined in place: each is the mean and spread of the samples drawn so far)."""
    vmax = float(max(shift.clean_cam.max(), shift.mean_cam.max(), shift.sample_cam.max()))
    cols = layout.main_figure().columns(4)
    pictures = [  # (draw, its arguments, name, caption)
        (render.overlay, (ctx.image, shift.clean_cam, vmax), "cam-clean", _("without DropBlock")),
        (render.overlay, (ctx.image, shift.sample_cam, vmax), "cam-one-sample", _("one sample")),
        (render.overlay, (ctx.image, shift.mean_cam, vmax), "cam-mc-mean",
         _("mean of {n} samples").format(n=shift.n_samples)),
        (render.difference, (shift.difference, _("mean − clean CAM, in class-score units (as the CAM)")),
         "cam-difference", _("mean − clean (red: gained, blue: lost)")),
    ]
    raw = {"cam-clean": shift.clean_cam, "cam-one-sample": shift.sample_cam, "cam-mc-mean": shift.mean_cam,
           "cam-difference": shift.difference}
    for col, (draw, args, name, caption) in zip(cols, pictures):
        with col:
            render.show_picture(draw, *args, name=name, caption=caption, photo=draw is render.overlay)
            export.cams(ctx, name, vmax, shift.class_name, diverging=name == "cam-difference",
                        **{name.replace("-", "_"): raw[name]})

    m1, m2, m3 = st.columns(3)
    m1.metric(_("p({name}) without").format(name=shift.class_name), f"{shift.clean_prob:.3f}")
    m2.metric(_("mean with DropBlock"), f"{float(shift.sample_probs.mean()):.3f}",
              delta=f"{float(shift.sample_probs.mean()) - shift.clean_prob:+.3f}")
    m3.metric(_("samples keeping the top-1 class"), f"{shift.keeps_top1:.0%}")
    st.caption(_("Mean realised drop over all dropped sites and samples: {drop:.3f}.").format(drop=shift.realised_drop))

    left, right = st.columns(2)
    with left:
        st.markdown(_("**Top-5: without · one sample · Monte Carlo mean**"))
        st.table(
            [{_("without"): f"{a} ({pa:.2f})", _("one sample"): f"{b} ({pb:.2f})", _("mean"): f"{c} ({pc:.2f})"}
             for (a, pa), (b, pb), (c, pc) in zip(shift.top5_clean, shift.top5_sample, shift.top5_mean)], hide_index=True)
        export.top(ctx, "cam-shift-top5", without=shift.top5_clean, one_sample=shift.top5_sample, mean=shift.top5_mean)
    with right:
        chartview.show_charts("cam-stability", charts.describe_stability_histogram, shift)
        export.rows(ctx, "cam-stability", f"p({shift.class_name}) in each Monte Carlo sample",
                    lambda: [{"sample": i, "probability": float(p)} for i, p in enumerate(shift.sample_probs)],
                    class_idx=shift.class_idx, clean_prob=shift.clean_prob, n_samples=shift.n_samples)


frame.page(page)
