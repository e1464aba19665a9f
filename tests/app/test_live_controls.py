"""The mask explorer's live controls (issue 9): its fragment draws keep_prob, block_size and the seed
into their place in the sidebar, so that moving one reruns only the fragment; the sidebar, the
URL and every other page still see one set of controls. (The fragment-only rerun itself is
checked on the real server in test_browser.py.)"""

from __future__ import annotations

import dropblock as db
import models as M

from .conftest import PAGES, assert_clean, new_app

LIVE = ("keep_prob", "block_size")


def _gamma(at) -> str:
    return next(m.value for m in at.metric if m.label.startswith("γ"))


def _sidebar_order(at) -> list[str]:
    return [getattr(w, "key", None) or getattr(w, "label", "") for w in at.sidebar
            if type(w).__name__ in ("Slider", "NumberInput", "Radio", "Selectbox", "Toggle")]


def test_the_live_controls_are_in_the_sidebar_once_and_in_their_place():
    at = new_app().run()
    home_order = _sidebar_order(at)
    at.switch_page(PAGES[0]).run()
    assert_clean(at)
    for key in LIVE:
        assert len([s for s in at.slider if s.key == key]) == 1
        assert at.sidebar.slider(key=key) is not None
    assert len([n for n in at.number_input if n.key == "seed"]) == 1
    # the same sidebar, in the same order, as on a page whose sidebar draws them itself
    assert _sidebar_order(at) == home_order
    assert home_order.index("keep_prob") < home_order.index("placement")


def test_moving_them_updates_the_masks_the_numbers_and_the_link():
    at = new_app().run().switch_page(PAGES[0])
    at.sidebar.number_input(key="seed").set_value(7331)  # a seed no other test caches
    at.run()
    at.sidebar.slider(key="keep_prob").set_value(0.7).run()
    at.sidebar.slider(key="block_size").set_value(3).run()
    assert_clean(at)
    heading = next(h.value for h in at.subheader if "map" in h.value)  # "At the … · map 14×14"
    h, w = map(int, heading.rsplit("map ", 1)[1].split("×"))
    assert _gamma(at) == f"{db.dropblock_gamma(0.7, 3, h, w):.5f}"
    assert at.query_params["kp"] == "0.7" and at.query_params["b"] == "3"
    assert at.query_params["seed"] == "7331"
    # another page keeps them: one set of controls for the whole app
    at.switch_page(PAGES[1]).run()
    assert at.sidebar.slider(key="keep_prob").value == 0.7 and at.sidebar.slider(key="block_size").value == 3
    assert at.sidebar.number_input(key="seed").value == 7331


def test_in_presenter_mode_the_sidebar_draws_them():
    at = new_app()
    at.query_params["present"] = "1"
    at.run().switch_page(PAGES[0]).run()
    assert_clean(at)
    for key in LIVE:
        assert len([s for s in at.slider if s.key == key]) == 1


def test_a_failing_explorer_still_draws_the_live_controls(monkeypatch):
    at = new_app().run().switch_page(PAGES[0])
    at.run()

    def broken(*args, **kwargs):
        raise RuntimeError("masks failed")

    monkeypatch.setattr(M, "compute_mask_sample_at", broken)
    at.sidebar.number_input(key="seed").set_value(7332).run()
    assert not at.exception
    assert any("Something went wrong" in e.value for e in at.error)
    for key in LIVE:  # the class can move away from the failing setting
        assert len([s for s in at.slider if s.key == key]) == 1
    assert at.sidebar.number_input(key="seed").value == 7332
