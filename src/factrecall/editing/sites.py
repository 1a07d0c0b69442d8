"""The two associative memories of the one-layer transformer as (key, value) maps, the places an edit writes.

For a sequence, the heads' outputs u = concat_h(o_h) ∈ R^{H·d_h} are read by the attention output matrix O
into h = u·O ∈ R^d; the MLP reads h into its hidden activations k = relu(h·W1 + b1) ∈ R^m and writes
z = k·W2 ∈ R^d; the logits are unembed·(h + z). Row-vector convention throughout (value = key · W):

* site ``mlp``: key k ∈ R^m, weight W = W2 (m × d), value z = k·W2;
* site ``values``: key u ∈ R^{H·d_h}, weight W = O (H·d_h × d), value h = u·O (the MLP's input).

Editing W leaves the site's own keys unchanged (they are computed before W). The activations are the forward
pass's own (:func:`factrecall.recall.transformer.activations`). Owns: every fact's activations
in fresh contexts (:func:`fact_acts`, one compiled program per shape), the key covariance
(:func:`covariance`), the logits with a vector added at a site's output (:func:`logits_with`) and the
target search (:func:`solve_targets`: Adam on the added vectors, compiled with ``lax.scan``).

Paper: §4.2–4.3 (facts in the attention values and in the MLP: associative memories); SPEC §3, §8 (beyond:
editing facts).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from factrecall.core.base import Array, Float, Int, Key, Params
from factrecall.core.engine import cross_entropy
from factrecall.recall.task import RecallTask, every_fact
from factrecall.recall.training import EVAL_CHUNK
from factrecall.recall.transformer import Activations as Acts
from factrecall.recall.transformer import TransformerConfig, activations

SITES = ("mlp", "values")
WEIGHT = {"mlp": "W2", "values": "O"}  # the weight matrix W of each site


@functools.partial(jax.jit, static_argnums=(1, 2, 4))
def fact_acts(
    params: Params, cfg: TransformerConfig, task: RecallTask, facts: Int[Array, "S R"], n: int, key: Key
) -> Acts:
    """The activations of every fact in ``n`` fresh contexts (:func:`~factrecall.recall.task.every_fact`:
    row c·S·R + s·R + r is fact (s, r) in context c), one compiled program per (cfg, task, n)."""
    tokens = every_fact(task, facts, n, key=key).tokens
    one = functools.partial(activations, params, kind=cfg.attention)
    return jax.lax.map(one, tokens, batch_size=EVAL_CHUNK)


def fact_rows(task: RecallTask, s: Array, r: Array, n: int) -> Int[Array, "n E"]:
    """The rows of facts (s_e, r_e) in :func:`fact_acts`' (and ``every_fact``'s) order: row c·S·R + s·R + r
    is fact (s, r) in context c (NumPy for NumPy ids, JAX for JAX ids: jit-compatible).

    >>> fact_rows(RecallTask(3, 2, 2, 5), np.array([1]), np.array([0]), 2).tolist()
    [[2], [8]]
    """
    return np.arange(n)[:, None] * task.n_facts + (s * task.R + r)[None, :]


def site_keys(acts: Acts, site: str) -> np.ndarray:
    """The keys of ``site`` (k for ``mlp``, u for ``values``), one row per sequence, float64."""
    return np.asarray(acts.k if site == "mlp" else acts.u, np.float64)


def covariance(keys: np.ndarray, ridge: float, *, mean: bool = True) -> np.ndarray:
    """The key covariance with a ridge, float64.

    C = (1/N)·Σ_n k_nᵀk_n + λ·I (``mean``; else the sum Σ_n k_nᵀk_n + λ·I), with λ = ridge · tr(Σ k_nᵀk_n)/
    (N·dim): ``ridge`` times the mean eigenvalue of the (mean) second moment, so that dead units (keys that
    are always 0) keep C invertible while live directions are barely changed. An empty ``keys`` gives λ·I
    with λ = ridge.

    >>> C = covariance(np.array([[1.0, 0.0], [0.0, 0.0]]), 0.5)
    >>> C.tolist()
    [[0.625, 0.0], [0.0, 0.125]]
    """
    N, dim = keys.shape
    second = keys.T @ keys
    lam = ridge * (np.trace(second) / (max(N, 1) * dim) if N else 1.0)
    return (second / max(N, 1) if mean else second) + lam * np.eye(dim)


def logits_with(
    params: Params, acts: Acts, coef: Float[Array, "B E"], A: Float[Array, "E d"], site: str
) -> Float[Array, "B n_out"]:
    """The logits with δ_b = coef_b·A added at the site's output of row b.

    ``mlp``: logits = unembed·(h + z + δ) = logits + coef·(A·unembedᵀ) (linear in A; evaluated in that
    order, E·d·n_out + B·E·n_out operations instead of B·d·n_out).
    ``values``: h' = h + δ, logits = unembed·(h' + relu(h'·W1 + b1)·W2) (δ passes through the MLP).
    """
    if site == "mlp":
        return acts.logits + coef @ (A @ params["unembed"].T)
    h = acts.h + coef @ A
    return (h + jax.nn.relu(h @ params["W1"] + params["b1"]) @ params["W2"]) @ params["unembed"].T


class TargetFit(NamedTuple):
    """The result of :func:`solve_targets`."""

    A: Float[Array, "E d"]  # the change of each edit's value at its mean key
    loss: Float[Array, ""]  # the objective at A


@functools.partial(jax.jit, static_argnames=("site", "steps"))
def solve_targets(
    params: Params,
    acts: Acts,
    coef: Float[Array, "B E"],
    labels: Int[Array, " B"],
    weights: Float[Array, " B"],
    scale: Float[Array, ""],
    lr: Float[Array, ""],
    penalty: Float[Array, ""],
    *,
    site: str,
    steps: int,
) -> TargetFit:
    """The changes A (E × d) of the edits' values, by ``steps`` Adam steps from A = 0 (one ``lax.scan``).

    Row b's value at the site changes by coef_b·A (coef_b ∈ R^E: how much each edit's update moves row b's
    output, see :mod:`factrecall.editing.methods`), and A minimises

        L(A) = Σ_b w_b·CE(logits_with(δ_b = coef_b·A), y_b) / Σ_b w_b + penalty·‖A / σ‖²_F / E,

    with y_b the new answer on the edited facts' rows and the model's own current answer elsewhere (weights
    ``weights``: rows of neither weigh 0), σ = ``scale`` the typical size of one coordinate of the site's
    values (:func:`value_scale`). Adam runs on A/σ: ``lr`` and ``penalty`` are relative to the values' size.
    """
    E = coef.shape[1]
    opt = optax.adam(lr)

    def loss(a):  # a = A / σ
        logits = logits_with(params, acts, coef, scale * a, site)
        return cross_entropy(logits, labels, weights) + penalty * jnp.sum(a * a) / E

    def step(carry, _):
        a, state = carry
        updates, state = opt.update(jax.grad(loss)(a), state, a)
        return (optax.apply_updates(a, updates), state), None

    a0 = jnp.zeros((E, params["unembed"].shape[1]), jnp.float32)
    (a, _), _ = jax.lax.scan(step, (a0, opt.init(a0)), None, length=steps)
    return TargetFit(scale * a, loss(a))


def value_scale(keys: np.ndarray, W: Array) -> float:
    """σ = √(mean_n ‖k_n·W‖² / d): the root-mean-square coordinate of the site's values over ``keys``."""
    values = keys @ np.asarray(W, np.float64)
    return float(np.sqrt(np.mean(values**2))) or 1.0
