"""The models every session shares: the default ones pinned, the others in a small LRU.

A classroom server holds one process for every student. With a plain bounded cache, one
session choosing several models in a row would push out the model everybody else uses, and
every session would then pay for loading it again (and lose its cached results). Here:

* keys are :class:`~models.loading.ModelSpec` values built only from server-side lists (the
  weights enums, the operator's directory), never from text a visitor types;
* a model loaded with ``pin=True`` (the app's default) is kept for the life of the process;
* at most ``capacity`` other models are kept, least recently used first out;
* a refused operator file is remembered like a model (its :class:`WeightsFileError` is raised
  again), so a bad 1 GiB file is not re-read on every rerun;
* each key is loaded once, under its own lock, even when many sessions ask at the same time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ModelCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ModelCache(Generic[K, V]):
    """Thread-safe cache: pinned entries are never evicted; unpinned ones live in an LRU.

    Args:
        load: ``load(key, **kwargs)`` builds the value; an exception of a type in ``remember``
            is cached too and raised again on every ``get`` of that key.
        capacity: how many unpinned entries are kept (at least 1).
        remember: exception types worth caching (a refused file), as a tuple.
        on_evict: called (outside the lock) after entries were evicted, e.g. to hand their memory back.
    """

    def __init__(self, load: Callable[..., V], capacity: int = 2,
                 remember: tuple[type[BaseException], ...] = (), on_evict: Callable[[], object] | None = None):
        if capacity < 1:
            raise ValueError(f"expected capacity >= 1, but got {capacity}")
        self._load = load
        self._on_evict = on_evict
        self._remember = remember
        self.capacity = capacity
        self._pinned: dict[K, V | BaseException] = {}
        self._lru: OrderedDict[K, V | BaseException] = OrderedDict()
        self._lock = threading.Lock()  # guards the two dicts and _key_locks
        self._key_locks: dict[K, threading.Lock] = {}

    def _lookup(self, key: K, pin: bool) -> tuple[bool, V | BaseException | None]:
        with self._lock:
            if key in self._pinned:
                return True, self._pinned[key]
            if key in self._lru:
                if pin:  # promoted: from now on it is never evicted
                    self._pinned[key] = self._lru.pop(key)
                    return True, self._pinned[key]
                self._lru.move_to_end(key)
                return True, self._lru[key]
            return False, None

    def get(self, key: K, *, pin: bool = False, **kwargs) -> V:
        """The value for ``key``, loaded once (``kwargs`` go to ``load``, e.g. a progress callback)."""
        found, value = self._lookup(key, pin)
        if not found:
            with self._lock:
                key_lock = self._key_locks.setdefault(key, threading.Lock())
            with key_lock:  # one loader per key; other keys load in parallel
                found, value = self._lookup(key, pin)
                if not found:
                    try:
                        value = self._load(key, **kwargs)
                    except self._remember as err:
                        value = err
                    self._store(key, value, pin)
            with self._lock:
                self._key_locks.pop(key, None)
        if isinstance(value, BaseException):
            raise value
        return value

    def _store(self, key: K, value: V | BaseException, pin: bool) -> None:
        evicted = []
        with self._lock:
            if pin:
                self._pinned[key] = value
                return
            self._lru[key] = value
            while len(self._lru) > self.capacity:
                evicted.append(self._lru.popitem(last=False)[1])
        if evicted and self._on_evict is not None:
            del evicted  # the cache's last references: the evicted models can go now
            self._on_evict()

    def peek(self, key: K) -> V | None:
        """The cached value for ``key`` without loading or reordering (None if absent or refused)."""
        with self._lock:
            value = self._pinned.get(key, self._lru.get(key))
        return None if isinstance(value, BaseException) else value

    @property
    def pinned(self) -> tuple[K, ...]:
        with self._lock:
            return tuple(self._pinned)

    @property
    def others(self) -> tuple[K, ...]:
        with self._lock:
            return tuple(self._lru)
