"""Pieces of the paper's code's way of working, shared by the benchmarks' naive baselines."""

from __future__ import annotations

from collections.abc import Callable


def plain_bisection(lo: int, hi: int, stored: Callable[[int], bool]) -> int:
    """The authors' bisection: ``lo`` is assumed stored (never tested); stop when hi/lo ≤ 1.01 or hi − lo ≤ 1.

    >>> plain_bisection(8, 64, lambda n: n <= 40)
    40
    """
    while hi - lo > 1 and hi / lo > 1.01:
        mid = (lo + hi) // 2
        if stored(mid):
            lo = mid
        else:
            hi = mid
    return lo
