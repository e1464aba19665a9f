"""Page layout for every screen: presenter mode, the main figure, details, phones.

Presenter mode (``st.session_state["present"]``, the sidebar's switch and the URL's ``present=1``)
turns any page or lesson step into a projector view: the sidebar hidden, large type, the page's
main figure at full width and within the screen's height, the model, image and parameters in one
line at the top, and everything marked as details hidden. Pages mark their parts::

    with layout.details("explorer-numbers"):   # text, numbers, tables: hidden in presenter mode
        ...
    with layout.main_figure():                  # the one picture a projector shows
        render.show_image(...)

    with layout.on_projector("lesson-answer"):  # text the projector shows too (a lesson's reveal)
        ...

All are keyed containers (``st-key-…`` classes) whose content is drawn in both modes, so widget
state and caches never depend on the mode; the CSS below decides what a projector shows. The top
line names the parameters the main figure uses: the sidebar's, unless the page says otherwise
(:func:`presenter_params`: a lesson step's own, the robustness curve's placement). A page with live
controls (the mask explorer) puts them in a compact :func:`control_bar` there is no sidebar for.

On phones (about 390 px wide) the sidebar shows its live controls (keep_prob, block_size, seed) first,
so they are in view when it slides out; the LaTeX formulas scroll inside their own block, never the page;
tile grids (``render.show_mask_grid``) are regrouped per channel, one line each, at most
``NARROW_MAX_PX`` wide.

Arrow keys step through the lesson in presenter mode: :func:`lesson_shortcut` gives the lesson's
Previous/Next buttons Streamlit's own keyboard shortcuts (``st.button(shortcut=...)``, no component,
no JavaScript of ours), and only in presenter mode, so elsewhere the arrows keep moving sliders.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui.i18n import _

PRESENT = "present"  # session key (and URL key) of presenter mode
MAIN = "dbl_main_figure"
NARROW_MAX_PX = 640  # at most this wide: a phone's layout (tile grids regrouped per channel)
LESSON_KEYS = {"lesson_prev": "Left", "lesson_next": "Right"}  # the lesson's buttons -> their keys

_CSS_ALWAYS = f"""
<style>
/* A formula wider than a phone scrolls inside its own block, never the page. */
.stMainBlockContainer .katex-display {{ overflow-x: auto; overflow-y: hidden; max-width: 100%; padding-bottom: 2px; }}
.stMainBlockContainer [data-testid="stTable"], .stMainBlockContainer [data-testid="stTableStyledTable"] {{ overflow-x: auto; max-width: 100%; }}
@media (max-width: {NARROW_MAX_PX}px) {{ .stMainBlockContainer .katex-display {{ font-size: 0.85em; }}
  /* a phone's slide-out sidebar: the live controls (the part with the keep_prob and block_size sliders)
     first, right under the page links, so they are in view when it opens (below the image widgets
     they were under the fold of an 844 px screen) */
  [data-testid="stSidebarUserContent"] [data-testid="stVerticalBlock"] > [data-testid="stLayoutWrapper"]:has(.stSlider) {{
    order: -1; }} }}
</style>
"""

_FIG = f'.st-key-{MAIN}, [class*="st-key-{MAIN}_"]'  # the main figure and its parts
_BAR = ".st-key-dbl_presenter_bar"
_SHOWN = '[class*="st-key-dbl_projector_"]'  # text a projector shows too (layout.on_projector)
_KEEP = f":is({_FIG}, {_BAR}, {_SHOWN})"
_LESSON = ".stMainBlockContainer:has(.st-key-dbl_projector_lesson-answer)"  # a lesson step's page


def _elements(*testids: str) -> str:
    """An element container holding one of these elements, in the main area."""
    return ('.stMainBlockContainer [data-testid="stElementContainer"]:is('
            + ", ".join(f':has(> [data-testid="{t}"])' for t in testids) + ")")


# Presenter mode: a projector view. Text, numbers, tables and downloads are hidden (all but the top
# line); pictures too, except the main figure, on a page that has one (else its pictures stay).
_CSS_PRESENT = f"""
<style>
html {{ font-size: 22px; }}
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stSidebarCollapseButton"], [data-testid="stHeader"] {{ display: none !important; }}
.stMainBlockContainer {{ max-width: 100%; padding: 1rem 2rem 1rem 2rem; }}
.stMainBlockContainer h1 {{ font-size: 2.2rem; padding: 0 0 0.3rem 0; }}
[class*="st-key-dbl_details_"],
{_elements("stMarkdown", "stCaptionContainer", "stMetric", "stCode", "stTable", "stDataFrame", "stDownloadButton",
           "stJson", "stPageLink")}:not(:is({_BAR}, {_SHOWN}) *),
{_elements("stAlert")}:not(:has([data-testid="stAlertContentError"])):not({_SHOWN} *),
{_elements("stHeading")}:not(:has(h1)):not({_KEEP} *),
.stMainBlockContainer [data-testid="stExpander"]:not(:is({_FIG}) *),
.stMainBlockContainer:has({_FIG}) {_elements("stFullScreenFrame", "stImage", "stVegaLiteChart",
                                              "stArrowVegaLiteChart", "stPlotlyChart", "stPyplot")[len(".stMainBlockContainer "):]}:not(:is({_FIG}) *)
{{ display: none !important; }}
.st-key-{MAIN} img:not(.dbl-tile) {{ width: 100% !important; height: auto; max-height: calc(100vh - 20rem);
                                     object-fit: contain; }}
/* a tile grid (ui/render.py): tiles as large as the screen's height allows, its rows and caption included,
   and at most twice their size off the projector (a lesson's question under a two-row grid stays on screen) */
.st-key-{MAIN} .dbl-tiles {{ --tile: min(calc((100vh - 18rem) / var(--rows) / var(--aspect) - var(--gap)),
                                        calc(2 * var(--tile-max))) !important; }}
:is({_FIG}) [data-testid="stHorizontalBlock"] img {{ max-height: 30vh; }}
:is({_FIG}) :is(h2, h3) {{ font-size: 1.3rem; }}
{_BAR} p {{ font-size: 1rem; margin: 0; }}
.st-key-dbl_controls > div {{ flex: 1 1 0; min-width: 12rem; }}
/* a page with a control bar: the grid gives the bar its height */
.stMainBlockContainer:has(.st-key-dbl_controls) .st-key-{MAIN} .dbl-tiles {{
  --tile: min(calc((100vh - 23rem) / var(--rows) / var(--aspect) - var(--gap)), calc(2 * var(--tile-max))) !important; }}
.st-key-dbl_controls :is(label, [data-testid="stSliderThumbValue"], input) p,
.st-key-dbl_controls [data-testid="stSliderThumbValue"], .st-key-dbl_controls input {{ font-size: 1rem; }}
/* text shown on the projector too (a lesson's step and its reveal): large, read from the back of a room */
{_SHOWN} :is(h2, h3) {{ font-size: 1.5rem; padding: 0.2rem 0; }}
{_SHOWN} [data-testid="stMarkdownContainer"] p {{ font-size: 1.1rem; }}
{_SHOWN} [data-testid="stAlert"] p {{ font-size: 1.15rem; }}
.stMainBlockContainer [data-testid="stRadio"] label p {{ font-size: 1.1rem; }}
/* a lesson step: its title, paragraph, question and reveal share the screen with its picture (the
   lesson's own title gives way; "Step n of 8" says where we are) */
{_LESSON} h1 {{ display: none; }}
{_LESSON} .st-key-{MAIN} .dbl-tiles {{
  --tile: min(calc((100vh - 28rem) / var(--rows) / var(--aspect) - var(--gap)), calc(3 * var(--tile-max))) !important; }}
{_LESSON} .st-key-{MAIN} img:not(.dbl-tile) {{ max-height: calc(100vh - 28rem); max-width: 86% !important; margin: 0 auto; }}
{_LESSON} .st-key-{MAIN} :is(div:has(> .stImage), .stImage, .stImage > div) {{ width: 100% !important; }}
{_LESSON} [data-testid="stVerticalBlock"] {{ gap: 0.5rem; }}
/* a lesson step's tile grid on the projector: every tile in one line across the width, grouped per
   channel (mask, before, after of one channel side by side, a space between channels), so the picture
   spans the screen and the question stays on it (the phone's regrouping, in one line) */
{_LESSON} .st-key-{MAIN} .dbl-tiles {{ display: flex; flex-wrap: wrap; gap: var(--gap); max-width: none; }}
{_LESSON} .st-key-{MAIN} .dbl-tiles :is(.dbl-row, .dbl-cells) {{ display: contents; }}
{_LESSON} .st-key-{MAIN} .dbl-tiles .dbl-label {{ display: none; }}
{_LESSON} .st-key-{MAIN} .dbl-tiles img.dbl-tile {{ flex: 1 1 0; min-width: 0;
                                                     order: calc(var(--channel) * 64 + var(--kind)); }}
{_LESSON} .st-key-{MAIN} .dbl-tiles img.dbl-tile[style^="--kind: 1;"]:not([style$="--channel: 2"]) {{
  margin-left: 0.8rem; }}
{_LESSON} .st-key-{MAIN} .dbl-tiles figcaption {{ flex: 0 0 100%; order: 100000; }}
</style>
"""


_BAR_LINE: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("dropblock_lab_presenter_line",
                                                                         default=None)


def presenting() -> bool:
    """Whether this session is in presenter mode."""
    return bool(st.session_state.get(PRESENT, False))


def style() -> None:
    """The page's CSS: phones always, presenter mode when it is on. Called first in every page's run."""
    _BAR_LINE.set(None)  # this run's presenter line is not drawn yet
    st.html(_CSS_ALWAYS + (_CSS_PRESENT if presenting() else ""))


def _leave() -> None:
    st.session_state[PRESENT] = False


def presenter_bar(line: Callable[[str | None], str]) -> None:
    """Presenter mode's top line and a visible way out, since the sidebar with the switch is hidden.
    ``line(params)`` is the line (model, image, parameters; Markdown-safe) with the sidebar's
    parameters (``params`` None) or with a page's own (:func:`presenter_params`)."""
    with st.container(key="dbl_presenter_bar"):
        text, leave = st.columns([5, 1], vertical_alignment="center")
        slot = text.empty()
        slot.markdown(line(None))
        leave.button(_("Exit presenter mode"), key="present_exit", on_click=_leave, icon="✖️",
                     width="stretch")
    _BAR_LINE.set((slot, line))


def _fragment_run() -> bool:
    run = get_script_run_ctx()
    return bool(run is not None and run.fragment_ids_this_run)


def presenter_params(params: str) -> bool:
    """The parameters the page's main figure actually uses (Markdown-safe), in presenter mode's top
    line instead of the sidebar's: a lesson step's own, the robustness curve's placement. Call it in
    the page's full run (a fragment's own rerun cannot redraw the line; it is left as it was).
    Returns whether the line now says ``params``."""
    bar = _BAR_LINE.get()
    if bar is None or not presenting() or _fragment_run():
        return False
    slot, line = bar
    slot.markdown(line(params))
    return True


def control_bar():
    """Presenter mode's compact row of a page's live controls (the mask explorer's keep_prob,
    block_size and seed), under the top line: a demo without the sidebar."""
    return st.container(key="dbl_controls", horizontal=True, vertical_alignment="bottom", gap="large")


def on_projector(name: str):
    """A container whose text presenter mode shows too (large), where it would hide text: a lesson
    step's title, paragraph, question and reveal. ``name`` must be unique on the page."""
    return st.container(key=f"dbl_projector_{_slug(name)}")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) + _DRAFT.get()


# A view that refines in rounds (ui/view.py ``progressive``) draws each round's result into the same
# place in one run: its keyed containers get a draft suffix (the CSS matches their prefixes, so a
# draft looks the same) and its downloads wait for the final round (:func:`drafting`).
_DRAFT: contextvars.ContextVar[str] = contextvars.ContextVar("dropblock_lab_draft", default="")


def drafting() -> bool:
    """Whether what is drawn now is a round's draft, to be replaced (no widgets, no downloads)."""
    return bool(_DRAFT.get())


@contextlib.contextmanager
def draft(n: int | None):
    """Draw a draft (round ``n``), or the final result (``n`` None), in the block."""
    token = _DRAFT.set("" if n is None else f"__draft{n}")
    try:
        yield
    finally:
        _DRAFT.reset(token)


def main_figure(part: str = ""):
    """The page's main figure, a container (``with layout.main_figure():`` or
    ``layout.main_figure().columns(4)``): full width and on screen in presenter mode. One per page;
    ``part`` names another piece of it."""
    return st.container(key=MAIN + (f"_{_slug(part)}" if part else _DRAFT.get()))


def details(name: str):
    """A container for text, numbers and tables a projector does not show (hidden in presenter
    mode, whatever it holds). ``name`` must be unique on the page."""
    return st.container(key=f"dbl_details_{_slug(name)}")


def lesson_shortcut(button_key: str) -> str | None:
    """The keyboard shortcut of a lesson button (``lesson_prev``: Left, ``lesson_next``: Right) in
    presenter mode, else None: off the projector the arrow keys belong to the widgets."""
    return LESSON_KEYS[button_key] if presenting() else None
