"""models/offload.py: heavy rounds in helper processes. The same partials as in-process, progress
and cancellation forwarded, errors re-raised, a dead helper's job finished in-process, shared
objects sent once and forgotten, nothing started at import."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from models import offload
from models.jobs import Cancelled
from tests import polling

HERE = Path(__file__).resolve().parent
WAIT = 60.0  # generous: a helper imports torch on a machine that may be 2x slower and busy


@pytest.fixture(scope="module", autouse=True)
def importable():
    """offload_fns importable here and in the helpers (which start with this PYTHONPATH)."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), before or ""])
    sys.path.insert(0, str(HERE))
    yield
    sys.path.remove(str(HERE))
    if before is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = before


@pytest.fixture
def one_helper(importable):
    """A helper of its own for a test that kills or exhausts it (started, ready; stopped after)."""
    h = offload.Helpers(1)
    assert h.wait_ready(WAIT)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def helpers(importable):
    h = offload.Helpers(1)
    assert h.wait_ready(WAIT)
    yield h
    h.stop()


def fn(name: str) -> str:
    return f"offload_fns:{name}"


def until(condition, timeout: float = WAIT) -> bool:
    return polling.until(condition, timeout, every=0.01)


def test_rounds_run_in_the_helper_and_equal_the_in_process_ones(helpers):
    import offload_fns

    reports = []
    remote = list(helpers.rounds(fn("counting"), (4,), {"scale": 2.0}, lambda f, t: reports.append((f, t))))
    local = list(offload_fns.counting(4, scale=2.0))
    assert [p.done for p in remote] == [p.done for p in local] == [1, 2, 3, 4]
    assert all(p.value[2] == helpers.pids()[0] != os.getpid() for p in remote)  # computed there
    for r, l in zip(remote, local):
        torch.testing.assert_close(r.value[0], l.value[0])
        torch.testing.assert_close(r.value[1], l.value[1])
    assert remote[0].value[0] is remote[-1].value[0]  # the big tensor came once, then by key
    assert reports == [(i / 4, "counting") for i in range(4)]


def test_the_helpers_error_is_raised_here_with_its_type(helpers):
    it = helpers.rounds(fn("failing"), (), {})
    assert next(it).done == 1
    with pytest.raises(ValueError, match="expected a failure here"):
        next(it)
    assert [p.done for p in helpers.rounds(fn("counting"), (2,), {})] == [1, 2]  # the helper goes on


def test_a_cancel_stops_the_round_in_the_helper_at_its_next_report(helpers, tmp_path):
    calls = []

    def progress(fraction, text):
        calls.append(text)
        if len(calls) >= 3:
            raise Cancelled

    it = helpers.rounds(fn("reporting_until"), (str(tmp_path / "never"),), {}, progress)
    started = time.monotonic()
    with pytest.raises(Cancelled):
        next(it)
    it.close()
    assert time.monotonic() - started < WAIT / 2  # stopped, not run to its 60 s deadline
    assert [p.done for p in helpers.rounds(fn("counting"), (2,), {})] == [1, 2]  # and the helper serves the next


def test_a_function_that_is_no_rounds_is_refused_like_in_process(helpers):
    with pytest.raises(TypeError, match="iterator of rounds"):
        list(helpers.rounds(fn("plain"), (), {}))


def test_an_argument_that_cannot_be_pickled_runs_in_process(helpers):
    import threading

    before = helpers.in_process
    with pytest.raises(TypeError, match="unexpected keyword"):  # a lock has no pickle: run here, failing as here
        list(helpers.rounds(fn("counting"), (2,), {"unpicklable": threading.Lock()}))
    assert helpers.in_process == before + 1


def test_a_clean_pass_is_sent_once_and_forgotten_when_it_goes(helpers, lite0, coffee_clean):
    import dataclasses

    clean = dataclasses.replace(coffee_clean)  # a new object: its own token
    first = list(helpers.rounds(fn("of_clean"), (clean,), {}))
    helper = helpers._helpers[0]
    token = helpers._token(clean)
    assert token in helper.held
    again = list(helpers.rounds(fn("of_clean"), (clean,), {}))
    assert first[0].value == again[0].value and abs(first[0].value[0] - float(clean.logits.double().sum())) < 1e-6
    del clean, first, again
    gc.collect()
    assert token not in helper.held and token in helper.forgotten
    list(helpers.rounds(fn("counting"), (1,), {}))  # the next message tells the helper first
    assert token not in helper.forgotten


def test_a_helper_that_dies_mid_job_is_replaced_and_the_job_finishes_here(one_helper):
    h = one_helper
    it = h.rounds(fn("counting"), (4,), {})
    first = next(it)
    pid = first.value[2]
    os.kill(pid, signal.SIGKILL)
    rest = list(it)
    assert [p.done for p in [first, *rest]] == [1, 2, 3, 4]  # the same sequence, none repeated
    assert all(p.value[2] == os.getpid() for p in rest)  # finished here
    list(h.rounds(fn("counting"), (1,), {}))  # the next job finds the helper dead: runs here, starts a new one
    assert h.restarts == 1 and until(lambda: h.ready() == 1)
    out = list(h.rounds(fn("counting"), (1,), {}))
    assert out[0].value[2] not in (pid, os.getpid())  # the new helper serves it


def test_no_helpers_means_every_round_in_process():
    h = offload.Helpers(0)
    out = list(h.rounds(fn("counting"), (2,), {}))
    assert [p.value[2] for p in out] == [os.getpid()] * 2 and not h._helpers


def test_importing_and_making_helpers_starts_no_process():
    code = ("import threading, models.offload as o; h = o.Helpers(2); "
            "assert not h._helpers and threading.active_count() == 1; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE.parents[1], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_a_stopped_pool_of_helpers_leaves_no_process():
    h = offload.Helpers(1)
    assert h.wait_ready(WAIT)
    pid = h.pids()[0]
    h.stop()
    assert until(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2])


def test_past_the_restart_limit_a_dead_helper_is_not_replaced_nor_left_a_zombie(monkeypatch, one_helper):
    monkeypatch.setattr(offload, "MAX_RESTARTS", 0)
    h = one_helper
    pid = h.pids()[0]
    os.kill(pid, signal.SIGKILL)
    assert until(lambda: h.ready() == 0)
    out = list(h.rounds(fn("counting"), (2,), {}))
    assert [p.value[2] for p in out] == [os.getpid()] * 2  # here, and no new helper
    assert h.restarts == 0 and h.ready() == 0 and not h.pids()
    # The dead one is reaped by a later job (it may end a moment after its socket does), not left a
    # zombie till the server exits.
    assert until(lambda: bool(list(h.rounds(fn("counting"), (1,), {}))) and not Path(f"/proc/{pid}").exists())


def test_no_process_to_be_had_means_every_round_in_process(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("expected a refusal here, and got it")

    monkeypatch.setattr(offload.subprocess, "Popen", refuse)
    h = offload.Helpers(2)
    h.start()
    assert h.n == 0 and not h._helpers and h.ready() == 0
    out = list(h.rounds(fn("counting"), (1,), {}))
    assert out[0].value[2] == os.getpid()


def test_a_stopped_helper_holds_no_job_forever(monkeypatch):
    """A helper that stops answering (SIGSTOP, a hang) while it owes a round: the job is finished here
    (it was waiting on a queue with no bound, its worker and its cancel stuck with it)."""
    import threading

    monkeypatch.setattr(offload, "STALL_S", 0.5)
    h = offload.Helpers(1)
    try:
        assert h.wait_ready(WAIT)
        pid = h.pids()[0]
        os.kill(pid, signal.SIGSTOP)
        out: list = []
        worker = threading.Thread(target=lambda: out.extend(h.rounds(fn("counting"), (2,), {})), daemon=True)
        worker.start()
        worker.join(WAIT)
        assert not worker.is_alive()  # not stuck behind the stopped helper
        assert [(p.done, p.value[2]) for p in out] == [(1, os.getpid()), (2, os.getpid())]  # here, in full
        assert until(lambda: gone(pid))  # and the stopped one was ended, not left behind
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
        h.stop()


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


def test_a_running_job_keeps_no_pickled_copy_of_what_it_sent(helpers, lite0):
    """The model goes to a helper pickled (Lite0 ~20 MB, ResNet-50 ~100 MB): once sent, the job that
    sent it, which may refine for minutes, holds no copy of those bytes."""
    it = helpers.rounds(fn("of_model"), (lite0,), {})
    next(it)
    frame = it.gi_frame
    held = [v for v in frame.f_locals.values()
            for v in ([v] if not isinstance(v, (list, tuple)) else [x for item in v for x in
                      (item if isinstance(item, tuple) else (item,))])
            if isinstance(v, bytes) and len(v) > 1 << 20]
    it.close()
    assert not held, [len(b) for b in held]


def test_a_big_tensor_changed_in_place_between_rounds_comes_again(helpers):
    """The per-job memo sends each big tensor once; a round that changed it in place (a running sum)
    must send it again, or the page would show the first round's numbers for good."""
    remote = [float(p.value[0, 0]) for p in helpers.rounds(fn("accumulating"), (3,), {})]
    assert remote == [1.0, 2.0, 3.0]


def test_a_round_made_in_inference_mode_comes_back(helpers):
    before = helpers.in_process
    out = list(helpers.rounds(fn("inferred"), (2,), {}))
    assert [p.value[1] for p in out] == [helpers.pids()[0]] * 2 and helpers.in_process == before


def test_a_round_that_cannot_be_pickled_runs_here_and_the_helper_lives_on(helpers):
    """A round the helper cannot send: the job runs in the app, and the helper is not lost (a crash
    counted against the restart limit: a few such jobs would have left every round in the app)."""
    pid, before = helpers.pids()[0], helpers.in_process
    out = list(helpers.rounds(fn("unpicklable"), (), {}))
    assert out[0].value[1] == os.getpid() and helpers.in_process == before + 1
    assert helpers.pids() == [pid] and helpers.restarts == 0
    assert [p.value[2] for p in helpers.rounds(fn("counting"), (1,), {})] == [pid]


def test_a_progress_text_keeps_its_template_for_the_sessions_language(helpers):
    """A progress report's text comes as it was reported (a Text: template and fields), so that the
    waiting line translates it as it does in-process, not as a plain English string."""
    from models.text import Text

    texts = []
    list(helpers.rounds(fn("reporting_text"), (), {}, lambda f, t: texts.append(t)))
    assert len(texts) == 1 and isinstance(texts[0], Text)
    assert texts[0].template == "{method}, keep_prob {keep_prob:g}" and dict(texts[0].fields)["method"] == "DropBlock"


def test_models_switched_again_and_again_are_never_confused_in_the_helper(helpers, lite0):
    """A model let go and another made in its place (an id may be reused): each job runs with the
    weights of the model it was given, as in-process."""
    import copy

    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for shift in (0.0, 5.0, -3.0, 5.0):
        model = copy.deepcopy(lite0)
        with torch.no_grad():
            model.backbone.model._fc.bias[0] += shift
            want = float(model.backbone.model(x)[0, 0])
        got = list(helpers.rounds(fn("model_logit"), (model, x), {}))[0].value
        assert abs(got - want) < 1e-3, (shift, got, want)
        del model
        gc.collect()


def test_the_helpers_error_keeps_its_trace_for_the_server_log(helpers):
    """The server log's trace of a view that failed in a helper shows where it failed there (as
    concurrent.futures does: the remote trace as the cause), not only the line that re-raised it."""
    import traceback

    it = helpers.rounds(fn("failing"), (), {})
    next(it)
    with pytest.raises(ValueError) as caught:
        next(it)
    logged = "".join(traceback.format_exception(caught.value))
    assert "offload_fns.py" in logged and "in failing" in logged, logged


def test_a_new_job_goes_to_a_helper_that_is_not_computing(importable, tmp_path):
    """Two helpers, each holding one job: one computes a long round, the other is between rounds. A
    new job goes to the one that is not computing (by jobs held alone they tie, and the first helper,
    the busy one, would be taken)."""
    import threading

    h = offload.Helpers(2)
    try:
        assert h.wait_ready(WAIT)
        gate = tmp_path / "go"
        long = h.rounds(fn("reporting_until"), (str(gate),), {}, lambda f, t: None)
        done = []
        thread = threading.Thread(target=lambda: done.append(next(long)), daemon=True)
        thread.start()  # a round that waits in the first helper until the gate file exists
        assert until(lambda: h._helpers[0].busy == 1)
        parked = h.rounds(fn("counting"), (3,), {})
        first = next(parked)  # a job living in the second helper, between rounds
        assert first.value[2] == h._helpers[1].proc.pid
        out = list(h.rounds(fn("counting"), (1,), {}))
        assert out[0].value[2] == h._helpers[1].proc.pid  # not queued behind the long round
        gate.touch()
        thread.join(WAIT)
        assert done and done[0].value == "went on"
        assert [p.done for p in [first, *parked]] == [1, 2, 3]
    finally:
        h.stop()
