"""One trial of a capacity search: the problem of (seed, N), its initial weights and key, and the runs that
decide whether N associations are stored.

Every trial draws fresh embeddings from the seed tuple (seed, N) on the host (NumPy: no compilation per
padded shape, the same numbers on every device) and its initial weights from ``fold_in(key(seed), N)``.
A trained memory stores N when *some* learning rate of the grid reaches the criterion; which rate is kept
follows :func:`factrecall.core.engine.best_rate`. Constructions (no training) go through the same
evaluator. :func:`run_trials` tests many (seed, N) pairs as one padded, compiled batch.

Paper: §3.1–3.2; SPEC §1.2–1.4.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core import queue
from factrecall.core.base import Key, Model, Params, Source, substream
from factrecall.core.engine import Problem, cross_entropy, train_many
from factrecall.core.queue import stack
from factrecall.core.search import Trial
from factrecall.memories.constructions import (
    construct_hebbian,
    construct_low_rank_hebbian,
    construct_mlp_random_features,
)
from factrecall.memories.embeddings import table
from factrecall.memories.models import MemoryData, logits, memory_accuracy
from factrecall.memories.spec import MemorySpec, memory_model, settings
from factrecall.memories.targets import output_mask, targets, zipf_weights


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


def padded_size(n: int) -> int:
    """Tightest padded size for n: a multiple of 2^max(3, ⌊log2 n⌋ − 4), i.e. at most ~6% above n.

    >>> padded_size(40), padded_size(1000)
    (40, 1024)
    """
    step = 2 ** max(3, n.bit_length() - 5)
    return step * math.ceil(n / step)


def row_limit(spec: MemorySpec, n_pad: int) -> int:
    """``n_pad``, capped at d for geometries with at most d distinct embeddings (orthogonal, one-hot)."""
    return min(n_pad, spec.d) if spec.geometry in ("orthogonal", "onehot") else n_pad


def trial_data(spec: MemorySpec, n_pad: int, seed: int, N: int) -> MemoryData:
    """The problem of trial (seed, N), padded to ``n_pad`` rows (drawn on the host from (seed, N)).

    >>> from factrecall.memories.spec import recipe
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


def trial_params(model: Model, seed: int, N: int) -> Params:
    """The initial weights of trial (seed, N), drawn from ``fold_in(trial_key(seed, N), 1)``."""
    return model.init(jax.random.fold_in(trial_key(seed, N), 1))


def decide(
    spec: MemorySpec,
    seed: int,
    N: int,
    lrs: Sequence[float | None],
    best: Sequence[float],
    diverged: Sequence[bool],
    steps: Sequence[int],
) -> Trial:
    """The :class:`Trial` of (seed, N) from its finished runs at ``spec``'s criterion
    (:func:`factrecall.core.runs.decide`).

    >>> from factrecall.memories.spec import recipe
    >>> decide(recipe("linear", 4), 0, 3, (0.1, 1.0), (0.5, 1.0), (False, False), (64, 32)).lr
    1.0
    """
    return queue.decide(spec.criterion, seed, N, lrs, best, diverged, steps)


def _prepare(
    spec: MemorySpec, n_pad: int, seeds: Sequence[int], Ns: Sequence[int]
) -> tuple[MemoryData, Params, Key]:
    """Data, initial params and keys of each (seed, N) row, stacked."""
    model = memory_model(spec)
    data = [trial_data(spec, n_pad, seed, N) for seed, N in zip(seeds, Ns, strict=True)]
    params = [trial_params(model, seed, N) for seed, N in zip(seeds, Ns, strict=True)]
    keys = jnp.stack([trial_key(seed, N) for seed, N in zip(seeds, Ns, strict=True)])
    return stack(data), stack(params), keys


def _run_trained(spec: MemorySpec, data: MemoryData, params: Params, keys: Key) -> tuple[np.ndarray, ...]:
    problem = memory_problem(memory_model(spec), spec.top_k)
    out = train_many(problem, settings(spec), params, data, jnp.asarray(spec.lrs), keys)
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
            default: the tightest shape (see :func:`padded_size`).
    """
    rows, n_pad = shape or (len(Ns), padded_size(max(Ns)))
    n_pad = row_limit(spec, n_pad)
    pad = rows - len(Ns)
    data, params, keys = _prepare(spec, n_pad, [*seeds, *[seeds[-1]] * pad], [*Ns, *[Ns[-1]] * pad])
    run = _run_trained if spec.method == "trained" else _run_constructed
    acc, diverged, steps = run(spec, data, params, keys)
    lrs = spec.lrs if spec.method == "trained" else (None,)
    return [
        decide(spec, seed, N, lrs, acc[i], diverged[i], steps[i])
        for i, (seed, N) in enumerate(zip(seeds, Ns, strict=True))
    ]
