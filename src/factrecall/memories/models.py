"""Associative memories F: R^d -> R^d and how they are read: decoding and accuracy.

A memory stores f* when ``argmax_y u_y · F(e_x) = f*(x)`` for (a p-weighted fraction ≥ c of) the inputs x.
Memories act on the whole key matrix ``E`` at once, as the paper writes them.

Paper: §3.1–3.2, Eq. (3) (linear) and Eq. (5) (MLP); SPEC §1.1.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from factrecall.core.base import Array, Float, Int, Key, Model, Params, normal
from factrecall.core.errors import check

NEG_INF = -1e30  # logit of a padded (non-existent) output: finite so that gradients stay finite


class MemoryData(NamedTuple):
    """One association problem, padded to static sizes (see :mod:`factrecall.recall.task`).

    Attributes:
        E: input embeddings e_x, ``(n_pad, d)``.
        U: output unembeddings u_y, ``(m_pad, d)``.
        targets: f*(x), ``(n_pad,)``.
        weights: p(x), zero on padded rows, ``(n_pad,)``; sums to 1.
        out_mask: which output slots exist, ``(m_pad,)``.
    """

    E: Float[Array, "n_pad d"]
    U: Float[Array, "m_pad d"]
    targets: Int[Array, " n_pad"]
    weights: Float[Array, " n_pad"]
    out_mask: Array


@functools.cache
def linear_memory(d: int, rank: int | None = None) -> Model:
    """A linear memory F(e) = W e with W ∈ R^{d×d}, or W = A B of rank r (A ∈ R^{d×r}, B ∈ R^{r×d}).

    Init: W ~ N(0, 1/d); A ~ N(0, 1/r), B ~ N(0, 1/d). Parameters: d² (full) or 2·d·r.

    >>> import jax
    >>> mem = linear_memory(4)
    >>> mem.apply(mem.init(jax.random.key(0)), jnp.ones((3, 4))).shape
    (3, 4)
    """
    check(d >= 1, f"d must be ≥ 1, got d={d}")
    if rank is None or rank >= d:

        def init(key: Key) -> Params:
            return {"W": normal(key, (d, d)) / jnp.sqrt(d)}

        return Model(init, _apply_linear)
    check(rank >= 1, f"rank must be ≥ 1, got rank={rank}")

    def init_low_rank(key: Key) -> Params:
        k_a, k_b = jax.random.split(key)
        return {
            "A": normal(k_a, (d, rank)) / jnp.sqrt(rank),
            "B": normal(k_b, (rank, d)) / jnp.sqrt(d),
        }

    return Model(init_low_rank, _apply_linear)


def _apply_linear(params: Params, E: Float[Array, "N d"]) -> Float[Array, "N d"]:
    """F(E) = E Wᵀ, with W = A B for a low-rank memory."""
    W = params["W"] if "W" in params else params["A"] @ params["B"]
    return E @ W.T


@functools.cache
def mlp_memory(d: int, m: int) -> Model:
    """An MLP memory F(e) = Vᵀ relu(W e + b) with W, V ∈ R^{m×d}, b ∈ R^m.

    Init (LeCun): W ~ N(0, 1/d), V ~ N(0, 1/m), b = 0. Parameters: 2·m·d (+ m for b, counted apart).

    >>> import jax
    >>> mem = mlp_memory(4, 8)
    >>> sorted(mem.init(jax.random.key(0)))
    ['V', 'W', 'b']
    """
    check(d >= 1, f"d must be ≥ 1, got d={d}")
    check(m >= 1, f"width m must be ≥ 1, got m={m}")

    def init(key: Key) -> Params:
        k_w, k_v = jax.random.split(key)
        return {
            "W": normal(k_w, (m, d)) / jnp.sqrt(d),
            "b": jnp.zeros((m,)),
            "V": normal(k_v, (m, d)) / jnp.sqrt(m),
        }

    return Model(init, _apply_mlp)


def _apply_mlp(params: Params, E: Float[Array, "N d"]) -> Float[Array, "N d"]:
    """F(E) = relu(E Wᵀ + b) V."""
    return jax.nn.relu(E @ params["W"].T + params["b"]) @ params["V"]


def logits(model: Model, params: Params, data: MemoryData) -> Float[Array, "n_pad m_pad"]:
    """Scores u_y · F(e_x) for every input and output; padded outputs get a very negative score."""
    scores = model.apply(params, data.E) @ data.U.T
    return jnp.where(data.out_mask[None, :], scores, NEG_INF)


def rank_of_target(scores: Float[Array, "N M"], labels: Int[Array, " N"]) -> Int[Array, " N"]:
    """0-based rank of the correct output under ``argmax`` tie-breaking (lower index wins a tie).

    Rank 0 means ``argmax(scores) == label``; the top-k criterion asks for rank < k.

    >>> rank_of_target(jnp.array([[1.0, 3.0, 3.0]]), jnp.array([2])).tolist()
    [1]
    """
    target = jnp.take_along_axis(scores, labels[:, None], axis=1)
    idx = jnp.arange(scores.shape[1])[None, :]
    above = (scores > target) | ((scores == target) & (idx < labels[:, None]))
    return jnp.sum(above, axis=1)


def accuracy(
    scores: Float[Array, "N M"], labels: Int[Array, " N"], weights: Float[Array, " N"], top_k: int = 1
) -> Float[Array, ""]:
    """Weighted fraction Σ_x p(x)·[f*(x) among the top-k outputs] (k = 1: the paper's accuracy).

    >>> float(accuracy(jnp.array([[0.0, 1.0], [1.0, 0.0]]), jnp.array([1, 1]), jnp.array([0.5, 0.5])))
    0.5
    """
    hit = rank_of_target(scores, labels) < top_k
    return jnp.sum(jnp.where(hit, weights, 0.0)) / jnp.sum(weights)


def memory_accuracy(model: Model, params: Params, data: MemoryData, top_k: int = 1) -> Float[Array, ""]:
    """Accuracy of a memory on its own association problem (the criterion every search uses)."""
    return accuracy(logits(model, params, data), data.targets, data.weights, top_k)
