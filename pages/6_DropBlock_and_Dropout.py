"""DropBlock + Dropout (Hu, Si, Zeng & Shu): DropBlock in the conv groups, Dropout before the classifier."""

from __future__ import annotations

import dataclasses

import streamlit as st

import models as M
from ui import charts, chartview, export, frame, layout, paper, render, view, views
from ui.i18n import N_, _
from ui.inputs import Context

# The paper's own numbers (Sec. 3, Fig. 4): Kaggle cats vs dogs, test accuracy. Not measured here.
# Column names are words: st.table renders headers as Markdown, where "+ Dropout" is a bullet.
REPORTED = [  # column and cell texts are marked with N_ and translated when shown
    {N_("network"): N_("VGG-16 (fine-tuned)"), N_("none"): "95.3%", N_("with Dropout"): "+0.9",
     N_("with DropBlock & Dropout"): "+2.5"},
    {N_("network"): N_("ResNet-34 (from scratch)"), N_("none"): "94.5%", N_("with Dropout"): "+1.2",
     N_("with DropBlock & Dropout"): "+2.5"},
    {N_("network"): N_("AlexNet (from scratch)"), N_("none"): "—", N_("with Dropout"): "—",
     N_("with DropBlock & Dropout"): N_("0.3 below Dropout alone")},
]
STRATEGY_KEEP_PROB = 0.8  # Hu et al., Sec. 1.2.2: "本文设置 p 为0.8"
STRATEGY_FC_KEEP = 0.5  # this app's choice (Hu et al. give no rate); AmoebaNet-B's in the DropBlock paper, Sec. 4.1.2
_TRANSLATED = {"network", "none", "with Dropout", "with DropBlock & Dropout", "VGG-16 (fine-tuned)", "ResNet-34 (from scratch)", "AlexNet (from scratch)",
               "0.3 below Dropout alone"}


def _reported() -> list[dict[str, str]]:
    def tr(s: str) -> str:
        return _(s) if s in _TRANSLATED else s

    return [{tr(k): tr(v) for k, v in row.items()} for row in REPORTED]


def page(ctx: Context) -> None:
    st.title(_("DropBlock + Dropout"))
    st.markdown(_(
        "Hu, Si, Zeng & Shu, *A regularization strategy combining Dropblock and Dropout* (East China Jiaotong "
        "University), apply DropBlock to the **shallow and middle** convolutional layers (keep probability "
        "p = 0.8, Eq. 3 = the DropBlock paper's Eq. 1) and **Dropout after a 4096-unit fully connected layer**, "
        "before the classifier. The DropBlock paper instead uses groups 3 and 4 of ResNet-50. Here: DropBlock "
        "inside the blocks of the groups you choose, Dropout on the pooled features before `fc` (this network "
        "has no extra 4096-unit layer), all four arms on the same image and seed."
    ))
    with st.expander(_("The paper's reported results (their numbers, not measured here)"), expanded=True):
        st.table(_reported(), hide_index=True)
        st.caption(_("Kaggle dogs vs cats, 17,000 images (10,000 train / 4,000 val / 3,000 test), Sec. 2–3 and "
                   "Fig. 4. The paper writes the gains as “%”; they are differences of accuracy in points. For "
                   "AlexNet it gives only that the combination is 0.3 below Dropout alone, which it attributes to "
                   "the shallow network losing too many units."))
    arms(ctx)
    paper.results(("imagenet",), ("vs_dropout", "skip"))


@frame.fragment
def arms(ctx: Context) -> None:
    c1, c2, c3 = st.columns([2, 1, 1])
    groups = c1.multiselect(_("DropBlock in the blocks of groups"), [1, 2, 3, 4], default=[2, 3], key="strategy_groups",
                            help=_("Hu et al.: the shallow and middle layers. Here the skip connections are left "
                                   "alone: this app's choice, as neither paper's strategy text mentions them (the "
                                   "DropBlock paper finds dropping on the skips too better for its ResNet-50)."))
    fc_keep = c2.slider(_("Dropout keep_prob before fc"), 0.1, 1.0, STRATEGY_FC_KEEP, step=0.05, key="strategy_fc_keep",
                        help=_("0.5 is this app's choice: Hu et al. give no Dropout rate. It is the rate the "
                               "DropBlock paper's AmoebaNet-B uses before its final softmax layer (Sec. 4.1.2)."))
    n_samples = c3.select_slider(_("Monte Carlo samples"), [4, 8, 16, 32], value=16, key="strategy_samples")
    if not groups:
        st.info(_("Pick at least one group for DropBlock."))
        return
    params = []
    cols = st.columns(len(groups))
    for col, g in zip(cols, sorted(groups)):
        kp = col.slider(_("keep_prob, group {g}").format(g=g), 0.5, 1.0, STRATEGY_KEEP_PROB, step=0.05,
                        key=f"strategy_kp{g}", help=_("Default 0.8: Hu et al. set p = 0.8 (Sec. 1.2.2)."))
        b = col.slider(_("block_size, group {g}").format(g=g), 1, 7, 3 if g < 4 else 7, key=f"strategy_b{g}")
        params.append((g, float(kp), int(b)))
    spec = M.RegularizerSpec(
        kind="dropblock", placement="in_blocks", groups=tuple(sorted(groups)), skip=False, group3_quarter=False,
        group_params=tuple(params), per_channel=ctx.spec.per_channel, seed_region=ctx.spec.seed_region,
        gamma_mode=ctx.spec.gamma_mode, normalize=ctx.spec.normalize, act_site=ctx.spec.act_site,
    )
    parts = views.dropblock_dropout(ctx, spec, float(fc_keep), int(n_samples))
    view.progressive(parts, lambda r: draw_arms_and_note(ctx, spec, float(fc_keep), r))


def draw_arms_and_note(ctx: Context, spec, fc_keep: float, result) -> None:
    """The arms; under the final round, where DropBlock alone would leave half on a fragile network
    (a second heavy view: asked only once the arms are whole, so it never cuts their refinement)."""
    draw_arms(ctx, spec, fc_keep, result)
    if layout.drafting():
        return
    alone = result.views[1].class_prob / max(result.clean_prob, 1e-12)  # the "DropBlock only" arm
    if alone < 0.1:  # a fragile network: say where DropBlock alone would leave half, measured on it
        middle = view.final(views.keep_prob_scan(ctx, spec, (("dropblock", None),))).middle()
        st.info(_("On this model DropBlock alone at these settings leaves {ratio:.0%} of p({cls}): this network is "
                  "far more fragile than the ResNets of the papers. Measured here, the same groups and block sizes "
                  "keep about half of it at keep_prob {kp:g} in every group.").format(
            ratio=alone, cls=result.class_name, kp=middle), icon="📏")


def draw_arms(ctx: Context, spec, fc_keep: float, result) -> None:
    """The four arms over the samples drawn so far: mean CAMs, predictions and their spread."""
    vmax = float(max([result.clean_cam.max()] + [v.mean_cam.max() for v in result.views]))
    cols = layout.main_figure().columns(len(result.views))
    for col, arm in zip(cols, result.views):
        with col:
            st.subheader(_(arm.label))
            st.caption(_("DropBlock drop {conv:.3f} · Dropout drop {fc:.3f}").format(conv=arm.conv_drop, fc=arm.fc_drop))
            slug = arm.label.lower().replace(" ", "-").replace("+", "and")
            render.show_overlay(ctx.image, arm.mean_cam, vmax, f"strategy-cam-{slug}",
                                _("mean CAM of {n} samples (shared scale)").format(n=result.n_samples))
            export.cams(ctx, f"strategy-cam-{slug}", vmax, result.class_name, mean_cam=arm.mean_cam)
            st.metric(_("mean p({name})").format(name=result.class_name), f"{arm.class_prob:.3f}",
                      delta=f"{arm.class_prob - result.clean_prob:+.3f}")
            st.markdown(_("std over samples **{std:.3f}** · top-1 kept **{kept:.0%}**").format(
                std=arm.prob_std, kept=arm.keeps_top1))
            st.table(render.top_table(arm.top5_mean), hide_index=True)
            export.top(ctx, f"strategy-top5-{slug}", **{slug.replace("-", "_"): arm.top5_mean})
    st.caption(_("CAM with Dropout before fc: pooling is linear, so dropping pooled channel k is dropping channel k "
                 "of the last conv features; the CAM is drawn from the features with those channels removed and "
                 "the rest × 1/keep_prob, exactly what the logits saw."))

    chartview.show_charts("strategy-stability", charts.describe_strategy_stability, result)
    export.rows(ctx, "strategy-stability", f"p({result.class_name}) in each Monte Carlo sample, per arm",
                lambda: [{"arm": v.label, "sample": i, "probability": float(p)}
                         for v in result.views for i, p in enumerate(v.sample_probs)],
                clean_prob=result.clean_prob, fc_keep_prob=float(fc_keep), n_samples=result.n_samples,
                dropblock_spec=dataclasses.asdict(spec))


frame.page(page)
