"""bench/stclient.py's heavy-view markers, on constructed ForwardMsgs fed through a fake websocket:
which deltas mark a heavy view, and when its first round and its final (or load-limited) result came.
No server: the messages are the ones Streamlit sends for a caption, a progress bar, an alert."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from stclient import Mark, RunResult, Session, markers  # noqa: E402
from streamlit.proto.Alert_pb2 import Alert  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402


@pytest.mark.parametrize("text, expected", [
    ("2 of 32 samples per point", [("samples", 2, 32)]),
    ("16 of 16 samples", [("samples", 16, 16)]),
    ("**8** of 32 samples per point: the server is busy; it will refine when it is free",
     [("samples", 8, 32), ("busy", 0, 0)]),
    ("1,024 of 2,048 samples", [("samples", 1024, 2048)]),
    ("4\u00a0of\u00a032 samples", [("samples", 4, 32)]),
    ("mean CAM of 32 samples (shared scale)", []),  # a count, not a round
    ("mean of 8 samples", []),
    ("Step 2 of 7", []),
    ("12 of 32 samplesX", []),
    ("The Server Is Busy", [("busy", 0, 0)]),
    ("", []),
])
def test_markers_in_a_text(text, expected):
    assert markers(text) == expected


def test_a_progress_bar_is_a_marker_whatever_its_text():
    assert markers("Robustness curve: waiting for the server, 3 requests ahead of yours…", progress=True) == [
        ("progress", 0, 0)]
    assert markers("Sampling masks: 4 of 32 samples", progress=True) == [("progress", 0, 0), ("samples", 4, 32)]


def caption(text: str, path: tuple[int, ...] = (0, 1)) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path.extend(path)
    msg.delta.new_element.markdown.body = text
    return msg


def progress(text: str, path: tuple[int, ...] = (0, 2)) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path.extend(path)
    msg.delta.new_element.progress.value = 10
    msg.delta.new_element.progress.text = text
    return msg


def alert(text: str, fmt=Alert.INFO) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path.extend((0, 3))
    msg.delta.new_element.alert.body = text
    msg.delta.new_element.alert.format = fmt
    return msg


def status_block(label: str) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path.extend((0, 4))
    msg.delta.add_block.expandable.label = label
    return msg


def finished(status: int = 0) -> ForwardMsg:
    msg = ForwardMsg()
    msg.script_finished = status
    return msg


class FakeSocket:
    """Hands out ``(delay_s, ForwardMsg)`` pairs, each after its delay, as the server's websocket would."""

    def __init__(self, script: list[tuple[float, ForwardMsg]]) -> None:
        self.script = list(script)
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def recv(self) -> bytes:
        delay, msg = self.script.pop(0)
        await asyncio.sleep(delay)
        return msg.SerializeToString()


def run(script: list[tuple[float, ForwardMsg]]) -> RunResult:
    session = Session("http://127.0.0.1:1", timeout=30)
    session.ws = FakeSocket(script)

    async def go():
        import time
        return await session._run(BackMsg(), time.perf_counter())

    return asyncio.run(go())


def test_a_light_run_has_no_markers():
    result = run([(0, caption("keep_prob 0.9, block 7")), (0, alert("γ = 0.0021")), (0, finished())])
    assert not result.heavy and result.marks == []
    assert result.first_round_s is None and result.final_s is None
    assert result.texts == ["keep_prob 0.9, block 7", "γ = 0.0021"]


def test_a_heavy_view_in_rounds_first_round_then_final():
    result = run([
        (0.0, progress("Robustness curve: waiting for the server, 2 requests ahead of yours…")),
        (0.05, caption("2 of 32 samples per point")),  # first round
        (0.05, caption("8 of 32 samples per point")),
        (0.05, caption("32 of 32 samples per point")),  # final
        (0.05, finished()),
    ])
    assert result.heavy and [m.kind for m in result.marks] == ["progress", "samples", "samples", "samples"]
    samples = [m for m in result.marks if m.kind == "samples"]
    assert [(m.done, m.total) for m in samples] == [(2, 32), (8, 32), (32, 32)]
    assert result.first_round_s == samples[0].seconds and result.final_s == samples[-1].seconds
    assert 0 < result.first_round_s < result.final_s <= result.seconds
    assert result.final_s - result.first_round_s >= 0.09  # two 0.05 s gaps between them, by construction


def test_a_busy_server_ends_the_view_at_its_load_limited_result():
    result = run([
        (0.0, caption("2 of 32 samples per point")),
        (0.05, caption("8 of 32 samples per point: the server is busy; it will refine when it is free")),
        (0.05, caption("something else drawn later")),
        (0.05, finished()),
    ])
    busy = next(m for m in result.marks if m.kind == "busy")
    assert result.final_s == busy.seconds < result.seconds
    assert result.first_round_s == result.marks[0].seconds


def test_the_load_limited_marker_may_stand_alone():
    result = run([(0.0, caption("2 of 16 samples")), (0.02, alert("The server is busy: refining later")),
                  (0.02, finished())])
    assert result.final_s == result.marks[-1].seconds and result.marks[-1].kind == "busy"


def test_a_heavy_run_without_a_final_marker_ends_at_the_run_end():
    result = run([(0.0, caption("2 of 32 samples")), (0.02, caption("4 of 32 samples")), (0.02, finished())])
    assert result.final_s == result.seconds and result.first_round_s == result.marks[0].seconds


def test_a_one_shot_heavy_job_answers_at_the_run_end():
    """Today's heavy views (no rounds): only the progress bar marks them; the result is the run's end."""
    result = run([(0.0, progress("Robustness curve: computing 3 of 9 points")), (0.02, caption("top-1 0.81")),
                  (0.02, finished())])
    assert result.heavy and result.first_round_s == result.final_s == result.seconds


def test_two_views_are_final_when_both_are():
    result = run([
        (0.0, caption("2 of 8 samples", path=(0, 1))),
        (0.0, caption("2 of 8 samples", path=(0, 5))),
        (0.02, caption("8 of 8 samples", path=(0, 1))),
        (0.02, caption("8 of 8 samples", path=(0, 5))),
        (0.02, finished()),
    ])
    assert result.final_s == result.marks[-1].seconds > result.marks[-2].seconds


def test_error_boxes_are_errors_not_markers_and_status_labels_are_read():
    result = run([(0.0, alert("The server is busy decoding other uploads.", Alert.ERROR)),
                  (0.0, status_block("Sampling masks: 4 of 32 samples")), (0.0, finished())])
    assert result.errors and [m.kind for m in result.marks] == ["samples"]


def test_a_fragment_or_stopped_run_keeps_reading_until_its_end():
    """script_finished 2 (stopped for a rerun) is not the end: the rerun's markers count too."""
    result = run([(0.0, caption("1 of 4 samples")), (0.0, finished(2)), (0.02, caption("4 of 4 samples")),
                  (0.0, finished(3))])
    assert result.status == 3 and [m.done for m in result.marks] == [1, 4]
    assert isinstance(result.marks[-1], Mark) and result.marks[-1].final


def new_session() -> ForwardMsg:
    msg = ForwardMsg()
    msg.new_session.page_script_hash = "h"
    return msg


def test_a_busy_run_is_left_and_the_next_action_starts_at_its_own_run():
    """The student acts on a load-limited answer while its run goes on: the next action's result counts
    from the first message of its own run (Streamlit sends no script_finished for a run it stops for a
    rerun, so the left run's leftovers are skipped up to the new run's new_session)."""
    session = Session("http://127.0.0.1:1", timeout=30)
    session.ws = FakeSocket([
        (0.0, caption("2 of 32 samples per point")),
        (0.01, caption("4 of 32 samples per point: the server is busy; it will refine when it is free")),
        (0.01, caption("8 of 32 samples per point")),  # the left run goes on ...
        (0.0, new_session()),  # ... until the next action's run starts
        (0.01, caption("keep_prob 0.8")),
        (0.0, finished()),
    ])

    async def go():
        import time
        first = await session._run(BackMsg(), time.perf_counter())
        assert session.open_run and first.marks[-1].kind == "busy"
        return await session._run(BackMsg(), time.perf_counter())

    second = asyncio.run(go())
    assert not session.open_run and not second.heavy and second.texts == ["keep_prob 0.8"] and second.status == 0


def test_a_page_change_forgets_the_last_pages_fragments():
    """The mask explorer draws the sidebar's live controls in its fragment; on another page a move of
    them is a full rerun (a rerun of a fragment the page does not have is never answered)."""
    session = Session("http://127.0.0.1:9")
    session.pages = {"Compare_methods": "hash-compare"}
    session.widget_ids = {"block_size": "id-b"}
    session.widget_fragments = {"block_size": "explorer-fragment"}
    sent = []

    async def rerun(page_hash, fragment_id="", follow=True):
        sent.append((page_hash, fragment_id, dict(session.widget_fragments)))
        return RunResult(0.0, 0, 0)

    session._rerun = rerun
    asyncio.run(session.goto("Compare_methods"))
    assert sent == [("hash-compare", "", {"block_size": ""})]
