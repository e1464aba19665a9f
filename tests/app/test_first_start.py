"""First start on the fallback model (issue 23 §8): the notice is said once, in plain words, with the
details one click away; every page's model line still names the network that runs, and what it replaces."""

from __future__ import annotations

from .conftest import assert_clean, new_app


def fallback_notices(at) -> list[str]:
    return [w.value for w in at.warning if "EfficientNet-Lite0 with real ImageNet weights" in w.value]


def test_the_fallback_notice_is_said_once_with_its_details_one_click_away():
    at = new_app().run()
    assert_clean(at)
    notices = fallback_notices(at)
    assert len(notices) == 1 and "No ResNet-50 weights could be loaded" in notices[0], notices
    assert "torch hub" not in notices[0] and "Reason" not in notices[0]  # plain words; the details are folded
    details = [e for e in at.main.get("expander") if "ResNet-50" in e.label]
    assert len(details) == 1 and "torch hub cache" in " ".join(m.value for m in details[0].markdown)
    at.run()  # the same page again (a slider move): still there
    assert len(fallback_notices(at)) == 1

    for page in ("pages/1_Mask_explorer.py", "pages/3_CAM_shift.py"):
        at.switch_page(page).run()
        assert_clean(at)
        assert not fallback_notices(at), page  # said once
        line = next(c.value for c in at.caption if c.value.startswith("Model:"))
        assert "EfficientNet-Lite0" in line and "(instead of ResNet-50)" in line, line


def test_the_sidebar_names_the_network_that_runs():
    at = new_app().run()
    assert_clean(at)
    assert at.sidebar.selectbox(key="arch").value == "resnet50"  # what was asked for ...
    running = [c.value for c in at.sidebar.caption if c.value.startswith("Running now:")]
    assert running == ["Running now: **EfficientNet-Lite0**, because no ResNet-50 weights could be loaded."], running


def test_a_fresh_server_says_it_is_starting_before_torch_has_loaded(tmp_path_factory):
    """Issue 23 §8: the first visitor of a fresh server sees a line at once, not seconds of blank page,
    and it goes away once the page is drawn; the next visitor (torch loaded) never sees it."""
    import asyncio
    import sys

    from .appserver import ROOT, app_server

    sys.path.insert(0, str(ROOT / "bench"))
    from stclient import Session

    async def visit(url):
        session = Session(url, timeout=180)
        try:
            return await session.open("", "")
        finally:
            await session.close()

    with app_server(tmp_path_factory) as server:
        first = asyncio.run(visit(server.url))
        second = asyncio.run(visit(server.url))
    assert not first.errors and not second.errors, (first.errors, second.errors)
    starting = [t for t in first.texts if "Starting DropBlock Lab" in t]
    assert starting and "正在启动" in starting[0], first.texts[:5]
    assert first.texts.index(starting[0]) == 0  # the first thing shown
    assert not [t for t in second.texts if "Starting DropBlock Lab" in t]
