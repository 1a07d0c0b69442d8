"""Editing methods: the closed forms' exact properties, and edits of a trained model scored in fresh contexts.

The trained model is ``edit_model`` (tests/editing/conftest.py: the suite's tiny transformer with D = 8).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from factrecall.core.engine import compile_seconds
from factrecall.core.errors import ConfigError
from factrecall.editing.edits import Edit, random_edits
from factrecall.editing.methods import EditSettings, apply_edits
from factrecall.editing.metrics import edit_scores
from factrecall.editing.sites import (
    START_SLACK,
    covariance,
    fact_rows,
    fit_stats,
    least_squares_gain,
    rank_one_gain,
    solve_targets,
)

KEY = jax.random.key(0)


@pytest.fixture
def model(edit_model):
    return edit_model


# ------------------------------------------------------------------------------------- closed forms (exact)

keys = arrays(np.float64, (12, 4), elements=st.floats(-2, 2, allow_nan=False)).filter(
    lambda K: np.linalg.matrix_rank(K) == 4
)


@settings(max_examples=20)
@given(
    K=keys,
    W=arrays(np.float64, (4, 3), elements=st.floats(-2, 2)),
    v=arrays(np.float64, 3, elements=st.floats(-5, 5)),
)
def test_rank_one_writes_the_target_and_leaves_c_orthogonal_keys(K, W, v):
    C = covariance(K, 1e-3)
    k = K[:3].mean(axis=0, keepdims=True)
    G = rank_one_gain(C, k)
    W_new = W + G @ (v[None, :] - k @ W)  # W' = W + (C⁻¹k̄ᵀ)(v* − k̄W)/(k̄C⁻¹k̄ᵀ)
    np.testing.assert_allclose(k @ W_new, v[None, :], atol=1e-8)
    x = K[5] - (K[5] @ G[:, 0]) * k[0]  # x·C⁻¹k̄ᵀ = 0 (k̄·G = 1)
    np.testing.assert_allclose(x @ W_new, x @ W, atol=1e-8)


@settings(max_examples=20)
@given(K=keys)
def test_batch_for_one_edit_is_a_scaled_rank_one_update(K):
    C0 = covariance(K[3:], 1e-3, mean=False)
    k = K[:3].mean(axis=0, keepdims=True)
    q = (k @ np.linalg.solve(C0, k.T)).item()
    np.testing.assert_allclose(least_squares_gain(C0, k), q / (1 + q) * rank_one_gain(C0, k), rtol=1e-7)


def test_batch_update_solves_its_least_squares_problem():
    rng = np.random.default_rng(0)
    K, K_E, W, V = (
        rng.normal(size=(20, 5)),
        rng.normal(size=(3, 5)),
        rng.normal(size=(5, 2)),
        rng.normal(size=(3, 2)),
    )
    C0 = covariance(K, 0.0, mean=False)
    dW = least_squares_gain(C0, K_E) @ (V - K_E @ W)
    grad = K.T @ (K @ dW) + K_E.T @ (K_E @ (W + dW) - V)  # ∇ of Σ‖kΔW‖² + ‖K_E(W + ΔW) − V*‖² (÷2)
    np.testing.assert_allclose(grad, 0.0, atol=1e-10)


# ------------------------------------------------------------------------------------- a trained model


def _scores(model, edited, edits):
    return edit_scores(model, edited.model, edits, 8, key=jax.random.key(1))


@pytest.mark.parametrize("method", ["rank-one", "batch"])
def test_one_edit_of_the_mlp_is_stored_and_specific(model, method):
    edits = random_edits(model.facts, model.task.D, 1, seed=0)
    edited = apply_edits(model, edits, method, "mlp", key=jax.random.key(0))
    r = _scores(model, edited, edits)
    assert r["efficacy"] == 1.0 and r["edits_stored"] == 1.0 and r["specificity"] >= 0.99, r
    assert int(edited.model.facts[edits[0].s, edits[0].r]) == edits[0].new
    assert edited.delta_norm > 0 and edited.info["method"] == method and edited.seconds > 0
    assert np.array_equal(edited.model.params["O"], model.params["O"])  # only W2 changed


@pytest.mark.parametrize("where", ["values", "both"])
def test_one_edit_of_the_values_or_both(model, where):
    edits = random_edits(model.facts, model.task.D, 1, seed=0)
    edited = apply_edits(model, edits, "rank-one", where, key=jax.random.key(0))
    r = _scores(model, edited, edits)
    assert r["efficacy"] == 1.0 and r["specificity"] >= 0.95, r
    assert not np.array_equal(edited.model.params["O"], model.params["O"])
    assert np.array_equal(edited.model.params["W2"], model.params["W2"]) == (where == "values")


def test_sequential_and_all_at_once(model):
    edits = random_edits(model.facts, model.task.D, 3, seed=1)
    at_once = apply_edits(model, edits, "rank-one", "mlp", key=jax.random.key(0))
    one_by_one = apply_edits(model, edits, "rank-one", "mlp", sequential=True, key=jax.random.key(0))
    for edited in (at_once, one_by_one):
        r = _scores(model, edited, edits)
        assert r["efficacy"] == 1.0 and r["specificity"] >= 0.95, r
        assert [e["new"] for e in edited.model.info["edits"]] == [f"a{e.new}" for e in edits]
    assert not np.allclose(at_once.model.params["W2"], one_by_one.model.params["W2"])


def test_the_analytic_start_meets_the_edited_rows_margin(model):
    # the programs apply_edits compiles for one edit at the mlp site (fit_stats, solve_targets at steps=0)
    edits, n = random_edits(model.facts, model.task.D, 1, seed=0), EditSettings().fit_contexts
    stats = fit_stats(model.params, model.cfg, model.task, jnp.asarray(model.facts), n, KEY, 1, site="mlp")
    rows = fact_rows(model.task, np.array([edits[0].s]), np.array([edits[0].r]), n)
    labels = np.array(stats.labels)
    labels[rows] = edits[0].new
    B = labels.shape[0]
    coef = np.linspace(0.8, 1.2, B, dtype=np.float32)[:, None]  # each row's share of the change
    edited = np.isin(np.arange(B), rows)
    hyper = np.array([0.1, 1e-3, 2.0], np.float32)
    args = (coef, labels, edited.astype(np.float32), edited, rows, stats.scale, hyper)
    fit = solve_targets(model.params, stats.acts, *map(jnp.asarray, args), site="mlp", steps=0)
    gap = np.asarray(fit.gap)[rows.ravel()]  # the start lifts the worst edited row to κ + slack exactly
    assert int(fit.steps) == 0 and gap.min() == pytest.approx(2.0 + START_SLACK, abs=1e-3)


def test_the_target_search_stops_at_its_goal(model):
    edits = random_edits(model.facts, model.task.D, 1, seed=0)
    early = apply_edits(model, edits, key=jax.random.key(0))
    assert early.info["target_met"] and early.info["target_steps"] <= 3  # the start (nearly) meets it
    capped = apply_edits(
        model, edits, key=jax.random.key(0), settings=EditSettings(steps=5, margin=1e3, guard_rounds=0)
    )
    assert not capped.info["target_met"] and capped.info["target_steps"] == 5
    assert capped.info["guard_rounds"] == 0


def test_finetune_stops_at_the_margin_in_held_out_contexts(model):
    edits = random_edits(model.facts, model.task.D, 1, seed=0)
    runs = {}
    for margin in (0.0, 16.0):
        edited = apply_edits(
            model, edits, "finetune", key=jax.random.key(0), settings=EditSettings(margin=margin)
        )
        (runs[margin],) = edited.info["runs"]
        assert runs[margin]["reached"] and runs[margin]["eval_efficacy"] == 1.0
        assert runs[margin]["lr"] in edited.info["settings"]["ft_lrs"]
    assert _scores(model, edited, edits)["efficacy"] == 1.0  # in fresh contexts too
    assert runs[16.0]["steps"] > runs[0.0]["steps"] >= 1  # the same runs, stopped at a stricter goal


def test_a_second_edit_of_the_same_shape_compiles_nothing(model):
    # the first edit's start misses the goal (1 search step): the start's program and the search's compiled
    first, second = (random_edits(model.facts, model.task.D, 1, seed=seed) for seed in (3, 0))
    for method in ("rank-one", "finetune"):
        done = apply_edits(model, first, method, key=jax.random.key(0))
        assert method == "finetune" or done.info["target_steps"] >= 1
        before = compile_seconds()
        apply_edits(model, second, method, key=jax.random.key(5))
        assert compile_seconds() == before, method


def test_bad_edits_are_config_errors(model):
    e = random_edits(model.facts, model.task.D, 1, seed=0)[0]
    with pytest.raises(ConfigError, match="method must be one of"):
        apply_edits(model, [e], "rome", key=jax.random.key(0))
    with pytest.raises(ConfigError, match="where must be one of"):
        apply_edits(model, [e], where="attention", key=jax.random.key(0))
    with pytest.raises(ConfigError, match="edited twice"):
        apply_edits(model, [e, e._replace(new=e.old)], key=jax.random.key(0))
    with pytest.raises(ConfigError, match=r"block \[r·D, \(r\+1\)·D\)"):
        apply_edits(model, [Edit(e.s, e.r, (e.r + 1) % 4 * 8, e.old)], key=jax.random.key(0))
    no_mlp = model._replace(cfg=model.cfg._replace(m=0))
    with pytest.raises(ConfigError, match="no MLP"):
        apply_edits(no_mlp, [e], where="both", key=jax.random.key(0))
