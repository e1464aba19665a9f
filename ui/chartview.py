"""Charts on the page: a description (``ui/chartspec.py``) drawn as an interactive Vega-Lite
chart (hover for exact values), with the PNG of the same description (``ui/chartpng.py``) as its
download, drawn only when clicked.

:func:`vega_lite_spec` reads nothing but the description. Axes, labels and titles follow Streamlit's
theme (``theme="streamlit"``, light or dark); the series keep the description's colours, chosen to
read on both. Presenter mode enlarges the text (:func:`projector_spec`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import streamlit as st
from streamlit import dataframe_util

from .chartpng import figure, png_bytes
from .chartspec import Axis, Chart, Layer, Series
from .i18n import _, language
from . import layout
from .layout import presenting
from .view import view

LEGEND = {"orient": "bottom", "direction": "horizontal", "columns": 2, "labelLimit": 300}


SCHEMA = "https://vega.github.io/schema/vega-lite/v6.4.1.json"  # the Vega-Lite that Streamlit's frontend draws


def vega_lite_spec(chart: Chart) -> dict:
    """:func:`vega_lite_dict` with each dataset in Arrow bytes, which ``st.vega_lite_chart`` passes on as
    they are (what its own Altair path does): 0.2 instead of 1.5 ms per chart and rerun."""
    spec = vega_lite_dict(chart)
    spec["datasets"] = {name: dataframe_util.convert_anything_to_arrow_bytes(rows)
                        for name, rows in spec["datasets"].items()}
    return spec


def vega_lite_dict(chart: Chart) -> dict:
    """The description as a layered Vega-Lite spec, built as plain dicts: one unit per layer, each rows
    object once, as a named dataset. Building it through Altair gave the same spec (the tests check
    every chart against Vega-Lite's schema) in 10-30 ms per chart, for its objects and its schema check,
    against 1 ms. ``fit-x``: the width follows the column while the height stays the plot's own (a
    plain ``fit`` squeezes the plot to leave room for the legend)."""
    names: dict[int, str] = {}
    datasets: dict[str, list[dict]] = {}
    for layer in chart.layers:  # one dataset per rows object, named by its content as Altair names it
        if id(layer.rows) not in names:
            values = [dict(row) for row in layer.rows]
            name = names[id(layer.rows)] = _dataset_name(values)
            datasets[name] = values
    units = [_unit(chart, layer) for layer in chart.layers]
    spec: dict = {"$schema": SCHEMA, "layer": units, "autosize": {"type": "fit-x", "contains": "padding"}}
    if len(datasets) == 1:  # the layers' data lifted to the top, as Altair does when they share it
        spec["data"] = {"name": next(iter(datasets))}
    else:
        for unit, layer in zip(units, chart.layers):
            unit["data"] = {"name": names[id(layer.rows)]}
    if chart.title:
        spec["title"] = chart.title
    if chart.height and not chart.y.nominal:
        spec["height"] = chart.height
    spec["datasets"] = datasets
    return spec


def _dataset_name(values: list[dict]) -> str:
    return "data-" + hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _unit(chart: Chart, layer: Layer) -> dict:
    binned = layer.mark == "bar" and layer.x2 is not None and not chart.y.nominal  # a histogram's bins
    encoding: dict = {}
    for channel, axis, name in (("x", chart.x, layer.x), ("y", chart.y, layer.y)):
        if name is not None:
            encoding[channel] = _position(axis, name, binned=binned and channel == "x")
    if layer.x2:
        encoding["x2"] = {"field": layer.x2}
    if layer.y2:
        encoding["y2"] = {"field": layer.y2}
    s = layer.series
    if s is not None:
        encoding["color"] = {"field": s.field, "type": "nominal", "title": s.title, "scale": _scale(s, s.colours),
                             "legend": dict(LEGEND) if s.legend else None}
        if s.shapes and layer.mark == "point":
            encoding["shape"] = {"field": s.field, "type": "nominal", "scale": _scale(s, s.shapes), "legend": None}
        if layer.offset:  # bars of one category side by side (a nominal y: Chart checks it)
            encoding["yOffset"] = {"field": s.field, "type": "nominal", "sort": list(s.names)}
    if layer.text:
        encoding["text"] = {"field": layer.text, "type": "quantitative",
                            **({"format": layer.text_format} if layer.text_format else {})}
    if layer.tooltip:
        encoding["tooltip"] = [{"field": t.field, "type": _type(layer, t.field), "title": t.title,
                                **({"format": t.format} if t.format else {})} for t in layer.tooltip]
    return {"mark": {"type": layer.mark, **_style(layer, binned)}, "encoding": encoding}


def _type(layer: Layer, field: str) -> str:
    """Vega-Lite's type of a field: nominal for words, quantitative for numbers (as the rows hold them)."""
    return "nominal" if isinstance(layer.rows[0][field], str) else "quantitative"


def _scale(s: Series, values: Sequence[str]) -> dict:
    return {"domain": list(s.names), "range": list(values)}


def _position(axis: Axis, field: str, *, binned: bool = False) -> dict:
    if axis.nominal:
        return {"field": field, "type": "nominal", "title": axis.title, "sort": list(axis.categories),
                "axis": {"labelLimit": axis.label_limit}}
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
    return {"field": field, "type": "quantitative", "title": axis.title, "scale": scale, "axis": ticks,
            **({"bin": "binned"} if binned else {})}


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


@view(depends=(), keep=64)
def chart_specs(describe: Callable[..., Chart | Sequence[Chart]], args: tuple, lang: str
                ) -> tuple[tuple[Chart, ...], tuple[dict, ...]]:
    """The descriptions ``describe(*args)`` makes (``ui/charts.py``; one chart or several) in ``lang``,
    and their Vega-Lite specs: built once for every session (1-2 ms a chart, most of it the Arrow
    bytes; the spec is handed to ``st.vega_lite_chart`` as is, which copies before changing it)."""
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
