"""ui/view.py: one mechanism for every view, keyed by its own arguments and declared settings."""

from __future__ import annotations

import dataclasses
import threading
import time
from types import SimpleNamespace

import pytest

import models as M
from ui import settings
from ui.inputs import Context
from ui.view import View, progressive, view


def ctx(**spec) -> Context:
    return Context(loaded=None, model_key="m", image=None, image_key="img", image_label="x", clean=None,
                   spec=M.RegularizerSpec(**spec), seed=0)


def counted(depends, **kwargs):
    seen = []

    def fn(c: Context, n: int = 1):
        seen.append((c.spec, c.seed))
        return (c.spec.keep_prob, c.spec.block_size, c.spec.placement, n)

    return view(depends=depends, **kwargs)(fn), seen


def test_a_view_is_computed_once_per_arguments_and_shared():
    v, seen = counted(settings.SPEC_KEYS + ("seed",))
    assert v(ctx(keep_prob=0.8), 2) == (0.8, 7, "after_group", 2)
    assert v(ctx(keep_prob=0.8), 2) == (0.8, 7, "after_group", 2)
    assert len(seen) == 1
    v(ctx(keep_prob=0.8), 3)
    v(ctx(keep_prob=0.7), 2)
    assert len(seen) == 3


def test_a_setting_the_view_does_not_declare_can_neither_change_nor_rekey_it():
    """The image-set bug by construction: the sidebar's keep_prob cannot restart a curve."""
    v, seen = counted(("placement", "seed"))
    first = v(ctx(keep_prob=0.8, block_size=3))
    again = v(ctx(keep_prob=0.6, block_size=5))
    assert first == again and len(seen) == 1
    assert seen[0][0].keep_prob == settings.BY_KEY["keep_prob"].default  # computed as if at its default
    assert seen[0][0].block_size == settings.BY_KEY["block_size"].default
    v(ctx(placement="in_blocks"))
    assert len(seen) == 2


def test_specs_passed_as_arguments_are_projected_too():
    seen = []
    v = view(depends=("seed",))(lambda c, spec: seen.append(spec) or spec.keep_prob)
    assert v(ctx(), M.RegularizerSpec(keep_prob=0.5)) == v(ctx(), M.RegularizerSpec(keep_prob=0.6))
    assert len(seen) == 1


def test_a_view_declares_only_real_settings_and_hashable_arguments():
    with pytest.raises(ValueError, match="expected settings"):
        view(depends=("keep_probability",))(lambda c: c)
    v = view()(lambda c, values: 0)
    with pytest.raises(TypeError):
        v(ctx(), [1, 2])


def test_identical_concurrent_requests_compute_once():
    gate, calls = threading.Event(), []

    def slow(c):
        calls.append(1)
        gate.wait(5)
        return 42

    v = view()(slow)
    out = []
    threads = [threading.Thread(target=lambda: out.append(v(ctx()))) for _ in range(6)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert out == [42] * 6 and len(calls) == 1


def test_a_heavy_view_runs_on_the_pool_with_progress():
    threads = []

    def work(c, progress):
        progress(0.5, "half")
        threads.append(threading.current_thread().name)
        return "done"

    v = view(heavy=True)(work)
    assert v(ctx()) == "done" and threads[0].startswith("heavy-")
    assert v.cached(ctx()) == "done"


def test_a_view_in_rounds_yields_each_round_then_the_final_one():
    parts = SimpleNamespace(made=0)

    def rounds(c, total, progress):
        for done in (2, 4, total):
            parts.made += 1
            yield SimpleNamespace(value=done * 10, done=done, total=total, final=done >= total)

    v = view(rounds=True)(rounds)
    seen = [p.done for p in v(ctx(), 8)]
    assert seen[-1] == 8 and seen == sorted(seen) and parts.made == 3
    assert [p.done for p in v(ctx(), 8)] == [8]  # the final result is kept: nothing runs again
    assert v.cached(ctx(), 8) == 80
    drawn = []
    assert progressive(v(ctx(), 8), drawn.append) == 80 and drawn == [80]


def test_views_are_view_objects_with_their_own_cache():
    from ui import views

    assert isinstance(views.robustness_curve, View) and "keep_prob" not in views.robustness_curve.depends
    assert "keep_prob" in views.mask_sample.depends
    assert views.mask_sample.results() is not views.mask_outcome.results()
    assert dataclasses.is_dataclass(settings.BY_KEY["keep_prob"])


def test_an_answer_ends_at_the_round_there_is_and_the_job_refines_on_a_lease():
    from models.rounds import Partial

    gate = threading.Event()

    def rounds(c, total, progress):
        for done in (1, 2, total):
            if done > 1:
                assert gate.wait(20)
            yield Partial(done * 10, done, total)

    v = view(rounds=True)(rounds)
    first = list(v(ctx(), 4).answer())
    assert [p.done for p in first] == [1]  # the first round, then the run is free
    gate.set()  # the job refines with nobody waiting: its final is kept by the worker itself
    deadline = time.monotonic() + 20
    while v.cached(ctx(), 4) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert v.cached(ctx(), 4) == 40
    drawn = []
    assert progressive(v(ctx(), 4), drawn.append) == 40 and drawn == [40]


@pytest.mark.parametrize("how", ["answer", "whole"])
def test_a_view_in_rounds_that_fails_before_its_first_round_raises_at_once(how):
    # The job ends (version 1) with no partial: the wait for its first round must see the end and
    # raise, not spin on a version that never matches (it held a core and the script run forever).
    def rounds(c, total, progress):
        raise ValueError("no rounds for this image")
        yield  # a generator

    v = view(rounds=True)(rounds)
    done = []

    def ask():
        try:
            parts = v(ctx(), 4)
            list(parts.answer()) if how == "answer" else list(parts)
        except ValueError as err:
            done.append(str(err))

    t = threading.Thread(target=ask, daemon=True)
    t.start()
    t.join(30)
    assert done == ["no rounds for this image"]


@pytest.mark.parametrize("how", ["final", "answer"])
def test_a_view_whose_only_round_ends_between_the_reads_of_its_round_and_its_end_is_still_shown(how, monkeypatch):
    # The interleaving: the wait reads "no round yet", then the job publishes its one final round
    # and ends, then the wait sees the end. A job that ended with no round is over; this one is not,
    # and its round must still be yielded (not "nothing": the page drew no result, final() gave None).
    from models.rounds import Partial
    from ui import waiting

    gate = threading.Event()

    def rounds(c, total, progress):
        assert gate.wait(20)
        yield Partial(total * 10, total, total)

    class Late:  # the job, whose first read of its round lets the round run and returns when it ended
        def __init__(self, job) -> None:
            self.__dict__["job"], self.__dict__["first"] = job, True

        def __getattr__(self, name):
            return getattr(self.job, name)

        @property
        def latest(self):
            if self.first and not self.job.done.is_set():
                self.__dict__["first"] = False
                gate.set()
                assert self.job.wait(20)
                return None
            return self.job.latest

    submit = waiting.submit
    monkeypatch.setattr(waiting, "submit", lambda *a, **k: Late(submit(*a, **k)))
    v = view(rounds=True)(rounds)
    if how == "final":
        from ui.view import final

        assert final(v(ctx(), 4)) == 40
    else:
        assert [p.value for p in v(ctx(), 5).answer()] == [50]


def test_a_view_that_fails_while_refining_shows_its_error_at_the_next_look_without_running_again():
    from models.rounds import Partial

    starts, shown = [], threading.Event()

    def rounds(c, total, progress):
        starts.append(1)
        yield Partial(10, 1, total)
        assert shown.wait(20)
        yield Partial(20, 2, total)
        raise ValueError("round 3 failed")

    v = view(rounds=True)(rounds)
    assert [p.value for p in v(ctx(), 8).answer()] == [10]  # the first answer; the job refines, then fails
    shown.set()
    ticks = []
    for _ in range(200):  # a refining fragment's ticks (every 2 s in the page; here at once)
        time.sleep(0.05)
        try:
            ticks.append([p.value for p in v(ctx(), 8).answer(wait=False)])
        except ValueError as err:
            ticks.append(str(err))
            break
    assert ticks[-1] == "round 3 failed" and len(starts) == 1  # said, and the rounds were not started again
