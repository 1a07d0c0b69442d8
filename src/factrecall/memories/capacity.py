"""Storage capacity: the largest number of associations N a memory stores at a criterion.

The search (SPEC §1.4) brackets N* from a lower bound that is actually tested, then bisects (geometric
midpoints) until hi/lo ≤ 1 + ``rel_precision`` or hi − lo ≤ 1. A trained memory stores N when *some*
learning rate of the grid reaches the criterion; the winning rate is recorded. Constructions (no training)
go through the same search and the same evaluator. Every trial draws fresh embeddings from the seed tuple
(seed, N) and its initial weights from ``fold_in(key(seed), N)``.

Two schedules run the trials, with the same brackets and the same result:

* lockstep rounds (linear memories, constructions): each round, every unfinished seed proposes one N and
  all (seed, N, learning rate) runs of the round are padded to one shape and trained as a single compiled
  program (:func:`factrecall.core.engine.train_many`); a round lasts as long as its slowest trial.
* a work queue of runs (trained MLP memories, whose failing trials cost 32,768 steps): each seed searches
  on its own and its trial's runs wait for a slot; between spans of steps
  (:func:`factrecall.core.engine.advance_runs`) stopped runs free their slots for the next ones, so a seed
  whose
  trial succeeded early moves on while another seed's trial is still failing (:class:`_RunQueue`).

Either way a trial's numbers depend on (seed, N, learning rate) and on the size its problem was padded to
(which the schedule fixes, deterministically: the same spec and seeds give the same numbers on a device).

Paper: §3 (Figures 1 and 6), SPEC §1.2–1.4.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core import bounds
from factrecall.core.base import Key, Model, Params, Source, substream
from factrecall.core.engine import (
    OPTIMIZERS,
    Problem,
    Runs,
    Settings,
    advance_runs,
    compile_seconds,
    cross_entropy,
    start_runs,
    train_many,
)
from factrecall.core.errors import TrainingError, check
from factrecall.core.search import FIRST_STEP, Bracket, Trial, search_largest
from factrecall.memories.constructions import (
    construct_hebbian,
    construct_low_rank_hebbian,
    construct_mlp_random_features,
)
from factrecall.memories.embeddings import GEOMETRIES, table
from factrecall.memories.models import MemoryData, linear_memory, logits, memory_accuracy, mlp_memory
from factrecall.memories.targets import TARGET_KINDS, output_mask, targets, zipf_weights

MODELS = ("linear", "mlp")

# Default recipes. Linear: the paper's (Adam, 4096 steps) with the grid {0.1, 1, 10} of the authors' code.
LINEAR_LRS: tuple[float, ...] = (0.1, 1.0, 10.0)
LINEAR_STEPS = 4096
# MLP: the paper trains at lr 3e-2 for up to 32768 steps; a cosine decay over the same budget with the grid
# {0.03, 0.1, 0.3} stores more (see benchmarks/RESULTS.md), so it is our default.
MLP_LRS: tuple[float, ...] = (0.03, 0.1, 0.3)
MLP_STEPS = 32768
MLP_SCHEDULE = "cosine"
MLP_WARMUP = 256
# A run stuck for 5120 steps more than 0.01 (and more than two facts) below the criterion stops, freeing
# its slot for the next run. On 108 runs near capacity (d = 16 and 22, benchmarks/RESULTS.md) no run that
# later stored its facts had stalled below that line for more than 2560 steps; runs a fact or two short
# often stall for longer (up to 15,872 steps) and then succeed, so they keep the whole budget.
MLP_PATIENCE = 5120
MLP_PATIENCE_MARGIN = 0.01
# The MLP guess is within a few % of N* (its constant is fitted to our measurements), so the search's first
# move from it is small: a failing trial costs the whole budget however far above N* it is.
MLP_FIRST_STEP = 1.03
METHODS = {"linear": ("trained", "hebbian"), "mlp": ("trained", "construction")}


class MemorySpec(NamedTuple):
    """Everything that defines one capacity measurement (hashable: it keys compiled programs).

    Attributes:
        model: ``linear`` or ``mlp``.
        d: embedding dimension.
        m: MLP width (``mlp`` only).
        rank: rank r of a low-rank linear memory (``None``: full).
        M: number of outputs; ``None`` means M = N (a bijection, the paper's default).
        target: ``bijection`` (M = N), ``balanced`` (f*(x) = floor(x·M/N)) or ``random``.
        alpha: Zipf exponent of the input weights p(x) ∝ (x+1)^-α (0: uniform).
        geometry: embedding geometry (``sphere``, ``orthogonal``, ``onehot``, ``spiked``).
        beta: spike strength of the ``spiked`` geometry.
        method: ``trained``, or a construction (``hebbian`` for linear, ``construction`` for MLP).
        criterion: fraction of (p-weighted) inputs that must be decoded correctly.
        top_k: an input counts as correct when f*(x) is among the k best outputs.
        lrs: learning-rate grid (trained only); the best is kept.
        n_steps: step budget per run.
        eval_every: steps between accuracy checks (the run stops at the criterion).
        optimizer: optax optimizer name.
        schedule: ``constant`` or ``cosine`` (warm-up then cosine decay to 0 at ``n_steps``).
        warmup: warm-up steps of the cosine schedule.
        patience: stop a run whose best accuracy has not improved for this many steps (``None``: never).
            MLP searches stop each learning rate's run on its own; the others stop a trial's runs together.
        patience_margin: (MLP) patience stops only runs whose best accuracy is below the criterion by more
            than this and by more than two facts (2/N); ``None``: any run.
    """

    model: str
    d: int
    m: int | None = None
    rank: int | None = None
    M: int | None = None
    target: str = "bijection"
    alpha: float = 0.0
    geometry: str = "sphere"
    beta: float = 4.0
    method: str = "trained"
    criterion: float = 0.99
    top_k: int = 1
    lrs: tuple[float, ...] = (0.1, 1.0, 10.0)
    n_steps: int = 4096
    eval_every: int = 64
    optimizer: str = "adam"
    schedule: str = "constant"
    warmup: int = 0
    patience: int | None = None
    patience_margin: float | None = None


def recipe(model: str, d: int, m: int | None = None, **overrides: Any) -> MemorySpec:
    """A :class:`MemorySpec` with the project's default training recipe for ``model``, then ``overrides``.

    Linear: Adam, 4096 steps, grid {0.1, 1, 10}, accuracy every 64 steps. MLP: Adam with warm-up and cosine
    decay over 32768 steps, grid {0.03, 0.1, 0.3}, accuracy every 128 steps, and a run stuck well below the
    criterion for 5120 steps stops (``patience``). ``None`` overrides are ignored.

    >>> recipe("mlp", 8, 8).schedule
    'cosine'
    """
    base: dict[str, Any] = {"model": model, "d": d, "m": m}
    if model == "linear":
        base.update(lrs=LINEAR_LRS, n_steps=LINEAR_STEPS, eval_every=64)
    else:
        base.update(
            lrs=MLP_LRS,
            n_steps=MLP_STEPS,
            eval_every=128,
            schedule=MLP_SCHEDULE,
            warmup=MLP_WARMUP,
            patience=MLP_PATIENCE,
            patience_margin=MLP_PATIENCE_MARGIN,
        )
    base.update({k: v for k, v in overrides.items() if v is not None})
    if base.get("M") is not None and base.get("target", "bijection") == "bijection":
        base["target"] = "balanced"
    return MemorySpec(**base)


def validate_spec(spec: MemorySpec) -> None:
    """Raise :class:`ConfigError` naming the first invalid field of ``spec``."""
    check(spec.model in MODELS, f"model must be one of {', '.join(MODELS)}, got {spec.model!r}")
    check(spec.d >= 1, f"d must be ≥ 1, got d={spec.d}")
    methods = METHODS[spec.model]
    check(
        spec.method in methods,
        f"method for {spec.model} must be one of {', '.join(methods)}, got {spec.method!r}",
    )
    if spec.model == "mlp":
        check(spec.m is not None and spec.m >= 1, f"width must be ≥ 1 for an MLP memory, got {spec.m}")
    check(spec.rank is None or 1 <= spec.rank <= spec.d, f"rank must be in [1, d={spec.d}], got {spec.rank}")
    check(spec.M is None or spec.M >= 2, f"outputs M must be ≥ 2 (or unset for M = N), got {spec.M}")
    check(
        spec.target in TARGET_KINDS, f"target must be one of {', '.join(TARGET_KINDS)}, got {spec.target!r}"
    )
    check(
        (spec.target == "bijection") == (spec.M is None),
        "target 'bijection' needs M unset (M = N), and M needs 'balanced' or 'random'",
    )
    check(spec.alpha >= 0, f"zipf alpha must be ≥ 0, got {spec.alpha}")
    check(
        spec.geometry in GEOMETRIES, f"geometry must be one of {', '.join(GEOMETRIES)}, got {spec.geometry!r}"
    )
    check(0.0 < spec.criterion <= 1.0, f"criterion must be in (0, 1], got {spec.criterion}")
    check(spec.top_k >= 1, f"top_k must be ≥ 1, got {spec.top_k}")
    check(
        len(spec.lrs) >= 1 and all(lr > 0 for lr in spec.lrs),
        f"learning rates must be > 0, got {list(spec.lrs)}",
    )
    check(spec.n_steps >= 1, f"steps must be ≥ 1, got {spec.n_steps}")
    check(spec.eval_every >= 1, f"eval_every must be ≥ 1, got {spec.eval_every}")
    check(
        spec.optimizer in OPTIMIZERS,
        f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {spec.optimizer!r}",
    )


def memory_model(spec: MemorySpec) -> Model:
    """The :class:`~factrecall.core.base.Model` that ``spec`` trains or constructs."""
    if spec.model == "linear":
        return linear_memory(spec.d, spec.rank)
    return mlp_memory(spec.d, spec.m)


def param_count(spec: MemorySpec) -> tuple[int, int]:
    """(weights the paper counts, extra parameters counted apart): d² or 2dr; 2md and the bias m."""
    if spec.model == "linear":
        return bounds.linear_params(spec.d, spec.rank), 0
    return bounds.mlp_params(spec.d, spec.m), bounds.mlp_bias_params(spec.m)


def memory_data(
    n_pad: int,
    m_pad: int,
    N: Any,
    M: Any,
    d: int,
    *,
    key: Source,
    target: str = "bijection",
    alpha: float = 0.0,
    geometry: str = "sphere",
    beta: float = 4.0,
) -> MemoryData:
    """An association problem of N inputs and M outputs in R^d, padded to (n_pad, m_pad) rows.

    Embeddings come from ``substream(key, 0)``, unembeddings from ``substream(key, 1)``, random targets from
    ``substream(key, 2)``. With a JAX key, ``N`` and ``M`` may be traced (one program serves several sizes).
    """
    k_in, k_out, k_f = (substream(key, i) for i in range(3))
    return MemoryData(
        E=table(geometry, n_pad, d, key=k_in, beta=beta),
        U=table(geometry, m_pad, d, key=k_out, beta=beta),
        targets=targets(n_pad, N, M, target, key=k_f),
        weights=zipf_weights(n_pad, N, alpha),
        out_mask=output_mask(m_pad, M),
    )


@functools.cache
def memory_problem(model: Model, top_k: int = 1) -> Problem:
    """Full-batch softmax cross-entropy over all outputs, and accuracy (top-k) as the monitored metric."""

    def loss(params: Params, data: MemoryData, key: Key):
        del key  # full batch: nothing to sample
        return cross_entropy(logits(model, params, data), data.targets, data.weights)

    def evaluate(params: Params, data: MemoryData):
        return {"accuracy": memory_accuracy(model, params, data, top_k)}

    return Problem(loss, evaluate, "accuracy")


def _bucket(n: int) -> int:
    """Tightest padded size for n: a multiple of 2^max(3, ⌊log2 n⌋ − 4), i.e. at most ~6% above n."""
    step = 2 ** max(3, n.bit_length() - 5)
    return step * math.ceil(n / step)


def trial_data(spec: MemorySpec, n_pad: int, seed: int, N: int) -> MemoryData:
    """The problem of trial (seed, N), padded to ``n_pad`` rows (drawn on the host from (seed, N)).

    Every search draws trial (seed, N) from here, so any procedure can be run on the same problem.

    >>> trial_data(recipe("mlp", 8, 8), 48, 0, 40).E.shape
    (48, 8)
    """
    M = N if spec.M is None else spec.M
    m_pad = n_pad if spec.M is None else spec.M
    return memory_data(
        n_pad,
        m_pad,
        N,
        M,
        spec.d,
        key=(seed, N),
        target=spec.target,
        alpha=spec.alpha,
        geometry=spec.geometry,
        beta=spec.beta,
    )


def trial_key(seed: int, N: int) -> Key:
    """The JAX key of trial (seed, N): its ``fold_in(·, 1)`` draws the initial weights."""
    return jax.random.fold_in(jax.random.key(seed), N)


def _trial_params(model: Model, seed: int, N: int) -> Params:
    """The initial weights of trial (seed, N), drawn from ``fold_in(trial_key(seed, N), 1)``."""
    return model.init(jax.random.fold_in(trial_key(seed, N), 1))


def _prepare(
    spec: MemorySpec, n_pad: int, seeds: Sequence[int], Ns: Sequence[int]
) -> tuple[MemoryData, Params, Key]:
    """Data, initial params and keys of each (seed, N) row, stacked.

    Data are drawn on the host by NumPy from the seed tuple (seed, N) — no compilation per padded shape, and
    the same numbers on every device. Initial weights come from the JAX key ``fold_in(key(seed), N)``
    (its ``fold_in(·, 1)``), whose shapes do not depend on N.
    """
    model = memory_model(spec)
    rows, params, keys = [], [], []
    for seed, N in zip(seeds, Ns, strict=True):
        rows.append(trial_data(spec, n_pad, seed, N))
        keys.append(trial_key(seed, N))
        params.append(_trial_params(model, seed, N))
    stack = lambda *xs: jnp.stack(xs)  # noqa: E731
    return jax.tree_util.tree_map(stack, *rows), jax.tree_util.tree_map(stack, *params), jnp.stack(keys)


def _settings(spec: MemorySpec) -> Settings:
    return Settings(
        spec.n_steps,
        spec.eval_every,
        spec.criterion,
        spec.optimizer,
        spec.schedule,
        spec.warmup,
        patience=spec.patience,
    )


def _run_trained(spec: MemorySpec, data: MemoryData, params: Params, keys: Key) -> tuple[np.ndarray, ...]:
    model = memory_model(spec)
    out = train_many(
        memory_problem(model, spec.top_k), _settings(spec), params, data, jnp.asarray(spec.lrs), keys
    )
    return tuple(np.asarray(x) for x in (out.best_metric, out.diverged, out.steps))


@functools.cache
def _constructor(spec: MemorySpec) -> Callable[..., Any]:
    model = memory_model(spec)

    def build(data: MemoryData, key: Key) -> Params:
        if spec.model == "mlp":
            return construct_mlp_random_features(data, spec.m, key=key)
        if spec.rank is not None and spec.rank < spec.d:
            return construct_low_rank_hebbian(data, spec.rank, key=key)
        return construct_hebbian(data)

    def accuracy(data: MemoryData, key: Key):
        return memory_accuracy(model, build(data, key), data, spec.top_k)

    return jax.jit(jax.vmap(accuracy))


def _run_constructed(spec: MemorySpec, data: MemoryData, params: Params, keys: Key) -> tuple[np.ndarray, ...]:
    del params
    acc = np.asarray(_constructor(spec)(data, jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)))[:, None]
    return acc, np.zeros_like(acc, dtype=bool), np.zeros_like(acc, dtype=int)


def run_trials(
    spec: MemorySpec, Ns: Sequence[int], seeds: Sequence[int], shape: tuple[int, int] | None = None
) -> list[Trial]:
    """Test whether each (seed, N) pair is stored; all pairs run as one padded, compiled batch.

    Args:
        spec: what is stored and how.
        Ns, seeds: the pairs to test.
        shape: (rows, n_pad) to pad the batch to (extra rows repeat the last pair and are dropped);
            default: the tightest shape (see :func:`_bucket`).
    """
    rows, n_pad = shape or (len(Ns), _bucket(max(Ns)))
    if spec.geometry in ("orthogonal", "onehot"):
        n_pad = min(n_pad, spec.d)
    pad = rows - len(Ns)
    data, params, keys = _prepare(spec, n_pad, [*seeds, *[seeds[-1]] * pad], [*Ns, *[Ns[-1]] * pad])
    run = _run_trained if spec.method == "trained" else _run_constructed
    acc, diverged, steps = run(spec, data, params, keys)
    lrs = spec.lrs if spec.method == "trained" else (None,)
    trials = []
    for i, (seed, N) in enumerate(zip(seeds, Ns, strict=True)):
        finite = np.isfinite(acc[i])
        if not finite.any():  # every learning rate diverged before its first evaluation
            trials.append(
                Trial(seed, N, False, float("nan"), None, int(diverged[i].sum()), int(steps[i].max()))
            )
            continue
        j = int(np.argmax(np.where(finite, acc[i], -np.inf)))  # the smallest learning rate among the best
        best = float(acc[i, j])
        trials.append(
            Trial(seed, N, best >= spec.criterion, best, lrs[j], int(diverged[i].sum()), int(steps[i, j]))
        )
    return trials


class _ShapePlanner:
    """Pads each round to a shape (rows, n_pad) that is cheap overall, by a fixed cost model.

    The model: a round costs ``unit``·rows·n_pad² seconds (``unit`` is the a-priori estimate for the spec,
    measured once on two CPU cores) and compiling a new shape ``COMPILE_S`` seconds. A round reuses an
    already compiled, larger shape when the extra compute is expected to cost less than a compile; and when
    rounds are cheap it pads to the search's first bracketing step (1.15·N), so that the next round fits
    the same program.

    Nothing here is measured while running: the shapes, and so the numbers (padding changes the compiled
    program), depend only on the spec, the seeds and the device count, never on the machine's load. This
    is what lets the local, process and Ray backends of :mod:`factrecall.experiments.sweeps` agree exactly.
    """

    GENEROUS = FIRST_STEP  # the next N tested above a stored guess
    COMPILE_S = 1.5

    def __init__(self, n_devices: int, prior_unit: float):
        self.n_devices = n_devices
        self.compiled: set[tuple[int, int]] = set()
        self.unit = prior_unit  # seconds per row·n_pad² of a round (fixed)
        self.compile_s = self.COMPILE_S

    def _cost(self, shape: tuple[int, int]) -> float:
        return self.unit * shape[0] * shape[1] ** 2

    def choose(self, rows: int, n: int) -> tuple[int, int]:
        rows = self.n_devices * math.ceil(rows / self.n_devices)
        tight = (rows, _bucket(n))
        reusable = sorted(s for s in self.compiled if s[0] >= rows and s[1] >= tight[1])
        best = min(reusable, key=self._cost, default=None)
        if best is not None and self._cost(best) < self._cost(tight) + self.compile_s:
            return best
        generous = (rows, _bucket(math.ceil(self.GENEROUS * n)))
        return generous if self._cost(generous) - self._cost(tight) < 0.5 * self.compile_s else tight

    def record(self, shape: tuple[int, int], seconds: float, compile_seconds: float) -> None:
        """Remember that ``shape`` is compiled; the timings are deliberately ignored (see the class)."""
        del seconds, compile_seconds
        self.compiled.add(shape)


def _trial(spec: MemorySpec, seed: int, N: int, results: dict[int, tuple[float, bool, int]]) -> Trial:
    """The :class:`Trial` of (seed, N) from its finished runs: lr index → (best metric, diverged, steps)."""
    finite = {j: r for j, r in results.items() if math.isfinite(r[0])}
    diverged = sum(r[1] for r in results.values())
    if not finite:  # every finished run diverged before its first evaluation
        return Trial(seed, N, False, float("nan"), None, diverged, max(r[2] for r in results.values()))
    j = max(sorted(finite), key=lambda k: finite[k][0])  # the first in grid order among the best
    best = finite[j][0]
    return Trial(seed, N, best >= spec.criterion, best, spec.lrs[j], diverged, finite[j][2])


def _stall_below(spec: MemorySpec, N: int) -> float:
    """Patience stops a run only below this accuracy: more than the margin and two facts short."""
    if spec.patience_margin is None:
        return math.inf
    return spec.criterion - max(spec.patience_margin, 2.0 / N)


class _RunQueue:
    """A capacity search whose runs share a fixed number of slots, refilled as runs stop (a work queue).

    Each seed searches on its own (:class:`~factrecall.core.search.Bracket`): its trial at N queues one run
    per
    learning rate; a trial is decided as soon as one run reaches the criterion (its other runs are dropped,
    queued or running) or when all its runs have stopped. Between spans of ``span`` steps
    (:func:`~factrecall.core.engine.advance_runs`), stopped runs leave their slots and queued runs take
    them, so
    the batch stays full: a seed whose trial succeeded early starts its next trial while another seed's
    failing trial is still running, and no slot is spent on padding rows or on repeating a round's
    slowest trial. Every slot's problem is padded to one size (the bucket of the largest N running).

    Nothing depends on timing: the schedule, and so every number, is a function of the spec, the seeds and
    the device count.
    """

    def __init__(self, spec: MemorySpec, n_slots: int, span: int):
        self.spec, self.K, self.span = spec, n_slots, span
        self.model = memory_model(spec)
        self.problem = memory_problem(self.model, spec.top_k)
        self.settings = _settings(spec)
        self.slots: list[tuple[int, int, int] | None] = [None] * n_slots
        self.queue: list[tuple[int, int, int]] = []
        self.host: Runs | None = None
        self.n_pad = 0
        self._cache: dict[tuple[int, int, int], MemoryData] = {}
        self._batch: tuple[tuple[list, int], tuple[Any, ...]] | None = None  # the last stacked slots

    def _data(self, seed: int, N: int) -> MemoryData:
        if (seed, N, self.n_pad) not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[2] == self.n_pad}
            self._cache[seed, N, self.n_pad] = trial_data(self.spec, self.n_pad, seed, N)
        return self._cache[seed, N, self.n_pad]

    def _place(self) -> None:
        """Compact the slots when at most half are needed, take queued runs, and size the padding."""
        busy = [x for x in self.slots if x is not None]
        n_dev = jax.device_count()
        need = n_dev * max(1, math.ceil((len(busy) + len(self.queue)) / n_dev))
        if need <= self.K // 2:
            keep = [i for i, x in enumerate(self.slots) if x is not None]
            if not keep:
                self.host = None
            elif self.host is not None:
                self.host = jax.tree_util.tree_map(
                    lambda a: a[keep + [keep[0]] * (need - len(keep))], self.host
                )
            self.K, self.slots = need, busy + [None] * (need - len(busy))
        fresh = []
        for i in range(self.K):
            if self.slots[i] is None and self.queue:
                self.slots[i] = self.queue.pop(0)
                fresh.append(i)
        top = _bucket(max(x[1] for x in self.slots if x is not None))
        if self.spec.geometry in ("orthogonal", "onehot"):
            top = min(top, self.spec.d)
        if top > self.n_pad or top < 0.85 * self.n_pad:  # hysteresis: a shape change recompiles
            self.n_pad = top
        if fresh:
            self._start(fresh)
        for i, x in enumerate(self.slots):
            if x is None:
                self.host.active[i] = False

    def _start(self, idx: list[int]) -> None:
        """Fresh state for the runs just placed in slots ``idx``."""
        params = [_trial_params(self.model, *self.slots[i][:2]) for i in idx]
        params = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *params)
        lrs = jnp.asarray([self.spec.lrs[self.slots[i][2]] for i in idx])
        new = jax.tree_util.tree_map(np.array, jax.device_get(start_runs(self.settings, params, lrs)))
        if self.host is None:  # every slot starts as a copy of the first new run
            self.host = jax.tree_util.tree_map(lambda a: np.repeat(a[:1], self.K, axis=0), new)

        def put(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            a[idx] = b
            return a

        self.host = jax.tree_util.tree_map(put, self.host, new)

    def advance(self) -> list[tuple[tuple[int, int, int], tuple[float, bool, int]]]:
        """Run one span; return each run that stopped, with (best metric, diverged, steps)."""
        self._place()
        rows = [x if x is not None else next(y for y in self.slots if y is not None) for x in self.slots]
        if self._batch is None or self._batch[0] != (rows, self.n_pad):  # the slots changed: restack
            data = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[self._data(s, N) for s, N, _ in rows])
            keys = jnp.stack([trial_key(s, N) for s, N, _ in rows])
            lrs = jnp.asarray([self.spec.lrs[j] for _, _, j in rows])
            below = jnp.asarray([_stall_below(self.spec, N) for _, N, _ in rows])
            self._batch = ((rows, self.n_pad), (data, lrs, keys, below))
        data, lrs, keys, below = self._batch[1]
        runs = advance_runs(self.problem, self.settings, self.host, data, lrs, keys, self.span, below)
        self.host = jax.tree_util.tree_map(np.array, jax.device_get(runs))
        stopped = []
        for i, x in enumerate(self.slots):
            if x is not None and not self.host.active[i]:
                h = self.host
                stopped.append((x, (float(h.best[i]), bool(h.diverged[i]), int(h.step[i]))))
                self.slots[i] = None
        return stopped

    def drop(self, seed: int) -> None:
        """Forget the queued and running runs of ``seed``'s current trial (it is decided)."""
        self.queue = [x for x in self.queue if x[0] != seed]
        self.slots = [None if x is not None and x[0] == seed else x for x in self.slots]


def _search_queued(
    spec: MemorySpec,
    seeds: Sequence[int],
    guess: int,
    *,
    n_max: int,
    rel_precision: float,
    first_step: float,
    on_round: Callable[[int, int, str], None] | None,
    n_slots: int | None = None,
) -> tuple[tuple[int, ...], bool, tuple[Trial, ...]]:
    """:func:`~factrecall.core.search.search_largest` on a work queue of runs (see :class:`_RunQueue`).

    Same brackets, same stopping rule, same result types; a trial is one (seed, N) over the lr grid.
    """
    L = len(spec.lrs)
    n_dev = jax.device_count()
    K = n_slots or n_dev * math.ceil(len(seeds) * L / n_dev)
    runner = _RunQueue(spec, K, 8 * spec.eval_every)
    brackets = {s: Bracket(guess, n_max, rel_precision, first_step) for s in seeds}
    current: dict[int, tuple[int, dict[int, tuple[float, bool, int]]]] = {}
    trials: list[Trial] = []
    while True:
        for s in seeds:
            if s not in current and not brackets[s].done:
                N = brackets[s].next
                current[s] = (N, {})
                runner.queue.extend((s, N, j) for j in range(L))
        if not current:
            break
        for (s, _, j), result in runner.advance():
            current[s][1][j] = result
        for s in [s for s in seeds if s in current]:
            N, results = current[s]
            if len(results) < L and not any(r[0] >= spec.criterion for r in results.values()):
                continue
            runner.drop(s)
            trial = _trial(spec, s, N, results)
            trials.append(trial)
            brackets[s].update(N, trial.stored)
            del current[s]
            if on_round is not None:
                left = sum(b.rounds_left() for b in brackets.values())
                status = ", ".join(f"seed {k}: [{b.lo}, {b.hi}]" for k, b in brackets.items())
                on_round(len(trials), len(trials) + left, status)
    per_seed = tuple(brackets[s].lo or 0 for s in seeds)
    capped = any(b.lo is not None and b.hi is None for b in brackets.values())
    return per_seed, capped, tuple(trials)


class CapacityResult(NamedTuple):
    """Capacity of a memory over seeds, with what was counted and how it was found."""

    spec: MemorySpec
    seeds: tuple[int, ...]
    capacity_per_seed: tuple[int, ...]
    capped: bool
    params: int
    extra_params: int
    trials: tuple[Trial, ...]
    seconds: float

    @property
    def capacity(self) -> float:
        """Median N* over seeds."""
        return float(statistics.median(self.capacity_per_seed))

    def winning_lrs(self) -> list[float | None]:
        """The learning rate that stored N* for each seed (``None`` for constructions)."""
        best = {}
        for t in self.trials:
            if t.stored and t.N == dict(zip(self.seeds, self.capacity_per_seed, strict=True))[t.seed]:
                best[t.seed] = t.lr
        return [best.get(s) for s in self.seeds]

    def summary(self) -> dict[str, Any]:
        """The JSON record of the result: counts, per-seed values, and derived ratios."""
        spec, N = self.spec, self.capacity
        M = N if spec.M is None else spec.M
        out: dict[str, Any] = {
            "model": spec.model,
            "d": spec.d,
            "m": spec.m,
            "rank": spec.rank,
            "outputs": "N" if spec.M is None else spec.M,
            "method": spec.method,
            "criterion": spec.criterion,
            "top_k": spec.top_k,
            "params": self.params,
            "params_note": _params_note(spec),
            "extra_params": self.extra_params,
            "capacity": N,
            "capacity_per_seed": list(self.capacity_per_seed),
            "capacity_min": min(self.capacity_per_seed),
            "capacity_max": max(self.capacity_per_seed),
            "capped": self.capped,
            "seeds": list(self.seeds),
            "facts_per_param": N / self.params,
            "bits_per_param": bounds.bits_per_param(N, M, self.params) if M > 1 else 0.0,
            "bits_lower_bound": bounds.bits_to_store(N, M),
            "bits_lower_bound_note": "N·log2 M: bits needed to store an arbitrary map [N] → [M] (§5)",
            "seconds": self.seconds,
            "trials": len(self.trials),
            "diverged_runs": sum(t.diverged for t in self.trials),
        }
        if spec.model == "linear":
            out["NlogN_over_d2"] = bounds.n_log_n(N) / spec.d**2
        if spec.method == "trained":
            out.update(
                lrs=list(spec.lrs),
                lr_per_seed=self.winning_lrs(),
                n_steps=spec.n_steps,
                optimizer=spec.optimizer,
                patience=spec.patience,
            )
        return out


def _params_note(spec: MemorySpec) -> str:
    if spec.model == "linear":
        return "d² (W)" if spec.rank is None or spec.rank >= spec.d else "2·d·r (A and B)"
    return "2·m·d (W and V); the bias b (m) is in extra_params"


def default_guess(spec: MemorySpec) -> int:
    """A starting N near the expected capacity (only speeds the search up; any value ≥ 1 works)."""
    params, _ = param_count(spec)
    if spec.model == "linear" and spec.method == "hebbian":
        guess = bounds.solve_n_log_n(params / 8)
    elif spec.model == "linear":
        guess = bounds.solve_n_log_n(params / 1.1)
    elif spec.M is not None:  # ours: m·d ≈ 1.05·N (Figure 6, quick); the paper's guide 1.2
        guess = params / 2 / 1.05
    elif spec.method == "construction":
        guess = bounds.solve_n_log_n(params / 8)
    else:  # ours: m·d ≈ 0.30·N ln N (0.28–0.38 over Figure 1's quick grid, α = 1…8); the paper's guide 0.35
        guess = bounds.solve_n_log_n(params / 2 / 0.30)
    return max(2, int(guess))


def capacity(
    spec: MemorySpec,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    guess: int | None = None,
    n_max: int = 1_000_000,
    rel_precision: float = 0.01,
    on_round: Callable[[int, int, str], None] | None = None,
) -> CapacityResult:
    """Measure N* for each seed by bracketing and bisection; see the module docstring.

    Args:
        spec: what to measure.
        seeds: one N* per seed (fresh embeddings per trial).
        guess: first N tested (default: near the expected capacity).
        n_max: largest N tried; a seed that stores ``n_max`` is reported as capped.
        rel_precision: stop when hi/lo ≤ 1 + rel_precision (or hi − lo ≤ 1).
        on_round: called after each round with (rounds done, estimated total, a status line).

    Returns:
        A :class:`CapacityResult`.

    Raises:
        ConfigError: invalid ``spec`` or arguments.
    """
    validate_spec(spec)
    if spec.geometry in ("orthogonal", "onehot"):
        n_max = min(n_max, spec.d)
    start = time.perf_counter()
    # a priori seconds per row·n_pad² of a round, measured on two CPU cores (refined after each round)
    prior = 1e-5 * spec.n_steps / 4096 * len(spec.lrs) / 3 if spec.method == "trained" else 1e-7
    planner = _ShapePlanner(jax.device_count() if spec.method == "trained" else 1, prior)

    def run_round(Ns: list[int], active: list[int]) -> list[Trial]:
        shape = planner.choose(len(Ns), max(Ns))
        t0, c0 = time.perf_counter(), compile_seconds()
        trials = run_trials(spec, Ns, active, shape)
        planner.record(shape, time.perf_counter() - t0, compile_seconds() - c0)
        return trials

    if spec.method == "trained" and spec.model == "mlp":  # long runs: the work queue
        search = functools.partial(_search_queued, spec, first_step=MLP_FIRST_STEP)
    else:  # short runs or constructions: lockstep rounds, padded by the planner
        search = functools.partial(search_largest, run_round)
    per_seed, capped, trials = search(
        seeds, guess or default_guess(spec), n_max=n_max, rel_precision=rel_precision, on_round=on_round
    )
    params, extra = param_count(spec)
    for seed, n_star in zip(seeds, per_seed, strict=True):
        # N = 1 with M = N is stored by any weights (one output): it does not count as a success
        if n_star <= 1 and any(t.diverged for t in trials if t.seed == seed):
            raise TrainingError(
                f"{spec.model} memory at d={spec.d}, seed {seed}: training diverged and nothing beyond N = 1 "
                "was stored; "
                f"lower the learning rates (got {list(spec.lrs)})"
            )
    return CapacityResult(
        spec, tuple(seeds), per_seed, capped, params, extra, trials, time.perf_counter() - start
    )
