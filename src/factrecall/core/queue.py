"""The work-queue schedule of a capacity search whose failing trials cost the whole step budget: runs share a
fixed number of slots, refilled as runs stop. Generic over what is stored: a :class:`Family` says how to
build, pad and judge the runs of a trial (trained MLP memories: :mod:`factrecall.memories.queue`; one-layer
transformers: :mod:`factrecall.recall.capacity`).

Each seed searches on its own (:class:`~factrecall.core.search.Bracket`): its trial at N queues one run per
learning rate; a trial is decided as soon as one run reaches the criterion (its other runs are dropped,
queued or running) or when all its runs have stopped. Between spans of steps
(:func:`factrecall.core.runs.advance_runs`) stopped runs leave their slots and queued runs take them, so
the batch stays full: a seed whose trial succeeded early starts its next trial while another seed's
failing trial is still running, and no slot is spent on padding rows or on repeating a round's slowest
trial. Every slot's problem is padded to one size (the family's pad of the largest N running), so one
compiled program serves every size of a search as long as the pad holds.

Nothing depends on timing: the schedule, and so every number, is a function of the family, the seeds and
the device count.

Paper: §3 (Figure 1) and §4 (Figure 4); SPEC §1.4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Key, Params
from factrecall.core.engine import Problem, Settings, best_rate
from factrecall.core.runs import Runs, advance_runs, start_runs
from factrecall.core.search import Bracket, Trial, largest, status_line

Slot = tuple[int, int, int]
"""A run: (seed, N, index of its learning rate in the grid)."""
Outcome = tuple[float, bool, int]
"""A stopped run: (best metric, diverged, steps)."""


class Family(Protocol):
    """What the queue needs to know about the trials of one search.

    Attributes:
        lrs: the learning-rate grid (a trial queues one run per rate, in grid order).
        criterion: a run that reaches it decides its trial (stored).
        first_step: the brackets' first move away from the guess (see :class:`Bracket`).
        settings: the runs' static engine settings.
    """

    lrs: tuple[float, ...]
    criterion: float
    first_step: float
    settings: Settings

    def problem(self, pad: int) -> Problem:
        """The engine problem the runs train when padded to ``pad`` (one compiled program per pad)."""

    def repad(self, N: int, pad: int) -> int:
        """The pad to use when the largest N running is ``N`` and the current pad is ``pad`` (0 at start)."""

    def data(self, seed: int, N: int, pad: int) -> Any:
        """The data pytree of trial (seed, N), padded to ``pad``."""

    def params(self, seed: int, N: int) -> Params:
        """The initial weights of trial (seed, N) (their shapes must not depend on N)."""

    def key(self, seed: int, N: int) -> Key:
        """The batch key of trial (seed, N)."""

    def stall_below(self, N: int) -> float:
        """Patience stops a run of size N only while its best metric is below this."""


def stack(trees: Sequence[Any]) -> Any:
    """Pytrees stacked along a new leading axis."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


class RunQueue:
    """Runs of a capacity search in ``n_slots`` slots, advanced ``span`` steps at a time (see the module).

    ``queue`` holds the runs waiting for a slot, in order; :meth:`advance` places them, runs one span and
    returns the runs that stopped; :meth:`drop` forgets a decided trial's other runs.
    """

    def __init__(self, family: Family, n_slots: int, span: int):
        self.family, self.K, self.span = family, n_slots, span
        self.slots: list[Slot | None] = [None] * n_slots
        self.queue: list[Slot] = []
        self.host: Runs | None = None
        self.n_pad = 0
        self._cache: dict[tuple[int, int, int], Any] = {}
        self._batch: tuple[tuple[list, int], tuple[Any, ...]] | None = None  # the last stacked slots

    def _data(self, seed: int, N: int) -> Any:
        if (seed, N, self.n_pad) not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[2] == self.n_pad}
            self._cache[seed, N, self.n_pad] = self.family.data(seed, N, self.n_pad)
        return self._cache[seed, N, self.n_pad]

    def _compact(self) -> None:
        """Shrink to the slots needed (a multiple of the device count) when at most half are."""
        busy = [x for x in self.slots if x is not None]
        n_dev = jax.device_count()
        need = n_dev * max(1, math.ceil((len(busy) + len(self.queue)) / n_dev))
        if need > self.K // 2:
            return
        keep = [i for i, x in enumerate(self.slots) if x is not None]
        if not keep:
            self.host = None
        elif self.host is not None:
            self.host = jax.tree_util.tree_map(lambda a: a[keep + [keep[0]] * (need - len(keep))], self.host)
        self.K, self.slots = need, busy + [None] * (need - len(busy))

    def _place(self) -> None:
        """Compact the slots, give free slots to queued runs, size the padding, start the new runs."""
        self._compact()
        fresh = []
        for i in range(self.K):
            if self.slots[i] is None and self.queue:
                self.slots[i] = self.queue.pop(0)
                fresh.append(i)
        self.n_pad = self.family.repad(max(x[1] for x in self.slots if x is not None), self.n_pad)
        if fresh:
            self._start(fresh)
        for i, x in enumerate(self.slots):
            if x is None:
                self.host.active[i] = False

    def _start(self, idx: list[int]) -> None:
        """Fresh state for the runs just placed in slots ``idx``."""
        family = self.family
        params = stack([family.params(*self.slots[i][:2]) for i in idx])
        lrs = jnp.asarray([family.lrs[self.slots[i][2]] for i in idx])
        new = jax.tree_util.tree_map(np.array, jax.device_get(start_runs(family.settings, params, lrs)))
        if self.host is None:  # every slot starts as a copy of the first new run
            self.host = jax.tree_util.tree_map(lambda a: np.repeat(a[:1], self.K, axis=0), new)

        def put(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            a[idx] = b
            return a

        self.host = jax.tree_util.tree_map(put, self.host, new)

    def _inputs(self) -> tuple[Any, ...]:
        """(data, lrs, keys, stall_below) of the slots, stacked; restacked only when the slots changed."""
        family = self.family
        rows = [x if x is not None else next(y for y in self.slots if y is not None) for x in self.slots]
        if self._batch is None or self._batch[0] != (rows, self.n_pad):
            data = stack([self._data(s, N) for s, N, _ in rows])
            keys = jnp.stack([family.key(s, N) for s, N, _ in rows])
            lrs = jnp.asarray([family.lrs[j] for _, _, j in rows])
            below = jnp.asarray([family.stall_below(N) for _, N, _ in rows])
            self._batch = ((rows, self.n_pad), (data, lrs, keys, below))
        return self._batch[1]

    def advance(self) -> list[tuple[Slot, Outcome]]:
        """Run one span; return each run that stopped, with (best metric, diverged, steps)."""
        self._place()
        data, lrs, keys, below = self._inputs()
        family = self.family
        runs = advance_runs(
            family.problem(self.n_pad), family.settings, self.host, data, lrs, keys, self.span, below
        )
        self.host = h = jax.tree_util.tree_map(np.array, jax.device_get(runs))
        stopped = []
        for i, x in enumerate(self.slots):
            if x is not None and not h.active[i]:
                stopped.append((x, (float(h.best[i]), bool(h.diverged[i]), int(h.step[i]))))
                self.slots[i] = None
        return stopped

    def drop(self, seed: int) -> None:
        """Forget the queued and running runs of ``seed``'s current trial (it is decided)."""
        self.queue = [x for x in self.queue if x[0] != seed]
        self.slots = [None if x is not None and x[0] == seed else x for x in self.slots]


def decide(
    criterion: float,
    seed: int,
    N: int,
    lrs: Sequence[float | None],
    best: Sequence[float],
    diverged: Sequence[bool],
    steps: Sequence[int],
) -> Trial:
    """The :class:`Trial` of (seed, N) from its finished runs, one per learning rate (in grid order).

    The rate kept is :func:`~factrecall.core.engine.best_rate`'s; the trial stores N when that run's best
    metric reaches ``criterion``. When no run qualifies (all diverged before their first evaluation), the
    trial failed with a NaN accuracy.

    >>> decide(0.99, 0, 3, (0.1, 1.0), (0.5, 1.0), (False, False), (64, 32)).lr
    1.0
    """
    n_diverged = int(sum(bool(x) for x in diverged))
    j = best_rate(best, diverged)
    if j is None:
        return Trial(seed, N, False, float("nan"), None, n_diverged, int(max(steps)))
    accuracy = float(best[j])
    return Trial(seed, N, accuracy >= criterion, accuracy, lrs[j], n_diverged, int(steps[j]))


def decided(family: Family, seed: int, N: int, results: dict[int, Outcome]) -> Trial | None:
    """The trial of (seed, N) once decided (a run reached the criterion, or all stopped), else ``None``."""
    if len(results) < len(family.lrs) and not any(r[0] >= family.criterion for r in results.values()):
        return None
    done = sorted(results)  # grid order
    return decide(
        family.criterion,
        seed,
        N,
        [family.lrs[j] for j in done],
        [results[j][0] for j in done],
        [results[j][1] for j in done],
        [results[j][2] for j in done],
    )


def search_queued(
    family: Family,
    seeds: Sequence[int],
    guess: int,
    *,
    n_max: int,
    rel_precision: float,
    on_round: Callable[[int, int, str], None] | None,
    n_slots: int | None = None,
) -> tuple[tuple[int, ...], bool, tuple[Trial, ...]]:
    """:func:`~factrecall.core.search.search_largest` on a work queue of runs (see :class:`RunQueue`).

    Same brackets, same stopping rule, same result types; a trial is one (seed, N) over the lr grid, and
    ``on_round`` is called after each decided trial. The slots default to one per run of every seed's
    trial, rounded up to the device count; a span is 8 evaluation periods.
    """
    L = len(family.lrs)
    n_dev = jax.device_count()
    span = 8 * family.settings.eval_every
    runner = RunQueue(family, n_slots or n_dev * math.ceil(len(seeds) * L / n_dev), span)
    brackets = {s: Bracket(guess, n_max, rel_precision, family.first_step) for s in seeds}
    current: dict[int, tuple[int, dict[int, Outcome]]] = {}
    trials: list[Trial] = []
    while True:
        for s in seeds:
            if s not in current and not brackets[s].done:
                current[s] = (brackets[s].next, {})
                runner.queue.extend((s, brackets[s].next, j) for j in range(L))
        if not current:
            break
        for (s, _, j), outcome in runner.advance():
            current[s][1][j] = outcome
        for s in [s for s in seeds if s in current]:
            trial = decided(family, s, *current[s])
            if trial is None:
                continue
            runner.drop(s)
            trials.append(trial)
            brackets[s].update(trial.N, trial.stored)
            del current[s]
            if on_round is not None:
                left = sum(b.rounds_left() for b in brackets.values())
                on_round(len(trials), len(trials) + left, status_line(brackets))
    return largest(brackets, seeds, trials)
