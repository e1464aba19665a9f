"""The bundled image set (#23): at least 24 small, attributed photos, each classified right by the
offline fallback (EfficientNet-Lite0) with confidence, read through the page's own path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import models as M
from models.imageset import network_inputs, read_files
from models.setcurve import compute_set_predictions
from ui.imageset import BUNDLED_SET

ASSETS = Path(__file__).resolve().parents[2] / "assets"

# What each photo shows, as ImageNet classes (the subject, not a model's output).
ACCEPTED = {
    "coffee.jpg": {"espresso", "cup"}, "chelsea.jpg": {"tabby", "tiger cat", "Egyptian cat"},
    "aitzgorri.jpg": {"alp", "valley"}, "binoculars.jpg": {"binoculars"}, "broccoli.jpg": {"broccoli"},
    "brown_bear.jpg": {"brown bear"}, "cameraman.jpg": {"tripod", "reflex camera"}, "castle.jpg": {"castle", "palace"},
    "chameleon.jpg": {"African chameleon", "American chameleon"}, "cups.jpg": {"cup", "coffee mug"},
    "djembe.jpg": {"drum"}, "dragonfly.jpg": {"dragonfly", "damselfly"}, "dromedary.jpg": {"Arabian camel"},
    "fig.jpg": {"fig"}, "fire_engine.jpg": {"fire engine"}, "forest_stream.jpg": {"valley"},
    "gerbera_orange.jpg": {"daisy"}, "gerbera_yellow.jpg": {"daisy"}, "goose.jpg": {"goose"},
    "guitar.jpg": {"acoustic guitar"}, "hen.jpg": {"hen"}, "honey_bee.jpg": {"bee"}, "ladybird.jpg": {"ladybug"},
    "lemons.jpg": {"lemon", "orange"}, "paintbrushes.jpg": {"paintbrush"}, "picos_de_europa.jpg": {"alp", "valley"},
    "rowing_boats.jpg": {"canoe", "paddle", "boathouse"}, "sea_lion.jpg": {"sea lion"},
    "spaniels.jpg": {"cocker spaniel", "Sussex spaniel", "English springer"}, "summer_palace.jpg": {"palace"},
    "suspension_bridge.jpg": {"suspension bridge"}, "wall_clock.jpg": {"wall clock", "analog clock"},
}


def test_the_set_is_large_small_and_attributed():
    names = [name.rpartition("/")[2] for name in BUNDLED_SET]
    assert len(names) >= 24 and len(set(names)) == len(names) and set(names) == set(ACCEPTED)
    attribution = (ASSETS / "ATTRIBUTION.md").read_text()
    for name in BUNDLED_SET:
        assert (ASSETS / name).stat().st_size <= 80_000, name  # small JPEGs (coffee.jpg, the oldest, is 78 kB)
        assert f"| `{name}` |" in attribution, f"{name} has no row in assets/ATTRIBUTION.md"
    assert "astronaut" not in " ".join(BUNDLED_SET) and "rocket" not in " ".join(BUNDLED_SET)  # wrong on the fallback


@pytest.fixture(scope="module")
def predictions():
    loaded = M.load_model(allow_download=False, device=torch.device("cpu"))
    files = [(name.rpartition("/")[2], (ASSETS / name).read_bytes()) for name in BUNDLED_SET]
    imageset = read_files(files, "bundled")
    assert [i.name for i in imageset.images] == [n for n, _ in files] and not imageset.rejected
    top = compute_set_predictions(loaded.backbone, network_inputs(imageset, loaded.preprocess))
    return loaded, {name: (loaded.backbone.categories[c], p) for (name, _), (c, p) in zip(files, top)}


def test_the_fallback_gets_every_image_right_with_confidence(predictions):
    loaded, top = predictions
    if loaded.backbone.name != "efficientnet_lite0":
        pytest.skip("the set is chosen for the offline fallback; another network may differ")
    wrong = {name: top[name] for name in top if top[name][0] not in ACCEPTED[name] or top[name][1] <= 0.3}
    assert not wrong, wrong
    assert sum(p > 0.5 for _, p in top.values()) >= 24  # most of them with a clear margin
