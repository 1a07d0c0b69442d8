"""The work-queue schedule of a capacity search whose failing trials cost the whole step budget: runs share a
fixed number of slots, refilled as runs stop. Generic over what is stored: a :class:`Family` says how to
build, pad and judge the runs of a trial (trained MLP memories: :mod:`factrecall.memories.queue`; one-layer
transformers: :mod:`factrecall.recall.capacity`).

Each seed searches on its own (:class:`~factrecall.core.search.Bracket`): its trial at N queues one run per
learning rate; a trial is decided as soon as one run reaches the criterion (its other runs are dropped, queued
or running) or when all its runs have stopped. Between spans of steps
(:func:`factrecall.core.runs.advance_runs`) stopped runs leave their slots and queued runs take them, so the
batch stays full: a seed whose trial succeeded early starts its next trial while another seed's failing trial
is still running, and no slot is spent on padding rows or on repeating a round's slowest trial. Every slot's
problem is padded to one size (the family's pad of the largest N running), so one compiled program serves
every size of a search as long as the pad holds.

A family may run ahead (``speculate``, ``fill``: spare slots train the sizes a bracket tests next, see
:func:`search_queued`), give up on runs that cannot reach the criterion (``hopeless``, on each run's (step,
best) after every span) and stop runs far behind another rate of their trial (``race``, :class:`RunQueue`).

Nothing depends on timing: the schedule, and so every number, is a function of the family, the seeds and the
device count. Nor on the slot count, as far as measured: XLA on CPU rounds a batch of one run per device
differently from 2 or more, and at larger shapes 2–3 differently from 4 or more (d = 16: 4–8 alike), so a
device holds ≥ ``family.min_per_device`` slots (default :data:`MIN_PER_DEVICE`) and a run's numbers are then
the same whichever runs share its batch.

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
from factrecall.core.engine import Problem, Settings
from factrecall.core.runs import Runs, advance_runs, decide, start_runs
from factrecall.core.search import Bracket, Trial, largest, next_sizes, status_line

MIN_PER_DEVICE = 2  # slots per device, at least, unless the family sets min_per_device (module docstring)
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
    # optional: speculate, fill, span (search_queued), hopeless(N, trace), race (RunQueue), min_per_device

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


def _per_device(n: int, least: int = MIN_PER_DEVICE) -> int:
    """Slots for ``n`` runs: a multiple of the device count, at least ``least`` per device."""
    n_dev = jax.device_count()
    return n_dev * max(least, math.ceil(n / n_dev))


class RunQueue:
    """Runs of a search in ``n_slots`` slots (rounded up per device), advanced ``span`` steps at a time.

    ``queue`` holds the runs waiting for a slot, in order; :meth:`advance` places them, runs one span and
    returns the runs that stopped; :meth:`drop` forgets a decided trial's other runs. After every span each
    running run's (step, best metric) is appended to its trace, and a family with ``hopeless(N, trace)``
    stops the runs it gives up on (reported as stopped, with their best metric and steps so far). A family
    with ``race = (margin, after)`` also stops a run that, at step t ≥ ``after``, trails the best its trial's
    other runs (same seed and N, other learning rates) had reached by step t by more than ``margin``: a trial
    is decided by its best rate, so a run that far behind only costs steps (:meth:`trails`).
    """

    def __init__(self, family: Family, n_slots: int, span: int, *, compact: bool = True):
        self.family, self.span, self.compact = family, span, compact
        self.least = getattr(family, "min_per_device", MIN_PER_DEVICE)
        self.K = _per_device(n_slots, self.least)
        self.slots: list[Slot | None] = [None] * self.K
        self.queue: list[Slot] = []
        self.host: Runs | None = None
        self.n_pad = 0
        self._cache: dict[tuple[int, int, int], Any] = {}
        self._batch: tuple[tuple[list, int], tuple[Any, ...]] | None = None  # the last stacked slots
        self.traces: dict[Slot, list[tuple[int, float]]] = {}  # (step, best) of a run after each span

    def _data(self, seed: int, N: int) -> Any:
        if (seed, N, self.n_pad) not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[2] == self.n_pad}
            self._cache[seed, N, self.n_pad] = self.family.data(seed, N, self.n_pad)
        return self._cache[seed, N, self.n_pad]

    def _compact(self) -> None:
        """Shrink to the slots needed (a multiple of the device count) when at most half are (unless the
        queue was built with ``compact=False``: then the slot count, and so the program, never changes)."""
        if not self.compact:
            return
        busy = [x for x in self.slots if x is not None]
        need = _per_device(len(busy) + len(self.queue), self.least)
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
                self.traces.pop(self.slots[i], None)
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
        self._judge(h)
        stopped = []
        for i, x in enumerate(self.slots):
            if x is not None and not h.active[i]:
                stopped.append((x, (float(h.best[i]), bool(h.diverged[i]), int(h.step[i]))))
                self.slots[i] = None
        return stopped

    def _judge(self, h: Runs) -> None:
        """Record each running run's (step, best metric) after the span; stop those the family's
        ``hopeless(N, trace)`` gives up on and those that :meth:`trails` (a family without either: none)."""
        hopeless = getattr(self.family, "hopeless", None)
        race = getattr(self.family, "race", None)
        if hopeless is None and race is None:
            return
        running = [(i, x) for i, x in enumerate(self.slots) if x is not None and h.active[i]]
        for i, x in running:
            self.traces.setdefault(x, []).append((int(h.step[i]), float(h.best[i])))
        for i, x in running:
            given_up = hopeless is not None and hopeless(x[1], self.traces[x])
            h.active[i] = not (given_up or (race is not None and self.trails(x, *race)))

    def trails(self, run: Slot, margin: float, after: int) -> bool:
        """Whether ``run``, at its last traced step t ≥ ``after``, is more than ``margin`` below the best
        metric any other run of its trial (same seed and N) had by step t. Runs compared at equal steps (a
        run started later is compared with what the others had at its age), so a rate is never stopped for
        starting late; a trial's other runs that stopped keep their traces (a run of the same trial and
        rate is the same computation, so an earlier attempt's trace is as good as its own)."""
        t, best = self.traces[run][-1]
        if t < after:
            return False
        seed, N, j = run
        others = (self.traces.get((seed, N, i), ()) for i in range(len(self.family.lrs)) if i != j)
        rivals = [b for trace in others for s, b in trace if s <= t]
        return bool(rivals) and best < max(rivals) - margin

    def drop(self, seed: int, size: int | None = None) -> None:
        """Forget ``seed``'s queued and running runs (those of ``size`` only, if given)."""

        def gone(x: Slot | None) -> bool:
            return x is not None and x[0] == seed and size in (None, x[1])

        self.queue = [x for x in self.queue if not gone(x)]
        self.slots = [None if gone(x) else x for x in self.slots]

    def pending(self, seed: int) -> list[Slot]:  # seed's runs, queued or running
        return [x for x in self.slots + self.queue if x is not None and x[0] == seed]


def decided(family: Family, seed: int, N: int, results: dict[int, Outcome]) -> Trial | None:
    """The trial of (seed, N) once decided (a run reached the criterion, or all stopped), else ``None``."""
    if len(results) < len(family.lrs) and not any(r[0] >= family.criterion for r in results.values()):
        return None
    done = sorted(results)  # grid order
    best, diverged, steps = ([results[j][k] for j in done] for k in range(3))
    return decide(family.criterion, seed, N, [family.lrs[j] for j in done], best, diverged, steps)


class _Search:
    """The state of :func:`search_queued`: per seed, its bracket, its current trial (N and the outcomes of
    its stopped runs, by rate index) and its speculative trials (``ahead``: N → outcomes)."""

    def __init__(
        self, family: Family, seeds: Sequence[int], bracket: Callable[[], Bracket], n_slots: int | None
    ):
        self.family, self.seeds, self.L = family, list(seeds), len(family.lrs)
        self.n_ahead = getattr(family, "speculate", 0)
        self.fill = getattr(family, "fill", False) or self.n_ahead > 0  # run ahead (see search_queued)
        self.budget = self.L * (1 + self.n_ahead)  # the runs one seed may hold, at least
        span = getattr(family, "span", 8 * family.settings.eval_every)
        n_slots = n_slots or len(seeds) * self.budget  # RunQueue rounds it up per device
        self.runner = RunQueue(family, n_slots, span, compact=not self.fill)  # running ahead: never shrinks
        self.brackets = {s: bracket() for s in seeds}
        self.current: dict[int, tuple[int, dict[int, Outcome]]] = {}
        self.ahead: dict[int, dict[int, dict[int, Outcome]]] = {s: {} for s in seeds}
        self.trials: list[Trial] = []

    def start(self) -> None:
        """Each seed without a current trial takes its bracket's next (already running if it ran ahead)."""
        for s in self.seeds:
            if s in self.current or self.brackets[s].done:
                continue
            N = self.brackets[s].next
            results = self.ahead[s].pop(N, {})
            self.current[s] = (N, results)
            self._queue(s, N, results, self.L)

    def _queue(self, s: int, N: int, results: dict[int, Outcome], free: int) -> int:
        """Queue up to ``free`` of trial (s, N)'s runs not yet run, queued or running; return those left."""
        have = {j for _, M, j in self.runner.pending(s) if M == N} | set(results)
        for j in range(self.L):
            if j not in have and free > 0:
                self.runner.queue.append((s, N, j))
                free -= 1
        return free

    def speculate(self) -> None:
        """Give each seed's spare runs (its budget or, if larger, its share of the slots among the seeds still
        searching, less its pending runs) to the sizes its bracket may test next (:func:`next_sizes`, up to
        4 · max(1, ``speculate``), in order) that fit the current trials' bucket (set here: a size run ahead
        never opens one); sizes no longer among them are dropped."""
        family, runner = self.family, self.runner
        runner.n_pad = pad = family.repad(max(N for N, _ in self.current.values()), runner.n_pad)
        active = [s for s in self.seeds if s in self.current]
        share, extra = divmod(runner.K, len(active))
        for i, s in enumerate(active):
            N = self.current[s][0]

            def known(M: int, s: int = s) -> bool | None:
                trial = decided(family, s, M, self.ahead[s].get(M, {}))
                return None if trial is None else trial.stored

            sizes = next_sizes(self.brackets[s], N, known, 4 * max(1, self.n_ahead))
            for M in {x[1] for x in runner.pending(s)} - {N, *sizes}:
                runner.drop(s, size=M)
            free = max(self.budget, share + (i < extra)) - len(runner.pending(s))
            for M in sizes:
                results = self.ahead[s].setdefault(M, {})
                if family.repad(M, pad) == pad and decided(family, s, M, results) is None:
                    free = self._queue(s, M, results, free)

    def collect(self, stopped: list[tuple[Slot, Outcome]]) -> None:
        """File the stopped runs' outcomes; a speculative trial decided early frees its other runs."""
        for (s, N, j), outcome in stopped:
            if s in self.current and self.current[s][0] == N:
                self.current[s][1][j] = outcome
            elif N in self.ahead[s]:
                self.ahead[s][N][j] = outcome
                if decided(self.family, s, N, self.ahead[s][N]) is not None:
                    self.runner.drop(s, size=N)

    def implied(self, s: int) -> Trial | None:
        """A size decided ahead of seed ``s``'s current trial N that brackets more tightly than N's outcome
        could — a size in (lo, N) that failed, else one in (N, hi) that stored (the nearest to N) —, else
        ``None``. Storing is taken to be monotone in the size, as the bracket itself assumes: N would then
        fail (store) too, and the size decided ahead is the tighter end."""
        N, bracket = self.current[s][0], self.brackets[s]
        lo, hi = bracket.lo or 0, bracket.hi or math.inf
        done = [t for M, r in self.ahead[s].items() if (t := decided(self.family, s, M, r)) is not None]
        failed = [t for t in done if lo < t.N < N and not t.stored]
        stored = [t for t in done if N < t.N < hi and t.stored]
        if failed:
            return min(failed, key=lambda t: t.N)
        return max(stored, key=lambda t: t.N) if stored else None

    def decide(self, on_round: Callable[[int, int, str], None] | None) -> None:
        """Decide the current trials that can be, by their own runs or by a size decided ahead that brackets
        more tightly (:meth:`implied`: that size's trial is recorded and moves the bracket; the current
        trial's runs are dropped and it is not a trial), and start the next ones (a next trial that ran ahead
        may be decided already: repeat until none is)."""
        while True:
            ready = []
            for s in self.seeds:
                if s in self.current:
                    trial = decided(self.family, s, *self.current[s]) or self.implied(s)
                    if trial is not None:
                        ready.append((s, trial))
            if not ready:
                return
            for s, trial in ready:
                self.trials.append(trial)
                self.brackets[s].update(trial.N, trial.stored)
                self.runner.drop(s, size=self.current.pop(s)[0])
                self.ahead[s].pop(trial.N, None)
                if on_round is not None:
                    left = sum(b.rounds_left() for b in self.brackets.values())
                    on_round(len(self.trials), len(self.trials) + left, status_line(self.brackets))
            self.start()


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
    ``on_round`` is called after each decided trial. The slots default to one per run a seed may hold,
    rounded up per device (:class:`RunQueue`); a span is the family's ``span`` (default 8 evaluations).

    Running ahead (a family with ``speculate`` = s > 0, or ``fill``): a seed may hold s · L runs beyond its
    current trial's L, or its share of the slots (≥ ``min_per_device`` per device; an idle slot computes as a
    busy one) among the seeds still searching if larger, for the sizes its bracket may test next
    (:func:`next_sizes`: if the current trial fails, if it stores, then theirs, breadth first) that fit the
    current bucket. When the current trial is decided, the size the bracket picks keeps its steps, and sizes
    off the new tree are dropped; so the sizes tested and decided are those of the plain search, sooner: a
    run's outcome depends on its trial only (not on when it started, nor on the slot count).
    A size run ahead may also decide the current trial N (:meth:`_Search.implied`): when a smaller size
    failed (or a larger one stored), N would fail (store) too if storing is monotone in the size, and that
    size is the tighter end, so its trial is recorded and moves the bracket at once, without waiting for N's
    runs (a failing trial's budget), which are dropped; N is not a trial. Both ends of a bracket are
    therefore always sizes whose runs were measured. The slots never shrink: one program serves the search.
    """
    search = _Search(family, seeds, lambda: Bracket(guess, n_max, rel_precision, family.first_step), n_slots)
    search.start()
    while search.current:
        if search.fill:
            search.speculate()
        search.collect(search.runner.advance())
        search.decide(on_round)
    return largest(search.brackets, seeds, search.trials)
