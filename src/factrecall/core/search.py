"""Generic searches over a size: the largest N a model stores (capacity), bracketing from a tested lower end.

The search never assumes what is stored or how: a ``run_round(Ns, seeds)`` callable tests one N per seed
(ideally all in one compiled batch) and reports a :class:`Trial` per pair. Used by the memory capacities
(:mod:`factrecall.memories.capacity`) and by the transformer experiments alike. :func:`next_sizes` lists the
sizes a bracket may test next (for searches that run ahead, :mod:`factrecall.core.queue`).

Paper: SPEC §1.4 (bisection with relative precision from a lower bracket that is actually tested).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from factrecall.core.errors import check


class Trial(NamedTuple):
    """One tested (seed, N): whether it was stored, its best accuracy and which learning rate won."""

    seed: int
    N: int
    stored: bool
    accuracy: float
    lr: float | None
    diverged: int
    steps: int


FIRST_STEP = 1.15  # the first move away from the guess (then squared at each further move)


class Bracket:
    """Search state of one seed: the largest stored N tested (lo) and the smallest failing N tested (hi).

    Until both ends are known, N moves away from the guess by factors s, s², s⁴, … (s = ``first_step``,
    default 1.15: small first steps, since the guess is usually close); then it bisects geometrically.
    ``next`` is the N to test (0 once done); ``update`` records a tested N.
    """

    def __init__(self, guess: int, n_max: int, rel_precision: float, first_step: float = FIRST_STEP):
        self.lo: int | None = None
        self.hi: int | None = None
        self.next = max(1, min(guess, n_max))
        self.n_max, self.rel = n_max, rel_precision
        self.step = first_step

    def update(self, N: int, stored: bool) -> None:
        if stored:
            self.lo = N
        else:
            self.hi = N
        if self.lo is None:  # nothing stored yet: go down
            self.next = max(1, min(N - 1, math.floor(N / self.step)))
            self.step *= self.step
        elif self.hi is None:  # no failure yet: go up, up to the cap
            self.next = min(self.n_max, max(N + 1, math.ceil(N * self.step)))
            self.step *= self.step
        else:
            mid = round(math.sqrt(self.lo * self.hi))
            self.next = min(max(mid, self.lo + 1), self.hi - 1)
        if self.done:
            self.next = 0

    @property
    def done(self) -> bool:
        if self.lo is None:
            return self.hi is not None and self.hi <= 1
        if self.hi is None:
            return self.lo >= self.n_max
        return self.hi - self.lo <= 1 or self.hi / self.lo <= 1 + self.rel

    def rounds_left(self) -> int:
        """A rough estimate of the rounds this seed still needs (for progress bars)."""
        if self.done:
            return 0
        ratio = self.step if self.lo is None or self.hi is None else self.hi / self.lo
        bisections = math.ceil(math.log2(max(math.log(ratio) / math.log(1 + self.rel), 1.0)))
        return bisections + (1 if self.lo is None or self.hi is None else 0)


def next_sizes(bracket: Bracket, N: int, known: Callable[[int], bool | None], limit: int) -> list[int]:
    """Up to ``limit`` sizes ``bracket`` may test after N, breadth first: after a size whose outcome is not
    ``known`` (None) the next size if it fails, then if it is stored; after a known one, its branch only.
    Failure first: a failing trial runs its whole budget, so the size after it gains the most from a head
    start.

    >>> next_sizes(Bracket(10, 100, 1e-9), 10, lambda n: None, 2)
    [8, 12]
    >>> next_sizes(Bracket(10, 100, 1e-9), 10, {12: False}.get, 5)  # 12 failed: bisect [10, 12] next
    [8, 12, 6, 9, 11]
    """
    out: list[int] = []
    frontier = [(bracket, N)]
    while frontier and len(out) < limit:
        here, M = frontier.pop(0)
        outcome = None if M == N else known(M)
        for stored in (False, True) if outcome is None else (outcome,):
            after = copy.deepcopy(here)
            after.update(M, stored)
            if not after.done and after.next != N and after.next not in out and len(out) < limit:
                out.append(after.next)
                frontier.append((after, after.next))
    return out


def status_line(brackets: Mapping[int, Bracket], ends: str = "[]") -> str:
    """Each seed's bracket for a progress line, e.g. ``seed 0: [12, 14], seed 1: [None, 20]``."""
    return ", ".join(f"seed {s}: {ends[0]}{b.lo}, {b.hi}{ends[1]}" for s, b in brackets.items())


def largest(
    brackets: Mapping[int, Bracket], seeds: Sequence[int], trials: Sequence[Trial]
) -> tuple[tuple[int, ...], bool, tuple[Trial, ...]]:
    """The result of a search for the largest stored N, from its finished brackets.

    Returns:
        (N* per seed — the largest stored N tested, 0 if even N = 1 failed —, whether any seed stored
        ``n_max`` (capped), every trial in order).
    """
    per_seed = tuple(brackets[s].lo or 0 for s in seeds)
    capped = any(b.lo is not None and b.hi is None for b in brackets.values())
    return per_seed, capped, tuple(trials)


def _bracket_all(
    run_round: Callable[[list[int], list[int]], list[Trial]],
    seeds: Sequence[int],
    guess: int,
    n_max: int,
    rel_precision: float,
    on_round: Callable[[int, int, str], None] | None,
    ends: str,
    on_stored: bool,
) -> tuple[dict[int, Bracket], list[Trial]]:
    """Rounds until every seed's bracket is done; a bracket's "yes" is ``t.stored == on_stored`` (``ends``:
    the bracket's delimiters in the progress line)."""
    check(len(seeds) >= 1, "need at least one seed")
    check(rel_precision > 0, f"rel_precision must be > 0, got {rel_precision}")
    check(n_max >= 1, f"n_max must be ≥ 1, got {n_max}")
    brackets = {s: Bracket(guess, n_max, rel_precision) for s in seeds}
    trials: list[Trial] = []
    rounds = 0
    while active := [s for s in seeds if not brackets[s].done]:
        for t in run_round([brackets[s].next for s in active], active):
            brackets[t.seed].update(t.N, t.stored == on_stored)
            trials.append(t)
        rounds += 1
        if on_round is not None:
            left = max(b.rounds_left() for b in brackets.values())
            on_round(rounds, rounds + left, status_line(brackets, ends))
    return brackets, trials


def search_largest(
    run_round: Callable[[list[int], list[int]], list[Trial]],
    seeds: Sequence[int],
    guess: int,
    *,
    n_max: int = 1_000_000,
    rel_precision: float = 0.01,
    on_round: Callable[[int, int, str], None] | None = None,
) -> tuple[tuple[int, ...], bool, tuple[Trial, ...]]:
    """The largest stored N for each seed, by bracketing and geometric bisection (SPEC §1.4).

    Generic over what is stored: ``run_round(Ns, seeds)`` tests one N per seed (all in one batch, ideally)
    and returns a :class:`Trial` per pair. Each seed starts at ``guess``, moves by ×1.15, ×1.15², … until
    it has a stored N (lo) and a failing N (hi) that were both tested, then bisects until hi/lo ≤ 1 +
    ``rel_precision`` or hi − lo ≤ 1. N never exceeds ``n_max``; a seed that stores ``n_max`` is capped.

    Returns:
        (N* per seed — 0 if even N = 1 failed —, whether any seed was capped, every trial in order).

    Raises:
        ConfigError: no seeds, or ``rel_precision`` ≤ 0.
    """
    brackets, trials = _bracket_all(run_round, seeds, guess, n_max, rel_precision, on_round, "[]", True)
    return largest(brackets, seeds, trials)


def search_smallest(
    run_round: Callable[[list[int], list[int]], list[Trial]],
    seeds: Sequence[int],
    guess: int,
    *,
    n_max: int = 1_000_000,
    rel_precision: float = 0.01,
    on_round: Callable[[int, int, str], None] | None = None,
) -> tuple[tuple[int, ...], bool, tuple[Trial, ...]]:
    """The smallest size N that stores, per seed: the mirror of :func:`search_largest`.

    For a size that helps (a construction's width): each seed starts at ``guess``, moves by ×1.15,
    ×1.15², … until it has a failing N below a stored N, both tested, then bisects geometrically until
    hi/lo ≤ 1 + ``rel_precision`` or hi − lo ≤ 1. The answer is the smallest N tested that stored, so it
    is always a tested upper end. N never exceeds ``n_max``.

    Returns:
        (smallest stored N per seed — 0 if even ``n_max`` failed —, whether any seed never stored up to
        ``n_max``, every trial in order).

    Raises:
        ConfigError: no seeds, ``rel_precision`` ≤ 0 or ``n_max`` < 1.

    >>> def run_round(Ns, seeds):
    ...     return [Trial(s, N, N >= 37, float(N >= 37), None, 0, 0) for N, s in zip(Ns, seeds)]
    >>> search_smallest(run_round, [0], 100, rel_precision=0.001)[:2]
    ((37,), False)
    """
    # A bracket on "failed": its lo is the largest failing N tested, its hi the smallest stored N tested.
    brackets, trials = _bracket_all(run_round, seeds, guess, n_max, rel_precision, on_round, "(]", False)
    per_seed = tuple(brackets[s].hi or 0 for s in seeds)
    never = any(b.hi is None for b in brackets.values())
    return per_seed, never, tuple(trials)
