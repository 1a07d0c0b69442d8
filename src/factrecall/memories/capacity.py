"""Storage capacity: the largest number of associations N a memory stores at a criterion.

:func:`capacity` measures N* per seed and returns a :class:`CapacityResult` (its JSON summary included).
The search (SPEC §1.4) brackets N* from a lower bound that is actually tested, then bisects (geometric
midpoints) until hi/lo ≤ 1 + ``rel_precision`` or hi − lo ≤ 1. Two schedules run the trials
(:mod:`factrecall.memories.trials`), with the same brackets and the same result:

* lockstep rounds (linear memories, constructions; :mod:`factrecall.memories.lockstep`);
* a work queue of runs (trained MLP memories, whose failing trials cost 32,768 steps;
  :mod:`factrecall.memories.queue`).

What a measurement is — :class:`~factrecall.memories.spec.MemorySpec`, its recipes and its validation —
lives in :mod:`factrecall.memories.spec`; the names most callers need are re-exported here.

Paper: §3 (Figures 1 and 6), SPEC §1.2–1.4.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from factrecall.core import bounds
from factrecall.core.errors import TrainingError
from factrecall.core.search import Trial, search_largest
from factrecall.memories.lockstep import lockstep_rounds
from factrecall.memories.queue import search_queued
from factrecall.memories.spec import (
    LINEAR_LRS,
    LINEAR_STEPS,
    MLP_STEPS,
    MemorySpec,
    default_guess,
    param_count,
    params_note,
    recipe,
    validate_spec,
)
from factrecall.memories.trials import memory_data, memory_problem, run_trials, trial_data, trial_key

__all__ = [
    "LINEAR_LRS",
    "LINEAR_STEPS",
    "MLP_STEPS",
    "CapacityResult",
    "MemorySpec",
    "Trial",
    "capacity",
    "default_guess",
    "memory_data",
    "memory_problem",
    "recipe",
    "run_trials",
    "trial_data",
    "trial_key",
    "validate_spec",
]


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
            "params_note": params_note(spec),
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


def _check_trained(spec: MemorySpec, seeds: Sequence[int], per_seed: Sequence[int], trials: Sequence[Trial]):
    """Raise :class:`TrainingError` for a seed whose training diverged and stored nothing beyond N = 1.

    N = 1 with M = N is stored by any weights (one output): beside diverged runs it is no result.
    """
    for seed, n_star in zip(seeds, per_seed, strict=True):
        if n_star <= 1 and any(t.diverged for t in trials if t.seed == seed):
            raise TrainingError(
                f"{spec.model} memory at d={spec.d}, seed {seed}: training diverged and nothing beyond N = 1 "
                f"was stored; lower the learning rates (got lrs={list(spec.lrs)})"
            )


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

    ``spec`` is trusted: validate user input with :func:`~factrecall.memories.spec.validate_spec` first
    (the experiment models and the CLI do).

    Args:
        spec: what to measure.
        seeds: one N* per seed (fresh embeddings per trial).
        guess: first N tested (default: near the expected capacity, :func:`default_guess`).
        n_max: largest N tried; a seed that stores ``n_max`` is reported as capped.
        rel_precision: stop when hi/lo ≤ 1 + rel_precision (or hi − lo ≤ 1).
        on_round: called after each round with (rounds done, estimated total, a status line).

    Returns:
        A :class:`CapacityResult`.

    Raises:
        TrainingError: a seed's training diverged and stored nothing beyond N = 1.
    """
    if spec.geometry in ("orthogonal", "onehot"):
        n_max = min(n_max, spec.d)
    start = time.perf_counter()
    guess = guess or default_guess(spec)
    options = {"n_max": n_max, "rel_precision": rel_precision, "on_round": on_round}
    if spec.method == "trained" and spec.model == "mlp":  # long runs: the work queue
        per_seed, capped, trials = search_queued(spec, seeds, guess, **options)
    else:  # short runs or constructions: lockstep rounds
        per_seed, capped, trials = search_largest(lockstep_rounds(spec), seeds, guess, **options)
    _check_trained(spec, seeds, per_seed, trials)
    params, extra = param_count(spec)
    return CapacityResult(
        spec, tuple(seeds), per_seed, capped, params, extra, trials, time.perf_counter() - start
    )
