"""One description, two renderings (ui/chartspec.py): the interactive chart (ui/chartview.py) and the
PNG download (ui/chartpng.py) of every chart show the same rows, titles, axes, colours, shapes and
error bars. The matplotlib figure is read back before it is saved: each layer's artists carry the
gid ``layer-<i>``."""

from __future__ import annotations

import warnings

import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation

from ui import chartpng, charts, chartspec, chartview
from ui.chartspec import Axis, Chart, Layer, Series, Tip
from ui.i18n import use_language

from .test_charts import coffee, curve, dataset, every_chart, layers, lite0, results, shift, to_dict  # noqa: F401

N = 9  # decimals compared: the figure holds the rows' own floats (a bar's end is left + width)


def place(axis: Axis, row, field: str) -> float:
    """Where the description puts ``row[field]``: its value, or its category's index on a nominal axis."""
    return float(axis.categories.index(row[field])) if axis.nominal else float(row[field])


def colour_of(layer: Layer, row) -> str:
    s = layer.series
    return s.colours[s.names.index(row[s.field])] if s else layer.colour


def expected(chart: Chart, layer: Layer) -> list[tuple]:
    """What the layer must draw, from its rows: positions and colour per row."""
    out = []
    for row in layer.rows:
        x = place(chart.x, row, layer.x) if layer.x else None
        y = place(chart.y, row, layer.y) if layer.y else None
        if layer.mark == "rule" and layer.y2:
            item = (x, y, place(chart.y, row, layer.y2))
        elif layer.mark == "rule" and layer.x2:
            item = (x, place(chart.x, row, layer.x2), y)
        elif layer.mark == "rule":
            item = (x if y is None else y,)
        elif layer.mark == "bar" and chart.y.nominal:
            item = (place(chart.x, row, layer.x2) if layer.x2 else 0.0, x, y)
        elif layer.mark == "bar":
            item = (x, place(chart.x, row, layer.x2), y)
        elif layer.mark == "text":
            item = (x, y, format(row[layer.text], chartpng.python_format(layer.text_format)))
        else:
            item = (x, y)
        out.append((*item, colour_of(layer, row)))
    return sorted(map(rounded, out))


def rounded(item: tuple) -> tuple:
    return tuple(round(v, N) if isinstance(v, float) else v for v in item)


def read_back(ax, chart: Chart, i: int, layer: Layer) -> list[tuple]:
    """What the axes drew for layer ``i``, in the form of :func:`expected`."""
    out = []
    for artist in ax.findobj(lambda a: a.get_gid() == f"layer-{i}"):
        if isinstance(artist, Line2D) and layer.mark == "rule":  # across the plot
            data = artist.get_xdata() if layer.y is None else artist.get_ydata()
            out.append((float(data[0]), to_hex(artist.get_color())))
        elif isinstance(artist, Line2D):
            out += [(float(x), float(y), to_hex(artist.get_color()))
                    for x, y in zip(artist.get_xdata(), artist.get_ydata())]
        elif isinstance(artist, LineCollection):
            colour = to_hex(artist.get_color()[0])
            for (x0, y0), (x1, y1) in artist.get_segments():
                out.append((float(x0), float(y0), float(y1), colour) if layer.y2 else
                           (float(x0), float(x1), float(y0), colour))
        elif isinstance(artist, PathCollection):
            colours = artist.get_edgecolor() if layer.mark == "tick" else artist.get_facecolor()
            out += [(float(x), float(y), to_hex(colours[0])) for x, y in artist.get_offsets()]
        elif isinstance(artist, Rectangle):
            left, right, colour = artist.get_x(), artist.get_x() + artist.get_width(), to_hex(artist.get_facecolor())
            if chart.y.nominal:  # centred on its category, or beside the others of it (offset)
                centre = artist.get_y() + artist.get_height() / 2
                out.append((left, right, float(round(centre)) if layer.offset else centre, colour))
            else:  # a histogram's bin, from 0 up
                out.append((left, right, artist.get_height(), colour))
        elif isinstance(artist, Annotation):
            out.append((float(artist.xy[0]), float(artist.xy[1]), artist.get_text(), to_hex(artist.get_color())))
    return sorted(map(rounded, out))


def test_every_png_draws_the_rows_the_interactive_chart_holds(results):
    for name, described in every_chart(results).items():
        fig = chartpng.figure(described)
        for ax, chart in zip(fig.axes, described):
            spec = to_dict(chart)
            for i, (layer, unit) in enumerate(zip(chart.layers, layers(spec), strict=True)):
                assert dataset(spec, unit) == [dict(r) for r in layer.rows], (name, i)  # the Vega-Lite rows
                if layer.opacity == 0:  # a hover target only, not drawn
                    assert not ax.findobj(lambda a: a.get_gid() == f"layer-{i}")
                    continue
                assert read_back(ax, chart, i, layer) == expected(chart, layer), (name, i, layer.mark)


def test_every_png_has_the_charts_titles_axes_and_legend(results):
    for name, described in every_chart(results).items():
        fig = chartpng.figure(described)
        assert len(fig.axes) == len(described)
        legend = []
        for ax, chart in zip(fig.axes, described):
            spec = to_dict(chart)
            assert ax.get_title() == (chart.title or "") and spec.get("title") == chart.title, name
            assert ax.get_xlabel() == (chart.x.title or "") and ax.get_ylabel() == (chart.y.title or ""), name
            for unit in layers(spec):
                for channel, axis in (("x", chart.x), ("y", chart.y)):
                    if channel in unit["encoding"]:
                        assert unit["encoding"][channel].get("title") == axis.title, (name, channel)
            if chart.y.nominal:
                assert [t.get_text() for t in ax.get_yticklabels()] == list(chart.y.categories)
                assert ax.yaxis_inverted()  # the first category on top, as Vega-Lite's sort
            for axis, lim, inverted, scale in ((chart.x, ax.get_xlim(), ax.xaxis_inverted(), ax.get_xscale()),
                                              (chart.y, ax.get_ylim(), ax.yaxis_inverted(), ax.get_yscale())):
                if not axis.nominal:
                    assert inverted == axis.reverse and (scale == "log") == axis.log, name
                    if axis.domain is not None:
                        assert sorted(lim) == pytest.approx(list(axis.domain)), name
            for layer in chart.layers:
                s = layer.series
                if s is not None and s.legend and layer.opacity and not any(n in legend for n in s.names):
                    legend += s.names
        shown = [t.get_text() for t in fig.legends[0].get_texts()] if fig.legends else []
        assert shown == legend, name


def test_tick_formats_are_the_descriptions(results):
    prob, top1 = charts.describe_robustness_curve(results["curve"], 3)
    fig = chartpng.figure([prob, top1])
    assert fig.axes[1].yaxis.get_major_formatter()(0.25, 0) == "25%"  # ".0%", as the chart's axis
    assert fig.axes[0].yaxis.get_major_formatter()(0.25, 0) == "0.2"  # ".1f"
    assert [t for t in fig.axes[0].get_xticks()] == pytest.approx(results["curve"].keep_probs)
    unit = layers(to_dict(top1))[0]
    assert unit["encoding"]["y"]["axis"]["format"] == ".0%" and unit["encoding"]["x"]["axis"]["values"] == [1.0, 0.85, 0.7]


def test_a_chinese_png_draws_every_label_without_missing_glyphs(results):
    """Latin from DejaVu Sans, Chinese from Noto Sans CJK SC (apt: fonts-noto-cjk): no tofu boxes."""
    assert chartpng.cjk_font_path() is not None, "install the fonts-noto-cjk package (README set-up)"
    with use_language("zh"):
        described = every_chart(results)
    for name, chart_list in described.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "Glyph ... missing from font(s)" is a UserWarning
            fig = chartpng.figure(chart_list)
            png = chartpng.png_bytes(fig)
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
    fig = chartpng.figure(described["curve"])
    assert "推理" in fig.axes[0].get_xlabel() and fig.axes[0].get_title() == described["curve"][0].title


def test_the_png_on_click_is_drawn_from_the_cached_description(results, monkeypatch):
    """show_charts hands the download the descriptions its specs were built from, drawn once per
    (name, key, language), only when the button's data is asked for."""
    buttons, drawn = [], []
    monkeypatch.setattr(chartview.st, "download_button", lambda *a, **k: buttons.append((a, k)))
    monkeypatch.setattr(chartview.st, "vega_lite_chart", lambda *a, **k: None, raising=False)
    real = chartview.figure
    monkeypatch.setattr(chartview, "figure", lambda described: drawn.append(described) or real(described))
    chartview.chart_specs.results().clear()
    chartview.chart_png.results().clear()
    shift = results["shift"]
    chartview.show_charts("cam-stability", charts.describe_stability_histogram, shift)
    (label, data), kwargs = buttons[0]
    assert kwargs["key"] == "dl-cam-stability" and kwargs["file_name"] == "cam-stability.png" and not drawn
    png = data()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and data() is png  # drawn once, then cached
    cached, _specs = chartview.chart_specs(charts.describe_stability_histogram, (shift,), "en")
    assert len(drawn) == 1 and drawn[0] is cached


def test_a_description_is_checked_where_it_is_made():
    rows = ({"x": 1.0, "y": 2.0},)
    with pytest.raises(ValueError, match="fields"):
        Layer("line", rows, x="x", y="z")
    with pytest.raises(ValueError, match="fields"):
        Layer("point", rows, x="x", y="y", tooltip=(Tip("n", "n"),))
    with pytest.raises(ValueError, match="mark"):
        Layer("area", rows, x="x", y="y")
    with pytest.raises(ValueError, match="one colour"):
        Series("s", ("a", "b"), ("#000000",))
    with pytest.raises(ValueError, match="at most"):
        chartspec.series("s", [str(i) for i in range(len(chartspec.PALETTE) + 1)])
    with pytest.raises(ValueError, match="layer"):
        Chart("t", Axis("x"), Axis("y"), ())
    with pytest.raises(ValueError, match="histogram"):  # a bar on a quantitative y is a histogram's bin
        Chart("t", Axis("x"), Axis("y"), (Layer("bar", rows, x="x", y="y"),))
    with pytest.raises(ValueError, match="offset"):
        Chart("t", Axis("x"), Axis(None, categories=("a",)), (Layer("bar", ({"x": 1.0, "y": "a"},), x="x", y="y",
                                                                        offset=True),))
