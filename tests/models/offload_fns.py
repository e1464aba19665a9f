"""Functions the helper-process tests (test_offload.py) run in a helper: importable by name there
(the tests put this folder on the helpers' PYTHONPATH)."""

from __future__ import annotations

import os
import time

import torch

from models.rounds import Partial


def counting(n: int, scale: float = 1.0, progress=None):
    """n rounds; round i's value is a big tensor made once (sent once) and a small one made each round."""
    big = torch.arange(64 * 64, dtype=torch.float32).reshape(64, 64) * scale
    for i in range(n):
        if progress is not None:
            progress(i / n, "counting")
        yield Partial((big, torch.full((2,), float(i)), os.getpid()), i + 1, n)


def failing(progress=None):
    yield Partial(1, 1, 3)
    raise ValueError("expected a failure here, and got it")


def reporting_until(path: str, progress=None):
    """One round that reports progress until ``path`` exists (a cancel stops it at a report)."""
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        progress(0.5, "waiting")
        time.sleep(0.01)
    yield Partial("went on", 1, 1)


def of_clean(clean, progress=None):
    yield Partial((float(clean.logits.double().sum()), os.getpid()), 1, 1)


def plain(progress=None):
    return 42


def of_model(loaded, progress=None):
    """Two rounds that need the model in the helper."""
    for i in range(2):
        yield Partial((loaded.backbone.name, os.getpid()), i + 1, 2)


def accumulating(n: int, progress=None):
    """n rounds that yield one big tensor, added to in place each round (a running sum)."""
    total = torch.zeros(64, 64)
    for i in range(n):
        total += 1.0
        yield Partial(total, i + 1, n)


def unpicklable(progress=None):
    """A round whose value has no pickle (a lock)."""
    import threading

    yield Partial((threading.Lock(), os.getpid()), 1, 1)


def inferred(n: int, progress=None):
    """Rounds whose big tensor was made in inference mode (no version counter)."""
    with torch.inference_mode():
        big = torch.ones(64, 64)
    for i in range(n):
        yield Partial((big, os.getpid()), i + 1, n)


def reporting_text(progress=None):
    """One round that reports a sentence made from a template (translated where it is shown)."""
    from models.text import Text

    progress(0.5, Text("{method}, keep_prob {keep_prob:g}", method="DropBlock", keep_prob=0.9))
    yield Partial(None, 1, 1)


def model_logit(loaded, x, progress=None):
    """The model's first logit for ``x``: which weights the helper used."""
    with torch.no_grad():
        yield Partial(float(loaded.backbone.model(x)[0, 0]), 1, 1)
