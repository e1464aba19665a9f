"""The bundled samples' shared scans, prepared when the default model loads (ui/prepare.py).

A class starts on the bundled samples. The curve page's keep_prob scan, the theory page's deep scan
and the lesson's two scans depend on the model and the image only, so they are started for nobody
(``ui.waiting.Rounds.ahead``) when the pinned model loads: after every round a session waits for,
kept with the view's results, found by every session whatever its keep_prob, block_size and seed.
The real model (Lite0)."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time

import pytest
import torch

import models as M
from models import jobs
from models.compute import DEFAULT_CURVE_METHODS
from models.keepgrid import compute_keep_prob_scan_rounds
from models.rounds import last
from ui import inputs, prepare, settings, views
from ui.lesson_curves import curve_grid, curve_grid_scan, strategy_scan
from ui.lesson_steps import STEPS
from ui.waiting import AHEAD, pool

from tests import polling

from .conftest import ROOT, assert_clean, new_app


@pytest.fixture(scope="module")
def loaded():
    return M.load_model(allow_download=False, device=torch.device("cpu"))


def _done(jobs, timeout_s: float = 300.0) -> None:
    for job in jobs:
        assert job.done.wait(timeout_s), "a prepared job did not finish"
        assert job.error is None, job.error


def test_sample_contexts_are_those_of_a_session_that_set_nothing(loaded):
    contexts = list(inputs.sample_contexts(loaded))
    default = settings.BY_KEY["image"].default
    names = [default] + sorted(n for n in inputs.SAMPLE_FILES if n != default)
    assert sorted(c.image_key for c in contexts) == sorted(
        hashlib.sha256(inputs.SAMPLE_FILES[n].read_bytes()).hexdigest() for n in names)
    assert contexts[0].image_key == hashlib.sha256(inputs.SAMPLE_FILES[default].read_bytes()).hexdigest()
    bb = loaded.backbone
    for ctx in contexts:
        assert ctx.spec == settings.default_spec() and ctx.seed == settings.BY_KEY["seed"].default
        assert ctx.model_key == inputs.model_key(loaded) and ctx.loaded is loaded
        assert ctx.image.size == (224, 224)
    image = M.decode_image((ROOT / "assets" / f"{default}.jpg").read_bytes())
    torch.testing.assert_close(contexts[0].clean.logits, M.clean_pass(bb, loaded.preprocess(image)).logits)


def test_prepared_scans_are_the_ones_every_session_asks_for(loaded):
    ctx = next(inputs.sample_contexts(loaded))
    student = dataclasses.replace(ctx, spec=dataclasses.replace(ctx.spec, keep_prob=0.7, block_size=9), seed=4321)
    paper = views.curve_spec(student.spec, "paper")
    curve_scan = views.curve_scan(student, paper)
    deep_key = views.keep_prob_scan.key(student, views.DEEP, views.DEEP_METHODS)[0]
    scans = prepare.shared_scans(ctx)
    assert len(scans) == 4 and len({r.key for r in scans}) == 4 and all(r.finish for r in scans)
    assert scans[0].key == curve_scan.key and scans[1].key == deep_key
    held = sum(r.final() is not None for r in scans)  # (another test in this process may have prepared some)
    jobs = prepare.prepare(ctx)
    assert len(jobs) == 4 - held
    for job in jobs:
        assert AHEAD not in job.owners and job.finish  # owned by nobody: after every round someone waits for
    _done(jobs)
    found = curve_scan.final()
    assert found is not None and found.final
    # the numbers of the scan computed directly: seed 0, the paper's placement, four draws a point
    spec = dataclasses.replace(views.curve_spec(settings.default_spec(), "paper"), keep_prob=1.0, block_size=1)
    direct = last(compute_keep_prob_scan_rounds(loaded.backbone, ctx.clean, spec, methods=DEFAULT_CURVE_METHODS,
                                                n_samples=4, seed=0)).value
    assert found.value.keep_probs == direct.keep_probs and found.value.grid == pytest.approx(direct.grid, abs=1e-4)
    torch.testing.assert_close(found.value.ratio, direct.ratio, rtol=1e-4, atol=1e-4)
    # the theory page's deep scan is held: deep_middle finds it (its computation would fail here)
    assert views.keep_prob_scan.results().peek(deep_key) is not None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(views, "compute_keep_prob_scan_rounds", lambda *a, **k: pytest.fail("deep_middle computed the scan again"))
        assert 0.0 < views.deep_middle(student) <= 1.0
    # the lesson's steps 5 and 8 read theirs without computing
    step = {s.run.__name__: s for s in STEPS}
    assert curve_grid_scan(student, step["measure_figure5"]).final() is not None
    assert strategy_scan(student, step["measure_strategy"]).final() is not None
    computations = pool().computations
    assert len(curve_grid(student, step["measure_figure5"])) >= 2
    assert pool().computations == computations
    assert prepare.prepare(student) == []  # held: nothing starts again


def test_ahead_is_only_for_views_finished_for_everyone(loaded):
    ctx = next(inputs.sample_contexts(loaded))
    with pytest.raises(ValueError, match="finish"):
        views.robustness_curve(ctx, views.curve_spec(ctx.spec, "paper"), 4, (1.0, 0.9)).ahead()


def test_a_session_asking_for_a_prepared_scan_joins_it(loaded):
    """Asked while it runs (a class arriving as the server starts): the session's wait is that job's."""
    ctx = next(inputs.sample_contexts(loaded))
    rounds = views.keep_prob_scan(ctx, views.curve_spec(ctx.spec, "sidebar"), (("dropblock", 3),),
                                  coarse=(1.0, 0.9, 0.7), n_samples=3)
    if rounds.final() is not None:
        pytest.skip("held already in this process")
    job = rounds.ahead()
    assert job is not None and job.owners == set()
    joined = pool().submit("a session", rounds.key, lambda progress: None, finish=True)
    assert joined is job and job.owners == {"a session"}
    pool().release("a session", job)
    _done([job])
    assert rounds.final() is not None and rounds.ahead() is None


@pytest.fixture
def prepared(monkeypatch):
    """Every ``prepare.prepare(ctx)`` call the app makes, as (ctx, jobs started), with one bundled sample
    (the default: quicker)."""
    default = settings.BY_KEY["image"].default
    monkeypatch.setattr(inputs, "SAMPLE_FILES", {default: inputs.SAMPLE_FILES[default]})
    started = []
    real = prepare.prepare

    def recorded(ctx):
        jobs = real(ctx)
        started.append((ctx, jobs))
        return jobs

    monkeypatch.setattr(prepare, "prepare", recorded)
    return started


def test_the_app_prepares_the_samples_once_when_the_default_model_loads(monkeypatch, loaded, prepared):
    """Through the app: the pinned model's first load starts it (once); DROPBLOCK_LAB_PREPARE=0 turns it off."""
    started = prepared
    for env, expected in (("0", 0), ("1", 1)):
        monkeypatch.setenv(inputs.ENV_PREPARE, env)
        inputs.models.clear()  # a new model cache: a first load
        at = new_app()
        at.run()
        assert_clean(at)
        at.run()  # a rerun loads nothing: nothing more is prepared
        deadline = time.monotonic() + 60
        while len(started) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(started) == expected, env
    (ctx, jobs), = started
    assert ctx.image_key == hashlib.sha256(inputs.SAMPLE_FILES[settings.BY_KEY["image"].default].read_bytes()).hexdigest()
    _done(jobs)
    assert views.curve_scan(ctx, views.curve_spec(ctx.spec, "paper")).final() is not None


def test_a_pinned_model_whose_loading_run_stopped_before_preparing_is_prepared_by_the_next_run(monkeypatch, loaded,
                                                                                             prepared):
    """The run that loads the pinned model can stop where the loading spinner ends (Streamlit raises a
    rerun or a closed tab at that element), before it starts the preparation; every later run finds
    the model loaded. One of them must still start it (once)."""
    started = prepared
    monkeypatch.setenv(inputs.ENV_PREPARE, "1")
    inputs.models.clear()  # a new model cache: a first load
    pinned = inputs._spec(M.DEFAULT_ARCH, inputs._default_weights(M.DEFAULT_ARCH))
    inputs.models().get(pinned, pin=True)  # loaded by a run that stopped before it prepared anything
    at = new_app()
    at.run()
    assert_clean(at)
    at.run()
    deadline = time.monotonic() + 60
    while not started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(started) == 1
    (ctx, jobs), = started
    _done(jobs)


def test_the_theory_page_joins_a_prepared_deep_scan_that_is_running_instead_of_computing_it_again(monkeypatch, loaded):
    """A class opening the theory page while the prepared scans run: its deep arm's middle
    (``views.deep_middle``) is that scan's, computed once. The prepared job is held in its first round
    until the page has asked (joined it, or started a computation of its own)."""
    contexts = [c for c in inputs.sample_contexts(loaded)
                if views.keep_prob_scan(c, views.DEEP, views.DEEP_METHODS).final() is None]
    if not contexts:
        pytest.skip("every sample's deep scan is held already in this process")
    ctx = contexts[-1]
    computed, asked = [], threading.Event()
    real = views.compute_keep_prob_scan_rounds

    def counted(*args, **kwargs):
        computed.append(1)
        if len(computed) == 1:  # the prepared job's first round: running until the page has asked
            assert asked.wait(120)
        return real(*args, **kwargs)

    monkeypatch.setattr(views, "compute_keep_prob_scan_rounds", counted)
    job = views.keep_prob_scan(ctx, views.DEEP, views.DEEP_METHODS).ahead()
    assert job is not None and polling.until(lambda: job.started, 120)
    student = dataclasses.replace(ctx, spec=dataclasses.replace(ctx.spec, keep_prob=0.7), seed=99)
    found = {}
    page = threading.Thread(target=lambda: found.update(middle=views.deep_middle(student)), daemon=True)
    page.start()
    assert polling.until(lambda: job.owners or len(computed) > 1, 120)  # joined, or computing it again
    asked.set()
    page.join(300)
    _done([job])
    assert len(computed) == 1  # once: the prepared job's
    assert found["middle"] == job.value().value.middle()


def test_the_scans_prepared_for_every_sample_stay_held_beside_a_class_s_own(loaded):
    """The keep_prob scans' results hold every bundled sample's prepared scans and still have room: a
    session's own scan (the curve at the sidebar's placement, a step 8 fine scan ...) must not evict
    one a later visitor of another page or sample needs (16 held exactly 4 samples x 4: the first such
    scan evicted the default sample's oldest)."""
    contexts = list(inputs.sample_contexts(loaded))
    prepared = [r.key for ctx in contexts for r in prepare.shared_scans(ctx)]
    assert len(set(prepared)) == len(prepared) == len(contexts) * views.SCANS_PREPARED_PER_SAMPLE
    ctx = contexts[0]
    step = {s.run.__name__: s for s in STEPS}["measure_strategy"]
    own = [views.curve_scan(ctx, views.curve_spec(ctx.spec, "sidebar")).key,
           views.curve_scan(ctx, views.curve_spec(dataclasses.replace(ctx.spec, act_site="before_act"), "paper")).key]
    own += [views.keep_prob_scan(c, step.spec, (("dropblock", None),), coarse=(0.9, 0.8), n_samples=16).key
            for c in contexts]  # step 8's fine scan on each sample
    held = jobs.SingleFlight(max_entries=views.keep_prob_scan.keep)  # the view's own bound, without its results
    for key in prepared + own:
        held.put(key, object())
    assert set(prepared) <= set(held.keys())


def test_only_the_pinned_model_is_prepared(monkeypatch):
    """Another network chosen in the sidebar loads for that session only: nothing is prepared for it."""
    asked = []
    monkeypatch.setattr(prepare, "prepare_samples", lambda loaded: asked.append(loaded))  # what _get calls
    monkeypatch.setenv(inputs.ENV_PREPARE, "1")
    inputs.models.clear()
    at = new_app()
    at.run()
    assert_clean(at)
    pinned = {inputs.model_key(m) for m in asked}
    assert len(pinned) == 1
    at.sidebar.selectbox(key="arch").set_value("resnet18").run()
    at.sidebar.selectbox(key="weights").set_value("untrained").run()
    assert_clean(at)
    assert "ResNet-18" in " ".join(c.value for c in at.sidebar.caption)  # the other network is the one shown
    assert {inputs.model_key(m) for m in asked} == pinned


def test_a_session_that_set_nothing_asks_for_the_keys_prepared_for_it(monkeypatch):
    """The prepared contexts are built beside the app (settings.default_spec, the samples' own keys): the
    context a real session's page builds must give the same four keys, or nobody finds what was prepared."""
    seen = []

    def recorded(ctx, spec):
        seen.append((ctx, spec))
        raise RuntimeError("recorded")  # the page's guard says so; only the context is wanted

    monkeypatch.setattr(views, "curve_scan", recorded)
    at = new_app()
    at.run()
    at.switch_page("pages/4_Robustness_curve.py").run()
    (session, spec), = seen
    assert spec == views.curve_spec(session.spec, "paper")  # the page's default placement
    prepared = next(inputs.sample_contexts(session.loaded))
    monkeypatch.undo()
    assert [r.key for r in prepare.shared_scans(session)] == [r.key for r in prepare.shared_scans(prepared)]
