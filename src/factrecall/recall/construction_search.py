"""Constructed transformers measured like trained ones: build, score every fact, search the smallest size.

Owns the construction experiment's spec: a :class:`ConstructionSpec` (built and checked by
:func:`construction_spec`) fixes the task (S, R, D), the mechanism and the shape ratios (H·d_h/d, m/d); the
size is then one number, d. :func:`build_and_score` writes the weights down
(:func:`~factrecall.recall.constructions.construct_transformer`) and scores them with
:func:`~factrecall.recall.training.score_facts`, the evaluator of trained models; :func:`find_min` searches
the smallest d whose construction answers every fact in every context
(:func:`~factrecall.core.search.search_smallest`). Both trust their spec.

Paper: §4 (constructions), §5 (bits); SPEC §4–§5.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax

from factrecall.core.bounds import bits_facts, bits_facts_loss_aware
from factrecall.core.errors import check
from factrecall.core.search import Trial, search_smallest
from factrecall.recall.constructions import MECHANISMS, MEMORIES, construct_transformer
from factrecall.recall.task import RecallTask, facts_random, recall_task
from factrecall.recall.training import score_facts_jit
from factrecall.recall.transformer import TransformerConfig, param_counts

# Shape ratios per mechanism (H·d_h/d, m/d, attention share): the attention values need rank ≈ S + R but
# d ≈ R·D for clean logits; the MLP mechanism's attention only copies two tokens (a narrow W_OV suffices).
DEFAULT_RATIOS: dict[str, tuple[float, float, float | None]] = {
    "attention": (0.25, 0.0, None),
    "mlp": (0.25, 4.0, None),
    "hybrid": (0.25, 2.0, 0.5),
}


class ConstructionSpec(NamedTuple):
    """What to construct, up to its size d (build with :func:`construction_spec`: the mechanism's ratios).

    Attributes:
        mechanism: ``attention``, ``mlp`` or ``hybrid``.
        S, R, D: subjects, relations, answers per relation.
        d_h: head dimension.
        attention_ratio: H·d_h/d (H = max(1, round(ratio·d/d_h))).
        mlp_ratio: m/d (0 for ``attention``).
        attention_share: fraction of relations stored by attention (``hybrid`` only).
        memory: ``pinv`` (least squares) or ``hebbian``.
        n_contexts: contexts per fact in the evaluation; stored = every fact right in every context.
        T: sequence length.
    """

    mechanism: str
    S: int
    R: int
    D: int
    d_h: int
    attention_ratio: float
    mlp_ratio: float
    attention_share: float | None
    memory: str
    n_contexts: int
    T: int = 32

    @property
    def task(self) -> RecallTask:
        return recall_task(self.S, self.R, self.D, T=self.T)


def construction_spec(
    mechanism: str,
    S: int,
    R: int,
    D: int,
    *,
    d_h: int,
    memory: str,
    n_contexts: int,
    attention_ratio: float | None = None,
    mlp_ratio: float | None = None,
    attention_share: float | None = None,
) -> ConstructionSpec:
    """A validated spec; the ratios left ``None`` are the mechanism's (:data:`DEFAULT_RATIOS`).

    >>> construction_spec("mlp", 8, 8, 4, d_h=8, memory="pinv", n_contexts=8).mlp_ratio
    4.0

    Raises:
        ConfigError: unknown mechanism or memory, or a ratio out of range.
    """
    check(
        mechanism in MECHANISMS, f"unknown mechanism {mechanism!r}; expected one of {', '.join(MECHANISMS)}"
    )
    default_attention, default_mlp, default_share = DEFAULT_RATIOS[mechanism]
    spec = ConstructionSpec(
        mechanism,
        S,
        R,
        D,
        d_h,
        default_attention if attention_ratio is None else attention_ratio,
        default_mlp if mlp_ratio is None else mlp_ratio,
        default_share if attention_share is None else attention_share,
        memory,
        n_contexts,
    )
    validate(spec)
    return spec


def validate(spec: ConstructionSpec) -> None:
    """Raise :class:`ConfigError` naming the first invalid field of ``spec``."""
    spec.task  # noqa: B018 - validates S, R, D, T
    check(spec.memory in MEMORIES, f"unknown memory {spec.memory!r}; expected one of {', '.join(MEMORIES)}")
    check(spec.d_h >= 1, f"head dimension d_h must be ≥ 1, got {spec.d_h}")
    check(spec.attention_ratio > 0, f"attention ratio H·d_h/d must be > 0, got {spec.attention_ratio}")
    check(spec.n_contexts >= 1, f"n_contexts must be ≥ 1, got {spec.n_contexts}")
    if spec.mechanism == "attention":
        check(
            spec.mlp_ratio == 0,
            f"mechanism 'attention' has no MLP: mlp_ratio must be 0, got {spec.mlp_ratio}",
        )
    else:
        check(
            spec.mlp_ratio > 0,
            f"mechanism {spec.mechanism!r} needs an MLP: mlp_ratio > 0, got {spec.mlp_ratio}",
        )
    share = spec.attention_share
    check(
        share is None or (spec.mechanism == "hybrid" and 0 <= share <= 1),
        f"attention_share must be in [0, 1] and only set for 'hybrid', got {share} for {spec.mechanism!r}",
    )


def shape(spec: ConstructionSpec, d: int) -> TransformerConfig:
    """The transformer of size d at the spec's ratios.

    >>> shape(construction_spec("attention", 32, 32, 8, d_h=8, memory="pinv", n_contexts=8), 224)[:4]
    (224, 7, 8, 0)
    """
    H = max(1, round(spec.attention_ratio * d / spec.d_h))
    m = max(1, round(spec.mlp_ratio * d)) if spec.mlp_ratio > 0 else 0
    task = spec.task
    return TransformerConfig(d=d, H=H, d_h=spec.d_h, m=m, vocab=task.vocab, n_out=task.n_answers)


# one compiled program per task (eager calls would compile each small op anew)
_facts = jax.jit(lambda task, key: facts_random(task, key=key), static_argnums=0)


def _keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Keys of the facts, the construction (embeddings included) and the evaluation contexts."""
    key = jax.random.key(seed)
    return jax.random.fold_in(key, 0), jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)


def build_and_score(spec: ConstructionSpec, cfg: TransformerConfig, seed: int = 0) -> dict[str, Any]:
    """Construct ``cfg`` for the facts of ``seed``; score it over every fact as trained models are scored.

    Returns:
        A record: ``fact_accuracy``, ``facts_stored``, ``fact_loss``, ``params`` (the paper's count),
        ``attention_params``, ``mlp_params``, ``bias_params``, ``params_per_fact``, ``bits_needed``
        (S·R·log2 D), ``bits_lower_bound`` (the loss-aware bound of §5), ``bits_per_param`` (that bound
        per parameter), ``bits_bound`` (which bound), the shape and ``seconds``.
    """
    task, start = spec.task, time.perf_counter()
    k_facts, k_build, k_eval = _keys(seed)
    facts = _facts(task, k_facts)
    params = construct_transformer(
        cfg,
        task,
        facts,
        spec.mechanism,
        attention_share=spec.attention_share,
        memory=spec.memory,
        key=k_build,
    )
    scores = score_facts_jit(params, cfg, task, facts, spec.n_contexts, key=k_eval)
    counts = param_counts(cfg)
    loss = float(scores.fact_loss)
    bits = bits_facts_loss_aware(task.S, task.R, task.D, loss)
    return {
        "mechanism": spec.mechanism,
        "S": task.S,
        "R": task.R,
        "D": task.D,
        "d": cfg.d,
        "H": cfg.H,
        "d_h": cfg.d_h,
        "m": cfg.m,
        "seed": seed,
        "fact_accuracy": float(scores.fact_accuracy),
        "facts_stored": float(scores.facts_stored),
        "fact_loss": loss,
        "params": counts.paper,
        "attention_params": counts.attention,
        "mlp_params": counts.mlp,
        "bias_params": counts.bias,
        "params_per_fact": counts.paper / task.n_facts,
        "bits_needed": bits_facts(task.S, task.R, task.D),
        "bits_lower_bound": bits,
        "bits_per_param": bits / counts.paper,
        "bits_bound": "loss-aware S·R·(log2 D − L/ln 2) (SPEC §5)",
        "seconds": time.perf_counter() - start,
    }


def default_guess(spec: ConstructionSpec) -> int:
    """A starting d for the search, near the measured minima at the default ratios.

    Attention values need d ≈ R·D (clean logits over the answers) and every mechanism d ≈ vocab
    (attention that tells subject and relation from noise); the attention's share of R·D counts.
    """
    task = spec.task
    share = {"attention": 1.0, "mlp": 0.0}.get(spec.mechanism, spec.attention_share or 0.0)
    return max(4, math.ceil(0.9 * max(task.vocab, share * task.n_answers)))


class MinResult(NamedTuple):
    """The smallest d storing every fact, per seed, with the record of the construction there."""

    spec: ConstructionSpec
    d_per_seed: tuple[int, ...]
    records: tuple[dict[str, Any], ...]  # build_and_score at each seed's d
    never: bool  # some seed stored nothing up to n_max
    trials: tuple[Trial, ...]

    def summary(self) -> dict[str, Any]:
        """The median seed's record, plus the per-seed sizes and params/(S·R)."""
        found = [r for r in self.records if r["facts_stored"] == 1.0]
        check(bool(found), f"no size up to the search's cap stored every fact for {self.spec}")
        ordered = sorted(found, key=lambda r: r["params"])
        median = ordered[(len(ordered) - 1) // 2]
        return {
            **median,
            "d_per_seed": list(self.d_per_seed),
            "params_per_seed": [r["params"] for r in self.records],
            "params_per_fact_median": statistics.median(r["params_per_fact"] for r in found),
            "never": self.never,
            "n_trials": len(self.trials),
        }


def find_min(
    spec: ConstructionSpec,
    seeds: Sequence[int] = (0,),
    *,
    guess: int | None = None,
    rel_precision: float = 0.02,
    n_max: int | None = None,
    on_round: Callable[[int, int, str], None] | None = None,
) -> MinResult:
    """The smallest d (at the spec's ratios) whose construction answers every fact in every context.

    Uses :func:`~factrecall.core.search.search_smallest`: the answer is always a tested size that stored.

    >>> spec = construction_spec("attention", 4, 4, 2, d_h=8, memory="pinv", n_contexts=2)
    >>> result = find_min(spec, rel_precision=0.2)
    >>> result.records[0]["facts_stored"]
    1.0
    """
    guess = guess or default_guess(spec)
    records: dict[tuple[int, int], dict[str, Any]] = {}

    def run_round(ds: list[int], active: list[int]) -> list[Trial]:
        trials = []
        for d, seed in zip(ds, active, strict=True):
            record = build_and_score(spec, shape(spec, d), seed)
            records[seed, d] = record
            trials.append(Trial(seed, d, record["facts_stored"] == 1.0, record["fact_accuracy"], None, 0, 0))
        return trials

    per_seed, never, trials = search_smallest(
        run_round,
        list(seeds),
        guess,
        n_max=n_max or 16 * guess,
        rel_precision=rel_precision,
        on_round=on_round,
    )
    found = tuple(records[s, d] for s, d in zip(seeds, per_seed, strict=True) if d)
    return MinResult(spec, per_seed, found, never, trials)
