"""A chart description (``ui/chartspec.py``) drawn with matplotlib, for its PNG download; and the
matplotlib set-up every figure of the app shares (fonts, the figure cache).

:func:`figure` reads nothing but the description: the same rows, titles, tick formats, colours and
point shapes as the interactive chart (``ui/chartview.py``), so the PNG shows what the page shows.
Figures are ``matplotlib.figure.Figure`` objects, not pyplot's: no global figure list, no backend to
choose, nothing to close, safe from several threads (matplotlib's advice for web servers). Each
layer's artists carry the gid ``layer-<i>`` (its index in ``Chart.layers``), so that tests can read a
figure back.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from .chartspec import PALETTE, Axis, Chart, Layer

CJK_FONT = "Noto Sans CJK SC"  # Debian/Ubuntu package fonts-noto-cjk
DPI = 120
PT = 0.75  # typographic points per CSS pixel: the description's sizes are the browser's px
MARKERS = {"circle": "o", "square": "s", "triangle-up": "^", "diamond": "D", "cross": "P", "triangle-down": "v"}
DASH = (0, (4, 2))  # the interactive chart's strokeDash [6, 3] at 0.75 pt per px, in line widths


def cjk_font_path() -> str | None:
    """The CJK font's file, if installed (matplotlib's own font list: no fontconfig call per use)."""
    try:
        return font_manager.findfont(CJK_FONT, fallback_to_default=False)
    except ValueError:
        return None


@functools.cache
def matplotlib_ready() -> None:
    """Once, before the first figure (not at import): Latin text in DejaVu Sans with the glyphs it
    lacks (Chinese labels) from Noto Sans CJK."""
    if cjk_font_path() is not None:
        matplotlib.rcParams["font.family"] = ["DejaVu Sans", CJK_FONT]  # a fallback list (matplotlib >= 3.6)


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


# ------------------------------------------------------------------ a description as a figure


def figure(charts: Sequence[Chart]) -> Figure:
    """``charts`` side by side in one figure (one row), their series' legend under them."""
    matplotlib_ready()
    width = 5.0 * len(charts) if len(charts) > 1 else 6.4
    # No layout engine: savefig's tight bounding box takes in the labels and the legend under the plots
    # (constrained layout gives the same picture for 1.2-1.5x the drawing time).
    fig = Figure(figsize=(width, max(_height(c) for c in charts)), dpi=DPI)
    axes = fig.subplots(1, len(charts), squeeze=False, gridspec_kw={"wspace": 0.25})[0]
    for ax, chart in zip(axes, charts):
        for i, layer in enumerate(chart.layers):
            if layer.opacity > 0:  # opacity 0: a hover target of the interactive chart only
                for group in _groups(layer):
                    _DRAW[layer.mark](ax, chart, layer, *group, gid=f"layer-{i}")
        _axis(ax, "x", chart.x)
        _axis(ax, "y", chart.y)
        ax.set_title(chart.title or "", fontsize=10)
    handles, labels, title = _legend(charts)
    if handles:  # centred under the plots, clear of their tick labels and axis titles
        under = blended_transform_factory(fig.transFigure, axes[0].transAxes) + ScaledTranslation(0, -0.5,
                                                                                                 fig.dpi_scale_trans)
        fig.legend(handles, labels, title=title, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=under,
                   ncols=len(labels) if len(labels) <= 4 else 3, frameon=False, fontsize=8, title_fontsize=8)
    return fig


def _height(chart: Chart) -> float:
    """Inches: the plot area (HEIGHT px, or a step per category) over the default subplot margins."""
    plot = 0.32 * len(chart.y.categories) if chart.y.nominal else (chart.height or 220) / 96
    return max(1.2, plot) / 0.77  # matplotlib's subplots fill 0.11-0.88 of the figure's height


def _groups(layer: Layer) -> list[tuple[str, str | None, int, list]]:
    """(colour, shape, series index, rows) per series name that has rows, in the series' order; or
    one group: every row in the layer's colour."""
    s = layer.series
    if s is None:
        return [(layer.colour or PALETTE[0], layer.shape, 0, list(layer.rows))]
    groups = []
    for k, name in enumerate(s.names):
        rows = [r for r in layer.rows if r[s.field] == name]
        if rows:
            groups.append((s.colours[k], s.shapes[k] if s.shapes else layer.shape, k, rows))
    return groups


def at(axis: Axis, rows: Sequence, field: str) -> np.ndarray:
    """Where ``rows``' ``field`` falls on ``axis``: the value, or on a nominal axis its category's index."""
    if axis.nominal:
        return np.array([axis.categories.index(r[field]) for r in rows], dtype=float)
    return np.array([float(r[field]) for r in rows])


def python_format(spec: str) -> str:
    """A d3-format specifier as Python's: the same but for "~" (Python's "g" already trims zeros)."""
    return spec.replace("~", "")


def _line(ax, chart, layer, colour, shape, k, rows, *, gid):
    ax.plot(at(chart.x, rows, layer.x), at(chart.y, rows, layer.y), color=colour, alpha=layer.opacity, gid=gid,
            linewidth=(layer.width or 2) * PT, linestyle=DASH if layer.dash else "-", zorder=2)


def _point(ax, chart, layer, colour, shape, k, rows, *, gid):
    ax.scatter(at(chart.x, rows, layer.x), at(chart.y, rows, layer.y), s=(layer.size or 60) * PT ** 2,
               marker=MARKERS.get(shape or "circle", "o"), color=colour, alpha=layer.opacity, linewidths=0,
               clip_on=False, zorder=3, gid=gid)


def _rule(ax, chart, layer, colour, shape, k, rows, *, gid):
    style = {"color": colour, "alpha": layer.opacity, "linewidth": (layer.width or 1) * PT, "gid": gid,
             "linestyle": DASH if layer.dash else "solid", "zorder": 2}
    if layer.y is None:  # across the plot at each row's x: a reference value
        for x in at(chart.x, rows, layer.x):
            ax.axvline(x, **style)
    elif layer.x is None:
        for y in at(chart.y, rows, layer.y):
            ax.axhline(y, **style)
    else:  # a segment: vertical from y to y2 (an error bar), or horizontal from x to x2
        style["colors"], style["linestyles"] = style.pop("color"), style.pop("linestyle")
        if layer.y2 is not None:
            ax.vlines(at(chart.x, rows, layer.x), at(chart.y, rows, layer.y), at(chart.y, rows, layer.y2), **style)
        else:
            ax.hlines(at(chart.y, rows, layer.y), at(chart.x, rows, layer.x), at(chart.x, rows, layer.x2), **style)


def _bar(ax, chart, layer, colour, shape, k, rows, *, gid):
    x = at(chart.x, rows, layer.x)
    if chart.y.nominal:  # from x2 (else 0) to x in its category; side by side per series with offset
        n = len(layer.series.names) if layer.offset and layer.series else 1
        y = at(chart.y, rows, layer.y) + ((k - (n - 1) / 2) * 0.8 / n if n > 1 else 0.0)
        base = at(chart.x, rows, layer.x2) if layer.x2 else np.zeros_like(x)
        ax.barh(y, x - base, left=base, height=0.8 / n, color=colour, alpha=layer.opacity, gid=gid, zorder=1)
    else:  # a histogram's bins: from x to x2, from 0 to y
        ax.bar(x, at(chart.y, rows, layer.y), width=at(chart.x, rows, layer.x2) - x, align="edge", color=colour,
               alpha=layer.opacity, edgecolor="white", linewidth=0.5, gid=gid, zorder=1)


def _tick(ax, chart, layer, colour, shape, k, rows, *, gid):
    ax.scatter(at(chart.x, rows, layer.x), at(chart.y, rows, layer.y), marker="|", s=((layer.size or 18) * PT) ** 2,
               linewidths=(layer.width or 1) * PT, color=colour, alpha=layer.opacity, zorder=2, gid=gid)


def _text(ax, chart, layer, colour, shape, k, rows, *, gid):
    for x, y, row in zip(at(chart.x, rows, layer.x), at(chart.y, rows, layer.y), rows):
        ax.annotate(format(row[layer.text], python_format(layer.text_format)), (x, y), xytext=(6 * PT, 0),
                    textcoords="offset points", ha="left", va="center", color=colour, fontweight="bold", fontsize=8,
                    annotation_clip=False, gid=gid)


_DRAW = {"line": _line, "point": _point, "rule": _rule, "bar": _bar, "tick": _tick, "text": _text}


def _axis(ax, which: str, axis: Axis) -> None:
    """Title, scale, limits, ticks and tick format of one axis, as the description says."""
    side = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xlabel if which == "x" else ax.set_ylabel)(axis.title or "", fontsize=9)
    ax.tick_params(axis=which, labelsize=8)
    if axis.nominal:
        side.set_ticks(range(len(axis.categories)), list(axis.categories))
        (ax.set_xlim if which == "x" else ax.set_ylim)(-0.5, len(axis.categories) - 0.5)
        if which == "y":
            ax.invert_yaxis()  # the first category on top, as in the interactive chart
        return
    if axis.log:  # ticks at 1, 2 and 5 times the powers of 10, as Vega's, the others unlabelled
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        side.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        side.set_minor_formatter(NullFormatter())
    if axis.domain is not None:
        lo, hi = axis.domain
        (ax.set_xlim if which == "x" else ax.set_ylim)((hi, lo) if axis.reverse else (lo, hi))
    elif axis.reverse:
        (ax.invert_xaxis if which == "x" else ax.invert_yaxis)()
    if axis.values is not None:
        side.set_ticks(list(axis.values))
    elif axis.integer:
        side.set_major_locator(MaxNLocator(integer=True))
    if axis.format:
        spec = python_format(axis.format)
        side.set_major_formatter(FuncFormatter(lambda v, _pos: format(v, spec)))
    ax.grid(True, axis=which, alpha=0.3)


def _legend(charts: Sequence[Chart]) -> tuple[list, list[str], str | None]:
    """One entry per name of each series with a legend (the first time it is met): a swatch for
    bars, else a line (dashed for dashed rules) with the series' point shape, if any."""
    handles, labels, title = [], [], None
    for chart in charts:
        for layer in chart.layers:
            s = layer.series
            if s is None or not s.legend or layer.opacity == 0 or any(label in labels for label in s.names):
                continue
            title = title or s.title
            marks = [other for other in chart.layers if other.series == s]
            for k, name in enumerate(s.names):
                if any(m.mark == "bar" for m in marks):
                    handles.append(Patch(facecolor=s.colours[k], alpha=layer.opacity))
                else:
                    lines = [m for m in marks if m.mark in ("line", "rule")]
                    handles.append(Line2D([], [], color=s.colours[k], linewidth=1.5,
                                          linestyle=(DASH if any(m.dash for m in lines) else "-") if lines else "none",
                                          marker=MARKERS[s.shapes[k]] if s.shapes else None))
                labels.append(name)
    return handles, labels, title
