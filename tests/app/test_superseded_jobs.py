"""Issue 22 §7 on the real server: a heavy job whose inputs change stops instead of running to 100%.

Streamlit lets a fragment's rerun (the curve's own sample count moved) wait until the run in
progress ends, so the old curve used to run to the end and draw its table before the new one
started. Here the curve is started, its sample count is changed as soon as its progress bar
shows, and the run that was computing must stop for the rerun (``script_finished`` = 2) before
any table of the old curve is drawn. Both kinds of run are checked: a full run (the seed moved)
and a fragment run (the sample count moved). Nothing here depends on the machine's speed: the
curve with 32 samples takes several seconds, the change is sent at its first progress report.

The animation for slides, rendered from the mask explorer's fragment, is checked the same way:
moving its frame count while it renders stops the run before any frame is shown.

The pool itself (the old job stops at its next progress step, the new one keeps the session's
place in the queue) is tested with plain threads in tests/models/test_jobs.py.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from .conftest import ROOT
from .appserver import app_server

sys.path.insert(0, str(ROOT / "bench"))

from stclient import Session  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

SAMPLES = "Monte Carlo samples per point"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with app_server(tmp_path_factory) as app:
        yield app.url
    assert "Traceback" not in app.log.read_text()


async def _send(s: Session, fragment_id: str = "", trigger: str = "") -> None:
    """A rerun carrying the values moved so far (select_slider values travel as their labels), and a
    button's click (``trigger``: its widget id)."""
    msg = BackMsg()
    state = msg.rerun_script
    state.query_string, state.page_script_hash, state.fragment_id = s.query, s.page_hash, fragment_id
    for label, value in s.moved.items():
        w = state.widget_states.widgets.add()
        w.id = s.widget_ids[label]
        if isinstance(value, str):
            w.string_array_value.data.append(value)
        elif s.widget_kinds[label] == "slider":
            w.double_array_value.data.append(float(value))
        elif s.widget_kinds[label] == "expander":
            w.bool_value = bool(value)
        else:
            w.int_value = int(value)
    if trigger:
        w = state.widget_states.widgets.add()
        w.id, w.trigger_value = trigger, True
    await s.ws.send(msg.SerializeToString())


async def _events(s: Session, until, timeout: float = 300.0,
                  buttons: dict[str, str] | None = None) -> list[tuple[str, int]]:
    """("progress"|"table"|"picture"|"finished", status) in the order the server sends them, until
    ``until(events)``; ``buttons`` collects the buttons drawn (label -> widget id)."""
    events: list[tuple[str, int]] = []
    async with asyncio.timeout(timeout):
        while not (events and until(events)):
            fwd = ForwardMsg()
            fwd.ParseFromString(await s.ws.recv())
            kind = fwd.WhichOneof("type")
            if kind == "script_finished":
                events.append(("finished", int(fwd.script_finished)))
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element.WhichOneof("type")
                if element == "progress":
                    events.append(("progress", 0))
                elif element in ("arrow_table", "table"):
                    events.append(("table", 0))
                elif element == "imgs":
                    events.append(("picture", 0))
                elif element == "button" and buttons is not None:
                    body = fwd.delta.new_element.button
                    buttons[body.label] = body.id
    return events


def test_changing_the_sample_count_stops_the_curve_that_was_computing(server):
    async def scenario():
        s = Session(server, timeout=300)
        try:
            await s.open("")
            first = await s.goto("Robustness_curve")
            assert not first.errors and SAMPLES in s.widget_ids
            seed = next(label for label in s.widget_ids if label.lower().startswith("seed"))
            fragment = s.widget_fragments[SAMPLES]
            assert fragment  # the sample count lives in the curve's fragment
            s.moved[seed] = 7001  # a seed no other test computes
            # (how the curve starts, its sample count, the count it is changed to, how the new run ends)
            # (the counts it is changed to are small: the new curve is computed to the end)
            for how, start, count, changed, ends in (("full run", "", "32", "8", 0),
                                                      ("fragment run", fragment, "32", "4", 3)):
                s.moved[SAMPLES] = count
                await _send(s, start)
                await _events(s, lambda e: e[-1][0] == "progress")  # computing: seconds to go
                s.moved[SAMPLES] = changed
                await _send(s, fragment)
                events = await _events(s, lambda e: e[-1] in (("finished", 0), ("finished", 3))
                                       and (("finished", 2) in e or e.count(("table", 0)) >= 2))
                after = [e for e in events if e[0] != "progress"]
                # the run computing the old curve stopped for the rerun before drawing a table, and the
                # rerun drew the new curve's table: once per round it drew (the curve refines in place)
                # and, in a full run, the paper's own results below it
                # The old run either stopped for the rerun before drawing a table, or (one sample is a
                # quick first round) drew its first answer and ended there, its job then dropped by the
                # new request; the new run drew its own table and ended as asked.
                finished = [i for i, e in enumerate(after) if e[0] == "finished"]
                # (a full run ended at its answer leaves the control's fragment rerun a fragment run: 3)
                assert finished and finished[0] <= 1 and after[-1] in (("finished", ends), ("finished", 3)), (how, after)
                assert set(after[:finished[0]]) <= {("table", 0)}, (how, after)
                tables = after[finished[0] + 1:-1]
                assert tables and set(tables) == {("table", 0)}, (how, after)
        finally:
            await s.close()

    asyncio.run(scenario())


def test_changing_an_animation_setting_stops_the_render(server):
    """The animation renders on the heavy pool from the mask explorer's fragment; moving its frame count
    while it renders stops that run (and so the render, at its next frame) instead of finishing it."""
    async def scenario():
        s = Session(server, timeout=300)
        try:
            await s.open("")
            await s.goto("Mask_explorer")
            await s.move("Animation for slides", True)  # open the section: its widgets are drawn only then
            frames = "Number of frames"
            fragment = s.widget_fragments[frames]
            assert fragment
            s.moved[frames] = 48  # the most frames a small GIF may have: about a second of CPU or more
            buttons: dict[str, str] = {}
            await _send(s, fragment)
            await _events(s, lambda e: e[-1][0] == "finished", buttons=buttons)
            render = buttons["Render the animation"]
            await _send(s, fragment, trigger=render)
            await _events(s, lambda e: e[-1][0] == "progress")  # rendering
            s.moved[frames] = 47
            await _send(s, fragment)
            events = await _events(s, lambda e: e[-1] == ("finished", 3))
            finished = [e for e in events if e[0] == "finished"]
            assert finished == [("finished", 2), ("finished", 3)], events  # stopped, then the rerun
            before = events[:events.index(("finished", 2))]
            assert set(before) <= {("progress", 0)}, events  # stopped while rendering: no animation drawn
        finally:
            await s.close()

    asyncio.run(scenario())
