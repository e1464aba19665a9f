"""Page layout for every screen: presenter mode, the main figure, details, phones.

Presenter mode (``st.session_state["present"]``, the sidebar's switch and the URL's ``present=1``)
turns any page or lesson step into a projector view: the sidebar hidden, large type, the page's
main figure at full width and within the screen's height, the model, image and parameters in one
line at the top, and everything marked as details hidden. Pages mark their parts::

    with layout.details("explorer-numbers"):   # text, numbers, tables: hidden in presenter mode
        ...
    with layout.main_figure():                  # the one picture a projector shows
        render.show_image(...)

Both are keyed containers (``st-key-…`` classes) whose content is drawn in both modes, so widget
state and caches never depend on the mode; the CSS below decides what a projector shows.

On phones (about 390 px wide) the LaTeX formulas scroll inside their own block, never the page;
tile grids (``render.show_tile_grid``) put their channels in rows of 4 at most ``NARROW_MAX_PX`` wide.

Arrow keys step through the lesson in presenter mode: :func:`lesson_shortcut` gives the lesson's
Previous/Next buttons Streamlit's own keyboard shortcuts (``st.button(shortcut=...)``, no component,
no JavaScript of ours), and only in presenter mode, so elsewhere the arrows keep moving sliders.
"""

from __future__ import annotations

import re

import streamlit as st

from ui.i18n import _

PRESENT = "present"  # session key (and URL key) of presenter mode
MAIN = "dbl_main_figure"
NARROW_MAX_PX = 640  # at most this wide: a phone's layout (tile grids in rows of 4)
LESSON_KEYS = {"lesson_prev": "Left", "lesson_next": "Right"}  # the lesson's buttons -> their keys

_CSS_ALWAYS = f"""
<style>
/* A formula wider than a phone scrolls inside its own block, never the page. */
.stMainBlockContainer .katex-display {{ overflow-x: auto; overflow-y: hidden; max-width: 100%; padding-bottom: 2px; }}
.stMainBlockContainer [data-testid="stTable"], .stMainBlockContainer [data-testid="stTableStyledTable"] {{ overflow-x: auto; max-width: 100%; }}
@media (max-width: {NARROW_MAX_PX}px) {{ .stMainBlockContainer .katex-display {{ font-size: 0.85em; }} }}
</style>
"""

_FIG = f'.st-key-{MAIN}, [class*="st-key-{MAIN}_"]'  # the main figure and its parts
_BAR = ".st-key-dbl_presenter_bar"


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
           "stJson", "stPageLink")}:not({_BAR} *),
{_elements("stAlert")}:not(:has([data-testid="stAlertContentError"])),
{_elements("stHeading")}:not(:has(h1)):not(:is({_FIG}, {_BAR}) *),
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
</style>
"""


def presenting() -> bool:
    """Whether this session is in presenter mode."""
    return bool(st.session_state.get(PRESENT, False))


def style() -> None:
    """The page's CSS: phones always, presenter mode when it is on."""
    st.html(_CSS_ALWAYS + (_CSS_PRESENT if presenting() else ""))


def _leave() -> None:
    st.session_state[PRESENT] = False


def presenter_bar(line: str) -> None:
    """Presenter mode's top line: ``line`` (model, image, parameters; Markdown-safe) and a visible
    way out, since the sidebar with the switch is hidden."""
    with st.container(key="dbl_presenter_bar"):
        text, leave = st.columns([5, 1], vertical_alignment="center")
        text.markdown(line)
        leave.button(_("Exit presenter mode"), key="present_exit", on_click=_leave, icon="✖️",
                     width="stretch")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def main_figure(part: str = ""):
    """The page's main figure, a container (``with layout.main_figure():`` or
    ``layout.main_figure().columns(4)``): full width and on screen in presenter mode. One per page;
    ``part`` names another piece of it."""
    return st.container(key=MAIN + (f"_{_slug(part)}" if part else ""))


def details(name: str):
    """A container for text, numbers and tables a projector does not show (hidden in presenter
    mode, whatever it holds). ``name`` must be unique on the page."""
    return st.container(key=f"dbl_details_{_slug(name)}")


def lesson_shortcut(button_key: str) -> str | None:
    """The keyboard shortcut of a lesson button (``lesson_prev``: Left, ``lesson_next``: Right) in
    presenter mode, else None: off the projector the arrow keys belong to the widgets."""
    return LESSON_KEYS[button_key] if presenting() else None
