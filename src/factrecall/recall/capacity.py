"""How many facts a one-layer transformer of fixed shape stores: capacity vs parameters (Figure 4 left).

Owns the capacity experiment's spec (:class:`Spec`, checked by :func:`validate_spec`; the defaults of its
fields are :class:`factrecall.experiments.specs.TransformerCapacityPoint`'s), the recipe of a trial
(:func:`trial_recipe`), the sizes a search walks through (:func:`sizes`), its trials and its record.
:func:`capacity` finds the largest fact table S·R a model stores by the bracketing search of
:mod:`factrecall.core.search`, run on the work queue of :mod:`factrecall.core.queue`: every size, learning
rate and seed of a search is one compiled program (the problems are padded to a bucket,
:mod:`factrecall.recall.padded`), stopped runs free their slots, and a run more than two facts short of the
criterion stops when it gained nothing for ``patience`` steps or when its pace cannot reach the criterion
by the budget (:func:`hopeless`), and a run far behind another learning rate of its trial stops too (the
race: :data:`RACE_MARGIN`; neither with ``early_stops`` off). The search starts below the paper's guide
(success is cheap, failure costs the budget), and a search runs ahead in its spare slots (one seed: a trial's
worth more): they train the sizes a bracket may test next, the one it picks keeps its steps; a smaller size
failing ahead decides the current trial as failed (a larger one that stores, as stored) — the same sizes as
without running ahead when storing is monotone in the size, decided sooner (:data:`SPECULATE`).

Sizes are indexed by one integer n. ``linear`` (S = R, Figure 4's) grows one subject or one relation at a
time: n ↦ (S, R) = (⌊n/2⌋ + 1, ⌈n/2⌉), i.e. (1, 1), (2, 1), (2, 2), (3, 2), …, so a finished bracket is
one row or one column of facts. ``square`` (R = k, S = k²) and ``distinct`` (S = R = D = k) step k.
A trial stores its table when the kept learning rate's best accuracy reaches the criterion, measured on
``every-fact`` (every fact in 2 fixed fresh contexts: ``fact_accuracy``; the default) or ``sampled``
(1,024 sampled test sequences, the paper's). The attention/MLP map of Figure 4 right is
:mod:`factrecall.recall.tradeoff`.

Paper: §4 and Figure 4 left; Appendix (the ``square`` and ``distinct`` variants); SPEC §3, §7.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from factrecall.core.base import Key, Params
from factrecall.core.bounds import bits_facts
from factrecall.core.engine import Problem, Settings
from factrecall.core.errors import TrainingError, check
from factrecall.core.paper import PAPER
from factrecall.core.queue import search_queued
from factrecall.core.search import FIRST_STEP, Trial
from factrecall.recall import padded
from factrecall.recall.task import RecallTask, recall_task
from factrecall.recall.training import Recipe, validate_recipe
from factrecall.recall.transformer import TransformerConfig, param_counts, validate

SCALINGS: tuple[str, ...] = ("linear", "square", "distinct")
CRITERIA_ON = padded.CRITERIA_ON
# Figure 4 left: facts stored ≈ 0.15·params; the record's guide
FACTS_PER_PARAM_GUIDE = PAPER["transformer_facts_per_param"].value
# the search's first guess: below the guide, at the 0.11 facts/param our quick Figure 4 measured, so that the
# first trial usually stores (and stops early, at the criterion); a failing trial costs the whole budget,
# so the search approaches the boundary from below
FIRST_GUESS_FACTS_PER_PARAM = 0.11
# trials' worth of runs a seed holds ahead of its current trial (core.queue.search_queued), one-seed searches
# only: on a CPU a run ahead costs a step as much as a deciding run (one seed: 33-44 s vs 51-63 s on the quick
# point; three seeds: 172 s with, 85 s without). One trial ahead, not two: the size after a failure, when it
# fails, decides the current trial sooner, and fewer slots step faster (quick: 59 vs 81 s; d = 16: 136/185).
# Measured before MIN_PER_DEVICE = 4, whose spare slots now run ahead in every search (``fill``)
SPECULATE = 1
SPAN_PERIODS = 2  # evaluation periods between refills of the work queue's slots
# the stall rule (:func:`hopeless`): a run more than two facts short whose best accuracy, extrapolated
# STALL_FACTOR times faster than it rose over the last STALL_WINDOW of the budget, stays short at it stops
STALL_WINDOW = 0.25
STALL_FACTOR = 2.0
# the race (core.queue.RunQueue.trails): from RACE_AFTER of the budget on, never before RACE_MIN_STEPS, a run
# whose best accuracy is more than RACE_MARGIN below what another rate of its trial had reached by the same
# step stops (the trial keeps its best rate). Chosen on the traces of 7 searches of 3 seeds (the 6 quick
# Figure 4 shapes at their recipe, the d = 16 one at the default recipe; benchmarks/trace_rules.py): no
# stored trial is lost with it, and after a quarter of the budget a run that went on to store trailed by at
# most 0.079. Not a guarantee (hence the floor): on a 1,024-step budget a rate 0.58 behind at a quarter of it
# went on to store alone; at the default recipe a 1e-3 run 0.12 behind at 4,096 steps ended its trial ahead
RACE_MARGIN = 0.1
RACE_AFTER = 0.25
RACE_MIN_STEPS = 4096
# slots per device, at least (core.queue): at d = 16, XLA on CPU rounds batches of 2-3 runs per device unlike
# those of 4-8 (alike), so a seed's runs matched across searches of 1 and of 3 seeds only from 4 per device
MIN_PER_DEVICE = 4
# a capacity trial evaluates as the paper does, every 128 steps, in 2 fresh contexts per fact
TRIAL_EVAL_EVERY = 128
TRIAL_CONTEXTS = 2
N_MAX = 4096  # the largest size index a search tries (linear: S = R = 2048)
PAD_HEADROOM = 1.25  # a bucket holds k up to 1.25× the size that opened it (rounded up to 4): one program


class Spec(NamedTuple):
    """A transformer-capacity experiment (hashable).

    Attributes:
        d, H, d_h, m: model shape (m = 0: no MLP).
        D: answers per relation (ignored by ``distinct``, where D = S).
        scaling: how S, R (and D) grow (see the module docstring).
        recipe: training recipe of a trial (:func:`trial_recipe`; its criterion is the storage criterion).
        lrs: learning-rate grid; the best is kept.
        patience: stop a run when its best accuracy has not improved for this many steps while more than
            two facts short of the criterion (None: never).
        T: sequence length.
        criterion_on: ``every-fact`` (every fact in the recipe's contexts) or ``sampled`` (the paper's
            1,024 sampled test sequences).
        early_stops: the stall rule (:func:`hopeless`) and the race (:data:`RACE_MARGIN`) stop runs.
    """

    d: int
    H: int
    d_h: int
    m: int
    D: int
    scaling: str
    recipe: Recipe
    lrs: tuple[float, ...]
    patience: int | None
    T: int = 32
    criterion_on: str = "every-fact"
    early_stops: bool = True


def trial_recipe(n_steps: int, batch: int, criterion: float) -> Recipe:
    """The recipe of a capacity trial: ``n_steps`` steps (the paper's 2^14) of ``batch`` sequences (1024),
    evaluated every :data:`TRIAL_EVAL_EVERY` steps in :data:`TRIAL_CONTEXTS` contexts per fact, until
    the accuracy ≥ ``criterion``; a :class:`Spec`'s patience stops a run earlier on a plateau.

    >>> trial_recipe(16384, 1024, 0.99)
    Recipe(n_steps=16384, batch=1024, eval_every=128, criterion=0.99, n_contexts=2, schedule='constant')
    """
    return Recipe(n_steps, batch, TRIAL_EVAL_EVERY, criterion, TRIAL_CONTEXTS)


def sizes(n: int, scaling: str, D: int) -> tuple[int, int, int]:
    """(S, R, D) of size index n of a scaling (see the module docstring).

    >>> [sizes(n, "linear", 8)[:2] for n in (1, 2, 3, 4, 9)]
    [(1, 1), (2, 1), (2, 2), (3, 2), (5, 5)]
    >>> sizes(3, "square", 8), sizes(4, "distinct", 8)
    ((9, 3, 8), (4, 4, 4))
    """
    if scaling == "square":
        return n * n, n, D
    if scaling == "distinct":
        return n, n, n
    return n // 2 + 1, (n + 1) // 2, D


def index_of(k: int, scaling: str) -> int:
    """The size index of S = R = k (``linear``), or of step k (the others).

    >>> index_of(5, "linear"), sizes(index_of(5, "linear"), "linear", 8)
    (9, (5, 5, 8))
    """
    return 2 * k - 1 if scaling == "linear" else k


def task_of(spec: Spec, n: int) -> RecallTask:
    """The (unpadded) task of size index n."""
    S, R, D = sizes(n, spec.scaling, spec.D)
    return recall_task(S, R, D, T=spec.T)


def config_of(spec: Spec, task: RecallTask) -> TransformerConfig:
    return TransformerConfig(spec.d, spec.H, spec.d_h, spec.m, task.vocab, task.n_answers)


def spec_of(fields: Mapping[str, Any]) -> Spec:
    """The :class:`Spec` of a capacity point's validated fields (those of
    :class:`factrecall.experiments.specs.TransformerCapacityPoint`), checked by :func:`validate_spec` (a
    :class:`ConfigError` names the bad field)."""
    recipe = trial_recipe(fields["n_steps"], fields["batch"], fields["criterion"])
    shape = [fields[k] for k in ("d", "H", "d_h", "m", "D", "scaling")]
    patience, on, stops = fields["patience"] or None, fields["criterion_on"], fields["early_stops"]
    spec = Spec(*shape, recipe, tuple(fields["lrs"]), patience, criterion_on=on, early_stops=stops)
    validate_spec(spec)
    return spec


def validate_spec(spec: Spec) -> None:
    """Raise :class:`ConfigError` naming the first bad field of ``spec``."""
    check(spec.scaling in SCALINGS, f"scaling must be one of {', '.join(SCALINGS)}, got {spec.scaling!r}")
    on = spec.criterion_on
    check(on in CRITERIA_ON, f"criterion_on must be one of {', '.join(CRITERIA_ON)}, got {on!r}")
    check(spec.D >= 1, f"answers per relation D must be ≥ 1, got {spec.D}")
    check(len(spec.lrs) >= 1 and all(lr > 0 for lr in spec.lrs), f"learning rates must be > 0: {spec.lrs}")
    validate(config_of(spec, task_of(spec, 3)))
    validate_recipe(spec.recipe)


def _k_of_facts(N: float, scaling: str) -> int:
    return max(1, round(N ** (1 / 3) if scaling == "square" else math.sqrt(N)))


def _pad_of(k: int) -> int:
    """The bucket's k for a size needing k: :data:`PAD_HEADROOM` above it, rounded up to a multiple of 4.

    >>> _pad_of(7), _pad_of(16)
    (12, 20)
    """
    return 4 * math.ceil(PAD_HEADROOM * k / 4)


def hopeless(
    trace: Sequence[tuple[int, float]],
    n_steps: int,
    criterion: float,
    below: float,
    factor: float = STALL_FACTOR,
    window: float = STALL_WINDOW,
) -> bool:
    """Whether a run with ``trace`` (its (step t, best accuracy b) after each span) is given up.

    With b₀ its best w = ``window`` · T steps earlier (T = ``n_steps``; default :data:`STALL_WINDOW`), a run
    more than two facts short of the criterion (b < ``below``, as patience) stops when even
    b + factor · (b − b₀) · (T − t) / w < criterion: at ``factor`` (default :data:`STALL_FACTOR`) times the
    pace of its last w steps it would not reach the criterion by the budget.

    >>> trace = [(1024, 0.55), (2048, 0.6)]
    >>> hopeless(trace, 4096, 0.99, 0.9), hopeless(trace, 4096, 0.99, 0.5)  # 0.6 + 2·0.05·2 < 0.99
    (True, False)
    >>> hopeless([(1024, 0.5), (2048, 0.8)], 4096, 0.99, 0.9)  # 0.8 + 2·0.3·2 ≥ 0.99
    False
    """
    t, b = trace[-1]
    w = window * n_steps
    earlier = [b0 for t0, b0 in trace if t0 == t - w]
    if not earlier or b >= below:
        return False
    return b + factor * (b - earlier[0]) * (n_steps - t) / w < criterion


class TransformerFamily:
    """The trials of ``spec``'s search as a :class:`factrecall.core.queue.Family`: size index n, pad k_pad
    (the bucket holds S, R ≤ k_pad; ``square``: S ≤ k_pad²; ``distinct``: D ≤ k_pad too). The pad only
    grows, so a search usually compiles one program (two when its capacity is far above the guess)."""

    first_step = FIRST_STEP
    min_per_device = MIN_PER_DEVICE
    fill = True  # slots the seeds' trials leave idle (the floor above) run ahead (core.queue.search_queued)

    def __init__(self, spec: Spec, speculate: int = SPECULATE):
        self.spec, self.lrs, self.criterion = spec, spec.lrs, spec.recipe.criterion
        self.speculate = speculate  # trials' worth of runs each seed holds ahead (see SPECULATE)
        r = spec.recipe
        self.span = SPAN_PERIODS * r.eval_every
        self.settings = Settings(
            r.n_steps,
            r.eval_every,
            r.criterion,
            schedule=r.schedule,
            warmup=r.n_steps // 32,
            patience=spec.patience,
        )
        after = max(int(RACE_AFTER * r.n_steps), RACE_MIN_STEPS)
        self.race = (RACE_MARGIN, after) if spec.early_stops and after < r.n_steps else None  # RACE_MARGIN
        self.weights: dict[int, Params] = {}
        self.pads: set[int] = set()  # the buckets used: one compiled program each

    def bucket(self, pad: int) -> RecallTask:
        spec = self.spec
        S, R, D = sizes(index_of(pad, spec.scaling), spec.scaling, spec.D)
        return padded.bucket(S, R, D, spec.T)

    def problem(self, pad: int) -> Problem:
        self.pads.add(pad)
        task, spec = self.bucket(pad), self.spec
        cfg = config_of(spec, task)
        return padded.padded_problem(cfg, task, spec.recipe.batch, spec.recipe.n_contexts, spec.criterion_on)

    def repad(self, N: int, pad: int) -> int:
        S, R, _ = sizes(N, self.spec.scaling, self.spec.D)
        need = R if self.spec.scaling == "square" else max(S, R)
        return pad if need <= pad else _pad_of(need)

    def data(self, seed: int, N: int, pad: int) -> dict[str, Any]:
        return padded.trial_data(
            self.bucket(pad), self.spec.d, seed, *sizes(N, self.spec.scaling, self.spec.D)
        )

    def params(self, seed: int, N: int) -> Params:
        if seed not in self.weights:
            self.weights[seed] = padded.initial_weights(config_of(self.spec, task_of(self.spec, 1)), seed)
        return self.weights[seed]

    def key(self, seed: int, N: int) -> Key:
        return padded.batch_key(seed, *sizes(N, self.spec.scaling, self.spec.D))

    def stall_below(self, N: int) -> float:
        S, R, _ = sizes(N, self.spec.scaling, self.spec.D)
        return self.criterion - 2.0 / (S * R)

    def hopeless(self, N: int, trace: Sequence[tuple[int, float]]) -> bool:
        stops = self.spec.early_stops
        return stops and hopeless(trace, self.settings.n_steps, self.criterion, self.stall_below(N))


class Result(NamedTuple):
    """Capacity of one transformer shape: the largest size index stored per seed, and every trial."""

    spec: Spec
    n_per_seed: tuple[int, ...]
    capped: bool
    trials: tuple[Trial, ...]
    seeds: tuple[int, ...]
    seconds: float
    buckets: int = 1

    def facts_of(self, n: int | None) -> int | None:
        """S·R of size index n (0 for n = 0, None for no size)."""
        return None if n is None else math.prod(sizes(n, self.spec.scaling, self.spec.D)[:2]) if n > 0 else 0

    def failed(self, seed: int) -> int | None:
        """The smallest size index that failed above ``seed``'s capacity (None: capped)."""
        lo = self.n_per_seed[self.seeds.index(seed)]
        above = [t.N for t in self.trials if t.seed == seed and not t.stored and t.N > lo]
        return min(above) if above else None

    def _shape(self, n: int | None) -> list[int] | None:
        return None if not n else list(sizes(n, self.spec.scaling, self.spec.D)[:2])

    def summary(self) -> dict[str, Any]:
        """The JSON record: the keys of the memory capacities plus ``facts``, S, R, D, the bracket
        (``facts_stored``, ``facts_failed`` and their shapes, the worst seed's), ``capacity_median`` (the
        median of ``capacity_per_seed``) and the split counts."""
        spec = self.spec
        worst = min(range(len(self.seeds)), key=lambda i: self.n_per_seed[i])
        n, hi = self.n_per_seed[worst], self.failed(self.seeds[worst])
        S, R, D = sizes(n, spec.scaling, spec.D) if n else (0, 0, spec.D)
        counts = param_counts(config_of(spec, task_of(spec, max(n, 1))))
        facts, per_seed = self.facts_of(n), [self.facts_of(x) for x in self.n_per_seed]
        return {
            "model": "transformer",
            "d": spec.d,
            "H": spec.H,
            "d_h": spec.d_h,
            "m": spec.m,
            "scaling": spec.scaling,
            "criterion": spec.recipe.criterion,
            "criterion_on": spec.criterion_on,
            "early_stops": spec.early_stops,
            "method": "trained",
            "lrs": list(spec.lrs),
            "params": counts.paper,
            "attention_params": counts.attention,
            "mlp_params": counts.mlp,
            "params_note": "4·H·d_h·d + 2·m·d (Q, K, V, O, W1, W2); the bias (m) and frozen embeddings apart",
            "facts": facts,
            "capacity": facts,
            "capacity_per_seed": per_seed,
            "capacity_median": statistics.median(per_seed),
            "capacity_min": min(per_seed),
            "capacity_max": max(per_seed),
            "facts_stored": facts,
            "facts_failed": self.facts_of(hi),
            "stored_shape": self._shape(n),
            "failed_shape": self._shape(hi),
            "facts_failed_per_seed": [self.facts_of(self.failed(s)) for s in self.seeds],
            "S": S,
            "R": R,
            "D": D,
            "capped": self.capped,
            "seeds": list(self.seeds),
            "facts_per_param": facts / counts.paper,
            "facts_per_param_guide": FACTS_PER_PARAM_GUIDE,
            "bits_per_param": bits_facts(S, R, D) / counts.paper if n > 0 else 0.0,
            "bits_note": "S·R·log2 D bits (SPEC §5) per paper parameter",
            "n_steps": spec.recipe.n_steps,
            "batch": spec.recipe.batch,
            "seconds": self.seconds,
            "trials": len(self.trials),
            "buckets": self.buckets,
            "diverged_runs": sum(t.diverged for t in self.trials),
        }


def capacity(
    spec: Spec,
    seeds: Sequence[int] = (0,),
    *,
    guess: int | None = None,
    on_round: Callable[[int, int, str], None] | None = None,
) -> Result:
    """The largest fact table (S·R) ``spec``'s model stores at the criterion, per seed.

    Starts below the paper's guide, at :data:`FIRST_GUESS_FACTS_PER_PARAM` facts per parameter, unless
    ``guess`` (a k: S = R = k, or step k) is given, and brackets the size index until the bracket is one
    step wide (see the module docstring).

    ``spec`` is trusted (:func:`validate_spec` checks it at the boundary).

    Raises:
        TrainingError: every trial diverged.
    """
    start = time.perf_counter()
    params = param_counts(config_of(spec, task_of(spec, 1))).paper
    k0 = guess or _k_of_facts(FIRST_GUESS_FACTS_PER_PARAM * params, spec.scaling)
    family = TransformerFamily(spec, SPECULATE if len(seeds) == 1 else 0)
    options = {"n_max": N_MAX, "rel_precision": 1e-9, "on_round": on_round}
    per_seed, capped, trials = search_queued(family, list(seeds), index_of(k0, spec.scaling), **options)
    if all(t.diverged == len(spec.lrs) for t in trials):
        raise TrainingError(f"every run diverged at learning rates {list(spec.lrs)}")
    seconds = time.perf_counter() - start
    return Result(spec, per_seed, capped, trials, tuple(seeds), seconds, len(family.pads))
