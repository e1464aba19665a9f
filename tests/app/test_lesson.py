"""The guided lesson (pages/0_Lesson.py, ui/lesson*.py) with streamlit.testing.v1.AppTest.

The lesson is reached as a browser reaches it: through the entrypoint, then the page (``open_lesson``;
with st.navigation only that helper changes). Expected answers are computed here, independently of
the page, through the public ``models`` compute functions with the step's own parameters.
"""

from __future__ import annotations

import ast
import math
from functools import cache

import pytest
import torch

import dropblock as db
import models as M
from models.keepgrid import compute_keep_prob_scan, with_keep_prob
from models.theory import compute_mistakes
from ui import i18n, lesson, lesson_curves, lesson_maps

from .conftest import ROOT, assert_clean, new_app

LESSON = "pages/0_Lesson.py"
N_STEPS = len(lesson.STEPS)


def first_run(query: dict[str, str] | None = None, lang: str | None = None):
    """A new session opened from a link carrying ``query`` (its first run reads the URL)."""
    at = new_app()
    for key, value in (query or {}).items():
        at.query_params[key] = value
    if lang:
        at.session_state["lang"] = lang
    return at.run()


def open_lesson(query: dict[str, str] | None = None, lang: str | None = None):
    """A new session whose link carries ``query``, on the lesson page. Through the entrypoint, as
    the other app tests; with st.navigation this is the one place to change."""
    return first_run(query, lang).switch_page(LESSON).run()


def shown_step(at) -> int:
    return int(at.header[0].value.split(" · ")[0])


def main_images(at) -> int:
    """Pictures, tile grids (ui/render.py show_mask_grid) and interactive charts in the main area."""
    grids = [h for h in at.main.get("html") if 'class="dbl-tiles"' in h.proto.body]
    return (len(at.main.get("image")) + len(grids) + len(at.main.get("vega_lite_chart"))
            + len(at.main.get("arrow_vega_lite_chart")))


def verdicts(at) -> list[str]:
    """✅ right / 🤔 not this time, as shown after a choice."""
    return ([s.icon for s in at.success if s.icon == "✅"] + [i.icon for i in at.info if i.icon == "🤔"])


def reveal_text(at) -> str:
    return " ".join([s.value for s in at.success] + [i.value for i in at.info if i.icon in ("🤔", "📏")])


def test_walk_all_steps_with_next_and_previous():
    at = open_lesson()
    assert_clean(at)
    assert shown_step(at) == 1 and at.button(key="lesson_prev").disabled
    for n in range(1, N_STEPS + 1):
        if n > 1:
            at.button(key="lesson_next").click().run()
        assert_clean(at)
        assert shown_step(at) == n
        assert at.query_params["step"] == str(n)  # a teacher can send this link
        step = lesson.STEPS[n - 1]
        assert main_images(at) == (1 if step.picture_first else 0), n
        assert not verdicts(at), n  # predict first: nothing revealed before a choice
        question = at.radio(key=f"lesson_q{n}")
        assert question.value is None
        question.set_value(step.options[0][0]).run()
        assert_clean(at)
        assert main_images(at) == 1, n  # exactly one main picture once answered
        assert len(verdicts(at)) == 1 or any(i.icon == "📏" for i in at.info), n
    assert at.button(key="lesson_next").disabled
    at.button(key="lesson_prev").click().run()
    assert_clean(at)
    assert shown_step(at) == N_STEPS - 1 and at.query_params["step"] == str(N_STEPS - 1)


def test_step_in_the_url_opens_that_step():
    at = open_lesson({"step": "5"})
    assert_clean(at)
    assert shown_step(at) == 5
    assert at.radio(key="lesson_q5").value is None
    assert not any("**step**" in w.value for w in at.warning)


@pytest.mark.parametrize(("given", "used", "why"), [
    ("0", 1, "below the minimum"), ("99", N_STEPS, "above the maximum"), ("x", 1, "ignored"), ("2.5", 1, "ignored"),
])
def test_bad_step_in_the_url_is_clamped_or_ignored_with_a_message(given, used, why):
    at = first_run({"step": given})  # the link's first page says what it used instead
    assert any("**step**" in w.value and why in w.value for w in at.warning), [w.value for w in at.warning]
    at.switch_page(LESSON).run()
    assert_clean(at)
    assert shown_step(at) == used
    assert at.query_params["step"] == str(used)


# ------------------------------------------------------------------ predict, then reveal, against the library


@cache
def _model_and_clean():
    loaded = M.load_model(allow_download=False)  # the hermetic fallback, as the app loads it
    image = M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes())
    return loaded.backbone, M.clean_pass(loaded.backbone, loaded.preprocess(image))


def _expected(n: int) -> tuple[str | None, list[str]]:
    """(the right option, numbers the reveal must show) for step ``n``, from the models package directly."""
    bb, clean = _model_and_clean()
    step = lesson.STEPS[n - 1]
    if n == 1:
        view = M.compute_mask_sample(bb, clean, step.spec, seed=step.seed, n_channels=lesson_maps.CHANNELS)
        seeds, dropped = int(view.seed_mask.sum()), int((~view.block_mask).sum())
        b = view.block[0]
        ratio = dropped / seeds
        right = min({"one": 1, "line": b, "square": b * b}.items(), key=lambda kv: abs(kv[1] - ratio))[0]
        return right, [f"{ratio:.1f}", str(dropped)]
    if n == 3:
        probs = [float(M.compute_cam_shift(bb, clean, spec, n_samples=lesson_maps.SAMPLES, seed=step.seed)
                       .sample_probs.mean()) for spec in step.specs]
        p_out, p_block = probs
        right = "same" if abs(p_out - p_block) < lesson_maps.TIE else ("dropblock" if p_block < p_out else "dropout")
        return right, [f"{p_out:.3f}", f"{p_block:.3f}"]
    if n == 4:  # the share of the CAM lost on its hottest fifth and elsewhere
        shift = M.compute_cam_shift(bb, clean, step.spec, n_samples=lesson_maps.SAMPLES, seed=step.seed)
        hot = shift.clean_cam >= torch.quantile(shift.clean_cam.flatten().float(), 0.8)
        shares = [float(-shift.difference[m].mean() / shift.clean_cam[m].mean()) for m in (hot, ~hot)]
        right = "same" if abs(shares[0] - shares[1]) < 0.02 else ("object" if shares[0] > shares[1] else "background")
        return right, [f"{x:.0%}" for x in shares]
    if n == 5:
        grid = compute_keep_prob_scan(bb, clean, step.spec, methods=lesson_curves.CURVE_METHODS, seed=0).grid
        curve = M.compute_robustness_curve(bb, clean, step.spec, keep_probs=grid,
                                           methods=lesson_curves.CURVE_METHODS, n_samples=lesson_curves.CURVE_SAMPLES,
                                           seed=step.seed)
        b1, b7 = (float(curve.mean_prob[i].mean()) for i in (0, 1))
        right = "same" if abs(b1 - b7) < lesson_maps.TIE else ("b7" if b7 < b1 else "b1")
        return right, [f"{b1:.3f}", f"{b7:.3f}"]
    if n == 6:
        value = db.linear_keep_prob(lesson_curves.SCHEDULE_STEPS // 2, lesson_curves.SCHEDULE_STEPS, lesson_curves.SCHEDULE_TARGET)
        target = lesson_curves.SCHEDULE_TARGET
        right = min({"target": target, "half": (1 + target) / 2, "one": 1.0}.items(),
                    key=lambda kv: abs(kv[1] - value))[0]
        return right, [f"{value:.3f}"]
    if n == 7:
        kp = step.spec.keep_prob
        report = compute_mistakes(clean.acts[3], kp, step.spec.block_size, seed=step.seed)
        gain = next(m.train_mean for m in report.rows if "count_ones/count_zeros" in m.name)
        anchors = {"same": 1.0, "small": 1 / kp, "large": kp / (1 - kp)}
        right = min(anchors, key=lambda k: abs(math.log(anchors[k]) - math.log(gain)))
        return right, [f"{gain:.2f}"]
    if n == 8:
        kp = _strategy_keep_prob(bb, clean, step)
        result = M.compute_dropblock_dropout(bb, clean, with_keep_prob(step.spec, kp),
                                             fc_keep_prob=lesson_curves.STRATEGY_FC_KEEP, n_samples=lesson_maps.SAMPLES,
                                             seed=step.seed)
        probs = {arm: v.class_prob for arm, v in zip(("none", "dropblock", "dropout_fc", "both"), result.views)}
        probs.pop("none")
        ranked = sorted(probs, key=probs.get)
        too_close = probs[ranked[1]] - probs[ranked[0]] < lesson_maps.TIE
        return (None if too_close else ranked[0]), [f"{p:.3f}" for p in probs.values()]
    raise AssertionError(n)


def _strategy_keep_prob(bb, clean, step) -> float:
    """Step 8's keep_prob: Hu et al.'s 0.8 unless it leaves < 10% of the class; then the refined point nearest half."""
    methods = (("dropblock", None),)
    coarse = compute_keep_prob_scan(bb, clean, step.spec, methods=methods, seed=0)
    if float(coarse.ratio[0, coarse.keep_probs.index(0.8)]) > 0.1:
        return 0.8
    fine = compute_keep_prob_scan(bb, clean, step.spec, methods=methods, seed=0, n_samples=lesson_maps.SAMPLES,
                                  coarse=[k for k in coarse.grid if k < 1])
    return min(((k, float(r)) for k, r in zip(fine.keep_probs, fine.ratio[0]) if k < 1),
               key=lambda kr: abs(kr[1] - 0.5))[0]


@pytest.mark.parametrize("n", [1, 3, 4, 5, 6, 7, 8])
def test_reveal_shows_the_measured_result_and_a_verdict_that_matches_it(n):
    right, numbers = _expected(n)
    at = open_lesson({"step": str(n)})
    assert_clean(at)
    assert not verdicts(at) and not reveal_text(at)  # hidden until the student chooses
    keys = [k for k, _ in lesson.STEPS[n - 1].options]
    wrong = next(k for k in keys if k != right)
    at.radio(key=f"lesson_q{n}").set_value(wrong).run()
    assert_clean(at)
    text = reveal_text(at)
    assert all(x in text for x in numbers), (numbers, text)
    if right is None:  # the measurement cannot decide: the numbers, no verdict
        assert not verdicts(at) and [i.icon for i in at.info if i.icon == "📏"] == ["📏"]
        return
    assert verdicts(at) == ["🤔"]
    at.radio(key=f"lesson_q{n}").set_value(right).run()
    assert_clean(at)
    assert verdicts(at) == ["✅"]
    assert all(x in reveal_text(at) for x in numbers)


def test_each_step_sets_its_own_parameters_not_the_sidebars():
    at = open_lesson({"step": "1"})
    before = reveal_text(at.radio(key="lesson_q1").set_value("square").run())
    at.sidebar.slider(key="keep_prob").set_value(0.5)
    at.sidebar.slider(key="block_size").set_value(2)
    at.sidebar.number_input(key="seed").set_value(99)
    at.run()
    assert_clean(at)
    assert reveal_text(at) == before
    assert any("sets its own parameters" in c.value for c in at.caption)


# ------------------------------------------------------------------ 简体中文


def _lesson_msgids() -> set[str]:
    """Every literal passed to _() or N_() in ui/lesson.py and the modules of its steps (ui/lesson_*.py)."""
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in sorted((ROOT / "ui").glob("lesson*.py"))]
    assert len(trees) >= 2
    return {node.args[0].value for tree in trees for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_")
            and node.args and isinstance(node.args[0], ast.Constant)}


@pytest.fixture
def zh_catalog():
    """The checked-in Chinese catalog (tests/test_i18n.py checks the .mo is the .po compiled)."""
    return i18n.catalog("zh")


def test_every_lesson_string_has_a_chinese_translation(zh_catalog):
    ids = _lesson_msgids()
    assert len(ids) > 50
    untranslated = sorted(ids - set(zh_catalog._catalog))  # an identical msgstr (a name) is a translation
    assert not untranslated


def test_the_lesson_runs_in_chinese(zh_catalog):
    i18n.MISSING.clear()
    with i18n.use_language("zh"):  # AppTest formats the selectboxes' and radios' labels in the test's own thread
        at = open_lesson(lang="zh")
        for n in range(1, N_STEPS + 1):
            if n > 1:
                at.button(key="lesson_next").click().run()
            at.radio(key=f"lesson_q{n}").set_value(lesson.STEPS[n - 1].options[0][0]).run()
            assert_clean(at)  # a translation with a wrong placeholder would show an error here
            assert verdicts(at) or any(i.icon == "📏" for i in at.info)
    assert at.title[0].value == zh_catalog.gettext("DropBlock in eight steps") != "DropBlock in eight steps"
    assert not (i18n.MISSING & _lesson_msgids())


# ------------------------------------------------------------------ predict before the answer is given


# Per step, the phrase of its explanation that answers the question, in both languages: before the
# student chooses it is nowhere on the page; with the reveal it is (the explanation moved, not lost).
GIVEAWAYS = {
    1: {"en": "the whole block_size × block_size square", "zh": "整个方块"},
    2: {"en": "much rarer", "zh": "稀少得多"},
    3: {"en": "removes whole regions", "zh": "去掉整片区域"},
    5: {"en": "falls faster with block_size 7", "zh": "block_size 为 7 时准确率"},
    6: {"en": "linear", "zh": "线性"},
}


def page_text(at) -> str:
    """Every text of the main area a student can read: headings, paragraphs, captions, alerts, the questions."""
    parts = [e.value for kind in ("title", "header", "subheader", "markdown", "caption", "success", "info",
                                  "warning") for e in at.main.get(kind)]
    for radio in at.main.get("radio"):
        parts += [radio.label, *map(str, radio.options)]
    return "\n".join(parts)


def test_every_step_with_an_explanation_names_the_phrase_that_gives_its_answer():
    assert {n for n, step in enumerate(lesson.STEPS, start=1) if step.explain} == set(GIVEAWAYS)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("n", sorted(GIVEAWAYS))
def test_no_step_gives_its_answer_away_before_the_reveal(n, lang):
    phrase = GIVEAWAYS[n][lang]
    with i18n.use_language(lang):  # AppTest formats the radios' options in the test's own thread
        at = open_lesson({"step": str(n)}, lang=lang if lang != "en" else None)
        assert_clean(at)
        before = page_text(at)
        assert lesson.STEPS[n - 1].prompt and at.radio(key=f"lesson_q{n}").value is None
        assert phrase not in before, (n, lang, before)
        at.radio(key=f"lesson_q{n}").set_value(lesson.STEPS[n - 1].options[0][0]).run()
        assert_clean(at)
        assert phrase in page_text(at), (n, lang, page_text(at))
