"""Theory & schedule: Algorithm 1 step by step, a γ calculator, the schedule, measured mistakes and the
tutorial's advice measured on the network."""

from __future__ import annotations

import streamlit as st

import dropblock as db
from models import gamma_formula
from models.theory import compute_schedule
from ui import charts, chartview, export, frame, layout, paper, render, view, views
from ui.i18n import _, tr
from ui.inputs import Context


def page(ctx: Context) -> None:
    st.title(_("Theory & schedule"))
    contrasts = views.theory_contrasts(ctx).start()  # measured while sections 1-4 are drawn
    algorithm(ctx)
    calculator(ctx)
    schedule(ctx)
    mistakes(ctx)
    measured(ctx, contrasts)
    paper.results(("imagenet", "detection", "segmentation", "amoebanet"), ("skip", "per_channel", "cutout"))


def seed_note(steps) -> str:
    """Which seed drew the step-by-step, and why when it is not the sidebar's."""
    if steps.seed == steps.asked_seed:
        return _("Seed {seed}.").format(seed=steps.seed)
    return _("Seed {seed}: the sidebar's seed {asked} drew no seed on this map, so this is the first seed after it "
             "that does.").format(seed=steps.seed, asked=steps.asked_seed)


@frame.fragment
def algorithm(ctx: Context) -> None:
    spec = ctx.spec
    st.header(_("1 · Algorithm 1 on a small map"))
    c1, c2 = st.columns(2)
    size = c1.slider(_("Map size"), 5, 24, 12, key="theory_size")
    toy_kp = c1.slider(_("keep_prob (this demo)"), 0.5, 1.0, 0.8, step=0.05, key="theory_kp")
    toy_b = c1.slider(_("block_size (this demo)"), 1, 7, 3, key="theory_b")
    region = spec.seed_region
    steps = views.algorithm_steps(size, toy_kp, toy_b, ctx.seed, region)
    with layout.main_figure():
        render.show_picture(render.algorithm_tiles, steps, name="algorithm-steps",
                            caption=_("where seeds may fall (red) → seeds ~ Bernoulli(γ) (red) → blocks M (red = dropped) "
                                    "→ input A → A·M·count(M)/count_ones(M), same colour scale. Change the seed in the "
                                    "sidebar for another draw.") + " " + seed_note(steps))
    export.maps(ctx, "algorithm-steps", f"Algorithm 1 on a {size}x{size} toy map, keep_prob {toy_kp:g}, block_size "
                f"{toy_b}, seeds {region}", valid_region=steps.valid_region, seed_mask=steps.seed_mask,
                block_mask=steps.block_mask, activation=steps.activation, output=steps.output)
    c2.markdown(_(
        "- γ = **{gamma:.4f}**, block {bh}×{bw}\n"
        "- count(M) = {count}, count_ones(M) = {ones}\n"
        "- scale = {count}/{ones} = **{scale:.3f}**\n"
        "- at inference: the identity, no scaling"
    ).format(gamma=steps.gamma, bh=steps.block[0], bw=steps.block[1], count=steps.count, ones=steps.count_ones,
             scale=steps.scale))


@frame.fragment
def calculator(ctx: Context) -> None:
    spec = ctx.spec
    st.header(_("2 · γ calculator (Eq. 1)"))
    g1, g2, g3 = st.columns(3)
    h = g1.number_input(_("Feature map size"), 1, 224, 14, key="calc_size")
    kp = g2.number_input(_("keep_prob"), 0.01, 1.0, float(spec.keep_prob), step=0.01, key="calc_kp")
    b = g3.number_input(_("block_size"), 1, 224, int(spec.block_size), key="calc_b")
    st.code(gamma_formula(float(kp), int(b), int(h), int(h)), language=None, wrap_lines=True)
    st.caption(_("Expected realised drop with overlaps: {expected:.4f} (target {target:.4f}); with seeds everywhere: "
                 "{everywhere:.4f}. Calibrated γ (expected drop exactly {target:.4f}): {calibrated:.5f}.").format(
        expected=db.expected_drop_fraction(float(kp), int(b), int(h), int(h)), target=1 - kp,
        everywhere=db.expected_drop_fraction(float(kp), int(b), int(h), int(h), seed_region="everywhere"),
        calibrated=db.calibrated_gamma(float(kp), int(b), int(h), int(h))))


@frame.fragment
def schedule(ctx: Context) -> None:
    spec = ctx.spec
    st.header(_("3 · Linear keep_prob schedule"))
    st.markdown(_("The paper (Sec. 3, Fig. 3b) lowers keep_prob linearly from 1 to the target: a fixed small "
                  "keep_prob “hurts learning at the beginning”. The tutorial never mentions the schedule."))
    s1, s2 = st.columns(2)
    total = s1.number_input(_("Steps to reach the target"), 1, 1_000_000, 10_000, key="sched_steps")
    target = s2.number_input(_("Target keep_prob"), 0.05, 1.0, float(spec.keep_prob), step=0.05, key="sched_target")
    sched = compute_schedule(float(target), int(total))

    chartview.show_charts("schedule", charts.describe_schedule_of, float(target), int(total))
    export.rows(ctx, "schedule", f"linear keep_prob schedule to {float(target):g} over {int(total)} steps",
                lambda: [{"step": int(s), "keep_prob": float(k)} for s, k in zip(sched.steps, sched.keep_probs)])


def mistakes(ctx: Context) -> None:
    spec = ctx.spec
    st.header(_("4 · Common mistakes, measured"))
    report = views.mistakes(ctx)
    h, w = report.map_size
    st.markdown(_("Measured on this image's group-3 output ({channels} channels, {h}×{w}), {n} masks drawn per sample "
                  "over all channels as in training, at keep_prob {kp:g}, block_size {b}. Mean = mean |activation| "
                  "relative to the clean one: a sound recipe keeps it at 1 in training and at inference, and drops "
                  "close to 1 − keep_prob.").format(channels=report.channels, h=h, w=w, n=report.n_samples,
                                                     kp=spec.keep_prob, b=spec.block_size))
    st.table(
        [{_("recipe"): ("✅ " if m.is_paper else "❌ ") + tr(m.name), _("realised drop"): f"{m.realised_drop:.3f}",
          _("train mean"): f"{m.train_mean:.3f}", _("inference mean"): f"{m.eval_mean:.3f}",
          _("train/inference mismatch"): f"{m.mismatch:.1%}", _("what"): tr(m.what)} for m in report.rows],
        hide_index=True)
    export.rows(ctx, "mistakes", f"recipes measured on this image's group-3 output ({report.channels} channels, "
                f"{h}x{w}), keep_prob {spec.keep_prob:g}, block_size {spec.block_size}",
                lambda: [{"recipe": m.name, "paper": m.is_paper, "realised_drop": m.realised_drop,
                          "train_mean": m.train_mean, "eval_mean": m.eval_mean, "mismatch": m.mismatch}
                         for m in report.rows])
    chartview.show_charts("mistakes-drops", charts.describe_mistakes_drops, report)
    tutorial = next(m for m in report.rows if m.name.startswith("Tutorial step 1"))
    st.caption(_("The tutorial's step 1 makes every position a seed with probability 1 − keep_prob = {target:.2f} and "
                 "grows each seed to a {b}×{b} block: measured here, it drops {drop:.3f} of the units, {times:.1f}× "
                 "the budget. Its inference advice, “× keep_prob (or keep the scaling already done in training)”, "
                 "offers as its second option the paper's recipe.").format(
        target=1 - report.keep_prob, b=report.block_size, drop=tutorial.realised_drop,
        times=tutorial.realised_drop / max(1 - report.keep_prob, 1e-12)))
    units_vs_weights(report.connect)


def units_vs_weights(c) -> None:
    st.subheader(_("“Dropout hides weights” (the DropBlock + Dropout paper, abstract)"))
    st.markdown(_("That describes DropConnect (Wan et al. 2013). Dropout hides **units**: its own Eq. (5) multiplies "
                  "the units y by r ~ Bernoulli(p), so a dropped unit takes all its outgoing weights with it. Measured "
                  "on a {units} → {outputs} fully connected layer at keep_prob {kp:g}, {n} draws; the counts are of "
                  "input units and of weights, not of the feature units in the table above.").format(
        units=c.units, outputs=c.outputs, kp=c.keep_prob, n=c.samples))
    st.table([{_("method"): name,
               _("input units silenced (of {units})").format(units=c.units): f"{c.units_silenced[i]:.1%}",
               _("weights zeroed (of {units}×{outputs})").format(units=c.units, outputs=c.outputs):
                   f"{c.weights_zeroed[i]:.1%}",
               _("weight columns partly zeroed"): f"{c.columns_partly[i]:.1%}"}
              for i, name in enumerate(("Dropout", "DropConnect"))], hide_index=True)


def measured(ctx: Context, contrasts) -> None:
    """Sections 5 and 6: one view in rounds (``views.theory_contrasts``, started at the top of the page),
    so both first answers come after one wait, drawn together and refined in place."""
    st.header(_("5 · The tutorial's advice, measured on the network"))
    view.progressive(contrasts, lambda m: draw_measured(ctx, m))


def draw_measured(ctx: Context, m) -> None:
    draw_contrasts(ctx, m.tutorial)
    st.header(_("6 · Shallow or deep layers? The tutorial against Hu et al., measured"))
    draw_depth(ctx, m.depth, m.middle)


def draw_contrasts(ctx: Context, c) -> None:
    st.markdown(_("DropBlock in the blocks of groups 3 and 4 at keep_prob {kp:g}, {n} samples, seed {seed}; "
                  "p(“{name}”) without DropBlock: {p:.3f}.").format(kp=ctx.spec.keep_prob, n=c.n_samples,
                                                                    seed=ctx.seed, name=c.class_name, p=c.clean_prob))
    rows = [(_("Site"), x) for x in c.site] + [(_("block_size"), x) for x in c.block_size]
    st.table([{_("contrast"): k, _("setting"): tr(x.label), _("realised drop"): f"{x.realised_drop:.3f}",
               _("mean p"): f"{x.class_prob:.3f}", _("std p"): f"{x.prob_std:.3f}",
               _("top-1 kept"): f"{x.keeps_top1:.0%}"} for k, x in rows], hide_index=True)
    chartview.show_charts("contrasts", charts.describe_contrasts, c)
    st.caption(_("Same masks, site before vs after the activation: largest logit change {change:.2g}. A mask times a "
                 "positive scale commutes with ReLU, so on ResNet-50 the two sites are the same network; "
                 "EfficientNet-Lite's ReLU6 clips at 6, so there they differ. The paper keeps block_size constant "
                 "(7 in groups 3 and 4); the tutorial grows it with depth (here 3 then 7).").format(
        change=c.site_max_logit_change))


def draw_depth(ctx: Context, c, middle: float) -> None:
    st.markdown(_("The tutorial applies DropBlock to the deeper convolutional layers and “not in … shallower "
                  "convolutional layers” (their features are mostly edges); Hu et al. apply it to the **shallow and "
                  "middle** layers and Dropout to the deep fully connected one. Both arms here: DropBlock b = {b} "
                  "inside the blocks (conv branches only), the same keep_prob and seed, {n} draws; p(“{name}”) "
                  "without DropBlock: {p:.3f}. keep_prob {kp:g} is the sidebar's; {mid:g} is measured for this model, "
                  "where DropBlock in groups 3 and 4 leaves about half the clean probability.").format(
        b=c.block_size, n=c.n_samples, name=c.class_name, p=c.clean_prob, kp=ctx.spec.keep_prob, mid=middle))
    st.table([{_("keep_prob"): f"{kp:g}", _("setting"): tr(x.label), _("realised drop"): f"{x.realised_drop:.3f}",
               _("mean p"): f"{x.class_prob:.3f}", _("std p"): f"{x.prob_std:.3f}",
               _("top-1 kept"): f"{x.keeps_top1:.0%}"} for kp, pair in zip(c.keep_probs, c.rows) for x in pair],
             hide_index=True)
    shallow, deep_row = c.rows[-1]
    st.caption(_("At keep_prob {kp:g} the same drop budget costs {shallow:.3f} of p in the shallow groups and "
                 "{deep:.3f} in the deep ones. This measures how much each placement disturbs this pretrained network "
                 "at inference, not which one trains better: neither document measures that here. Hu et al. report "
                 "that on the shallow AlexNet their combination was 0.3 points below Dropout alone, which they put "
                 "down to the shallow layers losing too many units.").format(
        kp=c.keep_probs[-1], shallow=c.clean_prob - shallow.class_prob, deep=c.clean_prob - deep_row.class_prob))


frame.page(page)
