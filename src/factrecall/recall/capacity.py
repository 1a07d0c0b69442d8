"""How many facts a one-layer transformer of fixed shape stores: capacity vs parameters (Figure 4 left).

Owns the capacity experiment's spec (:class:`Spec`, checked by :func:`validate_spec`; the defaults of its
fields are :class:`factrecall.experiments.specs.TransformerCapacityPoint`'s), the recipe of a trial
(:func:`trial_recipe`), its trials and its record. :func:`capacity` finds the largest fact count S·R a model
stores (``fact_accuracy`` over every fact ≥ the criterion, the kept learning rate's) by the bracketing search
of :mod:`factrecall.core.search`. The fact set grows with one integer k: S = R = k (``linear``), R = k and
S = k² (``square``), or S = R = D = k (``distinct``: D = S). The attention/MLP map of Figure 4 right is
:mod:`factrecall.recall.tradeoff`.

Paper: §4 and Figure 4 left; Appendix (the ``square`` and ``distinct`` variants); SPEC §3, §7.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from factrecall.core.bounds import bits_facts
from factrecall.core.errors import TrainingError, check
from factrecall.core.paper import PAPER
from factrecall.core.search import Trial, search_largest
from factrecall.recall.task import RecallTask, facts_random, recall_task
from factrecall.recall.training import Recipe, kept_runs, train_batch, validate_recipe
from factrecall.recall.transformer import TransformerConfig, param_counts, validate

SCALINGS: tuple[str, ...] = ("linear", "square", "distinct")
# Figure 4 left: facts stored ≈ 0.15·params; the search's first guess and the record's guide
FACTS_PER_PARAM_GUIDE = PAPER["transformer_facts_per_param"].value
# a capacity trial evaluates as the paper does, every 128 steps, in 2 fresh contexts per fact
TRIAL_EVAL_EVERY = 128
TRIAL_CONTEXTS = 2


class Spec(NamedTuple):
    """A transformer-capacity experiment (hashable).

    Attributes:
        d, H, d_h, m: model shape (m = 0: no MLP).
        D: answers per relation (ignored by ``distinct``, where D = S).
        scaling: how S, R (and D) grow with k (see the module docstring).
        recipe: training recipe of a trial (:func:`trial_recipe`; its criterion is the storage criterion).
        lrs: learning-rate grid; the best is kept.
        patience: stop a trial when no learning rate improved for this many steps (None: never).
        T: sequence length.
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


def trial_recipe(n_steps: int, batch: int, criterion: float) -> Recipe:
    """The recipe of a capacity trial: ``n_steps`` steps (the paper's 2^14) of ``batch`` sequences (1024),
    evaluated every :data:`TRIAL_EVAL_EVERY` steps in :data:`TRIAL_CONTEXTS` contexts per fact, until
    ``fact_accuracy`` ≥ ``criterion``; a :class:`Spec`'s patience stops it earlier on a plateau.

    >>> trial_recipe(16384, 1024, 0.99)
    Recipe(n_steps=16384, batch=1024, eval_every=128, criterion=0.99, n_contexts=2, schedule='constant')
    """
    return Recipe(n_steps, batch, TRIAL_EVAL_EVERY, criterion, TRIAL_CONTEXTS)


def sizes(k: int, scaling: str, D: int) -> tuple[int, int, int]:
    """(S, R, D) of step k of a scaling.

    >>> sizes(5, "linear", 8), sizes(3, "square", 8), sizes(4, "distinct", 8)
    ((5, 5, 8), (9, 3, 8), (4, 4, 4))
    """
    if scaling == "square":
        return k * k, k, D
    if scaling == "distinct":
        return k, k, k
    return k, k, D


def task_of(spec: Spec, k: int) -> RecallTask:
    S, R, D = sizes(k, spec.scaling, spec.D)
    return recall_task(S, R, D, T=spec.T)


def config_of(spec: Spec, task: RecallTask) -> TransformerConfig:
    return TransformerConfig(spec.d, spec.H, spec.d_h, spec.m, task.vocab, task.n_answers)


def validate_spec(spec: Spec) -> None:
    """Raise :class:`ConfigError` naming the first bad field of ``spec``."""
    check(spec.scaling in SCALINGS, f"scaling must be one of {', '.join(SCALINGS)}, got {spec.scaling!r}")
    check(spec.D >= 1, f"answers per relation D must be ≥ 1, got {spec.D}")
    check(len(spec.lrs) >= 1 and all(lr > 0 for lr in spec.lrs), f"learning rates must be > 0: {spec.lrs}")
    validate(config_of(spec, task_of(spec, 2)))
    validate_recipe(spec.recipe)


def _k_of_facts(N: float, scaling: str) -> int:
    return max(1, round(N ** (1 / 3) if scaling == "square" else math.sqrt(N)))


def trial_round(spec: Spec, ks: list[int], seeds: list[int]) -> list[Trial]:
    """Train one task size k per seed (seeds at the same k form one batch) at every learning rate."""
    out: list[Trial] = []
    for k in sorted(set(ks)):
        group = [s for s, kk in zip(seeds, ks, strict=True) if kk == k]
        task = task_of(spec, k)
        keys = jnp.stack([jax.random.key(s) for s in group])
        facts = jnp.stack([facts_random(task, key=jax.random.fold_in(kk, 1)) for kk in keys])
        shapes = jnp.array([[spec.H, spec.m]] * len(group))
        cfg, lrs = config_of(spec, task), jnp.array(spec.lrs)
        res = train_batch(cfg, task, spec.recipe, facts, shapes, lrs, key=keys, patience=spec.patience)
        for seed, run in zip(group, kept_runs(res, spec.lrs), strict=True):
            out.append(Trial(seed, k, run.reached, run.accuracy, run.lr, run.diverged, run.steps))
    return out


class Result(NamedTuple):
    """Capacity of one transformer shape: facts S·R stored per seed, and every trial."""

    spec: Spec
    k_per_seed: tuple[int, ...]
    capped: bool
    trials: tuple[Trial, ...]
    seeds: tuple[int, ...]
    seconds: float

    def facts_of(self, k: int) -> int:
        S, R, _ = sizes(k, self.spec.scaling, self.spec.D)
        return S * R if k > 0 else 0

    def summary(self) -> dict[str, Any]:
        """The JSON record: the keys of the memory capacities plus ``facts``, S, R, D and the split counts."""
        spec = self.spec
        k = min(self.k_per_seed)  # the capacity is the worst seed's (every seed must store it)
        S, R, D = sizes(k, spec.scaling, spec.D)
        counts = param_counts(config_of(spec, task_of(spec, max(k, 1))))
        facts = self.facts_of(k)
        return {
            "model": "transformer",
            "d": spec.d,
            "H": spec.H,
            "d_h": spec.d_h,
            "m": spec.m,
            "scaling": spec.scaling,
            "criterion": spec.recipe.criterion,
            "method": "trained",
            "lrs": list(spec.lrs),
            "params": counts.paper,
            "attention_params": counts.attention,
            "mlp_params": counts.mlp,
            "params_note": "4·H·d_h·d + 2·m·d (Q, K, V, O, W1, W2); the bias (m) and frozen embeddings apart",
            "facts": facts,
            "capacity": facts,
            "capacity_per_seed": [self.facts_of(x) for x in self.k_per_seed],
            "capacity_min": min(self.facts_of(x) for x in self.k_per_seed),
            "capacity_max": max(self.facts_of(x) for x in self.k_per_seed),
            "S": S,
            "R": R,
            "D": D,
            "capped": self.capped,
            "seeds": list(self.seeds),
            "facts_per_param": facts / counts.paper,
            "facts_per_param_guide": FACTS_PER_PARAM_GUIDE,
            "bits_per_param": bits_facts(S, R, D) / counts.paper if k > 0 else 0.0,
            "bits_note": "S·R·log2 D bits (SPEC §5) per paper parameter",
            "n_steps": spec.recipe.n_steps,
            "batch": spec.recipe.batch,
            "seconds": self.seconds,
            "trials": len(self.trials),
            "diverged_runs": sum(t.diverged for t in self.trials),
        }


def capacity(
    spec: Spec,
    seeds: Sequence[int] = (0,),
    *,
    guess: int | None = None,
    on_round: Callable[[int, int, str], None] | None = None,
) -> Result:
    """The largest fact set (S·R) ``spec``'s model stores at the criterion, per seed.

    Starts from the paper's guide (facts ≈ 0.15·params) unless ``guess`` (a k) is given and brackets k.

    ``spec`` is trusted (:func:`validate_spec` checks it at the boundary).

    Raises:
        TrainingError: every trial diverged.
    """
    start = time.perf_counter()
    params = param_counts(config_of(spec, task_of(spec, 2))).paper
    k0 = guess or _k_of_facts(FACTS_PER_PARAM_GUIDE * params, spec.scaling)
    per_seed, capped, trials = search_largest(
        lambda ks, ss: trial_round(spec, ks, ss),
        list(seeds),
        k0,
        n_max=4096,
        rel_precision=1e-9,
        on_round=on_round,
    )
    if all(t.diverged == len(spec.lrs) for t in trials):
        raise TrainingError(f"every run diverged at learning rates {list(spec.lrs)}")
    return Result(spec, per_seed, capped, trials, tuple(seeds), time.perf_counter() - start)
