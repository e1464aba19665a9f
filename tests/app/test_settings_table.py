"""One row per setting: change the row, and the URL parser, the widget and the spec follow."""

from __future__ import annotations

import dataclasses

import pytest

from ui import settings

from .conftest import assert_clean, new_app


@pytest.fixture
def narrower_keep_prob(monkeypatch):
    row = dataclasses.replace(settings.BY_KEY["keep_prob"], default=0.8, lo=0.2, hi=0.95)
    rows = tuple(row if r.key == "keep_prob" else r for r in settings.SETTINGS)
    monkeypatch.setattr(settings, "SETTINGS", rows)
    monkeypatch.setattr(settings, "BY_KEY", {r.key: r for r in rows})
    monkeypatch.setattr(settings, "BY_URL", {r.url: r for r in rows})
    return row


def _target_drop(at) -> str:
    return next(m.value for m in at.metric if "1 − keep_prob" in m.label)


def test_the_default_comes_from_the_row(narrower_keep_prob):
    at = new_app()
    at.run()
    at.switch_page("pages/1_Mask_explorer.py").run()
    assert_clean(at)
    slider = at.slider(key="keep_prob")
    assert slider.value == pytest.approx(0.8) and slider.min == pytest.approx(0.2) and slider.max == pytest.approx(0.95)
    assert float(_target_drop(at)) == pytest.approx(0.2)  # the spec the page computes with


def test_the_url_is_parsed_against_the_row(narrower_keep_prob):
    at = new_app()
    at.query_params["kp"] = "0.99"
    at.run()
    assert at.session_state["keep_prob"] == pytest.approx(0.95)  # clamped to the row's maximum
    assert any("0.95" in w.value for w in at.warning)  # and said so
    at.switch_page("pages/1_Mask_explorer.py").run()
    assert_clean(at)
    assert float(_target_drop(at)) == pytest.approx(0.05)


def test_the_spec_is_built_from_the_rows():
    fields = {r.field for r in settings.SETTINGS if r.field}
    assert {"keep_prob", "block_size", "placement", "per_channel", "seed_region", "gamma_mode", "normalize",
            "act_site", "group"} == fields
