"""The page frame: the page table, the entrypoint, the shared sidebar and the one error guard.

* :data:`PAGES` is the one list of pages (file, URL path, title, icon, what it shows): the
  navigation, the Home page's links and the tests read it.
* :func:`main` is the entrypoint (``app.py``): the widget guard, the URL's settings, the page
  config and the navigation, then the page the visitor asked for.
* :func:`page` ends every page file: in the entrypoint's run it draws the page inside the frame
  (:func:`run_page`); when Streamlit runs a ``pages/`` file as the script itself (a process's first
  run, which Streamlit still serves from the ``pages/`` folder, and every ``AppTest`` run), it
  hands the run to :func:`main`, which routes it back here.
* :func:`guard` is the one error guard (pages, fragments and the lesson alike): errors become a
  message that says what to do; the trace goes to the server log, never to the page.
"""

from __future__ import annotations

import contextlib
import dataclasses
import contextvars
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

import models as M
from models import jobs
from ui import banner, inputs, layout, settings, waiting, widget_guard
from ui.i18n import N_, _, tr
from ui.inputs import Context

_log = logging.getLogger("dropblock_lab")


@dataclass(frozen=True)
class Page:
    file: str  # relative to app.py
    url: str  # "" = the home page at "/"
    title: str  # N_-marked, translated when shown
    icon: str
    what: str | None = None  # what it shows, for the Home page (N_-marked)


PAGES = (
    Page("pages/0_Home.py", "", N_("Home"), "🧱"),
    Page("pages/0_Lesson.py", "Lesson", N_("Lesson"), "🎓",
         N_("a guided lesson in eight steps: predict, then reveal")),
    Page("pages/1_Mask_explorer.py", "Mask_explorer", N_("Mask explorer"), "🔍",
         N_("seed mask → block mask → dropped feature maps, γ from Eq. (1)")),
    Page("pages/2_Compare_methods.py", "Compare_methods", N_("Compare methods"), "⚖️",
         N_("Dropout, SpatialDropout, Cutout and DropBlock at one drop budget")),
    Page("pages/3_CAM_shift.py", "CAM_shift", N_("CAM shift"), "🔥",
         N_("class activation maps with and without DropBlock")),
    Page("pages/4_Robustness_curve.py", "Robustness_curve", N_("Robustness curve"), "📉",
         N_("the paper's Figure 5 on your image")),
    Page("pages/5_Theory_and_schedule.py", "Theory_and_schedule", N_("Theory & schedule"), "📐",
         N_("Algorithm 1, γ calculator, keep_prob schedule, common mistakes")),
    Page("pages/6_DropBlock_and_Dropout.py", "DropBlock_and_Dropout", N_("DropBlock + Dropout"), "🧩",
         N_("DropBlock in the conv groups plus Dropout before the classifier (Hu et al.)")),
    Page("pages/7_Image_set.py", "Image_set", N_("Image set"), "🗂️",
         N_("Figure 5 over a set of images: bundled, uploaded or a zip")),
)
_ROUTED: contextvars.ContextVar[bool] = contextvars.ContextVar("dropblock_lab_routed", default=False)


def main(starting=None) -> None:
    """The entrypoint: set the page up, build the navigation from :data:`PAGES` (titles in the
    session's language, rebuilt every run) and run the page asked for. ``starting``: a placeholder
    app.py drew while the first imports ran, emptied once the page starts."""
    widget_guard.install()  # values no browser could send never reach a session (once per process)
    settings.init_from_url()  # the URL's settings (language, presenter mode) before the titles are made
    st.set_page_config(page_title="DropBlock Lab", page_icon="🧱", layout="wide",
                       initial_sidebar_state="collapsed" if layout.presenting() else "auto")
    nav = st.navigation([st.Page(p.file, title=_(p.title), icon=p.icon,
                                 **({"url_path": p.url} if p.url else {"default": True})) for p in PAGES])
    if starting is not None:
        starting.empty()
    token = _ROUTED.set(True)
    try:
        nav.run()
    finally:
        _ROUTED.reset(token)


def page(draw: Callable[[Context], None]) -> None:
    """The last line of every page file: draw the page in the frame (see the module's docstring)."""
    if _ROUTED.get():
        run_page(draw)
    else:
        main()


@dataclass
class SidebarSlots:
    """The sidebar's three parts, reserved at the start of a run so that each can be drawn later
    and in any order: the head (language, presenter mode, image), the regulariser's live controls
    (keep_prob, block_size, seed) and the tail (placement, more settings, model). ``live_claimed``:
    a page's fragment draws the live controls (:func:`live_controls_slot`), the sidebar does not."""

    head: object
    live: object
    tail: object
    live_claimed: bool = False


_SLOTS: contextvars.ContextVar[SidebarSlots | None] = contextvars.ContextVar("dropblock_lab_sidebar", default=None)


def run_page(draw: Callable[[Context], None]) -> None:
    """Set up a page (shared sidebar, model banner) and draw it inside the error guard."""
    jobs.configure_process()  # once per process, whichever page a visitor opens first
    slots = SidebarSlots(st.sidebar.container(), st.sidebar.container(), st.sidebar.container())
    _SLOTS.set(slots)
    # The sidebar last (see sidebar()), and also after an error, so other settings can be chosen.
    started = time.monotonic()
    with guard(), draw_after(lambda: sidebar(slots)):
        settings.keep()
        settings.check()
        pic, (arch, weights) = inputs.picture(), inputs.model_choice()
        settings.sync_url()
        ctx = inputs.context(pic, arch, weights)
        layout.style()
        banner.model_banner(ctx)
        draw(ctx)
    waiting.let_go_unseen(started)  # refining views this page did not ask for again: dropped now


@contextlib.contextmanager
def draw_after(draw: Callable[[], None]):
    """Run the block, then ``draw()``: also when the block raises an error (which then goes on),
    not after Streamlit's own stop/rerun signals (BaseExceptions: the run is over)."""
    try:
        yield
    except Exception:
        draw()
        raise
    draw()


FAILED = N_("Something went wrong while computing this view. Try other settings or another image; "
             "the details are in the server log.")


@contextlib.contextmanager
def guard(message: str = FAILED):
    """The one error guard: errors become a message that says what to do (``message``, N_-marked);
    the trace goes to the server log, never to the page (Streamlit's own stop/rerun signals are
    BaseExceptions and pass through)."""
    try:
        yield
    except M.ImageError as err:  # an image that passed the upload check but failed later
        st.error(_("This image can't be used: {error}").format(error=tr(err)))
    except Exception:  # never a traceback in front of a class or a stakeholder
        _log.exception("view failed")
        st.error(_(message))


def fragment(draw: Callable | None = None, *, message: str = FAILED) -> Callable:
    """``st.fragment`` inside :func:`guard` (``@fragment`` or ``@fragment(message=...)``): when a
    page's own control reruns only the fragment, no page frame is around it to catch an error."""
    if draw is None:
        return functools.partial(fragment, message=message)

    @functools.wraps(draw)
    def guarded(*args, **kwargs):
        with guard(message):
            return draw(*args, **kwargs)

    return st.fragment(guarded)


def live_controls_slot(on_projector=None):
    """For a page whose fragment redraws everything that depends on keep_prob, block_size and the
    seed (the mask explorer): the sidebar's place for those three controls, which the fragment then
    draws (``settings.live_widgets``), so that moving one reruns only the fragment. In presenter
    mode (no sidebar): ``on_projector``, the page's own place for them, or None. None outside
    :func:`run_page`; the sidebar then draws them as usual."""
    slots = _SLOTS.get()
    if slots is None or (layout.presenting() and on_projector is None):
        return None
    slots.live_claimed = True
    return on_projector if layout.presenting() else slots.live


def live(ctx: Context) -> Context:
    """``ctx`` with this run's keep_prob, block_size and seed (from session state: the browser sent
    them with the rerun). A fragment that owns the live controls calls it first (on a rerun of the
    fragment alone its ``ctx`` argument is the last full run's) and ``settings.sync_url`` at its end."""
    settings.check(settings.LIVE)
    settings.remember(settings.LIVE)  # moved in a fragment's run: the next page keeps them
    kp, b, seed = (settings.value(k) for k in settings.LIVE)
    if (kp, b, seed) == (ctx.spec.keep_prob, ctx.spec.block_size, ctx.seed):
        return ctx
    return dataclasses.replace(ctx, spec=dataclasses.replace(ctx.spec, keep_prob=kp, block_size=b), seed=int(seed))


def sidebar(slots: SidebarSlots) -> None:
    """Draw the shared sidebar. Pages draw it after their own content (see :func:`run_page`): a
    rerun's messages reach the browser in the order they are drawn, and a slider move's new masks
    should not wait behind twenty sidebar widgets the browser redraws first. The parts go into the
    places :func:`run_page` reserved; the live controls only if no page fragment owns them."""
    with slots.head:
        settings.widget("lang")
        settings.widget(layout.PRESENT)
        st.subheader(_("Image"))
        inputs.image_widgets()
    if not slots.live_claimed:
        with slots.live:
            settings.live_widgets()
    with slots.tail:
        settings.widget("placement")
        with st.expander(_("More settings")):
            for key in ("group", "shared_mask", "seed_region", "gamma_mode", "normalize", "act_site"):
                settings.widget(key)
        st.subheader(_("Model"))
        inputs.model_widgets()


def page_links() -> None:
    """A link to every page but Home, with what it shows (the Home page's list)."""
    for p in PAGES[1:]:
        st.page_link(p.file, label=_("**{title}**: {what}").format(title=_(p.title), what=_(p.what)), icon=p.icon)
