"""One description per chart, from which both its renderings are drawn.

A :class:`Chart` says everything a chart shows: its rows of plain Python numbers, its layers of
marks (lines, points, rules, bars, ticks, text), its two axes (titles, domains, tick formats) and its
series' colours and point shapes, with every title and label already translated (the ``describe_*``
functions of ``ui/charts.py`` call ``_()`` in the session's language). ``ui/chartview.py`` turns one
description into the interactive Vega-Lite chart, ``ui/chartpng.py`` into the matplotlib figure of its PNG
download; nothing about what is shown is decided there, so the two cannot drift apart.

Formats are d3-format specifiers that Python's ``format()`` reads the same way (".3f", ".0%", "~g":
the "~", trim insignificant zeros, is dropped for Python, whose "g" already trims).

Legible in Streamlit's light and dark themes: the series colours below have a contrast ratio of at
least 3:1 against both the light (#ffffff) and the dark (#0e1117) background (WCAG 2.1, 1.4.11),
series differ by point shape too, and text is drawn in its series' colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

# Contrast vs #ffffff / vs #0e1117: blue 4.2/4.5, red-orange 4.3/4.4, green 3.5/5.5, purple 4.9/3.9,
# crimson 5.7/3.3, teal 3.1/6.1; grey 3.3/5.7 is the reference (without a regulariser).
PALETTE = ("#1c7ed6", "#d9480f", "#2f9e44", "#ae3ec9", "#c2255c", "#0ca678")
REFERENCE = "#868e96"
SHAPES = ("circle", "square", "triangle-up", "diamond", "cross", "triangle-down")  # Vega-Lite's names
HEIGHT = 220  # px of a quantitative plot area; the width fills the column (Streamlit's width="stretch")

Row = Mapping[str, object]
Mark = Literal["line", "point", "rule", "bar", "tick", "text"]
MARKS = ("line", "point", "rule", "bar", "tick", "text")


@dataclass(frozen=True)
class Axis:
    """One axis: quantitative, or nominal when ``categories`` names its values (in order: top to
    bottom on y). ``domain`` fixes the scale's ends exactly (no rounding out, no forced zero);
    ``values`` the tick positions; ``integer`` ticks only at whole numbers (counts)."""

    title: str | None
    categories: tuple[str, ...] | None = None
    domain: tuple[float, float] | None = None
    format: str = ""
    values: tuple[float, ...] | None = None
    reverse: bool = False
    log: bool = False
    integer: bool = False
    label_limit: int = 150  # px of a nominal label before it is cut

    @property
    def nominal(self) -> bool:
        return self.categories is not None


@dataclass(frozen=True)
class Series:
    """Colour (and for points, shape) by the value of ``field``: ``names[i]`` is drawn in
    ``colours[i]`` (and ``shapes[i]``, if given); listed in a legend titled ``title`` if ``legend``."""

    field: str
    names: tuple[str, ...]
    colours: tuple[str, ...]
    shapes: tuple[str, ...] = ()
    title: str | None = None
    legend: bool = True

    def __post_init__(self) -> None:
        if len(self.colours) != len(self.names) or (self.shapes and len(self.shapes) != len(self.names)):
            raise ValueError(f"expected one colour (and shape) per name ({len(self.names)}), but got "
                             f"{len(self.colours)} colours and {len(self.shapes)} shapes")


def series(field: str, names: Sequence[str], title: str | None = None, *, legend: bool = True, shapes: bool = False,
           colours: Sequence[str] | None = None) -> Series:
    """A :class:`Series` in :data:`PALETTE`'s colours (and :data:`SHAPES`' shapes), in order."""
    names = tuple(dict.fromkeys(names))
    if colours is None and len(names) > len(PALETTE):
        raise ValueError(f"expected at most {len(PALETTE)} series, but got {len(names)}")
    return Series(field, names, tuple(colours or PALETTE[:len(names)]), SHAPES[:len(names)] if shapes else (),
                  title, legend)


@dataclass(frozen=True)
class Tip:
    """One line of a hover tooltip: ``title`` and the row's ``field`` (numbers in ``format``)."""

    field: str
    title: str
    format: str = ""


@dataclass(frozen=True)
class Layer:
    """One kind of mark drawn from ``rows``, placed by the fields named in ``x``, ``y`` (and ``x2``,
    ``y2`` for a span), coloured by ``series`` or in ``colour``.

    * ``line``: through the rows in order, one line per series name.
    * ``point``: one per row (``size`` in px², ``shape`` when the series gives none).
    * ``rule``: with ``x`` only, a line across the plot at each row's x (a reference value), with ``y``
      only one along it; with ``y`` and ``y2`` (or ``x`` and ``x2``) a segment: an error bar.
    * ``bar``: on a nominal y, from ``x2`` (else 0) to ``x`` in its category, side by side per series
      with ``offset``; on a quantitative y, a histogram bar from ``x`` to ``x2`` and from 0 to ``y``.
    * ``tick``: a short mark across a nominal y at each row's x (``width`` thick, ``size`` px long).
    * ``text``: the row's ``text`` field (in ``text_format``), just right of its point.

    ``width`` is a stroke width in px; ``opacity`` 0 makes a layer a hover target only (points over a
    line carrying its tooltip), not drawn in the PNG.
    """

    mark: Mark
    rows: tuple[Row, ...]
    x: str | None = None
    y: str | None = None
    x2: str | None = None
    y2: str | None = None
    series: Series | None = None
    colour: str | None = None
    text: str | None = None
    text_format: str = ""
    tooltip: tuple[Tip, ...] = ()
    opacity: float = 1.0
    width: float | None = None
    size: float | None = None
    shape: str | None = None
    dash: bool = False
    offset: bool = False

    def __post_init__(self) -> None:
        if self.mark not in MARKS:
            raise ValueError(f"expected a mark in {MARKS}, but got {self.mark!r}")
        if not self.rows:
            raise ValueError("expected at least one row, but got none")
        if self.x is None and self.y is None:
            raise ValueError("expected an x or a y field, but got neither")
        named = [self.x, self.y, self.x2, self.y2, self.text, *(t.field for t in self.tooltip),
                 self.series.field if self.series else None]
        absent = sorted({f for f in named if f is not None and f not in self.rows[0]})
        if absent:
            raise ValueError(f"expected the rows to have the fields {absent}, but got {sorted(self.rows[0])}")


@dataclass(frozen=True)
class Chart:
    """A titled plot of ``layers`` on the axes ``x`` and ``y``; ``height`` px of plot area for a
    quantitative y (a nominal y takes a fixed step per category)."""

    title: str | None
    x: Axis
    y: Axis
    layers: tuple[Layer, ...]
    height: int | None = None

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("expected at least one layer, but got none")
        for layer in self.layers:
            if layer.mark == "bar" and not self.y.nominal and (layer.x2 is None or layer.y is None):
                raise ValueError("expected a bar on a nominal y, or a histogram bin (x, x2 and y), but got neither")
            if layer.offset and (layer.series is None or not self.y.nominal or layer.mark != "bar"):
                raise ValueError("expected offset only on bars with a series on a nominal y")
