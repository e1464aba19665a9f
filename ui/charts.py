"""Every chart the app draws, described once from the result it shows (``ui/chartspec.py``).

Pure functions from a result dataclass (``models/``) to :class:`~ui.chartspec.Chart` descriptions:
no computation beyond laying the result's numbers out as rows (and binning samples for a histogram),
no drawing, no streamlit. ``ui/chartview.py`` draws each description as an interactive Vega-Lite chart
(hover for exact values) and, when *Download PNG* is clicked, as a matplotlib figure of the same rows,
labels and colours (``ui/chartpng.py``). The pages and the lesson show them with ``chartview.show_charts``.

Data are rows of plain Python numbers (``*_rows`` functions, also what the tests compare); field
names are English, every title, label and tooltip shown goes through ``_()`` (names of methods from
``models/`` through ``tr`` / ``shown_text``, as the pages' tables show them).

The curves are the paper's Figure 5 (DropBlock, Ghiasi, Lin & Le, NeurIPS 2018, arXiv:1810.12890):
keep_prob falls to the right. The schedule is its Sec. 3 (Fig. 3b): keep_prob from 1 down to the target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.compute import DEFAULT_CURVE_METHODS, CamShift, Comparison, RobustnessCurve, StrategyComparison
from models.setcurve import SetCurve
from models.theory import Mistake, Mistakes, Schedule, TutorialContrasts, compute_schedule

from .chartspec import HEIGHT, PALETTE, REFERENCE, Axis, Chart, Layer, Tip, series
from .i18n import _, shown_text, tr

Rows = list[dict[str, object]]


def _p(class_name: str) -> str:
    return _("p({name})").format(name=class_name)


def _block_size(kind: str, block_size: int) -> str:
    """A method's block: b for DropBlock, the whole map for SpatialDropout, one unit for Dropout."""
    if kind == "dropblock":
        return str(int(block_size))
    return {"spatial_dropout": _("whole channel"), "dropout": "1"}.get(kind, "—")


def _with_band(rows: Rows, mean: str, std: str) -> Rows:
    """Adds ``{mean}_lo`` and ``{mean}_hi``: mean ∓ std inside [0, 1], the ends of the spread's rule."""
    for row in rows:
        row[f"{mean}_lo"] = max(0.0, row[mean] - row[std])
        row[f"{mean}_hi"] = min(1.0, row[mean] + row[std])
    return rows


def _curve(rows: Rows, keep_probs: Sequence[float], *, mean: str, std: str | None, y_title: str, title: str,
           y_format: str, axis_format: str, extra: Sequence[Tip] = ()) -> Chart:
    """Mean vs keep_prob per method (line and points), ± the Monte Carlo spread as a rule; hover a point."""
    rows = tuple(rows)
    method = series("method", [r["method"] for r in rows], _("method"), shapes=True)
    tooltip = (Tip("method", _("method")), Tip("keep_prob", _("keep_prob"), "~g"), Tip("block_size", _("block_size")),
               Tip(mean, y_title, y_format),
               *((Tip(std, _("± std over samples"), y_format),) if std is not None else ()),
               *extra, Tip("n_samples", _("Monte Carlo samples")))
    layers = [Layer("line", rows, x="keep_prob", y=mean, series=method, width=2)]
    if std is not None:
        layers.append(Layer("rule", rows, x="keep_prob", y=f"{mean}_lo", y2=f"{mean}_hi", series=method, width=1.5,
                            tooltip=tooltip))
    layers.append(Layer("point", rows, x="keep_prob", y=mean, series=method, size=90, tooltip=tooltip))
    x = Axis(_("keep_prob at inference"), domain=(min(keep_probs), max(keep_probs)), values=tuple(keep_probs),
             format="~g", reverse=True)
    return Chart(title, x, Axis(y_title, domain=(0.0, 1.0), format=axis_format), tuple(layers), HEIGHT)


# ------------------------------------------------------------------ one image's Figure 5


def curve_rows(curve: RobustnessCurve, n_samples: int,
               methods: Sequence[tuple[str, int]] = DEFAULT_CURVE_METHODS) -> Rows:
    """One row per method and keep_prob: the curve's numbers as computed."""
    if len(methods) != len(curve.labels):
        raise ValueError(f"expected {len(curve.labels)} (kind, block_size) methods, but got {len(methods)}")
    rows = [{"method": shown_text(label), "block_size": _block_size(kind, b), "keep_prob": kp,
             "prob": float(curve.mean_prob[m, k]), "prob_std": float(curve.std_prob[m, k]),
             "top1": float(curve.top1_agreement[m, k]), "n_samples": int(n_samples)}
            for m, (label, (kind, b)) in enumerate(zip(curve.labels, methods))
            for k, kp in enumerate(curve.keep_probs)]
    return _with_band(rows, "prob", "prob_std")


def describe_robustness_curve(curve: RobustnessCurve, n_samples: int,
                              methods: Sequence[tuple[str, int]] = DEFAULT_CURVE_METHODS) -> tuple[Chart, Chart]:
    """Figure 5 on one image: p(class) mean ± std, and the share of samples keeping the top-1.

    Args:
        curve: the computed curve, (methods, keep_probs) tensors.
        n_samples: Monte Carlo samples per point it was computed with.
        methods: the (kind, block_size) pairs it was computed with, in its labels' order.
    """
    rows = curve_rows(curve, n_samples, methods)
    prob, top1 = _p(curve.class_name), _("top-1 unchanged")
    return (
        _curve(rows, curve.keep_probs, mean="prob", std="prob_std", y_title=prob,
               title=_("Class probability (mean ± std)"), y_format=".3f", axis_format=".1f",
               extra=[Tip("top1", top1, ".0%")]),
        _curve(rows, curve.keep_probs, mean="top1", std=None, y_title=_("share of samples"),
               title=_("Top-1 unchanged"), y_format=".0%", axis_format=".0%", extra=[Tip("prob", prob, ".3f")]),
    )


# ------------------------------------------------------------------ Figure 5 over an image set


def set_curve_rows(curve: SetCurve, stats: dict | None = None) -> Rows:
    """One row per method and keep_prob: ``curve.summary()``, mean and Monte Carlo std, each (M, K)."""
    stats = curve.summary() if stats is None else stats
    rows = [{"method": shown_text(label), "block_size": _block_size(spec.kind, spec.block_size), "keep_prob": kp,
             "unchanged": float(stats["unchanged_mean"][m, k]), "unchanged_std": float(stats["unchanged_std"][m, k]),
             "prob": float(stats["prob_mean"][m, k]), "prob_std": float(stats["prob_std"][m, k]),
             "n_images": curve.n_images, "n_samples": curve.n_samples}
            for m, (label, spec) in enumerate(zip(curve.labels, curve.specs))
            for k, kp in enumerate(curve.keep_probs)]
    return _with_band(_with_band(rows, "unchanged", "unchanged_std"), "prob", "prob_std")


def describe_set_curves(curve: SetCurve, stats: dict | None = None) -> tuple[Chart, Chart]:
    """Figure 5 over a set: the share of images keeping their top-1, and its mean probability."""
    rows = set_curve_rows(curve, stats)
    images = Tip("n_images", _("images"))
    return (
        _curve(rows, curve.keep_probs, mean="unchanged", std="unchanged_std", y_title=_("share of images"),
               title=_("Top-1 unchanged (mean ± MC std)"), y_format=".0%", axis_format=".0%", extra=[images]),
        _curve(rows, curve.keep_probs, mean="prob", std="prob_std", y_title=_("mean probability"),
               title=_("Probability of the clean top-1 class (mean ± MC std)"), y_format=".3f", axis_format=".1f",
               extra=[images]),
    )


# ------------------------------------------------------------------ Monte Carlo spread


def stability_bins(n_samples: int) -> int:
    """The histogram's bin count for ``n_samples`` samples."""
    return min(20, max(5, int(n_samples)))


def histogram_rows(values: np.ndarray, bins: int, value_range: tuple[float, float] = (0.0, 1.0)) -> Rows:
    """Counts of ``values`` (S,) in ``bins`` equal bins over ``value_range``, as matplotlib's ``hist``."""
    counts, edges = np.histogram(values, bins=bins, range=value_range)
    return [{"start": float(a), "end": float(b), "count": int(n)} for a, b, n in zip(edges[:-1], edges[1:], counts)]


def describe_stability_histogram(shift: CamShift) -> Chart:
    """The class probability in each Monte Carlo sample, binned; rules at the clean value and the mean."""
    probs = shift.sample_probs.detach().float().cpu().numpy()
    p, samples = _p(shift.class_name), _("samples")
    bars = Layer("bar", tuple(histogram_rows(probs, stability_bins(shift.n_samples))), x="start", x2="end", y="count",
                 colour=PALETTE[0], opacity=0.9,
                 tooltip=(Tip("start", _("from"), ".3f"), Tip("end", _("to"), ".3f"), Tip("count", samples)))
    without, mean = _("without DropBlock"), _("mean with DropBlock")
    marks = ({"what": without, "p": float(shift.clean_prob), "std": 0.0, "n_samples": 1},
             {"what": mean, "p": float(probs.mean()), "std": float(probs.std()), "n_samples": int(shift.n_samples)})
    rules = Layer("rule", marks, x="p", series=series("what", (without, mean), colours=(REFERENCE, PALETTE[1])),
                  width=2.5, dash=True,
                  tooltip=(Tip("what", " "), Tip("p", p, ".3f"), Tip("std", _("± std over samples"), ".3f"),
                           Tip("n_samples", _("Monte Carlo samples"))))
    return Chart(_("Stability over samples"), Axis(p, domain=(0.0, 1.0)), Axis(samples, integer=True), (bars, rules),
                 HEIGHT)


def strategy_rows(result: StrategyComparison) -> Rows:
    """One row per arm and Monte Carlo sample: the clean top-1's probability."""
    return [{"method": _(v.label), "sample": i, "p": float(p)}
            for v in result.views for i, p in enumerate(v.sample_probs.tolist())]


def strategy_summary_rows(result: StrategyComparison) -> Rows:
    """One row per arm: mean, std and top-1 share over the samples, as computed, and the drops."""
    return _with_band([{"method": _(v.label), "mean": v.class_prob, "std": v.prob_std, "top1": v.keeps_top1,
                        "conv_drop": v.conv_drop, "fc_drop": v.fc_drop, "n_samples": result.n_samples}
                       for v in result.views], "mean", "std")


def describe_strategy_stability(result: StrategyComparison) -> Chart:
    """Each arm's samples (ticks), their mean ± std (diamond and rule), and the clean value (dashed)."""
    summary = tuple(strategy_summary_rows(result))
    arm = series("method", [r["method"] for r in summary], legend=False)
    p = _p(result.class_name)
    tooltip = (Tip("method", _("method")), Tip("mean", _("mean"), ".3f"), Tip("std", _("± std over samples"), ".3f"),
               Tip("top1", _("top-1 unchanged"), ".0%"), Tip("conv_drop", _("DropBlock drop"), ".3f"),
               Tip("fc_drop", _("Dropout drop"), ".3f"), Tip("n_samples", _("Monte Carlo samples")))
    clean = ({"p": float(result.clean_prob), "what": _("without regularisation")},)
    layers = (
        Layer("tick", tuple(strategy_rows(result)), x="p", y="method", series=arm, width=2, size=18, opacity=0.6,
              tooltip=(Tip("method", _("method")), Tip("sample", _("sample")), Tip("p", p, ".3f"))),
        Layer("rule", summary, x="mean_lo", x2="mean_hi", y="method", series=arm, width=3, tooltip=tooltip),
        Layer("point", summary, x="mean", y="method", series=arm, size=130, shape="diamond", tooltip=tooltip),
        Layer("rule", clean, x="p", colour=REFERENCE, width=2, dash=True, tooltip=(Tip("what", " "), Tip("p", p, ".3f"))),
    )
    return Chart(_("Monte Carlo stability (dashed: without regularisation)"), Axis(p, domain=(0.0, 1.0)),
                 Axis(None, categories=arm.names), layers)


# ------------------------------------------------------------------ drop rates: bars with their numbers


def _drop_bars(rows: Rows, target: float | None, title: str, tooltip: Sequence[Tip], label_limit: int = 150) -> Chart:
    """Realised drop per row as a bar labelled with its value; a dashed rule at the target."""
    rows = tuple(rows)
    top = max(0.05, 1.25 * max(r["realised_drop"] for r in rows), 1.25 * (target or 0.0))
    layers = [Layer("bar", rows, x="realised_drop", y="name", colour=PALETTE[0], opacity=0.85, tooltip=tuple(tooltip)),
              Layer("text", rows, x="realised_drop", y="name", text="realised_drop", text_format=".3f",
                    colour=PALETTE[0], tooltip=tuple(tooltip))]
    if target is not None:
        layers.append(Layer("rule", ({"target": float(target)},), x="target", colour=PALETTE[1], width=2, dash=True,
                            tooltip=(Tip("target", _("target 1 − keep_prob"), ".3f"),)))
    x = Axis(_("realised drop"), domain=(0.0, min(1.0, top)), format=".0%")
    return Chart(title, x, Axis(None, categories=tuple(r["name"] for r in rows), label_limit=label_limit),
                 tuple(layers))


def comparison_rows(result: Comparison) -> Rows:
    """One row per method: its realised drop (mean of ``n_samples`` draws), target, the draw shown."""
    return [{"name": shown_text(v.label), "realised_drop": v.realised_drop, "target": v.target_drop,
             "sample_drop": v.sample_drop, "unit": shown_text(v.unit), "site": tr(v.site_label),
             "n_samples": result.n_samples} for v in result.views]


def describe_comparison_drops(result: Comparison) -> Chart:
    """Compare methods: each method's realised drop against the shared target 1 − keep_prob."""
    rows = comparison_rows(result)
    tooltip = (Tip("name", _("method")), Tip("realised_drop", _("realised drop"), ".4f"),
               Tip("target", _("target 1 − keep_prob"), ".3f"), Tip("sample_drop", _("this draw"), ".4f"),
               Tip("n_samples", _("mask draws")), Tip("unit", _("unit")), Tip("site", _("where")))
    targets = {r["target"] for r in rows}
    return _drop_bars(rows, targets.pop() if len(targets) == 1 else None, _("Realised drop (dashed: the target)"),
                      tooltip)


def mistakes_rows(report: Mistakes) -> Rows:
    """One row per recipe, as measured; the paper's marked ✓, the others ✗ (the table's ✅ and ❌ are
    colour emoji, which no font of the PNG has)."""
    return [{"name": ("✓ " if m.is_paper else "✗ ") + tr(m.name), "realised_drop": m.realised_drop,
             "train_mean": m.train_mean, "eval_mean": m.eval_mean, "mismatch": m.mismatch,
             "n_samples": report.n_samples} for m in report.rows]


def describe_mistakes_drops(report: Mistakes) -> Chart:
    """Each recipe's realised drop against 1 − keep_prob, its activation gains in the tooltip."""
    tooltip = (Tip("name", _("recipe")), Tip("realised_drop", _("realised drop"), ".4f"),
               Tip("train_mean", _("train mean"), ".3f"), Tip("eval_mean", _("inference mean"), ".3f"),
               Tip("mismatch", _("train/inference mismatch"), ".1%"), Tip("n_samples", _("mask draws")))
    return _drop_bars(mistakes_rows(report), 1.0 - report.keep_prob, _("Realised drop per recipe (dashed: the target)"),
                      tooltip, label_limit=160)


def gain_rows(recipes: Sequence[tuple[str, Mistake]]) -> Rows:
    """Two rows per (label, recipe): its mean activation gain in training and at inference (``one``: the
    gain that preserves the activation, where the bar starts)."""
    return [{"name": label, "phase": phase, "gain": gain, "one": 1.0, "realised_drop": m.realised_drop}
            for label, m in recipes
            for phase, gain in ((_("in training"), m.train_mean), (_("at inference"), m.eval_mean))]


def describe_gains(recipes: Sequence[tuple[str, Mistake]]) -> Chart:
    """Each recipe's mean activation ÷ the clean one, in training and at inference, side by side from 1
    (preserved) on a log scale, so that ×2 and ÷2 are as long. ``recipes``: (shown label, recipe)."""
    rows = tuple(gain_rows(recipes))
    gain = _("mean activation ÷ clean mean (1 = preserved)")
    phase = series("phase", [r["phase"] for r in rows])
    tooltip = (Tip("name", _("recipe")), Tip("phase", " "), Tip("gain", gain, ".3f"),
               Tip("realised_drop", _("realised drop"), ".4f"))
    one = ({"gain": 1.0},)
    layers = (Layer("bar", rows, x="gain", x2="one", y="name", series=phase, offset=True, opacity=0.85, tooltip=tooltip),
              Layer("rule", one, x="gain", colour=REFERENCE, width=1.5, tooltip=(Tip("gain", gain, ".3f"),)))
    return Chart(None, Axis(gain, log=True, format="~g"), Axis(None, categories=tuple(label for label, _m in recipes),
                                                                 label_limit=220), layers)


def contrast_rows(c: TutorialContrasts) -> Rows:
    """One row per setting (two sites, two block_size schemes), as measured."""
    rows = [(_("Site"), x) for x in c.site] + [(_("block_size"), x) for x in c.block_size]
    return _with_band([{"contrast": k, "name": tr(x.label), "realised_drop": x.realised_drop, "prob": x.class_prob,
                        "prob_std": x.prob_std, "top1": x.keeps_top1, "n_samples": c.n_samples} for k, x in rows],
                      "prob", "prob_std")


def describe_contrasts(c: TutorialContrasts) -> Chart:
    """Each setting's mean p(class) ± std over samples, its realised drop; dashed: without DropBlock."""
    rows = tuple(contrast_rows(c))
    p = _p(c.class_name)
    tooltip = (Tip("contrast", _("contrast")), Tip("name", _("setting")), Tip("prob", _("mean p"), ".3f"),
               Tip("prob_std", _("± std over samples"), ".3f"), Tip("realised_drop", _("realised drop"), ".4f"),
               Tip("top1", _("top-1 unchanged"), ".0%"), Tip("n_samples", _("Monte Carlo samples")))
    contrast = series("contrast", [r["contrast"] for r in rows], _("contrast"))
    clean = ({"p": float(c.clean_prob), "what": _("without DropBlock")},)
    layers = (
        Layer("bar", rows, x="prob", y="name", series=contrast, opacity=0.8, tooltip=tooltip),
        Layer("rule", rows, x="prob_lo", x2="prob_hi", y="name", colour=REFERENCE, width=2, tooltip=tooltip),
        Layer("text", rows, x="prob_hi", y="name", text="prob", text_format=".3f", series=contrast, tooltip=tooltip),
        Layer("rule", clean, x="p", colour=REFERENCE, width=2, dash=True, tooltip=(Tip("what", " "), Tip("p", p, ".3f"))),
    )
    return Chart(_("Mean probability ± std (dashed: without DropBlock)"), Axis(p, domain=(0.0, 1.0)),
                 Axis(None, categories=tuple(r["name"] for r in rows), label_limit=160), layers)


# ------------------------------------------------------------------ the keep_prob schedule


def schedule_rows(sched: Schedule) -> Rows:
    """One row per sampled training step: keep_prob there."""
    return [{"step": int(s), "keep_prob": float(k)} for s, k in zip(sched.steps.tolist(), sched.keep_probs.tolist())]


def describe_schedule(sched: Schedule, at: tuple[int, float] | None = None) -> Chart:
    """keep_prob against the training step (Sec. 3): from 1.0 at step 0 down to the target at
    ``sched.total_steps`` (dashed), constant after; with ``at``, one (step, keep_prob) as a point."""
    rows = tuple(schedule_rows(sched))
    step, kp = _("training step"), _("keep_prob")
    tooltip = (Tip("step", step), Tip("keep_prob", kp, ".3f"))
    layers = [Layer("line", rows, x="step", y="keep_prob", colour=PALETTE[0], width=2),
              Layer("point", rows, x="step", y="keep_prob", colour=PALETTE[0], size=60, opacity=0.0, tooltip=tooltip),
              Layer("rule", ({"step": int(sched.total_steps), "what": _("Steps to reach the target")},), x="step",
                    colour=REFERENCE, width=1.5, dash=True, tooltip=(Tip("what", " "), Tip("step", step)))]
    if at is not None:
        layers.append(Layer("point", ({"step": int(at[0]), "keep_prob": float(at[1])},), x="step", y="keep_prob",
                            colour=PALETTE[1], size=110, tooltip=tooltip))
    low = min(float(sched.target), 1.0)
    return Chart(_("1.0 at step 0, linearly down to the target, then constant"), Axis(step, format=",.0f"),
                 Axis(kp, domain=(max(0.0, low - 0.05), 1.02), format=".2f"), tuple(layers), HEIGHT)


def describe_schedule_of(target: float, total_steps: int, at: tuple[int, float] | None = None) -> Chart:
    """:func:`describe_schedule` of the linear schedule to ``target`` over ``total_steps``."""
    return describe_schedule(compute_schedule(target, total_steps), at)
