"""Interactive charts (Altair / Vega-Lite) of results the pages already hold: hover for exact values.

Pure functions from a result dataclass (``models/``) to an Altair chart: no computation beyond laying
the result's numbers out as rows (and binning samples for a histogram), no streamlit. The pages show
them with ``render.show_charts``, which caches each chart's Vega-Lite spec per result and language
and keeps matplotlib for the PNG download, drawn only when clicked.

Legible in Streamlit's light and dark themes: axes, labels and titles follow the theme
(``theme="streamlit"``); the series colours below have a contrast ratio of at least 3:1 against
both the light (#ffffff) and the dark (#0e1117) background (WCAG 2.1, 1.4.11), series differ by
point shape too, and text labels are drawn in their series' colour.

Data are inline rows of plain Python numbers (``*_rows`` functions, also what the tests compare);
field names are English, every title and tooltip shown goes through ``_()``.

The curves are the paper's Figure 5 (DropBlock, Ghiasi, Lin & Le, NeurIPS 2018, arXiv:1810.12890):
keep_prob falls to the right.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np

from models.compute import DEFAULT_CURVE_METHODS, CamShift, Comparison, RobustnessCurve, StrategyComparison
from models.setcurve import SetCurve
from models.theory import Mistakes, TutorialContrasts

from .i18n import _

# Contrast vs #ffffff / vs #0e1117: blue 4.2/4.5, red-orange 4.3/4.4, green 3.5/5.5, purple 4.9/3.9,
# crimson 5.7/3.3, teal 3.1/6.1; grey 3.3/5.7 is the reference (without a regulariser).
PALETTE = ("#1c7ed6", "#d9480f", "#2f9e44", "#ae3ec9", "#c2255c", "#0ca678")
REFERENCE = "#868e96"
SHAPES = ("circle", "square", "triangle-up", "diamond", "cross", "triangle-down")
HEIGHT = 220  # of the plot area; the width fills the column (Streamlit's width="stretch")

Rows = list[dict[str, object]]


def _data(rows: Rows) -> alt.InlineData:
    """Inline values: no data transformer (Altair's setting is global to all threads)."""
    return alt.InlineData(values=rows)


def _finish(chart: alt.LayerChart, title: str, height: int | None = None) -> alt.LayerChart:
    """Title and size: ``fit-x`` so the width follows the column while ``height`` stays the plot's own
    (a plain ``fit`` squeezes the plot to leave room for the legend)."""
    props = {"title": title, "autosize": alt.AutoSizeParams(type="fit-x", contains="padding")}
    return chart.properties(**props, **({"height": height} if height else {}))


def _p(class_name: str) -> str:
    return _("p({name})").format(name=class_name)


def _colour(field: str, domain: Sequence[str], title: str | None, *, legend: bool = True) -> alt.Color:
    return alt.Color(f"{field}:N", title=title,
                     scale=alt.Scale(domain=list(domain), range=list(PALETTE[:len(domain)])),
                     legend=alt.Legend(orient="bottom", direction="horizontal", columns=2, labelLimit=300)
                     if legend else None)


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


def _curve(rows: Rows, methods: Sequence[str], keep_probs: Sequence[float], *, mean: str, std: str | None,
           y_title: str, title: str, y_format: str, axis_format: str, extra: Sequence[alt.Tooltip] = ()
           ) -> alt.LayerChart:
    """Mean vs keep_prob per method (line and points), ± the Monte Carlo spread as a rule; hover a point."""
    x = alt.X("keep_prob:Q", title=_("keep_prob at inference"),
              scale=alt.Scale(reverse=True, zero=False, nice=False, domain=[min(keep_probs), max(keep_probs)]),
              axis=alt.Axis(values=list(keep_probs), format="~g"))
    y = alt.Y(f"{mean}:Q", title=y_title, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=axis_format))
    tooltip = [
        alt.Tooltip("method:N", title=_("method")),
        alt.Tooltip("keep_prob:Q", title=_("keep_prob"), format="~g"),
        alt.Tooltip("block_size:N", title=_("block_size")),
        alt.Tooltip(f"{mean}:Q", title=y_title, format=y_format),
    ]
    if std is not None:
        tooltip.append(alt.Tooltip(f"{std}:Q", title=_("± std over samples"), format=y_format))
    tooltip += [*extra, alt.Tooltip("n_samples:Q", title=_("Monte Carlo samples"))]
    base = alt.Chart(_data(rows)).encode(x=x, color=_colour("method", methods, _("method")))
    layers = [base.mark_line(strokeWidth=2).encode(y=y)]
    if std is not None:
        layers.append(base.mark_rule(strokeWidth=1.5).encode(y=f"{mean}_lo:Q", y2=f"{mean}_hi:Q", tooltip=tooltip))
    shape = alt.Shape("method:N", scale=alt.Scale(domain=list(methods), range=list(SHAPES[:len(methods)])),
                      legend=None)
    layers.append(base.mark_point(size=90, filled=True, opacity=1).encode(y=y, shape=shape, tooltip=tooltip))
    return _finish(alt.layer(*layers), title, HEIGHT)


# ------------------------------------------------------------------ one image's Figure 5


def curve_rows(curve: RobustnessCurve, n_samples: int,
               methods: Sequence[tuple[str, int]] = DEFAULT_CURVE_METHODS) -> Rows:
    """One row per method and keep_prob: the curve's numbers as computed."""
    if len(methods) != len(curve.labels):
        raise ValueError(f"expected {len(curve.labels)} (kind, block_size) methods, but got {len(methods)}")
    rows = [{"method": label, "block_size": _block_size(kind, b), "keep_prob": kp,
             "prob": float(curve.mean_prob[m, k]), "prob_std": float(curve.std_prob[m, k]),
             "top1": float(curve.top1_agreement[m, k]), "n_samples": int(n_samples)}
            for m, (label, (kind, b)) in enumerate(zip(curve.labels, methods))
            for k, kp in enumerate(curve.keep_probs)]
    return _with_band(rows, "prob", "prob_std")


def robustness_curve(curve: RobustnessCurve, n_samples: int,
                     methods: Sequence[tuple[str, int]] = DEFAULT_CURVE_METHODS) -> tuple[alt.LayerChart, ...]:
    """Figure 5 on one image: p(class) mean ± std, and the share of samples keeping the top-1.

    Args:
        curve: the computed curve, (methods, keep_probs) tensors.
        n_samples: Monte Carlo samples per point it was computed with.
        methods: the (kind, block_size) pairs it was computed with, in its labels' order.
    """
    rows = curve_rows(curve, n_samples, methods)
    prob, top1 = _p(curve.class_name), _("top-1 unchanged")
    return (
        _curve(rows, curve.labels, curve.keep_probs, mean="prob", std="prob_std", y_title=prob,
               title=_("Class probability (mean ± std)"), y_format=".3f", axis_format=".1f",
               extra=[alt.Tooltip("top1:Q", title=top1, format=".0%")]),
        _curve(rows, curve.labels, curve.keep_probs, mean="top1", std=None, y_title=_("share of samples"),
               title=_("Top-1 unchanged"), y_format=".0%", axis_format=".0%",
               extra=[alt.Tooltip("prob:Q", title=prob, format=".3f")]),
    )


# ------------------------------------------------------------------ Figure 5 over an image set


def set_curve_rows(curve: SetCurve, stats: dict | None = None) -> Rows:
    """One row per method and keep_prob: ``curve.summary()``, mean and Monte Carlo std, each (M, K)."""
    stats = curve.summary() if stats is None else stats
    rows = [{"method": label, "block_size": _block_size(spec.kind, spec.block_size), "keep_prob": kp,
             "unchanged": float(stats["unchanged_mean"][m, k]), "unchanged_std": float(stats["unchanged_std"][m, k]),
             "prob": float(stats["prob_mean"][m, k]), "prob_std": float(stats["prob_std"][m, k]),
             "n_images": curve.n_images, "n_samples": curve.n_samples}
            for m, (label, spec) in enumerate(zip(curve.labels, curve.specs))
            for k, kp in enumerate(curve.keep_probs)]
    return _with_band(_with_band(rows, "unchanged", "unchanged_std"), "prob", "prob_std")


def set_curves(curve: SetCurve, stats: dict | None = None) -> tuple[alt.LayerChart, ...]:
    """Figure 5 over a set: the share of images keeping their top-1, and its mean probability."""
    rows = set_curve_rows(curve, stats)
    images = alt.Tooltip("n_images:Q", title=_("images"))
    return (
        _curve(rows, curve.labels, curve.keep_probs, mean="unchanged", std="unchanged_std",
               y_title=_("share of images"), title=_("Top-1 unchanged (mean ± MC std)"), y_format=".0%",
               axis_format=".0%",
               extra=[images]),
        _curve(rows, curve.labels, curve.keep_probs, mean="prob", std="prob_std", y_title=_("mean probability"),
               title=_("Probability of the clean top-1 class (mean ± MC std)"), y_format=".3f", axis_format=".1f",
               extra=[images]),
    )


# ------------------------------------------------------------------ Monte Carlo spread


def stability_bins(n_samples: int) -> int:
    """The histogram's bin count for ``n_samples`` samples (the PNG download uses the same)."""
    return min(20, max(5, int(n_samples)))


def histogram_rows(values: np.ndarray, bins: int, value_range: tuple[float, float] = (0.0, 1.0)) -> Rows:
    """Counts of ``values`` (S,) in ``bins`` equal bins over ``value_range``, as matplotlib's ``hist``."""
    counts, edges = np.histogram(values, bins=bins, range=value_range)
    return [{"start": float(a), "end": float(b), "count": int(n)} for a, b, n in zip(edges[:-1], edges[1:], counts)]


def stability_histogram(shift: CamShift) -> alt.LayerChart:
    """The class probability in each Monte Carlo sample, binned; rules at the clean value and the mean."""
    probs = shift.sample_probs.detach().float().cpu().numpy()
    p, samples = _p(shift.class_name), _("samples")
    bars = alt.Chart(_data(histogram_rows(probs, stability_bins(shift.n_samples)))).mark_bar(
        color=PALETTE[0], opacity=0.9, binSpacing=1).encode(
        x=alt.X("start:Q", bin="binned", title=p, scale=alt.Scale(domain=[0, 1])),
        x2="end:Q",
        y=alt.Y("count:Q", title=samples, axis=alt.Axis(tickMinStep=1)),
        tooltip=[alt.Tooltip("start:Q", title=_("from"), format=".3f"),
                 alt.Tooltip("end:Q", title=_("to"), format=".3f"),
                 alt.Tooltip("count:Q", title=samples)],
    )
    without, mean = _("without DropBlock"), _("mean with DropBlock")
    marks = [{"what": without, "p": float(shift.clean_prob), "std": 0.0, "n_samples": 1},
             {"what": mean, "p": float(probs.mean()), "std": float(probs.std()), "n_samples": int(shift.n_samples)}]
    rules = alt.Chart(_data(marks)).mark_rule(strokeWidth=2.5, strokeDash=[6, 3]).encode(
        x="p:Q",
        color=alt.Color("what:N", title=None, scale=alt.Scale(domain=[without, mean], range=[REFERENCE, PALETTE[1]]),
                        legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("what:N", title=" "), alt.Tooltip("p:Q", title=p, format=".3f"),
                 alt.Tooltip("std:Q", title=_("± std over samples"), format=".3f"),
                 alt.Tooltip("n_samples:Q", title=_("Monte Carlo samples"))],
    )
    return _finish(alt.layer(bars, rules), _("Stability over samples"), HEIGHT)


def strategy_rows(result: StrategyComparison) -> Rows:
    """One row per arm and Monte Carlo sample: the clean top-1's probability."""
    return [{"method": v.label, "sample": i, "p": float(p)}
            for v in result.views for i, p in enumerate(v.sample_probs.tolist())]


def strategy_summary_rows(result: StrategyComparison) -> Rows:
    """One row per arm: mean, std and top-1 share over the samples, as computed, and the drops."""
    return _with_band([{"method": v.label, "mean": v.class_prob, "std": v.prob_std, "top1": v.keeps_top1,
                        "conv_drop": v.conv_drop, "fc_drop": v.fc_drop, "n_samples": result.n_samples}
                       for v in result.views], "mean", "std")


def strategy_stability(result: StrategyComparison) -> alt.LayerChart:
    """Each arm's samples (ticks), their mean ± std (diamond and rule), and the clean value (dashed)."""
    arms = [v.label for v in result.views]
    p = _p(result.class_name)
    y = alt.Y("method:N", title=None, sort=arms, axis=alt.Axis(labelLimit=150))
    x_scale = alt.Scale(domain=[0, 1])
    colour = _colour("method", arms, None, legend=False)
    ticks = alt.Chart(_data(strategy_rows(result))).mark_tick(thickness=2, size=18, opacity=0.6).encode(
        x=alt.X("p:Q", title=p, scale=x_scale), y=y, color=colour,
        tooltip=[alt.Tooltip("method:N", title=_("method")), alt.Tooltip("sample:Q", title=_("sample")),
                 alt.Tooltip("p:Q", title=p, format=".3f")])
    tooltip = [alt.Tooltip("method:N", title=_("method")), alt.Tooltip("mean:Q", title=_("mean"), format=".3f"),
               alt.Tooltip("std:Q", title=_("± std over samples"), format=".3f"),
               alt.Tooltip("top1:Q", title=_("top-1 unchanged"), format=".0%"),
               alt.Tooltip("conv_drop:Q", title=_("DropBlock drop"), format=".3f"),
               alt.Tooltip("fc_drop:Q", title=_("Dropout drop"), format=".3f"),
               alt.Tooltip("n_samples:Q", title=_("Monte Carlo samples"))]
    base = alt.Chart(_data(strategy_summary_rows(result))).encode(y=y, color=colour, tooltip=tooltip)
    spread = base.mark_rule(strokeWidth=3).encode(x=alt.X("mean_lo:Q", scale=x_scale), x2="mean_hi:Q")
    mean = base.mark_point(size=130, filled=True, shape="diamond", opacity=1).encode(x=alt.X("mean:Q", scale=x_scale))
    clean = alt.Chart(_data([{"p": float(result.clean_prob), "what": _("without regularisation")}])).mark_rule(
        color=REFERENCE, strokeDash=[6, 3], strokeWidth=2).encode(
        x="p:Q", tooltip=[alt.Tooltip("what:N", title=" "), alt.Tooltip("p:Q", title=p, format=".3f")])
    return _finish(alt.layer(ticks, spread, mean, clean), _("Monte Carlo stability (dashed: without regularisation)"))


# ------------------------------------------------------------------ drop rates: bars with their numbers


def _drop_bars(rows: Rows, target: float | None, title: str, tooltip: list[alt.Tooltip],
               label_limit: int = 150) -> alt.LayerChart:
    """Realised drop per row as a bar labelled with its value; a dashed rule at the target."""
    y = alt.Y("name:N", title=None, sort=[r["name"] for r in rows], axis=alt.Axis(labelLimit=label_limit))
    top = max(0.05, 1.25 * max(r["realised_drop"] for r in rows), 1.25 * (target or 0.0))
    x = alt.X("realised_drop:Q", title=_("realised drop"), axis=alt.Axis(format=".0%"),
              scale=alt.Scale(domain=[0, min(1.0, top)]))
    base = alt.Chart(_data(rows)).encode(y=y, tooltip=tooltip)
    layers = [base.mark_bar(color=PALETTE[0], opacity=0.85).encode(x=x),
              base.mark_text(align="left", dx=6, color=PALETTE[0], fontWeight="bold").encode(
                  x="realised_drop:Q", text=alt.Text("realised_drop:Q", format=".3f"))]
    if target is not None:
        layers.append(alt.Chart(_data([{"target": float(target)}])).mark_rule(
            color=PALETTE[1], strokeDash=[6, 3], strokeWidth=2).encode(
            x="target:Q", tooltip=[alt.Tooltip("target:Q", title=_("target 1 − keep_prob"), format=".3f")]))
    return _finish(alt.layer(*layers), title)


def comparison_rows(result: Comparison) -> Rows:
    """One row per method: its realised drop (mean of ``n_samples`` draws), target, the draw shown."""
    return [{"name": v.label, "realised_drop": v.realised_drop, "target": v.target_drop, "sample_drop": v.sample_drop,
             "unit": v.unit, "site": v.site_label, "n_samples": result.n_samples} for v in result.views]


def comparison_drops(result: Comparison) -> alt.LayerChart:
    """Compare methods: each method's realised drop against the shared target 1 − keep_prob."""
    rows = comparison_rows(result)
    tooltip = [alt.Tooltip("name:N", title=_("method")),
               alt.Tooltip("realised_drop:Q", title=_("realised drop"), format=".4f"),
               alt.Tooltip("target:Q", title=_("target 1 − keep_prob"), format=".3f"),
               alt.Tooltip("sample_drop:Q", title=_("this draw"), format=".4f"),
               alt.Tooltip("n_samples:Q", title=_("mask draws")),
               alt.Tooltip("unit:N", title=_("unit")), alt.Tooltip("site:N", title=_("where"))]
    targets = {r["target"] for r in rows}
    return _drop_bars(rows, targets.pop() if len(targets) == 1 else None,
                      _("Realised drop (dashed: the target)"), tooltip)


def mistakes_rows(report: Mistakes) -> Rows:
    """One row per recipe, as measured."""
    return [{"name": ("✅ " if m.is_paper else "❌ ") + m.name, "realised_drop": m.realised_drop,
             "train_mean": m.train_mean, "eval_mean": m.eval_mean, "mismatch": m.mismatch,
             "n_samples": report.n_samples} for m in report.rows]


def mistakes_drops(report: Mistakes) -> alt.LayerChart:
    """Each recipe's realised drop against 1 − keep_prob, its activation gains in the tooltip."""
    tooltip = [alt.Tooltip("name:N", title=_("recipe")),
               alt.Tooltip("realised_drop:Q", title=_("realised drop"), format=".4f"),
               alt.Tooltip("train_mean:Q", title=_("train mean"), format=".3f"),
               alt.Tooltip("eval_mean:Q", title=_("inference mean"), format=".3f"),
               alt.Tooltip("mismatch:Q", title=_("train/inference mismatch"), format=".1%"),
               alt.Tooltip("n_samples:Q", title=_("mask draws"))]
    return _drop_bars(mistakes_rows(report), 1.0 - report.keep_prob,
                      _("Realised drop per recipe (dashed: the target)"), tooltip, label_limit=160)


def contrast_rows(c: TutorialContrasts) -> Rows:
    """One row per setting (two sites, two block_size schemes), as measured."""
    rows = [(_("Site"), x) for x in c.site] + [(_("block_size"), x) for x in c.block_size]
    return _with_band([{"contrast": k, "name": x.label, "realised_drop": x.realised_drop, "prob": x.class_prob,
                        "prob_std": x.prob_std, "top1": x.keeps_top1, "n_samples": c.n_samples} for k, x in rows],
                      "prob", "prob_std")


def contrasts(c: TutorialContrasts) -> alt.LayerChart:
    """Each setting's mean p(class) ± std over samples, its realised drop; dashed: without DropBlock."""
    rows = contrast_rows(c)
    p = _p(c.class_name)
    tooltip = [alt.Tooltip("contrast:N", title=_("contrast")), alt.Tooltip("name:N", title=_("setting")),
               alt.Tooltip("prob:Q", title=_("mean p"), format=".3f"),
               alt.Tooltip("prob_std:Q", title=_("± std over samples"), format=".3f"),
               alt.Tooltip("realised_drop:Q", title=_("realised drop"), format=".4f"),
               alt.Tooltip("top1:Q", title=_("top-1 unchanged"), format=".0%"),
               alt.Tooltip("n_samples:Q", title=_("Monte Carlo samples"))]
    colour = _colour("contrast", list(dict.fromkeys(r["contrast"] for r in rows)), _("contrast"))
    y = alt.Y("name:N", title=None, sort=[r["name"] for r in rows], axis=alt.Axis(labelLimit=160))
    base = alt.Chart(_data(rows)).encode(y=y, tooltip=tooltip)
    bars = base.mark_bar(opacity=0.8).encode(x=alt.X("prob:Q", title=p, scale=alt.Scale(domain=[0, 1])), color=colour)
    spread = base.mark_rule(strokeWidth=2, color=REFERENCE).encode(x="prob_lo:Q", x2="prob_hi:Q")
    text = base.mark_text(align="left", dx=4, fontWeight="bold").encode(
        x="prob_hi:Q", text=alt.Text("prob:Q", format=".3f"), color=colour)
    clean = alt.Chart(_data([{"p": float(c.clean_prob), "what": _("without DropBlock")}])).mark_rule(
        color=REFERENCE, strokeDash=[6, 3], strokeWidth=2).encode(
        x="p:Q", tooltip=[alt.Tooltip("what:N", title=" "), alt.Tooltip("p:Q", title=p, format=".3f")])
    return _finish(alt.layer(bars, spread, text, clean), _("Mean probability ± std (dashed: without DropBlock)"))
