"""A hostile client on the real server: forged widget values, and what a new session costs.

The server is started as the README starts it (``streamlit run app.py``, its configuration from
``.streamlit/config.toml``; only the port and address are added), with an audit hook
(``sys.addaudithook``, from a ``sitecustomize`` on the server's PYTHONPATH, test-only) that logs
every file the server opens. Clients speak Streamlit's websocket protocol (bench/stclient.py) and
send, for every widget on every page, values the browser never sends: strings that are paths,
options that do not exist, numbers of the wrong type, NaN, infinities, empty or long arrays.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from stclient import Session  # noqa: E402

from .appserver import app_server  # noqa: E402

SITECUSTOMIZE = '''
import os, sys
_log = open(os.environ["DROPBLOCK_LAB_OPEN_LOG"], "a", buffering=1)

def _hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _log.write(os.fsdecode(args[0]) + "\\n")

sys.addaudithook(_hook)
'''
# files a forged value names: none of them may be opened
TARGETS = {
    "grace_hopper": "../.venv/lib/python3.11/site-packages/matplotlib/mpl-data/sample_data/grace_hopper",
    "passwd": "../../../../../../etc/passwd",
    "absolute": "/etc/hostname",
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".npy", ".pth", ".pt"}
PAGES = ["", "Lesson", "Mask_explorer", "Compare_methods", "CAM_shift", "Robustness_curve", "Theory_and_schedule",
         "DropBlock_and_Dropout", "Image_set"]
SKIP_KINDS = {"file_uploader", "button", "download_button"}  # no value: a trigger or the upload protocol


def forged_values(kind: str) -> list[tuple[str, object]]:
    """(WidgetState field, value) pairs no browser sends for a widget of this kind."""
    paths = [("string_value", path) for path in TARGETS.values()]
    wrong_type = [("int_value", 2**62), ("double_value", float("inf")), ("bool_value", True)]
    if kind in ("selectbox", "radio"):
        return paths + [("string_value", ""), ("string_value", "x" * 10_000), ("double_array_value", [1.0])]
    if kind == "multiselect":
        return [("string_array_value", [TARGETS["passwd"]]), ("string_array_value", ["1", "5", "x"]),
                ("string_value", TARGETS["grace_hopper"]), ("int_value", -1)]
    if kind == "slider":  # sliders and select sliders
        return [("double_array_value", []), ("double_array_value", [float("nan")]), ("double_array_value", [1e308]),
                ("double_array_value", [1.0, 2.0, 3.0]), ("string_array_value", ["../x"]),
                ("string_value", "abc"), ("int_value", 7)]
    if kind == "number_input":
        return [("double_value", float("inf")), ("double_value", float("nan")), ("int_value", -(2**62)),
                ("double_value", 1e300), ("string_value", "1e309"), ("double_array_value", [])]
    if kind == "checkbox":
        return [("string_value", "yes"), ("int_value", 5), ("double_array_value", [1.0])]
    return paths + wrong_type


def main_thread_cpu(pid: int) -> float:
    """CPU seconds of the server's main thread (Streamlit's event loop)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    hook = tmp_path_factory.mktemp("hook")
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    opens = hook / "opens.log"
    # the README's command: no flags beyond where to listen
    with app_server(tmp_path_factory, env={"PYTHONPATH": str(hook), "DROPBLOCK_LAB_OPEN_LOG": str(opens)}) as app:
        yield app.url, app.pid, opens, app.log


def test_a_new_session_costs_the_event_loop_little(hostile_server):
    """The README's start command runs no file watcher (.streamlit/config.toml): with one, each new
    session walked the project tree, .venv included, on the event loop's thread (~0.7 s of CPU on a
    slow machine, while every other student waited)."""
    url, pid, _opens, _log = hostile_server

    async def costs() -> list[float]:
        spent = []
        for i in range(6):
            before = main_thread_cpu(pid)
            session = Session(url)
            result = await session.open("Mask_explorer", f"seed={i}")
            assert not result.errors, result.errors
            await session.close()
            spent.append(main_thread_cpu(pid) - before)
        return spent[1:]  # the first session of a process also loads the model

    spent = asyncio.run(costs())
    assert statistics.median(spent) < 0.1, spent


def test_forged_widget_values_are_dropped_on_every_page(hostile_server):
    url, pid, opens, log = hostile_server
    cases: list[tuple[str, str, str, object]] = []

    async def attack() -> None:
        session = Session(url)
        for page in PAGES:
            first = await session.open(page, "")
            assert not first.errors, (page, first.errors)
            for label, kind in sorted(session.widget_kinds.items()):
                if kind in SKIP_KINDS:
                    continue
                for field, value in forged_values(kind):
                    result = await session.forge(label, field, value)
                    cases.append((page, label, field, value))
                    assert not result.errors, (page, label, field, str(value)[:40], result.errors)
                    if label not in session.widget_ids:  # the widget is gone from the page: none drawn
                        pytest.fail(f"{page}: {label} disappeared after a forged {field}")
            again = await session.open(page, "")  # the page still works, with its usual content
            assert not again.errors and again.texts, (page, again.errors)
            if "keep_prob" in session.widget_ids:  # and a browser's own values still go through
                moved = await session.move("keep_prob", 0.55)
                assert not moved.errors and "kp=0.55" in session.query, (page, session.query)  # the link follows
                session.moved.clear()
        await session.close()

    asyncio.run(attack())
    assert len(cases) >= 50, len(cases)
    opened = [Path(line) for line in opens.read_text().splitlines()]
    for name, target in TARGETS.items():
        assert not [p for p in opened if name in str(p) or str(p).endswith(target)], name
    assets, static = (ROOT / "assets").resolve(), Path(sys.prefix).resolve()
    pictures = [p for p in opened if p.suffix.lower() in IMAGE_SUFFIXES]
    outside = [p for p in pictures if not (p.resolve().is_relative_to(assets) or p.resolve().is_relative_to(static))]
    assert not outside, outside
    text = log.read_text()
    assert "Traceback" not in text and "Error" not in text, text[-3000:]


def test_forged_sample_paths_leave_memory_flat(hostile_server):
    """Each forged sample name was a new entry of an unbounded cache (67 MB per 1,500 before)."""
    url, pid, _opens, _log = hostile_server

    async def flood(n: int, offset: int) -> None:
        session = Session(url)
        await session.open("", "")
        for i in range(n):
            result = await session.forge("Sample image", "string_value", f"{TARGETS['grace_hopper']}{'/.' * (i + offset)}")
            assert not result.errors, result.errors
        await session.close()

    asyncio.run(flood(100, 0))  # the plateau: whatever a hundred reruns allocate once
    plateau = rss_mb(pid)
    asyncio.run(flood(400, 100))
    assert rss_mb(pid) - plateau < 16, (plateau, rss_mb(pid))


BEHIND_THE_GUARD = [  # session values the app's own check (ui/settings.py check) replaces
    ("image", TARGETS["grace_hopper"], "coffee"), ("image", 3, "coffee"),
    ("keep_prob", float("nan"), 0.9), ("keep_prob", 0.93, 0.95), ("keep_prob", 7.0, 1.0), ("keep_prob", "0.5", 0.9),
    ("block_size", 10**300, 7), ("block_size", 2.5, 7), ("block_size", 99, 15), ("block_size", True, 7),
    ("seed", -3, 0), ("seed", float("inf"), 0), ("group", "group 9", 3), ("group", 9, 4),
    ("placement", "bogus", "after_group"), ("shared_mask", "yes", False), ("seed_region", None, "valid"),
    ("gamma_mode", ["eq1"], "eq1"), ("normalize", "", "sample"), ("act_site", "../x", "after_act"),
    ("lang", "../../x", "en"), ("lesson_step", 100, 8), ("present", 1, False),
]


@pytest.mark.parametrize("key, value, used", BEHIND_THE_GUARD, ids=[f"{k}={v!r:.20}" for k, v, _ in BEHIND_THE_GUARD])
def test_every_setting_read_from_session_state_is_checked_against_its_row(key, value, used):
    """The second line behind ui/widget_guard.py: a value in session state that no widget offers is
    replaced before anything reads it (AppTest sets session state directly, past the guard)."""
    import ui.settings

    from .conftest import assert_clean, new_app

    at = new_app()
    at.session_state[key] = value  # before the first run: AppTest itself can't send a widget a non-option
    at.run()
    assert_clean(at)
    assert at.session_state[key] == used and type(at.session_state[key]) is type(used)
    at.switch_page("pages/1_Mask_explorer.py").run()
    assert_clean(at)
    assert at.session_state[key] == used and type(at.session_state[key]) is type(used)
    assert at.session_state[key] == ui.settings.BY_KEY[key].check(used)[0]


@pytest.mark.parametrize("key, value, shown", [("step", "3\u200b", "3\\u200b"), ("lang", "zh\x00", "zh\\x00"),
                                                ("image", "chel\u202esea", "chel\\u202esea")])
def test_invisible_characters_in_a_link_are_shown_as_escapes(key, value, shown):
    """A value with a zero-width space read "`3` is ignored (not a whole number)": it looked valid."""
    from .conftest import new_app

    at = new_app()
    at.query_params[key] = value
    at.run()
    assert not at.exception
    message = " ".join(w.value for w in at.warning)
    assert f"`{shown}`" in message, message
