"""The paper's Figure 5 on this image: class probability vs keep_prob at inference."""

from __future__ import annotations

import dataclasses

import streamlit as st

from models.checkpoints import merge_curves
from models.compute import DEFAULT_CURVE_METHODS
from models.keepgrid import KeepProbScan
from ui import charts, chartview, checkpoints, export, frame, layout, paper, settings, view, views
from ui.i18n import N_, _
from ui.inputs import Context

SEC_4_2 = N_("“The accuracy drops more quickly with decreasing keep_prob, for block_size = 1 in comparison with "
           "block_size = 7 which suggests DropBlock is more effective to remove semantic information than dropout.”")
GRIDS = {"measured": N_("Measured for this model"), "fixed": N_("Fixed: 1 down to a lowest keep_prob")}
PLACES = {"paper": N_("The paper's: inside the blocks of groups 3 and 4, γ/4 in group 3, skip connections too"),
          "sidebar": N_("The sidebar's placement")}


def page(ctx: Context) -> None:
    st.title(_("Robustness curve"))
    st.markdown(_(
        "The paper (Sec. 4.2, Fig. 5) applies DropBlock at inference to a model trained without it and watches "
        "validation accuracy fall as keep_prob decreases. Here is the same experiment on one image, Monte Carlo "
        "averaged."
    ))
    st.info(
        _("Sec. 4.2 says: {quote} Read literally, that contradicts its own conclusion: if accuracy fell "
        "faster with block_size = 1, dropout would be the better remover of semantic information. The "
        "conclusion (and Figure 5's point, with panel (a) inference at block_size = 1 and panel (b) at "
        "block_size = 7, green = trained without DropBlock) needs accuracy to fall faster with block_size = 7, "
        "so we read the sentence as having the block sizes swapped. Below, on your image: if the b = 7 curve "
        "lies under the b = 1 curve, the image agrees with the conclusion, not with the sentence.").format(
            quote=_(SEC_4_2)),
        icon="📖",
    )
    shown = (st.session_state.get("curve_place", "paper"), st.session_state.get("curve_grid", "measured"),
             st.session_state.get("curve_lowest", 0.75))
    layout.presenter_params(header(ctx, *shown))  # the projector's top line: what the curve uses
    curve_section(ctx, shown)
    paper.results(("imagenet",), ("robust", "vs_dropout"))


def header(ctx: Context, place: str, grid: str, lowest: float) -> str:
    """Presenter mode's top line on this page: the curve's methods, keep_probs, placement and seed."""
    where = (_("inside the blocks of groups 3 and 4, the paper's placement") if place == "paper"
             else _("after group {group}").format(group=ctx.spec.group) if ctx.spec.placement == "after_group"
             else _("in the blocks of groups 3 & 4"))
    if grid == "fixed":
        return _("block_size 1 and 7 · keep_prob 1 → **{lowest:g}** · {where} · seed **{seed}**").format(
            lowest=lowest, where=where, seed=ctx.seed)
    return _("block_size 1 and 7 · keep_probs measured for this model · {where} · seed **{seed}**").format(
        where=where, seed=ctx.seed)


@frame.fragment
def curve_section(ctx: Context, shown: tuple[str, str, float] = ("paper", "measured", 0.75)) -> None:
    c1, c2, c3 = st.columns([1, 1, 2])
    n_samples = c1.select_slider(_("Monte Carlo samples per point"), [4, 8, 16, 32], value=8, key="curve_samples")
    grid = c2.radio(_("keep_prob grid"), list(GRIDS), format_func=lambda k: _(GRIDS[k]), key="curve_grid")
    lowest = c2.select_slider(_("Lowest keep_prob"), [0.5, 0.6, 0.7, 0.75, 0.8, 0.9], value=0.75, key="curve_lowest",
                              disabled=grid != "fixed")
    place = c3.radio(_("Placement"), list(PLACES), format_func=lambda k: _(PLACES[k]), key="curve_place")
    if layout.presenting() and (place, grid, lowest) != shown:  # the projector's top line says what is drawn
        st.rerun(scope="app")
    spec = views.curve_spec(ctx.spec, place)
    keep_probs = tuple(round(1.0 - i * (1.0 - lowest) / 5, 4) for i in range(6)) if grid == "fixed" else None
    where = (_("after group {group}").format(group=spec.group) if spec.placement == "after_group"
             else _("inside the blocks of groups 3 and 4 (γ/4 in group 3), skip connections included — Figure 5's"))
    st.caption(_("Used here: DropBlock {where}; γ: {gamma}.").format(where=where, gamma=_(settings.GAMMA_MODES[spec.gamma_mode])))
    st.caption(_("The SpatialDropout curve is this app's addition: Figure 5 draws DropBlock with block_size 1 and 7 "
                 "only. SpatialDropout drops whole channels, what DropBlock becomes when the block covers the map."))
    other = checkpoints.second_model(ctx, "curve_model")
    if keep_probs is None:  # measured for this model and image: the scan's own points drawn until it is whole
        scan = views.curve_scan(ctx, spec)
        if other is None:  # its rounds as a provisional curve, then the curve on the grid it measured
            curve = view.Chain(scan, lambda measured: views.robustness_curve(ctx, spec, n_samples, measured.grid))
            view.progressive(curve, lambda shown: draw_measured(ctx, scan, shown, spec))
            return
        measured = view.final(scan)
        scan_caption(measured, provisional=False)
        keep_probs = measured.grid
    parts = views.robustness_curve(ctx, spec, n_samples, keep_probs)
    if other is None:
        view.progressive(parts, lambda curve: draw_curve(ctx, curve, spec, DEFAULT_CURVE_METHODS))
        return
    # Figure 5(a) against (b): the same keep_probs and class on the second model, both whole
    curve = view.final(parts)
    second = view.final(views.robustness_curve(other, spec, n_samples, keep_probs, class_idx=curve.class_idx))
    st.caption(_("A: {a} (p = {pa:.3f} without DropBlock). B: {b} (p = {pb:.3f}). Same image, class, keep_probs, "
                 "placement and seed; the grid is the one measured on A.").format(
        a=ctx.loaded.summary, b=other.loaded.summary, pa=curve.clean_prob, pb=second.clean_prob))
    draw_curve(ctx, merge_curves(curve, second, ("A", "B")), spec, DEFAULT_CURVE_METHODS * 2)


def scan_caption(scan, provisional: bool) -> None:
    """How the measured grid is found (and, while it is, that the curve shown is the scan's own)."""
    if provisional:
        st.caption(_("Provisional: the grid for this model and image is being measured. Shown meanwhile: the "
                     "scan's own points (keep_prob {coarse}), {n} draws each so far; the curve on the measured "
                     "grid follows.").format(coarse=", ".join(f"{k:g}" for k in scan.keep_probs), n=scan.n_samples))
        return
    st.caption(_("keep_prob grid measured for this model and image: a first scan ({n} draws at keep_prob {coarse}) "
                 "finds where each curve's mean p falls from 90% to 10% of its clean value ({bands}); the grid "
                 "puts points where each falls to 75%, 50% and 25%. A fixed grid like the paper's (1 down to "
                 "0.75) suits ResNet-50; on a more fragile network it leaves the curves flat at zero after the "
                 "first point.").format(
        n=scan.n_samples, coarse=", ".join(f"{k:g}" for k in scan.keep_probs),
        bands="; ".join(_("{label}: {high:g} → {low:g}").format(label=label, high=hi, low=lo)
                        for label, (hi, lo) in zip(scan.labels, scan.band))))


def draw_measured(ctx: Context, scan, shown, spec) -> None:
    """A round of the curve on the measured grid, or, while the grid is measured, of the keep_prob
    scan as a provisional curve on its coarse grid."""
    if isinstance(shown, KeepProbScan):
        scan_caption(shown, provisional=True)
        draw_curve(ctx, shown.curve, spec, DEFAULT_CURVE_METHODS)
        return
    scan_caption(scan.final().value, provisional=False)
    draw_curve(ctx, shown, spec, DEFAULT_CURVE_METHODS)


def draw_curve(ctx: Context, curve, spec, methods) -> None:
    """One round of the curve (mean ± std over the samples drawn so far), its data and its table."""
    with layout.main_figure():
        chartview.show_charts("robustness-curve", charts.describe_robustness_curve, curve, curve.n_samples,
                              tuple(tuple(m) for m in methods))
    export.curve(ctx, curve, n_samples=curve.n_samples, keep_probs=list(curve.keep_probs),
                 curve_spec=dataclasses.asdict(spec))
    st.table(
        [{_("keep_prob"): f"{kp:g}", **{lab: f"{float(curve.mean_prob[m, k]):.3f}" for m, lab in enumerate(curve.labels)}}
         for k, kp in enumerate(curve.keep_probs)], hide_index=True)

frame.page(page)
