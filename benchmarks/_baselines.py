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


class PaperSearch:
    """The authors' transformer capacity search (their ``binary_sweep``), one decision at a time.

    Bisection on the size k (S = R = k facts per side): while hi − lo > 1 test k = ⌊(lo + hi)/2⌋; ``lo`` is
    assumed stored and ``hi`` assumed failing (neither is tested). At each k the learning rates are tried in
    grid order and the first that stores the table is accepted (the next rate is tried only when the
    previous one failed); k fails when every rate failed. :meth:`next` is the (k, rate index) to train,
    :meth:`update` records its outcome, so several searches can advance in lockstep.

    >>> s = PaperSearch(1, 64, 3)
    >>> s.next()
    (32, 0)
    >>> s.update(False); s.next()
    (32, 1)
    >>> s.update(False); s.update(False); s.next(), s.hi
    ((16, 0), 32)
    """

    def __init__(self, lo: int, hi: int, n_lrs: int):
        self.lo, self.hi, self.n_lrs = lo, hi, n_lrs
        self.lr = 0
        self.tested: list[tuple[int, int, bool]] = []  # (k, rate index, stored), in order

    @property
    def done(self) -> bool:
        return self.hi - self.lo <= 1

    def next(self) -> tuple[int, int] | None:
        """The size and learning-rate index to train next (None once the bracket is one wide)."""
        return None if self.done else ((self.lo + self.hi) // 2, self.lr)

    def update(self, stored: bool) -> None:
        """Record whether the table of size :meth:`next` was stored at the current learning rate."""
        k = (self.lo + self.hi) // 2
        self.tested.append((k, self.lr, stored))
        if stored:
            self.lo, self.lr = k, 0
        elif self.lr + 1 < self.n_lrs:
            self.lr += 1
        else:
            self.hi, self.lr = k, 0


def paper_search(lo: int, hi: int, n_lrs: int, stored: Callable[[int, int], bool]) -> PaperSearch:
    """Run a :class:`PaperSearch` to the end with ``stored(k, rate index)``; its ``lo`` is the capacity.

    The first rate that stores is accepted, so a later rate is never tried at a stored size; the floor is
    returned untested when every size above it fails:

    >>> s = paper_search(8, 512, 3, lambda k, j: k <= 13 and j >= 1)  # only the 2nd and 3rd rates store
    >>> s.lo, s.tested[:4]
    (13, [(260, 0, False), (260, 1, False), (260, 2, False), (134, 0, False)])
    >>> [t for t in s.tested if t[2]]  # stored at the 2nd rate: the 3rd never tried there
    [(11, 1, True), (13, 1, True)]
    >>> f = paper_search(8, 512, 1, lambda k, j: False)
    >>> f.lo, [t[0] for t in f.tested]
    (8, [260, 134, 71, 39, 23, 15, 11, 9])
    """
    search = PaperSearch(lo, hi, n_lrs)
    while not search.done:
        search.update(stored(*search.next()))
    return search
