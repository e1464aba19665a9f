"""bench/load.py's seeded students: every action a student takes changes what the page shows (a
click on the page it is already on changes nothing, and the client would wait for a change forever)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from load import PAGES, Plan  # noqa: E402


@pytest.mark.parametrize("scenario", ["teacher-link", "own"])
def test_no_student_navigates_to_the_page_it_is_on_and_every_page_is_visited(scenario):
    for i in range(64):  # more students than a class
        plan, left = Plan(scenario, i, seed=0), 45.0
        visited = {plan.current}
        while left > 0:
            left -= plan.pause()
            before = plan.current
            what, value = plan.action(max(left, 0.0))
            if what == "page":
                assert value != before, (scenario, i, value)
                visited.add(value)
        if not plan.unvisited:
            assert visited == set(PAGES), (scenario, i)
        assert not set(plan.unvisited) & visited, (scenario, i)  # a visited page is never "first visited" again
