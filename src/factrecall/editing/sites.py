"""The two associative memories of the one-layer transformer as (key, value) maps, the places an edit writes.

For a sequence, the heads' outputs u = concat_h(o_h) ∈ R^{H·d_h} are read by the attention output matrix O
into h = u·O ∈ R^d; the MLP reads h into its hidden activations k = relu(h·W1 + b1) ∈ R^m and writes
z = k·W2 ∈ R^d; the logits are unembed·(h + z). Row-vector convention throughout (value = key · W):

* site ``mlp``: key k ∈ R^m, weight W = W2 (m × d), value z = k·W2;
* site ``values``: key u ∈ R^{H·d_h}, weight W = O (H·d_h × d), value h = u·O (the MLP's input).

Editing W leaves the site's own keys unchanged (they are computed before W). The activations are the forward
pass's own (:func:`factrecall.recall.transformer.activations`). Owns: every fact's activations
in fresh contexts (:func:`fact_acts`, one compiled program per shape; with the key moments,
:func:`fit_stats`), the key covariance
(:func:`covariance`), the gains of the closed forms (:func:`rank_one_gain`, :func:`least_squares_gain`,
:func:`method_gain`),
the logits with a vector added at a site's output (:func:`logits_with`), each row's margin (:func:`gaps`)
and the target search (:func:`solve_targets`: Adam on the added vectors until the goal holds, compiled
with ``lax.while_loop``, from an analytic start, :func:`start_targets`).

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


def covariance(
    keys: np.ndarray, ridge: float, *, mean: bool = True, second: np.ndarray | None = None
) -> np.ndarray:
    """The key covariance with a ridge, float64.

    C = (1/N)·Σ_n k_nᵀk_n + λ·I (``mean``; else the sum Σ_n k_nᵀk_n + λ·I), with λ = ridge · tr(Σ k_nᵀk_n)/
    (N·dim): ``ridge`` times the mean eigenvalue of the (mean) second moment, so that dead units (keys that
    are always 0) keep C invertible while live directions are barely changed. An empty ``keys`` gives λ·I
    with λ = ridge. ``second``: Σ_n k_nᵀk_n when already computed (:func:`key_moments`).

    >>> C = covariance(np.array([[1.0, 0.0], [0.0, 0.0]]), 0.5)
    >>> C.tolist()
    [[0.625, 0.0], [0.0, 0.125]]
    """
    N, dim = keys.shape
    second = keys.T @ keys if second is None else np.asarray(second, np.float64)
    lam = ridge * (np.trace(second) / (max(N, 1) * dim) if N else 1.0)
    return (second / max(N, 1) if mean else second) + lam * np.eye(dim)


@functools.partial(jax.jit, static_argnames=("site",))
def key_moments(acts: Acts, W: Float[Array, "dim d"], site: str) -> tuple[Array, Float[Array, ""]]:
    """The second moment Σ_n k_nᵀk_n of the site's keys, and σ = √(mean_n ‖k_n·W‖² / d) (the root-mean-square
    coordinate of the site's values; 1 if they are all 0), in one compiled program: the products over every
    fit row run on XLA's threads, not on a BLAS thread pool of NumPy competing with them for a few cores."""
    X = acts.k if site == "mlp" else acts.u
    sigma = jnp.sqrt(jnp.mean((X @ W) ** 2))
    return X.T @ X, jnp.where(sigma > 0, sigma, 1.0)


class FitStats(NamedTuple):
    """What the closed forms read of the unedited model in its fit contexts (:func:`fit_stats`)."""

    acts: Acts  # every fact's activations in the fit contexts (fact_acts)
    second: Float[Array, "dim dim"]  # Σ_n k_nᵀk_n of the site's keys (key_moments)
    scale: Float[Array, ""]  # σ, the values' root-mean-square coordinate (key_moments)
    labels: Int[Array, " B"]  # the model's own answer of every fit row (argmax of its logits)


@functools.partial(jax.jit, static_argnums=(1, 2, 4), static_argnames=("site",))
def fit_stats(
    params: Params,
    cfg: TransformerConfig,
    task: RecallTask,
    facts: Int[Array, "S R"],
    n: int,
    key: Key,
    i: Int[Array, ""],
    *,
    site: str,
) -> FitStats:
    """:func:`fact_acts` in the ``n`` fit contexts drawn from fold_in(key, i), with :func:`key_moments` of
    ``site`` and the model's answers: one compiled program per (cfg, task, n, site), ``i`` traced."""
    acts = fact_acts(params, cfg, task, facts, n, jax.random.fold_in(key, i))
    second, scale = key_moments(acts, params[WEIGHT[site]], site=site)
    return FitStats(acts, second, scale, jnp.argmax(acts.logits, axis=-1))


def rank_one_gain(C: np.ndarray, K_E: np.ndarray) -> np.ndarray:
    """G = C⁻¹K_Eᵀ·diag(1/(k̄_e C⁻¹ k̄_eᵀ)) (dim × E): column e is edit e's rank-one update direction,
    scaled so that k̄_e·G_e = 1 (the update W + G_e·δ_e moves k̄_e's value by exactly δ_e)."""
    direction = np.linalg.solve(C, K_E.T)
    return direction / np.einsum("ed,de->e", K_E, direction)[None, :]


def least_squares_gain(C0: np.ndarray, K_E: np.ndarray) -> np.ndarray:
    """G = (C₀ + K_EᵀK_E)⁻¹K_Eᵀ (dim × E): ΔW = G·(V* − K_E·W) minimises
    Σ_kept ‖k·ΔW‖² + ‖K_E·(W + ΔW) − V*‖² (C₀ = Σ_kept kᵀk + λI)."""
    return np.linalg.solve(C0 + K_E.T @ K_E, K_E.T)


def method_gain(
    X: np.ndarray,
    second: np.ndarray,
    rows: np.ndarray,
    method: str,
    ridge_guard: tuple[float, float],
    C: np.ndarray | None,
    guard: np.ndarray,
) -> np.ndarray:
    """G of ``method`` (``rank-one`` or ``batch``) for the fit rows ``rows`` (n × E) of keys X (``second`` =
    XᵀX; ``C``: a fixed covariance for rank-one, else X's), guarded rows ``guard`` weighing β times more:
    C + (β − 1)·Σ_{b guarded} x_bᵀx_b (/ N for rank-one's mean covariance); ridge_guard = (λ, β)."""
    ridge, beta = ridge_guard
    K_E = X[rows].mean(axis=0)
    extra = (beta - 1.0) * X[guard].T @ X[guard]
    if method == "rank-one":
        C = covariance(X, ridge, second=second) if C is None else C
        return rank_one_gain(C + extra / X.shape[0], K_E)
    kept = np.ones(X.shape[0], bool)
    kept[rows.ravel()] = False
    X_E = X[rows.ravel()]
    C0 = covariance(X[kept], ridge, mean=False, second=second - X_E.T @ X_E)
    return least_squares_gain(C0 + extra, K_E)


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
    steps: Int[Array, ""]  # Adam steps taken (fewer than the budget when the goal was met)
    met: Array  # whether the goal holds at A (see solve_targets)
    gap: Float[Array, " B"]  # each row's gap at A (gaps: the label's logit minus the best other one)


def rivals(logits: Float[Array, "B n_out"], labels: Int[Array, " B"]) -> Int[Array, " B"]:
    """argmax_{y' ≠ y} z_y' of each row: the strongest answer other than the label.

    >>> rivals(jnp.array([[2.0, 0.5, 1.0], [0.0, 3.0, 1.0]]), jnp.array([0, 2])).tolist()
    [2, 1]
    """
    return jnp.argmax(_others(logits, labels), axis=-1)


def _others(logits: Float[Array, "B n_out"], labels: Int[Array, " B"]) -> Float[Array, "B n_out"]:
    """The logits with each row's label's set to −∞."""
    return jnp.where(jax.nn.one_hot(labels, logits.shape[-1], dtype=bool), -jnp.inf, logits)


def _diff(logits: Float[Array, "B n_out"], y: Int[Array, " B"], j: Int[Array, " B"]) -> Float[Array, " B"]:
    """z_{b,y_b} − z_{b,j_b} of each row b."""
    take = functools.partial(jnp.take_along_axis, logits, axis=-1)
    return (take(y[:, None]) - take(j[:, None]))[:, 0]


def gaps(logits: Float[Array, "B n_out"], labels: Int[Array, " B"]) -> Float[Array, " B"]:
    """z_y − max_{y' ≠ y} z_y' of each row: how far the label's logit beats every other answer's.

    >>> gaps(jnp.array([[2.0, 0.5, 1.0], [0.0, 3.0, 1.0]]), jnp.array([0, 2])).tolist()
    [1.0, -2.0]
    """
    target = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    return target - jnp.max(_others(logits, labels), axis=-1)  # a max: an argmax costs more on the CPU


START_TRIES = 4  # projection steps of start_targets
START_SLACK = 2.0  # start_targets aims at the margin κ plus this many logits (fresh contexts vary more)


def start_targets(
    params: Params,
    acts: Acts,
    coef: Float[Array, "B E"],
    labels: Int[Array, " B"],
    rows: Int[Array, "n E"],
    margin: Float[Array, ""],
    site: str,
) -> Float[Array, "E d"]:
    """The search's analytic start: A with every edited row's gap near κ + slack, by projection steps from
    A = 0 on the edited rows' gap constraints.

    Row b of edit e (b = rows[c, e]) needs γ_b(A) = z_{b,y_b}(A) − z_{b,j_b}(A) ≥ κ against its strongest
    rival j_b. At the ``mlp`` site the logits are linear in A (:func:`logits_with`), so

        γ_b(A) = γ_b(0) + Σ_e' coef_{be'}·(u_{y_b} − u_{j_b})·A_e',
        ∇_{A_e} γ_b = coef_{be}·(u_{y_b} − u_{j_b})

    (u_y row y of the unembedding). Each step takes, per edit e, its worst row b_e (least γ) and moves A_e
    along g_e = ∇_{A_e} Σ_e' γ_{b_e'} by the Polyak step that closes its shortfall to κ' = κ + slack,

        A_e ← A_e + max(κ' − γ_{b_e}(A), 0)·g_e / ‖g_e‖²,

    which for one edit at the ``mlp`` site sets γ_{b_e} = κ' exactly (the step is then the least change of
    A that does it). ``START_TRIES`` steps; the unedited rows are left to the search that follows. At
    ``values`` (the logits not linear in A: the MLP reads the site's output) the start is A = 0: the
    linearised steps met the goal in the fit contexts but missed the new answer in fresh ones.
    """
    n, E = rows.shape
    if site != "mlp":
        return jnp.zeros((E, params["unembed"].shape[1]), jnp.float32)
    idx = rows.reshape(-1)  # row c·E + e of the edited rows is edit e in context c
    sub, c, y = jax.tree_util.tree_map(lambda x: x[idx], acts), coef[idx], labels[idx]
    U = params["unembed"]

    def step(_, A):
        z = logits_with(params, sub, c, A, site)
        j = rivals(z, y)
        gap = _diff(z, y, j)
        pick = jnp.argmin(gap.reshape(n, E), axis=0) * E + jnp.arange(E)
        grad = c[pick].T @ (U[y[pick]] - U[j[pick]])  # ∇_A Σ_e γ_{b_e}
        need = jnp.maximum(margin + START_SLACK - gap[pick], 0.0)
        return A + (need / jnp.maximum(jnp.sum(grad * grad, axis=1), 1e-12))[:, None] * grad

    return jax.lax.fori_loop(0, START_TRIES, step, jnp.zeros((E, U.shape[1]), jnp.float32))


def _search(params, acts, coef, labels, weights, edited, scale, hyper, site):
    """The search's objective L(a) at a = A/σ (returning the logits too) and its goal (see
    :func:`solve_targets`)."""
    penalty, margin = hyper[1], hyper[2]
    shift = margin * edited[:, None] * jax.nn.one_hot(labels, params["unembed"].shape[0])

    def objective(a):
        logits = logits_with(params, acts, coef, scale * a, site)
        loss = cross_entropy(logits - shift, labels, weights) + penalty * jnp.sum(a * a) / coef.shape[1]
        return loss, logits

    def goal(logits):
        gap = gaps(logits, labels)
        return jnp.all(jnp.where(edited, gap >= margin, (gap > 0) | (weights == 0)))

    return objective, goal


def _result(objective, goal, labels, scale, a, t) -> TargetFit:
    loss, logits = objective(a)
    return TargetFit(scale * a, loss, t, goal(logits), gaps(logits, labels))


@functools.partial(jax.jit, static_argnames=("site", "steps"))
def solve_targets(
    params: Params,
    acts: Acts,
    coef: Float[Array, "B E"],
    labels: Int[Array, " B"],
    weights: Float[Array, " B"],
    edited: Array,
    rows: Int[Array, "n E"],
    scale: Float[Array, ""],
    hyper: Float[Array, " 3"],
    *,
    site: str,
    steps: int,
) -> TargetFit:
    """The changes A (E × d) of the edits' values, by Adam from the analytic start (:func:`start_targets`)
    until the goal holds (at most ``steps`` steps, one ``lax.while_loop``).

    Row b's value at the site changes by coef_b·A (coef_b ∈ R^E: how much each edit's update moves row b's
    output, see :mod:`factrecall.editing.methods`), and A minimises, with hyper = (lr, penalty, κ),

        L(A) = Σ_b w_b·CE(z_b − κ·[b edited]·e_{y_b}, y_b) / Σ_b w_b + penalty·‖A / σ‖²_F / E,

    z_b = logits_with(δ_b = coef_b·A), y_b the new answer on the edited rows (``edited``) and the model's
    own current answer elsewhere (weights ``weights``: rows of neither weigh 0), σ = ``scale`` the typical
    size of one coordinate of the site's values (:func:`key_moments`): Adam runs on A/σ, so ``lr`` and
    ``penalty`` are relative to the values' size. The edited rows' cross-entropy is taken with their new
    answer's logit lowered by the margin κ, so it pulls the new answer past every other one by more than κ.
    The goal, checked before every step: gap_b = z_{b,y_b} − max_{y' ≠ y_b} z_{b,y'} ≥ κ on every edited row
    and gap_b > 0 (the current answer kept) on every other row of positive weight; the search stops at the
    first A that meets it (at the start itself, with 0 steps, when the start meets it). ``rows`` (n × E):
    the edited rows, rows[c, e] edit e's row in context c. ``steps`` = 0: the result at the start, in a
    program without the Adam loop (a caller can try it first and compile the search only when it misses).
    """
    objective, goal = _search(params, acts, coef, labels, weights, edited, scale, hyper, site)
    opt = optax.adam(hyper[0])

    def step(carry):
        a, state, t, _ = carry
        (_, logits), grad = jax.value_and_grad(objective, has_aux=True)(a)
        met = goal(logits)
        updates, new_state = opt.update(grad, state, a)
        keep = functools.partial(jnp.where, met)
        a, state = keep(a, optax.apply_updates(a, updates)), jax.tree_util.tree_map(keep, state, new_state)
        return a, state, t + jnp.where(met, 0, 1), met

    a0 = start_targets(params, acts, coef, labels, rows, hyper[2], site) / scale
    if steps == 0:
        return _result(objective, goal, labels, scale, a0, jnp.asarray(0))
    carry = (a0, opt.init(a0), jnp.asarray(0), jnp.asarray(False))
    a, _, t, _ = jax.lax.while_loop(lambda c: (c[2] < steps) & ~c[3], step, carry)
    return _result(objective, goal, labels, scale, a, t)
