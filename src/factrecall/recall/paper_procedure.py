"""The paper's own transformer-capacity procedure (Figure 4 left), ported, run on our problems and engine.

Figure 4's capacities (facts ≈ 0.15·params) come from the authors' search, in their public code
(eshnich/factual-recall-iclr: ``run.py``'s ``run`` and ``binary_sweep``, called by ``fact_recall_sweep.py``).
This module owns that search as a library feature: :class:`PaperSearch` (the bisection, one decision at a
time), :func:`paper_runs` (the runs of one size at one rate), :func:`paper_capacity` (every seed's search)
and its record :class:`PaperResult`; and the glue that lets a transformer-capacity point
(:class:`factrecall.experiments.specs.TransformerCapacityPoint`, ``factrecall capacity transformer
--procedure ours|paper``) pick a procedure: :func:`point_fields`, :func:`capacity_of`.

The procedure, per shape and seed:
    bisection on the size k (``linear``: S = R = k; ``square``: S = k², R = k; ``distinct``: S = R = D = k)
    while hi − lo > 1, testing k = ⌊(lo + hi)/2⌋; ``lo`` is assumed stored and ``hi`` assumed failing
    (neither is tested). At each k the learning rates are tried **in the order given** and the first that
    stores the table is accepted (the next is tried only when the previous one failed); k fails when every
    rate failed. A run: Adam at a constant rate, ≤ ``n_steps`` steps of ``batch`` sequences, accuracy on
    1,024 test sequences sampled once per trial, checked every 128 steps, stopped once ≥ the criterion
    (0.99; on 1,024 sequences "> 0.99" and "≥ 0.99" coincide); stored when its best accuracy reaches it.
    No patience (the paper has none): a failing run trains its whole budget. The capacity is the final
    ``lo``.

Where it differs from the authors' code: their bounds start at [8, 512] for d = 8 and take the previous d's
result as the next floor; here they are ``bounds`` (default :func:`default_bounds`: [1, the first power of
2 ≥ 2·√(0.15·params)], a ceiling of ≥ 4× the guide's facts), so nothing is assumed that was not so (one
fact is always stored; a search that reaches the ceiling is reported ``capped``). Every trial
(seed, S, R, D) is drawn as in our search (:func:`factrecall.recall.padded.trial_data`,
:func:`~factrecall.recall.padded.initial_weights`, :func:`~factrecall.recall.padded.batch_key`), so a given
(seed, k) is the same problem in both procedures, and it is trained by
:func:`factrecall.core.engine.train_many` padded to the bucket of the largest k the search can test (one
program per shape; ``exact=True``: an exactly-sized bucket per k, as the benchmark measured); the seeds at
the same (k, rate) train as one vmapped program. Not ported: the authors' flax initialisation (LeCun-
normal MLP kernels), their unstabilised −log softmax, their 2^24-sequence buffer and their single ``RNG(64)``
(``benchmarks/bench_paper_transformer.py --to-99`` measures what these change).

Paper: §4 and Figure 4 left; SPEC §3, §7.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp

from factrecall.core.engine import RunResult, Settings, train_many
from factrecall.core.errors import TrainingError, check
from factrecall.core.queue import stack
from factrecall.core.search import Trial
from factrecall.recall import capacity as tc
from factrecall.recall import padded
from factrecall.recall.task import RecallTask
from factrecall.recall.transformer import TransformerConfig, param_counts

PROCEDURE = "paper"
# the benchmark's bounds (benchmarks/bench_paper_transformer.py): 64² facts are ≥ 8× the guide's at the quick
# shapes; a search's default is :func:`default_bounds`
BOUNDS = (1, 64)


class PaperSearch:
    """The authors' transformer capacity search (their ``binary_sweep``), one decision at a time.

    Bisection on the size k: while hi − lo > 1 test k = ⌊(lo + hi)/2⌋; ``lo`` is assumed stored and ``hi``
    assumed failing (neither is tested). At each k the learning rates are tried in grid order and the first
    that stores the table is accepted (the next rate is tried only when the previous one failed); k fails
    when every rate failed. :meth:`next` is the (k, rate index) to train, :meth:`update` records its
    outcome, so several searches can advance in lockstep.

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


class PaperRun(NamedTuple):
    """One run of the paper's procedure: trial (seed, size k) at one learning rate, its best (sampled)
    accuracy and the steps it trained."""

    seed: int
    k: int
    lr: float
    stored: bool
    steps: int
    accuracy: float
    diverged: bool


def shape_of(spec: tc.Spec, k: int) -> tuple[int, int, int]:
    """(S, R, D) of size k under ``spec.scaling`` (``linear``: S = R = k).

    >>> spec = tc.Spec(16, 8, 2, 16, 8, "linear", tc.trial_recipe(4096, 256, 0.99), (1e-2,), None)
    >>> shape_of(spec, 5), shape_of(spec._replace(scaling="square"), 3)
    ((5, 5, 8), (9, 3, 8))
    """
    return tc.sizes(tc.index_of(k, spec.scaling), spec.scaling, spec.D)


def default_bounds(spec: tc.Spec) -> tuple[int, int]:
    """[1, hi]: k = 1 is always stored, and hi is the first power of 2 ≥ 2·k_guide, where k_guide² is the
    paper's guide 0.15·params: a table of ≥ 4× the guide's facts, assumed failing (a search that reaches
    it says so: ``capped``, ``facts_failed`` None). When every size above hi fails, the search is the one
    from [1, 64] or any higher ceiling, minus the failing runs above hi.

    >>> spec = tc.Spec(16, 8, 2, 16, 8, "linear", tc.trial_recipe(4096, 256, 0.99), (1e-2,), None)
    >>> default_bounds(spec), default_bounds(spec._replace(d=8, d_h=1, m=8))  # 1,536 and 384 params
    ((1, 32), (1, 16))
    >>> default_bounds(spec._replace(d=181, d_h=23, m=181))
    (1, 512)
    """
    params = param_counts(tc.config_of(spec, tc.task_of(spec, 1))).paper
    k_guide = math.sqrt(tc.FACTS_PER_PARAM_GUIDE * params)
    return 1, 2 ** math.ceil(math.log2(2 * k_guide))


def check_bounds(bounds: Sequence[int]) -> tuple[int, int]:
    """``bounds`` as (lo, hi), or a :class:`ConfigError`: 1 ≤ lo < hi, integers."""
    check(
        len(bounds) == 2 and all(isinstance(b, int) for b in bounds) and 1 <= bounds[0] < bounds[1],
        f"bounds must be two integers 1 ≤ lo < hi (lo assumed stored, hi assumed failing), got {bounds!r}",
    )
    return int(bounds[0]), int(bounds[1])


def trial_inputs(
    spec: tc.Spec, pad: RecallTask, cfg: TransformerConfig, k: int, seeds: Sequence[int]
) -> tuple:
    """(weights, data, batch keys) of trials (seed, size k) stacked over ``seeds``: the same draws as our
    search's (padded.trial_data, padded.initial_weights, padded.batch_key)."""
    S, R, D = shape_of(spec, k)
    data = stack([padded.trial_data(pad, spec.d, s, S, R, D) for s in seeds])
    weights = stack([padded.initial_weights(cfg, s) for s in seeds])
    keys = jnp.stack([padded.batch_key(s, S, R, D) for s in seeds])
    return weights, data, keys


def paper_runs(spec: tc.Spec, k: int, lr: float, seeds: Sequence[int], pad_k: int | None = None) -> RunResult:
    """The paper's runs of trials (seed, size k) at one rate: one vmapped program on the bucket of size
    ``pad_k`` ≥ k (None: k, an exact bucket), a constant rate, no patience, the sampled criterion (whatever
    ``spec.criterion_on`` and patience say). A padded trial is its unpadded problem
    (:mod:`factrecall.recall.padded`), so every k of a search can share one compiled program."""
    pad = padded.bucket(*shape_of(spec, pad_k or k), spec.T)
    cfg = tc.config_of(spec, pad)
    r = spec.recipe
    problem = padded.padded_problem(cfg, pad, r.batch, r.n_contexts, "sampled")
    weights, data, keys = trial_inputs(spec, pad, cfg, k, seeds)
    settings = Settings(r.n_steps, r.eval_every, r.criterion)  # constant rate, no patience
    return train_many(problem, settings, weights, data, jnp.full((len(seeds), 1), lr), keys)


class PaperResult(NamedTuple):
    """The paper's capacity of one shape: the final ``lo`` per seed (size k), every run, the bounds."""

    spec: tc.Spec
    k_per_seed: tuple[int, ...]
    runs: tuple[PaperRun, ...]
    seeds: tuple[int, ...]
    seconds: float
    bounds: tuple[int, int] = BOUNDS
    buckets: int = 1

    def failed(self, seed: int) -> int | None:
        """The size that failed just above ``seed``'s capacity (None: the ceiling, never tested)."""
        hi = self.k_per_seed[self.seeds.index(seed)] + 1
        return hi if any(r.seed == seed and r.k == hi for r in self.runs) else None

    def floor_untested(self) -> list[int]:
        """The seeds whose capacity is the floor ``bounds[0]``, assumed stored and never tested."""
        lo = self.bounds[0]
        return [s for s, k in zip(self.seeds, self.k_per_seed, strict=True) if k == lo]

    def trials(self) -> tuple[Trial, ...]:
        """One :class:`~factrecall.core.search.Trial` per (seed, k) tested, as our search records them (size
        index N): stored by the rate that stored it, else failed at every rate (``diverged``: how many)."""
        out: dict[tuple[int, int], Trial] = {}
        for r in self.runs:
            before = out.get((r.seed, r.k))
            diverged = r.diverged + (before.diverged if before else 0)
            N = tc.index_of(r.k, self.spec.scaling)
            out[r.seed, r.k] = Trial(r.seed, N, r.stored, r.accuracy, r.lr, diverged, r.steps)
        return tuple(out.values())

    def summary(self) -> dict[str, Any]:
        """The JSON record: :meth:`factrecall.recall.capacity.Result.summary`'s keys with their meaning
        (``facts`` = the worst seed's S·R at its k; the bracket ``facts_stored`` … ``facts_failed`` = S·R at
        k and k + 1, ``None`` when k + 1 is the untested ceiling; ``criterion_on`` = ``sampled``; ``trials``
        = the (seed, k) tested), plus ``procedure`` = ``paper``, ``bounds``, ``k_per_seed``,
        ``floor_untested`` (seeds whose k is the untested floor) and ``runs`` (one per (seed, k, rate))."""
        spec = self.spec._replace(criterion_on="sampled", patience=None, early_stops=False)
        n_per_seed = tuple(tc.index_of(k, spec.scaling) for k in self.k_per_seed)
        capped = any(self.failed(s) is None for s in self.seeds)
        ours = tc.Result(spec, n_per_seed, capped, self.trials(), self.seeds, self.seconds, self.buckets)
        return {
            **ours.summary(),
            "procedure": PROCEDURE,
            "bounds": list(self.bounds),
            "k_per_seed": list(self.k_per_seed),
            "floor_untested": self.floor_untested(),
            "runs": len(self.runs),
        }


def _round(spec: tc.Spec, searches: dict[int, PaperSearch], pad_k: int | None) -> list[PaperRun]:
    """One round: every unfinished search trains its next (k, rate); the seeds at the same (k, rate) train
    together (in the bucket of ``pad_k``). Records each outcome in its search and returns the runs."""
    groups: dict[tuple[int, int], list[int]] = {}
    for s, search in searches.items():
        if not search.done:
            groups.setdefault(search.next(), []).append(s)
    runs = []
    for (k, j), members in sorted(groups.items()):
        out = paper_runs(spec, k, spec.lrs[j], members, pad_k)
        for i, s in enumerate(members):
            diverged = bool(out.diverged[i, 0])
            stored = bool(out.reached[i, 0]) and not diverged
            searches[s].update(stored)
            accuracy = float(out.best_metric[i, 0])
            runs.append(PaperRun(s, k, spec.lrs[j], stored, int(out.steps[i, 0]), accuracy, diverged))
    return runs


def paper_capacity(
    spec: tc.Spec,
    seeds: Sequence[int] = (0,),
    bounds: Sequence[int] | None = None,
    *,
    exact: bool = False,
    on_round: Callable[[int, int, str], None] | None = None,
) -> PaperResult:
    """The paper's capacity of ``spec``'s shape per seed: :class:`PaperSearch` on [lo, hi] = ``bounds``
    (None: :func:`default_bounds`), the seeds in lockstep (see the module docstring).

    Every k is trained in the bucket of hi − 1 (the largest k the bisection can test): one compiled program
    per shape. ``exact``: each k in its own exact bucket, one program per k (as
    ``benchmarks/bench_paper_transformer.py`` measured; the same problems, up to float rounding).

    The rates ``spec.lrs`` are tried in their order; ``spec.patience`` and ``spec.criterion_on`` are not
    used (the paper has no patience and measures 1,024 sampled sequences). ``on_round(done, total, status)``
    is called after each round (``done`` searches of ``total``).

    Raises:
        ConfigError: bad ``bounds``.
        TrainingError: every run diverged.
    """
    lo, hi = check_bounds(default_bounds(spec) if bounds is None else tuple(bounds))
    start = time.perf_counter()
    searches = {s: PaperSearch(lo, hi, len(spec.lrs)) for s in seeds}
    runs: list[PaperRun] = []
    pad_k = None if exact else hi - 1
    while not all(x.done for x in searches.values()):
        runs += _round(spec, searches, pad_k)
        if on_round is not None:
            done = sum(x.done for x in searches.values())
            status = ", ".join(f"seed {s}: k in [{x.lo}, {x.hi}]" for s, x in searches.items())
            on_round(done, len(searches), status)
    if runs and all(r.diverged for r in runs):
        raise TrainingError(f"every run diverged at learning rates {list(spec.lrs)}")
    k_per_seed = tuple(searches[s].lo for s in seeds)
    buckets = len({r.k for r in runs}) if exact else min(1, len(runs))
    seconds = time.perf_counter() - start
    return PaperResult(spec, k_per_seed, tuple(runs), tuple(seeds), seconds, (lo, hi), buckets)


def point_fields(data: Any) -> Any:
    """A capacity point's fields before validation, with ``procedure = "paper"`` resolved: ``criterion_on``
    becomes ``sampled``, ``patience`` 0 and ``early_stops`` false (the paper measures 1,024 sampled sequences
    and stops a run only at the criterion or its budget).

    >>> point_fields({"procedure": "paper", "d": 8})
    {'procedure': 'paper', 'd': 8, 'criterion_on': 'sampled', 'patience': 0, 'early_stops': False}

    Raises:
        ConfigError: ``paper`` with another ``criterion_on``, a patience > 0 or early stops given explicitly.
    """
    if not isinstance(data, Mapping) or data.get("procedure") != PROCEDURE:
        return data
    on, patience = data.get("criterion_on", "sampled"), data.get("patience")
    check(
        not data.get("early_stops"),
        f"early_stops (--early-stops): procedure 'paper' has none (a run stops at the criterion or its "
        f"budget): allowed false or unset, got {data.get('early_stops')!r}",
    )
    check(
        on == "sampled",
        f"criterion_on (--criterion-on): procedure 'paper' measures its criterion on 1,024 sampled "
        f"sequences: allowed 'sampled' or unset, got {on!r}",
    )
    check(
        not patience,
        f"patience (--patience): procedure 'paper' has none (a failing run trains its whole budget): "
        f"allowed 0 or unset, got {patience!r}",
    )
    return {**data, "criterion_on": "sampled", "patience": 0, "early_stops": False}


def capacity_of(
    procedure: str, spec: tc.Spec, seeds: Sequence[int], update: Callable[[int, int, str], None] | None
) -> dict[str, Any]:
    """The record of ``procedure``'s search of ``spec`` (``ours``: :func:`factrecall.recall.capacity.
    capacity`; ``paper``: :func:`paper_capacity` on :func:`default_bounds`), with its ``procedure``."""
    if procedure == PROCEDURE:
        return paper_capacity(spec, seeds, on_round=update).summary()
    return {**tc.capacity(spec, seeds, on_round=update).summary(), "procedure": "ours"}
