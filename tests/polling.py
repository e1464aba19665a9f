"""Waiting in tests for something that should happen soon, with a bound (STYLE.md 19: generous
bounds, never a fixed pause)."""

from __future__ import annotations

import time


def until(condition, timeout: float, every: float = 0.01) -> bool:
    """Ask ``condition()`` every ``every`` seconds until it holds or ``timeout`` seconds have passed;
    whether it holds (asked once more at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()
