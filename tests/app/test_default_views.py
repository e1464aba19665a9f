"""Default views where something visibly happens (issue 23 §4): opened as a first visitor opens them,
the mask explorer shows channels the mask hit and says how they were chosen, the compare page shows
for each method a channel it dropped units in, and Algorithm 1's step-by-step shows a draw with seeds.

The pages are run with AppTest through the entrypoint; what they draw is checked against the public
``models`` compute functions called with the app's own defaults (ui/settings.py's table).
"""

from __future__ import annotations

import dataclasses

import re
from functools import cache

import models as M
from models.theory import compute_algorithm_steps
from ui import settings

from .conftest import ROOT, assert_clean, new_app


def default(url_key: str):
    return settings.BY_URL[url_key].default  # the one table of settings (ui/settings.py SETTINGS)


def default_spec() -> M.RegularizerSpec:
    return M.RegularizerSpec(keep_prob=default("kp"), block_size=default("b"), group=default("group"),
                             placement=default("place"), per_channel=not default("shared"),
                             seed_region=default("region"), gamma_mode=default("gamma"), normalize=default("norm"),
                             act_site=default("site"))


@cache
def _model_and_clean():
    loaded = M.load_model(allow_download=False)  # the hermetic fallback, as the app loads it
    image = M.decode_image((ROOT / "assets" / f"{default('image')}.jpg").read_bytes())
    return loaded.backbone, M.clean_pass(loaded.backbone, loaded.preprocess(image))


def open_page(path: str):
    at = new_app().run()
    at.switch_page(path).run()
    assert_clean(at)
    return at


def grid_captions(at) -> list[str]:
    return [m.group(1) for h in at.main.get("html") for m in re.finditer(r"<figcaption>(.*?)</figcaption>",
                                                                          h.proto.body)]


def test_default_mask_explorer_shows_channels_the_mask_hit_and_says_how_they_were_chosen():
    bb, clean = _model_and_clean()
    view = M.compute_mask_sample(bb, clean, default_spec(), seed=default("seed"), n_channels=8)
    dropped = (~view.block_mask).flatten(1).any(dim=1)  # (8,) per channel shown
    assert view.hit_channels >= 8 and bool(dropped.all()), (view.hit_channels, dropped)
    assert view.hit_channels < view.total_channels  # at keep_prob 0.9 most channels are not hit: the choice matters

    at = open_page("pages/1_Mask_explorer.py")
    caption = next(c for c in grid_captions(at) if "Masks drawn with seed" in c)
    assert (f"The 8 most active channels that were hit; {view.hit_channels} of {view.total_channels} channels "
            "were hit.") in caption, caption
    assert f"Channels {', '.join(map(str, view.channels))}." in caption, caption


def test_default_compare_page_shows_a_channel_where_each_method_dropped_something():
    bb, clean = _model_and_clean()
    # the page starts at the calibrated γ whatever the sidebar says (one drop budget for every method)
    result = M.compute_comparison(bb, clean, dataclasses.replace(default_spec(), gamma_mode="calibrated"),
                                  seed=default("seed"))
    for view in result.views:
        assert not bool(view.mask.all()), f"{view.label}: nothing dropped in the channel shown"

    at = open_page("pages/2_Compare_methods.py")
    captions = [i.caption for img in at.main.get("image") for i in img.proto.imgs]
    shown = [int(m.group(1)) for c in captions for m in [re.search(r"mask · channel (\d+) after the drop", c)] if m]
    assert shown == [v.channel for v in result.views if v.channel is not None], (shown, captions)


def test_default_theory_step_by_step_draws_seeds_and_says_which_seed():
    at = open_page("pages/5_Theory_and_schedule.py")
    size, kp, b = (at.slider(key=k).value for k in ("theory_size", "theory_kp", "theory_b"))
    steps = compute_algorithm_steps(size, size, kp, b, seed=default("seed"), seed_region=default("region"))
    assert int(steps.seed_mask.sum()) >= 1 and steps.count_ones < steps.count and steps.scale > 1.0
    numbers = next(m.value for m in at.main.get("markdown") if "count_ones(M)" in m.value)
    assert f"count(M) = {steps.count}, count_ones(M) = {steps.count_ones}" in numbers, numbers
    captions = [i.caption for img in at.main.get("image") for i in img.proto.imgs]
    assert any(f"Seed {steps.seed}" in c for c in captions), captions
    if steps.seed != steps.asked_seed:  # the sidebar's seed drew nothing here: the page says so
        assert any(f"the sidebar's seed {steps.asked_seed} drew no seed" in c for c in captions), captions


def test_the_step_by_step_keeps_the_asked_seed_when_it_draws_seeds_and_skips_to_one_that_does():
    first = compute_algorithm_steps(12, 12, 0.8, 3, seed=0, min_seeds=0)  # the plain draw, whatever it holds
    chosen = compute_algorithm_steps(12, 12, 0.8, 3, seed=0)
    if int(first.seed_mask.sum()) >= 1:
        assert chosen.seed == 0
    else:
        assert chosen.seed > 0 and int(chosen.seed_mask.sum()) >= 1
        for s in range(chosen.asked_seed, chosen.seed):  # none before it drew a seed
            assert int(compute_algorithm_steps(12, 12, 0.8, 3, seed=s, min_seeds=0).seed_mask.sum()) == 0
    nothing = compute_algorithm_steps(12, 12, 1.0, 3, seed=5)  # γ = 0: no search, the asked seed
    assert nothing.seed == 5 and int(nothing.seed_mask.sum()) == 0
