"""Issue 10 on the pages: exact budgets and units, the paper's placement, measured mistakes,
the tutorial's contrasts, and the DropBlock + Dropout page (AppTest, EfficientNet-Lite0 fallback)."""

from __future__ import annotations

import models as M

from .conftest import ROOT, assert_clean, new_app, until_final

STRATEGY = "pages/6_DropBlock_and_Dropout.py"


def coffee():
    loaded = M.load_model(allow_download=False)
    bb = loaded.backbone
    image = M.decode_image((ROOT / "assets" / "coffee.jpg").read_bytes())
    return bb, M.clean_pass(bb, M.to_input(image, bb.mean, bb.std))


def text(at) -> str:
    return " ".join(m.value for m in [*at.markdown, *at.caption, *at.info])


def test_compare_page_shows_units_both_gammas_and_honours_the_sidebar():
    at = new_app().run()
    at.sidebar.slider(key="keep_prob").set_value(0.75)
    at.sidebar.radio(key="gamma_mode").set_value("calibrated")
    at.sidebar.toggle(key="shared_mask").set_value(True)
    until_final(at.run().switch_page("pages/2_Compare_methods.py").run())
    assert_clean(at)
    assert at.radio(key="compare_gamma").value == "calibrated"  # starts at the sidebar's choice
    shown = text(at)
    assert "input-image pixels" in shown and "feature units, group 3 (14×14×" in shown
    assert [s.value for s in at.main.subheader] == ["Dropout", "SpatialDropout", "Cutout (features)", "DropBlock",
                                               "Cutout (input image)"]
    bb, clean = coffee()
    spec = M.RegularizerSpec(keep_prob=0.75, block_size=7, per_channel=False, gamma_mode="calibrated")
    result = M.compute_comparison(bb, clean, spec, seed=0)
    assert f"calibrated **{result.gamma_calibrated:.5f}**" in shown and f"**{result.gamma_eq1:.5f}**" in shown
    for view in result.views:
        assert f"realised drop **{view.realised_drop:.3f}**" in shown
    assert [m.value for m in at.metric] == [f"{v.class_prob:.3f}" for v in result.views]
    assert "Ignores: placement" in shown
    at.radio(key="compare_gamma").set_value("eq1").run()  # the fragment reruns on its own
    assert_clean(at)
    assert "Using: **Eq. (1) (paper)**" in text(at)


def test_robustness_page_uses_the_papers_placement_and_quotes_sec_4_2():
    at = new_app().run().switch_page("pages/4_Robustness_curve.py").run()
    assert_clean(at)
    assert at.radio(key="curve_place").value == "paper"
    shown = text(at)
    assert "drops more quickly with decreasing keep_prob, for block_size = 1" in shown
    assert "Used here: DropBlock inside the blocks of groups 3 and 4 (γ/4 in group 3)" in shown
    at.radio(key="curve_place").set_value("sidebar").run()
    assert_clean(at)
    assert "Used here: DropBlock after group 3" in text(at)


def test_theory_page_measures_mistakes_on_multi_channel_activations():
    at = new_app().run().switch_page("pages/5_Theory_and_schedule.py").run()
    assert_clean(at)
    table = at.table[0].value
    rows = {r["recipe"][2:]: r for _, r in table.iterrows()}
    assert "this image's group-3 output (112 channels, 14×14)" in text(at)
    assert 7.5 < float(rows["Tutorial scaling count_ones/count_zeros"]["train mean"]) < 10
    classic = rows["Classic dropout scaling: none in training, × keep_prob at inference"]
    assert float(classic["train/inference mismatch"].rstrip("%")) < 1.5
    tutorial = rows["Tutorial step 1: seeds with probability 1 − keep_prob (no γ correction)"]
    assert 0.64 < float(tutorial["realised drop"]) < 0.72  # 0.681 expected at 14×14, b=7, not 0.10
    assert not any("hides weights" in k for k in rows)  # weights are not feature units: their own table
    assert "Dropout hides weights" in " ".join(s.value for s in at.subheader)
    assert f"drops {float(tutorial['realised drop']):.3f} of the units" in text(at)
    weights = at.table[1].value
    assert list(weights["method"]) == ["Dropout", "DropConnect"]
    assert weights["weight columns partly zeroed"][0] == "0.0%"
    assert weights["input units silenced (of 112)"][1] == "0.0%"
    contrasts = at.table[2].value
    assert list(contrasts["contrast"]) == ["Site", "Site", "block_size", "block_size"]
    assert "never mentions the schedule" in text(at)


def test_dropblock_and_dropout_page_compares_four_arms_and_cites_the_paper():
    at = until_final(new_app().run().switch_page(STRATEGY).run())
    assert_clean(at)
    assert [s.value for s in at.main.subheader] == ["None", "DropBlock only", "Dropout before fc only",
                                               "DropBlock + Dropout before fc"]
    reported = at.table[0].value
    assert list(reported["none"][:2]) == ["95.3%", "94.5%"] and list(reported["with DropBlock & Dropout"][:2]) == ["+2.5", "+2.5"]
    assert list(reported.columns) == ["network", "none", "with Dropout", "with DropBlock & Dropout"]
    import re
    # st.table renders headers as Markdown: "+ Dropout" or "- x" would show as a bullet ("• Dropout")
    assert not [c for c in reported.columns if re.match(r"\s*([-+*]|\d+[.)])\s", c)]
    bb, clean = coffee()
    spec = M.RegularizerSpec(placement="in_blocks", groups=(2, 3), skip=False, group3_quarter=False,
                             group_params=((2, 0.8, 3), (3, 0.8, 3)))  # Hu et al.'s p = 0.8
    result = M.compute_dropblock_dropout(bb, clean, spec, fc_keep_prob=0.5, n_samples=16, seed=0)
    assert [m.value for m in at.metric] == [f"{v.class_prob:.3f}" for v in result.views]
    assert at.slider(key="strategy_kp2").value == at.slider(key="strategy_kp3").value == 0.8
    at.slider(key="strategy_fc_keep").set_value(0.8).run()
    at.multiselect(key="strategy_groups").set_value([4]).run()
    assert_clean(at)
    at.multiselect(key="strategy_groups").set_value([]).run()
    assert_clean(at)
    assert any("at least one group" in i.value for i in at.info)


def test_new_sidebar_options_reach_the_spec_and_the_url():
    at = new_app()
    at.query_params.update({"gamma": "calibrated", "norm": "batch", "site": "before_act"})
    at.run().switch_page("pages/1_Mask_explorer.py").run()
    assert_clean(at)
    assert at.sidebar.radio(key="gamma_mode").value == "calibrated"
    assert at.sidebar.radio(key="normalize").value == "batch"
    assert at.sidebar.radio(key="act_site").value == "before_act"
    assert any("calibrated: exact expected drop = 0.1000" in c.value for c in at.code)
    at.sidebar.radio(key="normalize").set_value("sample").run()
    assert at.query_params["norm"] == "sample" and at.query_params["gamma"] == "calibrated"
