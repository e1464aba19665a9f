"""Headless tests of app.py and every page with streamlit.testing.v1.AppTest."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import dropblock as db
import models as M
from ui import imageset as ui_set

from .conftest import HOME, PAGES, ROOT, assert_clean, assert_fewest_samples, new_app, refining, until_final


def metric(at, label_start: str) -> str:
    for m in at.metric:
        if m.label.startswith(label_start):
            return m.value
    raise AssertionError(f"no metric {label_start!r} in {[m.label for m in at.metric]}")


def test_opens_on_bundled_sample_and_says_which_model():
    at = new_app().run()
    assert_clean(at)
    assert at.title[0].value == "DropBlock Lab"
    assert at.sidebar.selectbox(key="image").value == "coffee"
    assert at.table[0].value.iloc[0]["class"] == "espresso"  # top-1 of the bundled sample
    captions = " ".join(c.value for c in at.caption)
    assert "EfficientNet-Lite0" in captions and "CPU" in captions and "Coffee cup" in captions
    assert any("EfficientNet-Lite0 with real ImageNet weights" in w.value for w in at.warning)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs(page):
    at = new_app().run()
    at.switch_page(page).run()
    assert_clean(at)
    assert at.title, page


def explorer():
    at = new_app().run()
    return at.switch_page(PAGES[0]).run()


def test_numbers_shown_match_the_library():
    at = explorer()
    kp, b = 0.85, 5
    at.sidebar.slider(key="keep_prob").set_value(kp)
    at.sidebar.slider(key="block_size").set_value(b)
    at.run()
    assert_clean(at)
    assert metric(at, "γ") == f"{db.dropblock_gamma(kp, b, 14, 14):.5f}"  # group 3 output is 14x14
    assert metric(at, "Target drop") == f"{1 - kp:.3f}"
    assert metric(at, "Expected drop") == f"{db.expected_drop_fraction(kp, b, 14, 14):.3f}"
    # the realised drop is the one the library's mask gives for the same seed
    loaded = M.load_model(allow_download=False)
    bb = loaded.backbone
    clean = M.clean_pass(bb, M.to_input(M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes()), bb.mean, bb.std))
    view = M.compute_mask_sample(bb, clean, M.RegularizerSpec(keep_prob=kp, block_size=b), seed=0)
    assert metric(at, "Realised drop") == f"{view.realised_drop:.3f}"
    assert any(f"= {view.gamma:.5f}" in c.value for c in at.code)

    at.switch_page("pages/2_Compare_methods.py").run()
    assert_clean(at)
    top1 = bb.categories[clean.top1]
    assert top1 == "espresso"
    assert all(m.label == f"p({top1}) in this draw" for m in at.metric)
    views = M.compute_comparison(bb, clean, M.RegularizerSpec(keep_prob=kp, block_size=b, group=3,
                                                              gamma_mode="calibrated"), seed=0)  # the page's default
    assert [m.value for m in at.metric] == [f"{v.class_prob:.3f}" for v in views]


MOVES = [  # (widget, key, value): every sidebar control, to its edges and back
    ("slider", "keep_prob", 0.5), ("slider", "keep_prob", 1.0), ("slider", "keep_prob", 0.05),
    ("slider", "block_size", 1), ("slider", "block_size", 15), ("number_input", "seed", 7),
    ("radio", "placement", "in_blocks"), ("radio", "placement", "after_group"),
    ("selectbox", "group", 4), ("selectbox", "group", 1), ("toggle", "shared_mask", True),
    ("radio", "seed_region", "everywhere"), ("selectbox", "image", "chelsea"),
    ("selectbox", "weights", "IMAGENET1K_V1"),
]


@pytest.fixture(scope="module")
def top1_names() -> dict[str, str]:
    """The fallback model's top-1 class for each bundled image, straight from the models package."""
    bb = M.load_model(allow_download=False).backbone
    names = {}
    for image in ("coffee", "chelsea"):
        x = M.to_input(M.decode_image((ROOT / "assets" / f"{image}.jpg").read_bytes()), bb.mean, bb.std)
        names[image] = bb.categories[M.clean_pass(bb, x).top1]
    assert names["coffee"] != names["chelsea"]
    return names


def _texts(at) -> str:
    return " ".join([c.value for c in at.caption] + [m.value for m in at.markdown])


def shows(at, page: str, now: dict, top1: str, before: dict) -> None:
    """What ``page`` must show with the sidebar at ``now`` (the settings moved so far); ``before``
    holds what an earlier check saw, for views that must not change with a setting they ignore."""
    kp = now["keep_prob"]
    values = {m.label: m.value for m in at.metric}
    if page == HOME:
        assert at.title[0].value == "DropBlock Lab" and at.table[0].value.iloc[0]["class"] == top1
    elif page == "pages/0_Lesson.py":  # the lesson's step sets its own parameters, whatever the sidebar says
        assert at.title[0].value == "DropBlock in eight steps" and at.button(key="lesson_next")
        assert "This step sets its own parameters (DropBlock with keep_prob 0.85" in _texts(at)
    elif page == PAGES[0]:  # mask explorer: the target follows keep_prob, with the paper's γ/4 in group 3's blocks
        quartered = now["placement"] == "in_blocks"
        label = "Target drop (1 − keep_prob)/4" if quartered else "Target drop 1 − keep_prob"
        assert values[label] == f"{(1 - kp) / (4 if quartered else 1):.3f}", (label, values)
        gamma = float(values["γ (seed probability)"])
        assert (gamma == 0) is (kp == 1.0), (kp, gamma)
        assert 0 <= float(values["Realised drop (this sample)"]) <= 1
    elif page == PAGES[1]:  # compare methods: the five methods, each on the top-1 class of the image shown
        assert [m.label for m in at.metric] == [f"p({top1}) in this draw"] * 5
    elif page == PAGES[2]:  # CAM shift: the image's top-1, and no shift at all when nothing is dropped
        clean, mean = values[f"p({top1}) without"], values["mean with DropBlock"]
        if kp == 1.0:
            assert mean == clean and values["samples keeping the top-1 class"] == "100%"
    elif page == PAGES[3]:  # robustness curve: sweeps its own keep_probs and block sizes
        key = (now["image"], now["seed"], now["placement"], now["group"], now["shared_mask"], now["seed_region"])
        if key in before or not before:  # the tables compared are whole (its rounds refine between reruns)
            until_final(at)
        elif refining(at):  # a new curve, not whole yet: nothing to compare it with later
            return
        table = at.table[0].value
        if key in before:
            assert table.equals(before[key]), "the curve changed with a setting it does not use"
        before[key] = table
    elif page == PAGES[4]:  # theory: the calculator's formula is the library's Eq. (1) for its own inputs
        size, c_kp, c_b = (at.number_input(key=k).value for k in ("calc_size", "calc_kp", "calc_b"))
        formula = next(c.value for c in at.code if c.value.startswith("γ = "))
        assert formula.endswith(f"= {db.dropblock_gamma(c_kp, c_b, size, size):.5f}"), formula
    elif page == PAGES[5]:  # DropBlock + Dropout: four arms, each on the top-1 class
        assert [m.label for m in at.metric] == [f"mean p({top1})"] * 4
    elif page == PAGES[6]:  # image set: nothing runs until asked, whatever the sidebar
        assert at.button(key="set_compute") and f"{len(ui_set.BUNDLED_SET)} images × 4 keep_probs" in _texts(at) and not at.table
        assert any("Press *Compute the curves* to run the set." in i.value for i in at.info)
    else:
        raise AssertionError(f"no check for {page}")


@pytest.mark.parametrize("page", [HOME, "pages/0_Lesson.py", *PAGES])
def test_every_sidebar_widget_moves_and_the_page_shows_what_it_should(page, top1_names):
    at = new_app(fewest_samples=True).run()  # what is checked holds at any sample count
    at.switch_page(page).run()
    assert_fewest_samples(at)
    now = {"keep_prob": 0.9, "block_size": 7, "seed": 0, "placement": "after_group", "group": 3,
           "shared_mask": False, "seed_region": "valid", "image": "coffee", "weights": None}
    before: dict = {}
    assert_clean(at)
    shows(at, page, now, top1_names["coffee"], before)
    for kind, key, value in MOVES:
        getattr(at.sidebar, kind)(key=key).set_value(value)
        at.run()
        now[key] = value
        assert_clean(at)
        assert getattr(at.sidebar, kind)(key=key).value == value
        shows(at, page, now, top1_names[now["image"]], before)


def test_block_larger_than_map_and_keep_prob_one_are_explained():
    at = explorer()
    at.sidebar.selectbox(key="group").set_value(4)
    at.sidebar.slider(key="block_size").set_value(11)
    at.run()
    assert_clean(at)
    assert any("drops whole channels" in i.value for i in at.info)
    at.sidebar.slider(key="keep_prob").set_value(1.0)
    at.run()
    assert_clean(at)
    assert any("identity" in i.value for i in at.info)
    assert metric(at, "Realised drop") == "0.000"


def test_page_widgets_move():
    at = explorer()
    at.slider(key="explorer_channels").set_value(3).run()
    assert_clean(at)
    at.switch_page("pages/3_CAM_shift.py").run()
    at.select_slider(key="cam_samples").set_value(4).run()
    assert_clean(at)
    classes = at.selectbox(key="cam_class").options  # the image's top-5, by name
    assert at.selectbox(key="cam_class").index == 0 and any(m.label == f"p({classes[0]}) without" for m in at.metric)
    at.selectbox(key="cam_class").select_index(1).run()
    assert_clean(at)
    assert at.selectbox(key="cam_class").index == 1
    labels = [m.label for m in at.metric]
    assert f"p({classes[1]}) without" in labels and f"p({classes[0]}) without" not in labels  # the CAMs' class moved
    assert float(next(m.value for m in at.metric if m.label == f"p({classes[1]}) without")) < 0.5  # not the top-1
    at.switch_page("pages/4_Robustness_curve.py").run()
    at.select_slider(key="curve_samples").set_value(4).run()
    at.radio(key="curve_grid").set_value("fixed").run()
    at.select_slider(key="curve_lowest").set_value(0.5).run()
    assert_clean(at)
    at.switch_page("pages/5_Theory_and_schedule.py").run()
    at.slider(key="theory_size").set_value(5).run()
    at.slider(key="theory_kp").set_value(0.5).run()
    at.slider(key="theory_b").set_value(7).run()
    at.number_input(key="calc_size").set_value(7).run()
    at.number_input(key="calc_b").set_value(9).run()
    at.number_input(key="sched_steps").set_value(100).run()
    assert_clean(at)
    assert any("γ = (1 − 0.9) / (7·7) · (7·7)" in c.value for c in at.code)


def png_bytes(mode="RGB", size=(300, 200), color=(10, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def test_upload_real_png_then_corrupt_file():
    at = new_app().run()
    at.sidebar.file_uploader(key="upload").upload("blue.png", png_bytes(), "image/png")
    at.run()
    assert_clean(at)
    assert any("blue.png" in c.value for c in at.caption)

    at.sidebar.file_uploader(key="upload").clear().upload("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")
    at.run()
    assert not at.exception
    messages = [e.value for e in at.error]
    assert messages and "broken.png" in messages[0] and "can't be used" in messages[0]
    assert any("Coffee cup" in c.value for c in at.caption)  # falls back to the sample and keeps working
    assert at.table[0].value.iloc[0]["class"] == "espresso"  # the app still works


def test_url_parameters_open_the_same_view():
    at = new_app()
    at.query_params.update({"kp": "0.75", "b": "3", "seed": "42", "image": "chelsea", "group": "2"})
    at.run().switch_page(PAGES[0]).run()
    assert_clean(at)
    assert at.sidebar.slider(key="keep_prob").value == 0.75
    assert at.sidebar.slider(key="block_size").value == 3
    assert at.sidebar.selectbox(key="image").value == "chelsea"
    assert metric(at, "γ") == f"{db.dropblock_gamma(0.75, 3, 28, 28):.5f}"  # group 2: 28x28

    bad = new_app()
    bad.query_params.update({"kp": "banana", "b": "-4", "image": "../../etc/passwd"})
    bad.run()
    assert_clean(bad)
    assert bad.sidebar.slider(key="keep_prob").value == 0.9
    assert bad.sidebar.slider(key="block_size").value == 1
    assert bad.sidebar.selectbox(key="image").value == "coffee"


def test_parameters_persist_across_pages_and_reach_the_url():
    at = new_app(fewest_samples=True).run()  # settings persist whatever a page's sample count
    at.sidebar.slider(key="keep_prob").set_value(0.7)
    at.sidebar.slider(key="block_size").set_value(4)
    at.sidebar.selectbox(key="image").set_value("rocket")
    at.run()
    for page in [*PAGES, HOME]:
        at.switch_page(page).run()
        assert_clean(at)
        assert at.sidebar.slider(key="keep_prob").value == 0.7
        assert at.sidebar.slider(key="block_size").value == 4
        assert at.sidebar.selectbox(key="image").value == "rocket"
    assert at.query_params["kp"] == "0.7" and at.query_params["b"] == "4" and at.query_params["image"] == "rocket"


def test_theory_page_shows_mistakes_with_measured_rates():
    at = new_app().run()
    at.switch_page("pages/5_Theory_and_schedule.py").run()
    assert_clean(at)
    table = at.table[0].value
    paper = table.iloc[0]
    assert paper["recipe"].startswith("✅") and paper["train/inference mismatch"] == "0.0%"
    assert float(table.iloc[2]["realised drop"]) > 0.18  # seeds everywhere over-drop at 14x14, b=7
    assert any("count_ones/count_zeros" in r for r in table["recipe"])
