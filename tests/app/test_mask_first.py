"""Mask explorer, masks first (issue 9): the masks and their numbers are drawn before the network
after the site runs, and moving the page's own slider never re-runs that network."""

from __future__ import annotations

import torch

import models as M
from ui import views

from .conftest import PAGES, ROOT, new_app


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label))


def test_the_masks_are_drawn_before_the_outcome_is_asked_for(monkeypatch):
    """With the rest of the network failing, the title, γ, the metrics and the animation section are
    on the page already (above the friendly error), with the numbers of the library's own view."""
    calls: list[str] = []
    real_sample = M.compute_mask_sample_at  # the explorer's draw, on the cached site input

    def sample(*args, **kwargs):
        calls.append("sample")
        return real_sample(*args, **kwargs)

    def outcome(*args, **kwargs):
        calls.append("outcome")
        raise RuntimeError("the network after the site failed")

    monkeypatch.setattr(M, "compute_mask_sample_at", sample)
    monkeypatch.setattr(M, "compute_mask_outcome", outcome)
    at = new_app().run().switch_page(PAGES[0])
    at.sidebar.number_input(key="seed").set_value(7321)  # a seed no other test caches
    at.run()
    assert calls == ["sample", "outcome"]
    assert any("Something went wrong" in e.value for e in at.error)
    assert not at.exception  # the friendly message only, no Streamlit error box
    assert not at.table  # no top-5 table: it needs the outcome
    bb = M.load_model(allow_download=False).backbone
    clean = M.clean_pass(bb, M.to_input(M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes()), bb.mean, bb.std))
    view = M.compute_mask_sample(bb, clean, M.RegularizerSpec(), seed=7321)
    assert _metric(at, "γ") == f"{view.gamma:.5f}"
    assert _metric(at, "Realised drop") == f"{view.realised_drop:.3f}"
    assert any(e.label == "Animation for slides" for e in at.expander)


def test_the_channels_slider_does_not_rerun_the_network(monkeypatch):
    counts = {"sample": 0, "outcome": 0}
    real = {"sample": M.compute_mask_sample_at, "outcome": M.compute_mask_outcome}

    def counted(name):
        def compute(*args, **kwargs):
            counts[name] += 1
            return real[name](*args, **kwargs)
        compute.__name__ = real[name].__name__  # the cache keys on the function's name
        return compute

    monkeypatch.setattr(M, "compute_mask_sample_at", counted("sample"))
    monkeypatch.setattr(M, "compute_mask_outcome", counted("outcome"))
    at = new_app().run().switch_page(PAGES[0])
    at.sidebar.number_input(key="seed").set_value(7322)  # a seed no other test caches
    at.run()
    assert counts == {"sample": 1, "outcome": 1} and at.table
    top5 = at.table[0].value
    at.slider(key="explorer_channels").set_value(4).run()
    assert counts == {"sample": 2, "outcome": 1}  # new channels: the masks again, the network not
    assert at.table[0].value.equals(top5)
    assert not at.exception and not at.error


def test_an_error_when_only_the_fragment_reruns_is_a_friendly_message(monkeypatch):
    """The page's own slider reruns only its fragment, outside run_page: the fragment's own guard
    (state.fragment) turns an error into the same message, never Streamlit's error box."""
    at = new_app().run().switch_page(PAGES[0])
    at.sidebar.number_input(key="seed").set_value(7323)  # a seed no other test caches
    at.run()
    assert not at.exception and not at.error

    def broken(*args, **kwargs):
        raise RuntimeError("masks failed")

    monkeypatch.setattr(M, "compute_mask_sample_at", broken)
    at.slider(key="explorer_channels").set_value(5).run()
    assert not at.exception
    assert any("Something went wrong" in e.value for e in at.error)


def test_a_keep_prob_move_runs_no_layer_and_a_placement_change_rekeys_the_site_input(monkeypatch):
    """The light route: the first site's input is a view of its own, keyed by model, image and
    placement; keep_prob and block_size moves draw new masks on it and run no layer of the network
    (the outcome below the masks runs the network, as it must); a placement change computes it anew."""
    runs = {"site input": 0, "layers in the draw": 0}
    real_site, real_draw = M.first_site_input, M.compute_mask_sample_at

    def site_input(*args, **kwargs):
        runs["site input"] += 1
        return real_site(*args, **kwargs)

    def draw(*args, **kwargs):
        called = []  # every module forward while the masks are drawn: there must be none
        hook = torch.nn.modules.module.register_module_forward_hook(lambda module, inputs, out: called.append(module))
        try:
            return real_draw(*args, **kwargs)
        finally:
            hook.remove()
            runs["layers in the draw"] += len(called)

    monkeypatch.setattr(M, "first_site_input", site_input)
    monkeypatch.setattr(M, "compute_mask_sample_at", draw)
    at = new_app().run().switch_page(PAGES[0])
    at.sidebar.number_input(key="seed").set_value(7324)  # a seed no other test caches
    at.run()
    views.site_input.results().clear()  # held by every session of the process: start from none
    computed = views.site_input.results().computations
    at.sidebar.radio(key="placement").set_value("in_blocks").run()  # the site inside a block: layers reach it
    assert not at.exception and not at.error
    assert (runs["site input"], views.site_input.results().computations - computed) == (1, 1)
    draws, gamma = views.mask_sample.results().computations, _metric(at, "γ")

    at.sidebar.slider(key="keep_prob").set_value(0.6).run()
    at.sidebar.slider(key="block_size").set_value(3).run()
    assert not at.exception and not at.error
    assert views.mask_sample.results().computations - draws == 2  # two new draws...
    assert runs["site input"] == 1 and views.site_input.results().computations - computed == 1  # ...on one input
    assert runs["layers in the draw"] == 0
    assert _metric(at, "γ") != gamma
    bb = M.load_model(allow_download=False).backbone
    clean = M.clean_pass(bb, M.to_input(M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes()), bb.mean, bb.std))
    spec = M.RegularizerSpec(keep_prob=0.6, block_size=3, placement="in_blocks")
    assert _metric(at, "γ") == f"{real_draw(real_site(bb, clean, spec), spec, seed=7324).gamma:.5f}"

    at.sidebar.radio(key="act_site").set_value("before_act").run()  # another site: computed anew
    assert runs["site input"] == 2 and views.site_input.results().computations - computed == 2
    at.sidebar.radio(key="placement").set_value("after_group").run()
    assert runs["site input"] == 3 and runs["layers in the draw"] == 0
    assert not at.exception and not at.error
