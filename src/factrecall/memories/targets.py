"""The associations f*: [N] -> [M] an associative memory stores: target maps, input weights, output masks.

Functions here take the number of live inputs ``N`` as a (possibly traced) integer and return arrays of a
static padded length ``n_pad ≥ N``; rows ``≥ N`` carry weight 0. This lets one compiled program evaluate
problems of several sizes at once. Row ``x < N`` never depends on ``n_pad``.

Paper: §3.1 (target maps); SPEC §1.1.
"""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp

from factrecall.core.base import Array, Float, Int, Source, uniform
from factrecall.core.errors import check

TargetKind = Literal["bijection", "balanced", "random"]
TARGET_KINDS: tuple[str, ...] = ("bijection", "balanced", "random")


def targets(
    n_pad: int, N: int | Array, M: int | Array, kind: str = "bijection", *, key: Source | None = None
) -> Int[Array, " n_pad"]:
    """The target map f*(x) for x < n_pad (rows ≥ N are padding and carry no weight).

    * ``bijection``: f*(x) = x (needs M = N);
    * ``balanced``: f*(x) = floor(x·M/N), M fixed (e.g. 32), each output gets N/M inputs;
    * ``random``: f*(x) uniform in [M], entry x drawn from its index (beyond the paper).

    >>> targets(4, 4, 4).tolist()
    [0, 1, 2, 3]
    >>> targets(6, 6, 2, "balanced").tolist()
    [0, 0, 0, 1, 1, 1]
    """
    check(kind in TARGET_KINDS, f"unknown target map {kind!r}; expected one of {', '.join(TARGET_KINDS)}")
    x = jnp.arange(n_pad)
    if kind == "bijection":
        return x
    if kind == "balanced":
        return jnp.minimum((x * M) // N, M - 1).astype(jnp.int32)
    check(key is not None, "target map 'random' needs a key")
    # uniform in [0, M) for a traced M, entry x drawn from its index (prefix-stable in n_pad)
    u = uniform(key, (n_pad,))
    return jnp.minimum(jnp.floor(u * M), M - 1).astype(jnp.int32)


def zipf_weights(n_pad: int, N: int | Array, alpha: float = 0.0) -> Float[Array, " n_pad"]:
    """Input weights p(x) ∝ (x+1)^-α for x < N, 0 beyond; they sum to 1. α = 0 is uniform.

    >>> zipf_weights(3, 2).tolist()
    [0.5, 0.5, 0.0]
    """
    x = jnp.arange(n_pad)
    w = jnp.where(x < N, (x.astype(jnp.float32) + 1.0) ** (-alpha), 0.0)
    return w / jnp.sum(w)


def output_mask(m_pad: int, M: int | Array) -> Array:
    """Which of ``m_pad`` output slots are real outputs (the first M)."""
    return jnp.arange(m_pad) < M
