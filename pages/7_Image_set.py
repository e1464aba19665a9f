"""Image set: the paper's Figure 5 over many images, not one."""

from __future__ import annotations

import streamlit as st

from models import export as E
from models.imageset import SetError
from ui import charts, chartview, export, frame, layout, view
from ui import imageset as ui_set
from ui.i18n import N_, _, ngettext, shown_text, tr
from ui.inputs import Context
from ui.text import escaped

JOB = "set_job"  # (set, n_samples, keep_probs) the curves below are for


def _set_controls(ctx: Context) -> None:
    """Which images and how many samples; only this part reruns while they change."""
    try:
        imageset = ui_set.choose_set()
    except SetError as err:
        st.error(_("This zip can't be used: {error}").format(error=tr(err)))
        return
    if imageset is None:
        st.info(_("Upload images to build a set."))
        return
    if imageset.rejected:
        n = len(imageset.rejected)
        with st.expander(ngettext("{n} file not used", "{n} files not used", n).format(n=n),
                         expanded=not imageset.images):
            st.dataframe([{_("file"): r.name, _("why"): tr(r.reason)} for r in imageset.rejected], hide_index=True)
    if not imageset.images:
        st.warning(_("No usable image in this set."))
        return
    tops = ui_set.predictions(ctx, imageset)
    st.image([image.thumb for image in imageset.images], width=112,
             caption=[escaped(f"{image.name}: {name} ({p:.2f})", None) for image, (name, p) in zip(imageset.images, tops)])
    c1, c2 = st.columns(2)
    n_samples = c1.select_slider(_("Monte Carlo samples per point"), [2, 4, 8, 16], value=4, key="set_samples")
    lowest = c2.select_slider(_("Lowest keep_prob"), [0.5, 0.6, 0.7, 0.75, 0.8, 0.9], value=0.75, key="set_lowest")
    points = c2.select_slider(_("Points on the curve"), [2, 3, 4, 6], value=4, key="set_points")
    keep_probs = tuple(round(1.0 - i * (1.0 - lowest) / (points - 1), 2) for i in range(points))
    n = len(imageset.images)
    c1.caption(ngettext("{n} image × {k} keep_probs × {s} samples per method.",
                        "{n} images × {k} keep_probs × {s} samples per method.", n).format(
        n=n, k=len(keep_probs), s=n_samples))
    if st.session_state.get("set_source") == "bundled":  # measured by bench/set_samples.py on this set
        c1.caption(_("On these {n} images, 4 samples per point already give a smooth curve: between seeds, the "
                     "share of images keeping their top-1 moves by about {s4} points (8 samples: {s8}; 2 samples: "
                     "{s2}), less than one image ({one:.1f} points).").format(
            n=n, s4="1.3", s8="0.9", s2="2.0", one=100 / n))
    if st.button(_("Compute the curves"), type="primary", key="set_compute"):
        st.session_state[JOB] = (imageset, n_samples, keep_probs)
        st.session_state.pop("set_cancelled", None)
        st.rerun()  # the whole page, so the curves below follow


@frame.fragment(message=N_("Something went wrong while reading this set. Try other images; the details are in "
                           "the server log."))
def set_controls(ctx: Context) -> None:
    _set_controls(ctx)


def _cancel() -> None:
    st.session_state.pop(JOB, None)
    st.session_state["set_cancelled"] = True


def curves(ctx: Context) -> None:
    job = st.session_state.get(JOB)
    if job is None:
        st.info(_("Cancelled: nothing was kept. Press *Compute the curves* to start again.")
                if st.session_state.get("set_cancelled") else _("Press *Compute the curves* to run the set."))
        return
    imageset, n_samples, keep_probs = job
    holder = st.empty()
    if ui_set.set_curve.cached(ctx, imageset, n_samples, keep_probs) is None:
        holder.button(_("Cancel"), key="set_cancel", on_click=_cancel, icon=":material/cancel:")
    view.progressive(ui_set.set_curve(ctx, imageset, n_samples, keep_probs),
                     lambda curve: draw_curves(ctx, imageset, curve))
    if ui_set.set_curve.cached(ctx, imageset, n_samples, keep_probs) is not None:
        holder.empty()  # whole: nothing to cancel (while it refines after this run, Cancel stays)


def draw_curves(ctx: Context, imageset, curve) -> None:
    """The set's curves over the samples drawn so far (each round: every image, every point)."""
    stats = curve.summary()

    st.subheader(_("Over {n} images from {source}").format(n=curve.n_images,
                                                            source=escaped(shown_text(imageset.source), None)))
    with layout.main_figure():
        chartview.show_charts("image-set-curves", charts.describe_set_curves, curve)
    meta = E.set_meta(imageset, curve)
    export.rows(ctx, "image-set-curves", "share of images with top-1 unchanged and mean probability of the clean "
                "top-1 class vs keep_prob, mean and std over Monte Carlo samples", lambda: E.set_curve_rows(curve), **meta)
    export.npz(ctx, "image-set-samples", lambda: E.set_curve_arrays(curve), "raw samples, (methods, keep_probs, "
               "images, samples)", labels=list(curve.labels), **meta)

    st.table(
        [{_("keep_prob"): f"{kp:g}", **{shown_text(lab): f"{float(stats['unchanged_mean'][m, k]):.0%} ± "
                                         f"{float(stats['unchanged_std'][m, k]):.0%}"
                                    for m, lab in enumerate(curve.labels)}}
         for k, kp in enumerate(curve.keep_probs)], hide_index=True)
    st.caption(_("Share of images whose top-1 is unchanged, ± its spread over {n} Monte Carlo samples. Seed {seed}; "
                 "sample s of image i draws its masks from its own generator, seeded sample_seed(seed·65536 + i, s): "
                 "sample 0 from seed·65536 + i itself.").format(n=curve.n_samples, seed=curve.seed))


def page(ctx: Context) -> None:
    st.title(_("Image set"))
    spec = ctx.spec
    where = (_("after group {group}").format(group=spec.group) if spec.placement == "after_group"
             else _("inside the blocks of groups 3 and 4 (γ/4 in group 3)"))
    st.markdown(_(
        "The paper's Figure 5 is ImageNet accuracy against keep_prob when DropBlock is applied at inference to a "
        "model trained without it. Here it runs over a set of images: for **DropBlock b=1 and b=7** and "
        "**SpatialDropout** {where}, and DropBlock b=7 in the **paper's placement** (inside every block of groups "
        "3 and 4, skip connections included, γ/4 in group 3), the share of images whose top-1 class survives, and "
        "the mean probability of that class."
    ).format(where=where))
    set_controls(ctx)
    curves(ctx)


frame.page(page)
