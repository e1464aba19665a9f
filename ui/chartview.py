"""Charts on the page: a description (``ui/chartspec.py``) drawn as an interactive Altair / Vega-Lite
chart (hover for exact values), with the PNG of the same description (``ui/chartpng.py``) as its
download, drawn only when clicked.

:func:`altair_chart` reads nothing but the description. Axes, labels and titles follow Streamlit's
theme (``theme="streamlit"``, light or dark); the series keep the description's colours, chosen to
read on both. Presenter mode enlarges the text (:func:`projector_spec`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import altair as alt
import streamlit as st
from streamlit import dataframe_util


from .chartpng import figure, png_bytes
from .chartspec import Axis, Chart, Layer, Series
from .i18n import _, language
from . import layout
from .layout import presenting
from .view import view

LEGEND = {"orient": "bottom", "direction": "horizontal", "columns": 2, "labelLimit": 300}


def altair_chart(chart: Chart) -> alt.LayerChart:
    """The description as layered Altair marks: one ``alt.Chart`` per layer, on inline rows (no data
    transformer: Altair's setting is global to all threads). ``fit-x``: the width follows the column
    while the height stays the plot's own (a plain ``fit`` squeezes the plot to leave room for the legend)."""
    props = {"autosize": alt.AutoSizeParams(type="fit-x", contains="padding")}
    if chart.title:
        props["title"] = chart.title
    if chart.height and not chart.y.nominal:
        props["height"] = chart.height
    data: dict[int, alt.InlineData] = {}  # one per rows object: Altair lifts data its layers share to the top
    for layer in chart.layers:
        if id(layer.rows) not in data:
            data[id(layer.rows)] = alt.InlineData(values=[dict(row) for row in layer.rows])
    return alt.layer(*(_layer(chart, layer, data[id(layer.rows)]) for layer in chart.layers)).properties(**props)


def _layer(chart: Chart, layer: Layer, data: alt.InlineData) -> alt.Chart:
    binned = layer.mark == "bar" and layer.x2 is not None and not chart.y.nominal  # a histogram's bins
    encoding = {}
    for channel, axis, name in (("x", chart.x, layer.x), ("y", chart.y, layer.y)):
        if name is not None:
            encoding[channel] = _position(channel, axis, name, binned=binned and channel == "x")
    if layer.x2:
        encoding["x2"] = alt.X2(layer.x2)
    if layer.y2:
        encoding["y2"] = alt.Y2(layer.y2)
    s = layer.series
    if s is not None:
        encoding["color"] = alt.Color(f"{s.field}:N", title=s.title, scale=_scale(s, s.colours),
                                      legend=alt.Legend(**LEGEND) if s.legend else None)
        if s.shapes and layer.mark == "point":
            encoding["shape"] = alt.Shape(f"{s.field}:N", scale=_scale(s, s.shapes), legend=None)
        if layer.offset:  # bars of one category side by side (a nominal y: Chart checks it)
            encoding["yOffset"] = alt.YOffset(f"{s.field}:N", sort=list(s.names))
    if layer.text:
        encoding["text"] = alt.Text(f"{layer.text}:Q", **({"format": layer.text_format} if layer.text_format else {}))
    if layer.tooltip:
        encoding["tooltip"] = [alt.Tooltip(f"{t.field}:{_type(layer, t.field)}", title=t.title,
                                           **({"format": t.format} if t.format else {})) for t in layer.tooltip]
    return getattr(alt.Chart(data), f"mark_{layer.mark}")(**_style(layer, binned)).encode(**encoding)


def _type(layer: Layer, field: str) -> str:
    """Vega-Lite's type of a field: nominal for words, quantitative for numbers (as the rows hold them)."""
    return "N" if isinstance(layer.rows[0][field], str) else "Q"


def _scale(s: Series, values: Sequence[str]) -> alt.Scale:
    return alt.Scale(domain=list(s.names), range=list(values))


def _position(channel: str, axis: Axis, field: str, *, binned: bool = False) -> alt.X | alt.Y:
    encode = alt.X if channel == "x" else alt.Y
    if axis.nominal:
        return encode(f"{field}:N", title=axis.title, sort=list(axis.categories),
                      axis=alt.Axis(labelLimit=axis.label_limit))
    scale, ticks = {}, {}
    if axis.domain is not None:
        scale.update(domain=list(axis.domain), zero=False, nice=False)
    if axis.reverse:
        scale["reverse"] = True
    if axis.log:
        scale["type"] = "log"
    if axis.format:
        ticks["format"] = axis.format
    if axis.values is not None:
        ticks["values"] = list(axis.values)
    if axis.integer:
        ticks["tickMinStep"] = 1
    return encode(f"{field}:Q", title=axis.title, scale=alt.Scale(**scale), axis=alt.Axis(**ticks),
                  **({"bin": "binned"} if binned else {}))


def _style(layer: Layer, binned: bool) -> dict:
    """The mark's own properties: colour (without a series), opacity, stroke, size, shape."""
    style: dict = {"opacity": layer.opacity}
    if layer.series is None and layer.colour:
        style["color"] = layer.colour
    if layer.dash:
        style["strokeDash"] = [6, 3]
    if layer.mark in ("line", "rule") and layer.width:
        style["strokeWidth"] = layer.width
    elif layer.mark == "point":
        style.update(size=layer.size or 60, filled=True, **({"shape": layer.shape} if layer.shape else {}))
    elif layer.mark == "tick":
        style.update(thickness=layer.width or 1, size=layer.size or 18)
    elif layer.mark == "text":
        style.update(align="left", dx=6, fontWeight="bold")
    elif binned:
        style["binSpacing"] = 1
    return style


def vega_lite_spec(chart: Chart) -> dict:
    """The chart's Vega-Lite spec, validated against the schema, as Streamlit is handed it."""
    spec = altair_chart(chart).to_dict()  # validates against the Vega-Lite schema
    spec.get("config", {}).pop("view", None)  # Altair's default 300x300 view: Streamlit sizes the chart
    if spec.get("config") == {}:
        del spec["config"]
    # Named datasets as Arrow bytes, which st.vega_lite_chart passes on as they are (what its own
    # Altair path does): 0.2 instead of 1.5 ms per chart and rerun.
    spec["datasets"] = {name: dataframe_util.convert_anything_to_arrow_bytes(rows)
                        for name, rows in spec.get("datasets", {}).items()}
    return spec


@view(depends=(), keep=64)
def chart_specs(describe: Callable[..., Chart | Sequence[Chart]], args: tuple, lang: str
                ) -> tuple[tuple[Chart, ...], tuple[dict, ...]]:
    """The descriptions ``describe(*args)`` makes (``ui/charts.py``; one chart or several) in ``lang``,
    and their Vega-Lite specs: built once for every session (building and validating a chart costs
    20-70 ms, more than the rest of a rerun; the spec is handed to ``st.vega_lite_chart`` as is, which
    copies before changing it)."""
    made = describe(*args)
    charts = (made,) if isinstance(made, Chart) else tuple(made)
    return charts, tuple(vega_lite_spec(chart) for chart in charts)


@view(depends=(), keep=16)
def chart_png(describe: Callable[..., Chart | Sequence[Chart]], args: tuple, lang: str) -> bytes:
    """The same descriptions drawn with matplotlib (``ui/chartpng.py``), for the PNG download."""
    charts, _specs = chart_specs(describe, args, lang)
    return png_bytes(figure(charts))


PROJECTOR_FONT = {"labelFontSize": 20, "titleFontSize": 22, "labelColor": "#262730", "titleColor": "#262730"}


def projector_spec(spec: dict) -> dict:
    """``spec`` with the axes', legends' and titles' text large and dark for a projector (a shallow
    copy: the cached spec is shared by every session)."""
    config = dict(spec.get("config", {}))
    for part in ("axis", "legend"):
        config[part] = {**config.get(part, {}), **PROJECTOR_FONT}
    config["title"] = {**config.get("title", {}), "fontSize": 24, "color": "#262730"}
    config["axis"] = {**config["axis"], "tickSize": 8, "tickWidth": 2}
    config["point"] = {**config.get("point", {}), "size": 120}
    config["line"] = {**config.get("line", {}), "strokeWidth": 3}
    return {**spec, "config": config}


def show_charts(name: str, describe: Callable[..., Chart | Sequence[Chart]], *args) -> None:
    """The charts ``describe(*args)`` makes, interactive (hover for values), side by side (stacked on a
    phone), themed like the app; under them *Download PNG*: the same descriptions drawn with
    matplotlib, only when clicked. Both are built once per ``(describe, args)`` and language
    (:func:`chart_specs`, :func:`chart_png`)."""
    lang = language()  # the click may come after the session changed language: the download keeps this one
    charts, specs = chart_specs(describe, args, lang)
    if presenting():  # read from the back of a room: larger, darker labels and ticks (a copy, not the cache's)
        specs = tuple(projector_spec(spec) for spec in specs)
    for col, spec in zip(st.columns(len(specs)) if len(specs) > 1 else [st.container()], specs):
        col.vega_lite_chart(spec=spec, width="stretch", theme="streamlit")
    if layout.drafting():  # a round to be replaced: its download comes with the final one
        return
    st.download_button(_("Download PNG"), lambda: chart_png(describe, args, lang), file_name=f"{name}.png",
                       mime="image/png", key=f"dl-{name}", on_click="ignore", icon=":material/image:")
