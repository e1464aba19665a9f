"""The guided lesson: DropBlock (Ghiasi, Lin & Le, NeurIPS 2018, arXiv:1810.12890) in eight steps.

This module draws a step and moves between them. The steps are data in ui/lesson_steps.py (title,
paragraph, own parameters and seed, question, choices); what each measures on this image and
draws is in ui/lesson_maps.py (steps 1–4) and ui/lesson_curves.py (steps 5–8), from the app's
cached views (``ui/views.py``) called with the step's parameters, so a class on the same image
shares one result per step; nothing here computes DropBlock itself.

Predict, then reveal: the question is asked with nothing selected; once the student chooses, the
measured numbers for this image appear with a verdict (✅ right, 🤔 not this time) and the step's
explanation. Steps whose picture gives the answer away (the curve, the schedule, the mistakes
chart) draw it with the answer. In presenter mode the step's title, paragraph, question and reveal stay
on the projector and its top line names the step's own parameters (:func:`headline`).

The step lives in ``st.session_state["lesson_step"]``, which ui/settings.py mirrors in the URL as
``step=1..8``; the buttons "lesson_prev" and "lesson_next" move it (presenter mode binds the arrow
keys to them).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui import frame, layout
from ui.i18n import N_, _
from ui.inputs import Context
from ui.lesson_steps import STEPS, Step, headline, parameters

__all__ = ["STEPS", "Step", "draw", "headline", "parameters"]

STEP_KEY = "lesson_step"  # session key; the URL's "step" (ui/settings.py)


def current_step() -> int:
    """The step shown, 1..len(STEPS) (the URL's value was parsed and clamped by ui/settings.py)."""
    value = st.session_state.get(STEP_KEY, 1)
    return min(len(STEPS), max(1, value if isinstance(value, int) and not isinstance(value, bool) else 1))


def _go(step: int) -> None:
    st.session_state[STEP_KEY] = min(len(STEPS), max(1, step))


def navigation(n: int) -> None:
    """Previous / indicator / next. The keys are a contract: presenter mode binds ← and → to them."""
    left, mid, right = st.columns([1, 3, 1], vertical_alignment="center")
    back, ahead = layout.lesson_shortcut("lesson_prev"), layout.lesson_shortcut("lesson_next")
    # with a shortcut, Streamlit shows its key (← / →) on the button itself
    left.button(_("Previous") if back else _("← Previous"), key="lesson_prev", on_click=_go, args=(n - 1,),
                disabled=n <= 1, width="stretch", shortcut=back)
    mid.progress(n / len(STEPS), text=_("Step {n} of {total}").format(n=n, total=len(STEPS)))
    right.button(_("Next") if ahead else _("Next →"), key="lesson_next", on_click=_go, args=(n + 1,),
                 disabled=n >= len(STEPS), width="stretch", type="primary", shortcut=ahead)


def main_picture(picture: Callable[[], None]) -> None:
    """The step's one main picture: full width and on screen in presenter mode (ui/layout.py)."""
    with layout.main_figure():
        picture()


def draw(ctx: Context) -> None:
    n = current_step()
    step = STEPS[n - 1]
    st.title(_("DropBlock in eight steps"))
    layout.presenter_params(headline(step))  # the projector's top line: this step's parameters
    navigation(n)
    with layout.on_projector("lesson-step"):  # the step's title and paragraph: the projector shows them too
        st.header(_("{n} · {title}").format(n=n, title=_(step.title)))
        st.markdown(_(step.text).format(**step.facts()))
    st.caption(_("This step sets its own parameters ({params}; seed {seed}). The sidebar's keep_prob, block_size, "
                 "seed and placement are not used here; the image and the model are the sidebar's.").format(
        params=parameters(step), seed=step.seed))
    body(ctx, n)


@frame.fragment(message=N_("Something went wrong while measuring this step. Try another image; the details are "
                           "in the server log."))  # answering reruns only the step, not the sidebar and the model
def body(ctx: Context, n: int) -> None:
    _body(ctx, STEPS[n - 1], n)


def _body(ctx: Context, step: Step, n: int) -> None:
    """The step's picture, its question and, once answered, the measured answer with a verdict."""
    facts = step.facts()
    picture, outcome = step.run(ctx, step)
    slot = st.container()
    # the question and, beside it, the reveal: both on the projector, under the picture
    # (on a projector the reveal gets more of the width, so it and the wide picture fit one screen)
    ask, reveal = layout.on_projector("lesson-answer").columns([1, 2] if layout.presenting() else [2, 3])
    options = dict(step.options)
    choice = ask.radio(_(step.prompt).format(**facts), list(options), index=None,
                       format_func=lambda k: _(options[k]).format(**facts), key=f"lesson_q{n}")
    if step.picture_first:
        with slot:
            main_picture(picture)
    if choice is None:
        if not step.picture_first:
            slot.info(_("Choose an answer: the chart comes with it."), icon="👇")
        return
    result = outcome()
    with reveal:
        if result.answer is None:
            st.info(result.measured, icon="📏")
        elif result.answer == choice:
            st.success(_("Right. {measured}").format(measured=result.measured), icon="✅")
        else:
            st.info(_("Not this time: the measured answer is “{answer}”. {measured}").format(
                answer=_(options[result.answer]).format(**facts), measured=result.measured), icon="🤔")
        if step.explain:  # the why, now that the student has committed to a prediction
            st.markdown(_(step.explain).format(**facts))
    if not step.picture_first:
        with slot:
            main_picture(picture)
