"""Explicit memories from the proofs: weights written down, no gradients.

Each construction returns the same params pytree as the matching ``init`` (so the same ``apply`` and the same
evaluator read it), built from the association problem itself
(:class:`~factrecall.memories.models.MemoryData`).
Padded rows (weight 0) are ignored.

Paper: Theorem 1 (Hebbian outer product) and the remark after it (low rank); Theorem 2 (MLP random features);
SPEC §1.3.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from factrecall.core.base import Array, Float, Key, Params
from factrecall.core.errors import check
from factrecall.memories.embeddings import sphere
from factrecall.memories.models import MemoryData


def _live_outputs(data: MemoryData) -> Float[Array, "n_pad d"]:
    """u_{f*(x)} for every live input x, zero rows for padding."""
    return jnp.where((data.weights > 0)[:, None], data.U[data.targets], 0.0)


def construct_hebbian(data: MemoryData) -> Params:
    """W = Σ_x u_{f*(x)} e_xᵀ: the outer-product memory of Theorem 1.

    u_y·W e_x = Σ_x' (u_y·u_{f*(x')})(e_x'·e_x): the correct term is 1, the rest is noise of size
    √(N/d²) per output, so all N associations are decoded correctly while N log N ≲ d²/8.

    >>> E = U = jnp.eye(3, 4)
    >>> data = MemoryData(E, U, jnp.arange(3), jnp.ones(3) / 3, jnp.ones(3, bool))
    >>> construct_hebbian(data)["W"].shape
    (4, 4)
    """
    return {"W": _live_outputs(data).T @ data.E}


def construct_low_rank_hebbian(data: MemoryData, r: int, *, key: Key) -> Params:
    """W = A B of rank r: B ∈ R^{r×d} random, A = Σ_x u_{f*(x)} (B e_x)ᵀ / |B e_x|².

    The inputs are projected to r random directions and stored there by outer products; capacity ∝ r·d up
    to log factors (remark after Theorem 1).
    """
    d = data.E.shape[1]
    check(1 <= r <= d, f"rank must be in [1, d={d}], got r={r}")
    B = sphere(r, d, key=key)
    BE = data.E @ B.T
    A = _live_outputs(data).T @ (BE / jnp.sum(BE**2, axis=1, keepdims=True))
    return {"A": A, "B": B}


def centred_relu(z: Float[Array, "..."], sigma: float, tau: float = 0.0) -> Float[Array, "..."]:
    """relu(z − τσ) minus its constant and linear Hermite components, for z ~ N(0, σ²).

    With g = z/σ ~ N(0, 1) and Q the Gaussian tail: E[relu(z − τσ)] = σ·(pdf(τ) − τ·Q(τ)) and
    E[relu(z − τσ)·g] = σ·Q(τ), so φ(z) = relu(z − τσ) − σ·(pdf(τ) − τ·Q(τ)) − Q(τ)·z has E[φ] = 0 and
    E[φ(z)·z] = 0. τ = 0 is the centred relu, relu(z) − σ/√(2π) − z/2.

    >>> import jax
    >>> z = jax.random.normal(jax.random.key(0), (200_000,))
    >>> abs(float(jnp.mean(centred_relu(z, 1.0, tau=1.0)))) < 0.01
    True
    """
    pdf = math.exp(-tau * tau / 2) / math.sqrt(2 * math.pi)
    tail = 0.5 * math.erfc(tau / math.sqrt(2))
    return jax.nn.relu(z - tau * sigma) - sigma * (pdf - tau * tail) - tail * z


def construct_mlp_random_features(data: MemoryData, m: int, *, key: Key, tau: float = 1.0) -> Params:
    """MLP memory with a random first layer and a Hebbian read-out (Theorem 2 style).

    W has m rows uniform on the sphere and b = −τσ (σ = 1/√d is the scale of w·e), so each feature fires
    for a fraction Q(τ) of inputs; V = Σ_x φ(W e_x) u_{f*(x)}ᵀ with φ the features minus their constant and
    linear Hermite components (:func:`centred_relu`), so that unrelated inputs barely interact: the read-out
    is a linear memory over m random features and stores ∝ m·d associations up to log factors.

    Why τ = 1 and not the plain relu (τ = 0): the read-out's signal-to-noise ratio scales with the share of
    the features' energy above degree 1, which is 18% for the relu and rises with the threshold; at
    d = 32, m = 256 (seed 0) τ = 1 decodes 94% of 128 associations where τ = 0 decodes 70%. Beyond τ ≈ 1.5
    too few features fire per input. ``apply`` is the model's plain relu(W e + b).
    """
    d = data.E.shape[1]
    check(m >= 1, f"width m must be ≥ 1, got m={m}")
    check(tau >= 0, f"threshold tau must be ≥ 0, got {tau}")
    sigma = 1.0 / math.sqrt(d)
    W = sphere(m, d, key=key)
    features = centred_relu(data.E @ W.T, sigma, tau)
    V = features.T @ _live_outputs(data)
    return {"W": W, "b": jnp.full((m,), -tau * sigma), "V": V}


# ------------------------------------------------------------------------ transformers storing the facts
# Built in NumPy float64 (least squares needs the precision), cast to float32 at the end.
