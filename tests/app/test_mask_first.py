"""Mask explorer, masks first (issue 9): the masks and their numbers are drawn before the network
after the site runs, and moving the page's own slider never re-runs that network."""

from __future__ import annotations

import models as M

from .conftest import PAGES, ROOT, new_app


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label))


def test_the_masks_are_drawn_before_the_outcome_is_asked_for(monkeypatch):
    """With the rest of the network failing, the title, γ, the metrics and the animation section are
    on the page already (above the friendly error), with the numbers of the library's own view."""
    calls: list[str] = []
    real_sample = M.compute_mask_sample

    def sample(*args, **kwargs):
        calls.append("sample")
        return real_sample(*args, **kwargs)

    def outcome(*args, **kwargs):
        calls.append("outcome")
        raise RuntimeError("the network after the site failed")

    monkeypatch.setattr(M, "compute_mask_sample", sample)
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
    real = {"sample": M.compute_mask_sample, "outcome": M.compute_mask_outcome}

    def counted(name):
        def compute(*args, **kwargs):
            counts[name] += 1
            return real[name](*args, **kwargs)
        compute.__name__ = real[name].__name__  # the cache keys on the function's name
        return compute

    monkeypatch.setattr(M, "compute_mask_sample", counted("sample"))
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

    broken.__name__ = "compute_mask_sample"
    monkeypatch.setattr(M, "compute_mask_sample", broken)
    at.slider(key="explorer_channels").set_value(5).run()
    assert not at.exception
    assert any("Something went wrong" in e.value for e in at.error)
