"""Stopping a wait at once when the visitor has moved on (Streamlit internals, in one place).

Each ``st`` call is where Streamlit stops a script run for a rerun, another page or a closed tab.
While a page waits for a heavy job, a pending stop or rerun should take effect right away, not at
the next redraw. And Streamlit lets a fragment's rerun (a control inside the fragment moved) wait
until the run in progress ends, so the job would run to its end for nothing: a pending rerun of the
fragment the wait was asked from is made to preempt the run (the whole app's rerun from a full run,
carrying every widget's state as the browser sends them; the fragment's own from a fragment run).

This reads ``ScriptRequests``' private state (Streamlit 1.67, pinned in requirements.txt;
``tests/app/test_superseded_jobs.py`` checks the behaviour on the real server). Without it, a wait
stops at the next redraw, as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from streamlit.runtime.scriptrunner import get_script_run_ctx


def interruption() -> Callable[[], bool]:
    """A function telling whether the next st call stops this run (see the module's docstring)."""
    from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType
    from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

    run_ctx = get_script_run_ctx()
    requests = getattr(run_ctx, "script_requests", None)
    try:
        fragment = ThreadState.get().fragment_id
    except RuntimeError:  # no script run (bare mode, tests)
        fragment = None

    def interrupted() -> bool:
        if requests is None or getattr(requests, "_state", ScriptRequestType.CONTINUE) == ScriptRequestType.CONTINUE:
            return False
        with requests._lock:
            if requests._state != ScriptRequestType.RERUN:
                return requests._state == ScriptRequestType.STOP
            data = requests._rerun_data
            if not data.fragment_id_queue or data.is_fragment_scoped_rerun:
                return True  # a rerun that preempts this run anyway
            if fragment is None or fragment not in data.fragment_id_queue:
                return False  # another fragment's rerun: it waits for this run, which is still wanted
            in_fragment_run = bool(run_ctx.fragment_ids_this_run)
            requests._rerun_data = dataclasses.replace(
                data, fragment_id_queue=data.fragment_id_queue if in_fragment_run else [],
                is_fragment_scoped_rerun=in_fragment_run)
            return True

    return interrupted


def pending() -> Callable[[], bool]:
    """A function telling whether any rerun or stop is pending for this session (another fragment's
    rerun included, which Streamlit holds until this run ends): a view refining in rounds then stops
    waiting, so that what the visitor asked for runs now."""
    from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType

    requests = getattr(get_script_run_ctx(), "script_requests", None)
    return lambda: requests is not None and getattr(requests, "_state", None) not in (None, ScriptRequestType.CONTINUE)


def session_alive(owner) -> bool:
    """Whether the session ``owner`` is still connected (a tab closed: its held jobs are dropped).
    Owners that are not sessions (threads, tests) count as alive."""
    if not isinstance(owner, str) or owner.startswith("thread-"):
        return True
    try:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return True
        return Runtime.instance()._session_mgr.get_active_session_info(owner) is not None  # noqa: SLF001
    except Exception:  # noqa: BLE001 -- Streamlit internals moved: keep the job, its lease still ends it
        return True


def stop_ticking() -> None:
    """Tell the browser to stop rerunning the fragment that runs now (Streamlit's stop_auto_rerun,
    the message it sends itself when a ticking fragment is no longer drawn)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

    try:
        fragment = ThreadState.get().fragment_id
    except RuntimeError:
        return
    run = get_script_run_ctx()
    if fragment and run is not None:
        msg = ForwardMsg()
        msg.stop_auto_rerun.fragment_ids.append(fragment)
        run.enqueue(msg)
