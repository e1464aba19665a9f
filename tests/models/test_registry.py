"""The shared model cache (issue 13, defect 4): one session cannot evict everyone's model."""

from __future__ import annotations

import threading
import time
import weakref

import pytest

from models.registry import ModelCache
from models.weights_files import WeightsFileError


class Loader:
    def __init__(self, delay: float = 0.0):
        self.calls: list[str] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, key: str, **kwargs) -> object:
        with self.lock:
            self.calls.append(key)
        time.sleep(self.delay)
        if key.startswith("bad"):
            raise WeightsFileError(key, "not a state dict")
        return object()


def test_pinned_default_survives_a_session_cycling_through_every_choice():
    cache = ModelCache(Loader(), capacity=2)
    default = cache.get("default", pin=True)
    for round_ in range(3):
        for key in [f"choice-{i}" for i in range(10)]:
            cache.get(key)
            assert len(cache.others) <= 2
    assert cache.get("default") is default and cache.pinned == ("default",)


def test_unpinned_models_are_least_recently_used_out():
    loader = Loader()
    cache = ModelCache(loader, capacity=2)
    a = cache.get("a")
    cache.get("b")
    assert cache.get("a") is a  # a is now the most recent
    cache.get("c")  # evicts b
    assert cache.others == ("a", "c") and cache.peek("b") is None
    assert cache.get("a") is a and loader.calls == ["a", "b", "c"]


def test_asking_for_the_default_later_pins_it():
    cache = ModelCache(Loader(), capacity=1)
    model = cache.get("default")
    assert cache.get("default", pin=True) is model
    cache.get("x")
    cache.get("y")
    assert cache.peek("default") is model


def test_a_refused_file_is_remembered_not_reread():
    loader = Loader()
    cache = ModelCache(loader, capacity=2, remember=(WeightsFileError,))
    for _ in range(3):
        with pytest.raises(WeightsFileError, match="could not load bad.pth: not a state dict"):
            cache.get("bad.pth")
    assert loader.calls == ["bad.pth"] and cache.peek("bad.pth") is None


def test_other_errors_are_not_cached():
    calls = []

    def flaky(key):
        calls.append(key)
        if len(calls) == 1:
            raise OSError("transient")
        return object()

    cache = ModelCache(flaky, capacity=2, remember=(WeightsFileError,))
    with pytest.raises(OSError):
        cache.get("k")
    assert cache.get("k") is not None and calls == ["k", "k"]


def test_many_sessions_asking_at_once_load_each_model_once():
    loader = Loader(delay=0.05)
    cache = ModelCache(loader, capacity=4)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda k=k: seen.append(cache.get(k))) for k in ["m", "n"] * 8]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(loader.calls) == ["m", "n"] and len({id(s) for s in seen}) == 2


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="expected capacity >= 1"):
        ModelCache(Loader(), capacity=0)


def test_eviction_calls_on_evict_once_the_cache_let_go():
    class Model:  # weakly referenceable, unlike a bare object()
        pass

    calls: list[int] = []
    cache = ModelCache(lambda key: Model(), capacity=1, on_evict=lambda: calls.append(len(cache.others)))
    cache.get("a", pin=True)
    cache.get("b")
    assert calls == []  # nothing evicted: a pinned entry and one in the LRU
    first = weakref.ref(cache.get("b"))
    cache.get("c")  # "b" goes
    assert calls == [1] and first() is None  # called after the cache dropped its reference
    cache.get("c")
    assert calls == [1]
