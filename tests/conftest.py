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

_BIAS_ROWS: list[tuple[str, float, float, float]] = []


@pytest.fixture
def record_bias():
    """Record (case, target, expected, realised) for the summary table."""

    def record(case: str, target: float, expected: float, realised: float) -> None:
        _BIAS_ROWS.append((case, target, expected, realised))

    return record


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
