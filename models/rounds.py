"""Anytime Monte Carlo: a heavy view computed in rounds, each round a correct partial result.

A view that averages over N mask samples per point (the robustness curve, the image-set curve,
CAM shift, compare's drop rates, the theory page's contrasts, the DropBlock + Dropout arms) can
show a first answer after one sample and refine it: ``compute_X_rounds(...)`` yields a
:class:`Partial` after each round of :func:`round_sizes`, whose value is what ``compute_X`` would
return for the samples drawn so far (their mean and population std), and says how many of how
many samples it holds.

Exactness: sample ``s`` of a seed draws its masks from its own generator
(:func:`models.engine.sample_seed`), so a round draws only the new samples [a, b), and after N
samples the result equals the one-shot N-sample computation with the same seed: the same masks,
the same numbers up to float rounding (the batch shapes differ).

Cancelling: the ``progress(fraction, text)`` callback is called inside every round as in the
one-shot computation (``fraction`` counts samples over all rounds, 0 to 1); raising there (or,
where the view supports it, returning False) stops the computation within the round, and
closing the generator stops it between rounds.

Imports torch and the standard library only.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from torch import Tensor

__all__ = ["FIRST", "MOST", "Partial", "Progress", "last", "mean_std", "round_progress", "round_ranges", "round_sizes"]

T = TypeVar("T")
Progress = Callable[[float, str], "bool | None"]


@dataclass(frozen=True)
class Partial(Generic[T]):
    """A result computed from ``done`` of ``total`` Monte Carlo samples (per point).

    Attributes:
        value: the view's result dataclass over samples ``0 .. done - 1``.
        done: samples drawn so far (per point).
        total: samples asked for.
    """

    value: T
    done: int
    total: int

    @property
    def final(self) -> bool:
        """Whether every sample asked for is in (``done >= total``)."""
        return self.done >= self.total


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"expected {name} to be an int >= 1, but got {value!r}")
    return int(value)


FIRST = 1  # samples per point in a first round: the cheapest answer that has a value (bench/first_round.py)
MOST = 4  # new samples per round at most, by default: a round holds a worker for a bounded time


def round_sizes(total: int, first: int = FIRST, most: int | None = MOST) -> tuple[int, ...]:
    """Cumulative sample counts after each round: ``first``, then doubling, but never more than
    ``most`` new samples in a round (None: no bound), then ``total``.

    ``round_sizes(32, most=None) == (1, 2, 4, 8, 16, 32)``, ``round_sizes(32) == (1, 2, 4, 8, 12, …, 32)``,
    ``round_sizes(1) == (1,)``, ``round_sizes(3) == (1, 2, 3)``. Doubling keeps the extra cost of
    rounds small while the first answer comes after ``first`` samples (one: about half the CPU of
    two, bench/first_round.py; a one-sample round shows no spread, the page says "1 of N samples"); the bound keeps each round
    short, so that a session's first round never waits long behind another's refinement (the heavy
    pool does not interrupt a round once it runs).
    """
    total, first = _check_count(total, "total"), _check_count(first, "first")
    if most is not None:
        most = _check_count(most, "most")
    sizes, done = [], min(first, total)
    while done < total:
        sizes.append(done)
        done = done * 2 if most is None else min(done * 2, done + most)
    sizes.append(total)
    return tuple(sizes)


def round_ranges(total: int, first: int = FIRST, most: int | None = MOST) -> tuple[range, ...]:
    """The new samples of each round: ``range(previous count, count)`` over :func:`round_sizes`."""
    sizes = round_sizes(total, first, most)
    return tuple(range(a, b) for a, b in zip((0,) + sizes[:-1], sizes))


def round_progress(progress: Progress | None, new: range, total: int) -> Progress | None:
    """``progress`` as seen from a round drawing samples ``new`` of ``total``: the round's fraction
    ``f`` is reported as ``(new.start + f * len(new)) / total``, text and answer passed through."""
    if progress is None:
        return None

    def report(fraction: float, text: str) -> bool | None:
        return progress((new.start + float(fraction) * len(new)) / total, text)

    return report


def mean_std(values: Tensor, dim: int = -1) -> tuple[Tensor, Tensor]:
    """Mean and population std (``unbiased=False``) along ``dim``, as float32 tensors."""
    values = values.float()
    return values.mean(dim=dim), values.std(dim=dim, unbiased=False)


def last(parts: Iterable[Partial[T]]) -> Partial[T]:
    """The last round of ``parts`` (all of them computed): the final one, the one-shot result."""
    found = None
    for found in parts:
        pass
    if found is None:
        raise ValueError("expected at least one round, but got none")
    return found
