"""models/animation.py: GIF and MP4 of the mask explorer's picture over seeds and sweeps."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image, ImageSequence

import models as M
from models import animation as A
from ui import render

from .test_mask_sample import modules_called


def draw(view: M.MaskSample, vmax: float, tile: int) -> Image.Image:
    """The page's tiles (ui/render.py), as ui/animation.py draws them."""
    rows = [[render.mask_rgb(k, s) for k, s in zip(view.block_mask, view.seed_mask)],
            [render.colorize(a, "viridis", 0.0, vmax) for a in view.after]]
    return render.grid(rows, size=tile)


def caption(value, view: M.MaskSample) -> list[str]:
    return [f"value {value} · realised drop {view.realised_drop:.3f}", "fixed settings", "legend"]


def make(lite0, clean, anim: A.AnimationSpec, *, seed: int = 0, spec: M.RegularizerSpec | None = None,
         n_channels: int = 4) -> A.Animation:
    return A.render_animation(lite0.backbone, clean, spec or M.RegularizerSpec(), anim, seed=seed,
                              n_channels=n_channels, draw=draw, caption=caption)


def gif_frames(data: bytes) -> tuple[Image.Image, list[np.ndarray]]:
    gif = Image.open(io.BytesIO(data))
    return gif, [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]


@pytest.mark.parametrize("size", ["small", "medium"])
@pytest.mark.parametrize("frames", [4, 9])
def test_gif_has_the_frames_asked_for_at_the_width_asked_for_and_loops(lite0, coffee_clean, frames, size):
    anim = A.AnimationSpec("seeds", frames=frames, width=A.WIDTHS[size], fmt="gif", frame_ms=400)
    result = make(lite0, coffee_clean, anim)
    gif, pixels = gif_frames(result.data)
    assert gif.format == "GIF" and result.mime == "image/gif"
    assert gif.n_frames == frames == result.frames and result.values == tuple(range(frames))
    assert gif.size == result.size and gif.size[0] == A.WIDTHS[size]
    assert gif.size[0] % 2 == 0 and gif.size[1] % 2 == 0
    assert gif.info["loop"] == 0 and gif.info["duration"] == 400
    assert all(p.shape == pixels[0].shape for p in pixels)


def test_seed_frames_differ_and_the_same_seed_gives_the_same_frames(lite0, coffee_clean):
    anim = A.AnimationSpec("seeds", frames=5, width=A.WIDTHS["small"], fmt="gif")
    first, again = make(lite0, coffee_clean, anim), make(lite0, coffee_clean, anim)
    assert first.data == again.data  # deterministic: the masks come from seeded generators
    _, pixels = gif_frames(first.data)
    height = pixels[0].shape[0]
    for a, b in zip(pixels, pixels[1:]):
        assert not np.array_equal(a[height // 2 :], b[height // 2 :])  # the maps, below the caption
    # the masks themselves differ across seeds, not just the caption: the realised drops do
    assert len(set(first.realised_drops)) > 1
    # a frame for seed s is the same whichever animation it is in
    longer = make(lite0, coffee_clean, A.AnimationSpec("seeds", frames=6, width=A.WIDTHS["small"], fmt="gif"))
    assert longer.realised_drops[:5] == first.realised_drops


def test_frames_are_the_mask_views_of_the_page(lite0, coffee_clean):
    spec = M.RegularizerSpec(keep_prob=0.8, block_size=3)
    result = make(lite0, coffee_clean, A.AnimationSpec("seeds", frames=4, width=A.WIDTHS["small"], fmt="gif"),
                  spec=spec)
    for seed, drop in zip(result.values, result.realised_drops):
        assert drop == M.compute_mask_sample(lite0.backbone, coffee_clean, spec, seed=seed).realised_drop


def test_frames_run_no_layer_after_the_site(lite0, coffee_clean):
    """A frame shows masks and feature maps only: with the paper's in-block placement, only the first
    block of group 3 runs (up to its first site), never the head or the classifier."""
    spec = M.RegularizerSpec(keep_prob=0.8, block_size=3, placement="in_blocks")
    bb = lite0.backbone
    first_block = {id(m) for m in bb.groups[2][0].modules()}
    with modules_called() as called:
        result = make(lite0, coffee_clean, A.AnimationSpec("seeds", frames=4, width=A.WIDTHS["small"], fmt="gif"),
                      spec=spec)
    assert called and all(id(m) in first_block for m in called)
    for seed, drop in zip(result.values, result.realised_drops):  # still the page's masks
        assert drop == M.compute_mask_sample(bb, coffee_clean, spec, seed=seed).realised_drop


def test_keep_prob_sweep_drops_more_as_keep_prob_falls(lite0, coffee_clean):
    anim = A.AnimationSpec("keep_prob", frames=8, width=A.WIDTHS["small"], fmt="gif", start=0.3, stop=1.0)
    result = make(lite0, coffee_clean, anim, seed=3)
    kp = np.array(result.values)
    drops = np.array(result.realised_drops)
    assert kp[0] == 1.0 and kp[-1] == pytest.approx(0.3) and np.all(np.diff(kp) < 0)
    assert drops[0] == 0.0  # keep_prob = 1 drops nothing
    assert np.all(np.diff(drops) >= 0)  # one seed: a lower keep_prob never drops less
    assert drops[-1] > 0.3  # and the budget is spent (Eq. (1) gives a little less than 1 - keep_prob)
    assert Image.open(io.BytesIO(result.data)).n_frames == 8


def test_block_size_sweep_has_one_frame_per_size(lite0, coffee_clean):
    anim = A.AnimationSpec("block_size", frames=12, width=A.WIDTHS["small"], fmt="gif", start=1, stop=5)
    assert A.frame_values(anim) == (1, 2, 3, 4, 5)  # fewer sizes than frames: each size once
    result = make(lite0, coffee_clean, anim)
    assert Image.open(io.BytesIO(result.data)).n_frames == 5 == result.frames


def test_masks_stay_crisp_in_the_gif(lite0, coffee_clean):
    """The mask colours survive the palette exactly (no dithering, no near-colours)."""
    result = make(lite0, coffee_clean, A.AnimationSpec("seeds", frames=4, width=A.WIDTHS["small"], fmt="gif"))
    _, pixels = gif_frames(result.data)
    # Over all frames: one seed's 4 channels may hold no seed at all (about 1 in 8 at these settings).
    colours = {tuple(c) for frame in pixels for c in np.unique(frame.reshape(-1, 3), axis=0)}
    assert {(235, 235, 235), (150, 20, 40), (250, 200, 0)} <= colours


@pytest.mark.parametrize("form,start,stop", [("seeds", 0, 0), ("block_size", 1, 7)])
def test_mp4_decodes_back_to_the_frames_as_h264_with_even_sides(lite0, coffee_clean, form, start, stop):
    anim = A.AnimationSpec(form, frames=6, width=A.WIDTHS["small"], fmt="mp4", start=start, stop=stop)
    result = make(lite0, coffee_clean, anim, n_channels=3)  # 3 tiles: an odd-sized picture made even
    assert result.mime == "video/mp4"
    with av.open(io.BytesIO(result.data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 6
    height, width = decoded[0].shape[:2]
    assert (width, height) == result.size and width % 2 == 0 and height % 2 == 0
    assert not np.array_equal(decoded[0], decoded[-1])


def test_chinese_captions_are_drawn_with_glyphs():
    """A CJK font is found, so Chinese captions are not boxes: two different characters differ."""
    picture = Image.new("RGB", (200, 80), "white")
    a = np.asarray(A.compose_frame(picture, ["种子 0"], 360))
    b = np.asarray(A.compose_frame(picture, ["掩码 0"], 360))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("kwargs", [
    {"form": "walk"}, {"fmt": "webm"}, {"frames": 3}, {"frames": A.MAX_FRAMES + 1},
    {"width": A.WIDTHS["large"], "frames": A.MAX_FRAMES}, {"width": 100}, {"frame_ms": 10},
    {"form": "keep_prob", "start": 0.0, "stop": 0.5}, {"form": "block_size", "start": 5, "stop": 2},
])
def test_bad_settings_are_refused_with_a_message(kwargs):
    with pytest.raises(ValueError, match="expected"):
        A.AnimationSpec(**kwargs)


def test_the_cap_bounds_frames_times_pixels():
    for width in A.WIDTHS.values():
        assert A.MIN_FRAMES <= A.max_frames(width) <= A.MAX_FRAMES
        assert A.max_frames(width) * width * width <= A.MAX_FRAME_PIXELS
    assert A.max_frames(A.WIDTHS["small"]) == A.MAX_FRAMES


def test_encoders_refuse_mixed_sizes():
    frames = [Image.new("RGB", (64, 64)), Image.new("RGB", (64, 66))]
    with pytest.raises(ValueError, match="one size"):
        A.encode_gif(frames, 500)
    with pytest.raises(ValueError, match="even"):
        A.encode_mp4([Image.new("RGB", (63, 64))], 500)
