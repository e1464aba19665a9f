"""Presenter mode's top line names the parameters the main figure uses (issue 23 §2), with AppTest:
a lesson step's own (not the sidebar's), the robustness curve's placement (the paper's by default)."""

from __future__ import annotations

import pytest

from ui import lesson

from .conftest import assert_clean, new_app


def presenter_line(at) -> str:
    lines = [m.value for m in at.main.get("markdown") if "(fallback)" in m.value or "CPU" in m.value]
    assert len(lines) == 1, lines
    return lines[0]


def open_presenting(page: str, query: dict[str, str]):
    at = new_app()
    for key, value in {"present": "1", "kp": "0.9", "b": "7", "seed": "9", **query}.items():
        at.query_params[key] = value
    at.run().switch_page(page).run()
    assert_clean(at)
    return at


@pytest.mark.parametrize("n", range(1, len(lesson.STEPS) + 1))
def test_a_lesson_steps_header_names_its_own_parameters(n):
    step = lesson.STEPS[n - 1]
    line = presenter_line(open_presenting("pages/0_Lesson.py", {"step": str(n)}))
    assert f"seed **{step.seed}**" in line and "seed **9**" not in line, line
    assert lesson.parameters(step) in line, line
    assert "block_size **7**" not in line, line  # the sidebar's
    if n == 1:  # what the picture uses: students count 5×5 = 25 units
        assert "keep_prob 0.85" in line and "5×5" in line, line


def test_the_robustness_curves_header_names_the_papers_placement():
    line = presenter_line(open_presenting("pages/4_Robustness_curve.py", {}))
    assert "the paper's placement" in line and "after group" not in line, line
    # the default grid is measured for the model (models/keepgrid.py); the header says so, not 1 → 0.75
    assert "keep_probs measured for this model" in line and "seed **9**" in line, line


def test_the_robustness_curves_header_follows_a_fixed_grid():
    at = open_presenting("pages/4_Robustness_curve.py", {})
    at.radio(key="curve_grid").set_value("fixed").run()
    at.select_slider(key="curve_lowest").set_value(0.6).run()
    assert_clean(at)
    line = presenter_line(at)
    assert "1 → **0.6**" in line and "measured" not in line, line


def test_other_pages_header_names_the_sidebars_parameters():
    line = presenter_line(open_presenting("pages/3_CAM_shift.py", {"kp": "0.85", "b": "5", "seed": "4"}))
    assert "keep_prob **0.85** · block_size **5** · seed **4** · after group 3" in line, line


def test_in_chinese_too():
    from ui import i18n

    with i18n.use_language("zh"):
        line = presenter_line(open_presenting("pages/0_Lesson.py", {"step": "1", "lang": "zh"}))
        assert "0.85" in line and "5×5" in line and "种子 **1**" in line, line
        line = presenter_line(open_presenting("pages/4_Robustness_curve.py", {"lang": "zh"}))
        assert "论文的放置方式" in line and "种子 **9**" in line, line


def test_charts_on_a_projector_get_large_labels_without_touching_the_shared_spec():
    import json

    from ui import chartview

    spec = {"mark": "line", "config": {"axis": {"labelFontSize": 11, "grid": True}}}
    big = chartview.projector_spec(spec)
    assert big["config"]["axis"]["labelFontSize"] >= 20 and big["config"]["axis"]["grid"] is True
    assert big["config"]["legend"]["labelFontSize"] >= 20 and big["config"]["title"]["fontSize"] >= 20
    assert spec == {"mark": "line", "config": {"axis": {"labelFontSize": 11, "grid": True}}}  # the cache's copy

    at = open_presenting("pages/4_Robustness_curve.py", {})
    charts = [json.loads(c.proto.spec) for kind in ("vega_lite_chart", "arrow_vega_lite_chart")
              for c in at.main.get(kind)]
    assert charts and all(c["config"]["axis"]["labelFontSize"] >= 20 for c in charts)
