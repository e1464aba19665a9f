"""Shared fixtures; prints the measured DropBlock drop-rate bias table after the run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Never reach for the network from tests: weights come from files the tests write.
os.environ.setdefault("DROPBLOCK_LAB_OFFLINE", "1")
# Heavy rounds in the tests' own processes (and the servers they start): two helper processes per
# app would double the suite's processes on a 2-core machine. The helpers are tested where they run:
# tests/models/test_offload.py, tests/app/test_offload_views.py and tests/app/test_helpers_app.py.
os.environ.setdefault("DROPBLOCK_LAB_HELPERS", "0")
# The bundled samples' shared scans are not prepared when a test's app loads its model: ~10 s of CPU
# per app process (and per server a test starts) on a 2-core machine, beside the test. Prepared where
# it is tested: tests/app/test_prepare.py.
os.environ.setdefault("DROPBLOCK_LAB_PREPARE", "0")
if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on two cores: one torch thread each, as the app runs
    import torch

    torch.set_num_threads(1)

_BIAS_ROWS: list[tuple[str, float, float, float]] = []
_BIAS = "dropblock_bias"  # the user property a row travels in: from an xdist worker to the summary too


@pytest.fixture
def record_bias(request):
    """Record (case, target, expected, realised) for the summary table."""

    def record(case: str, target: float, expected: float, realised: float) -> None:
        request.node.user_properties.append((_BIAS, (case, target, expected, realised)))

    return record


def pytest_runtest_logreport(report):
    if report.when == "call":
        _BIAS_ROWS.extend(tuple(value) for name, value in report.user_properties if name == _BIAS)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Under ``-n`` (pytest-xdist, ``--dist loadgroup``): a test file runs on one worker, so its
    module-scoped server, browser or model starts once; the tests that drive a real Chromium or
    nginx all run on one worker, one after another, never beside each other."""
    if not hasattr(config, "workerinput"):  # not an xdist worker: nothing to group
        return
    for item in items:
        group = "browser" if item.get_closest_marker("browser") else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_report_header(config) -> str:
    """The machine, first thing in every run: machines of this kind differ about 2x in CPU speed."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from machine import describe
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return describe()


def pytest_terminal_summary(terminalreporter):
    if not _BIAS_ROWS:
        return
    tr = terminalreporter
    tr.section("DropBlock realised drop rate vs 1 - keep_prob (valid seed region)")
    tr.write_line(f"{'case':<34}{'target':>8}{'exact E':>10}{'realised':>10}{'bias':>9}")
    for case, target, expected, realised in sorted(_BIAS_ROWS):
        bias = (realised - target) / target
        tr.write_line(f"{case:<34}{target:>8.3f}{expected:>10.4f}{realised:>10.4f}{bias:>+9.1%}")
