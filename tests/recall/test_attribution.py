import jax
import jax.numpy as jnp
import numpy as np
import pytest

from factrecall.recall.attribution import attribute
from factrecall.recall.models import unpad
from factrecall.recall.task import facts_random, recall_task
from factrecall.recall.training import Recipe, kept_params, kept_runs, train_batch
from factrecall.recall.transformer import TransformerConfig

RECIPE = Recipe(n_steps=1536, batch=128, eval_every=128, criterion=1.0, n_contexts=2)
TASK = recall_task(6, 4, 4, T=6)
# (d, H, d_h, m): four heads and no MLP; one narrow head and a wide MLP
SHAPES = {"attention": (16, 4, 4, 0), "narrow head": (16, 1, 4, 64)}


@pytest.fixture(scope="module")
def trained():
    """Both models trained on the same facts as one program (each padded to H = 4, m = 64 and masked to its
    shape, as the capacity searches train), then cut to their shapes: name -> (params, cfg, facts)."""
    facts = facts_random(TASK, key=jax.random.key(3))
    cfg = TransformerConfig(16, 4, 4, 64, TASK.vocab, TASK.n_answers)
    shapes = jnp.array([[H, m] for _, H, _, m in SHAPES.values()])
    keys = jnp.stack([jax.random.key(0)] * len(SHAPES))
    out = train_batch(
        cfg, TASK, RECIPE, jnp.stack([facts] * len(SHAPES)), shapes, jnp.array([1e-2]), key=keys
    )
    models = {}
    for i, (name, run) in enumerate(zip(SHAPES, kept_runs(out, (1e-2,)), strict=True)):
        assert run.reached, (name, run.accuracy)
        small = TransformerConfig(*SHAPES[name], TASK.vocab, TASK.n_answers)
        models[name] = (unpad(kept_params(out, i, run), small), small, facts)
    return models


@pytest.fixture(scope="module")
def attention_model(trained):
    return trained["attention"]


def test_without_mlp_every_stored_fact_lives_in_attention(attention_model):
    params, cfg, facts = attention_model
    a = attribute(params, cfg, TASK, facts, key=jax.random.key(5))
    s = a.summary()
    assert s["fraction_stored"] == 1.0
    assert s["surviving_mlp_ablation"] == 1.0
    assert s["surviving_attention_direct_ablation"] == 0.0  # all-zero MLP logits are ties: wrong
    assert s["stored_split"] == {"attention": TASK.n_facts, "mlp": 0, "both": 0, "joint": 0}
    assert s["share_attention"] == 1.0 and len(s["surviving_head_ablation"]) == cfg.H


def _with_linear_mlp(params, cfg, M):
    """Add an MLP computing z = h·M exactly: W1 = [I, −I], W2 = [M; −M] (relu(h)·M − relu(−h)·M = h·M)."""
    d = cfg.d
    eye = jnp.eye(d)
    p = dict(params)
    p["W1"] = jnp.concatenate([eye, -eye], axis=1)
    p["b1"] = jnp.zeros((2 * d,))
    p["W2"] = jnp.concatenate([M, -M], axis=0)
    return p, cfg._replace(m=2 * d)


def test_paths_are_scored_apart(attention_model):
    params, cfg, facts = attention_model
    # z = −2h: the model answers −U·h (every fact wrong), the attention path alone U·h (every fact right)
    p, c = _with_linear_mlp(params, cfg, -2.0 * jnp.eye(cfg.d))
    s = attribute(p, c, TASK, facts, key=jax.random.key(5)).summary()
    assert s["stored"] == 0 and s["surviving_mlp_ablation"] == 1.0
    assert s["surviving_attention_direct_ablation"] == 0.0
    # z = h: both paths answer U·h, so every fact is stored in both
    p, c = _with_linear_mlp(params, cfg, jnp.eye(cfg.d))
    s = attribute(p, c, TASK, facts, key=jax.random.key(5)).summary()
    assert s["stored_split"]["both"] == TASK.n_facts and s["share_mlp"] == s["share_attention"] == 1.0


def test_a_silent_head_changes_nothing(attention_model):
    params, cfg, facts = attention_model
    p = dict(params)
    p["V"] = p["V"].at[2].set(0.0)
    a = attribute(p, cfg, TASK, facts, key=jax.random.key(5))
    np.testing.assert_array_equal(a.heads[2], a.full)
    assert a.heads.shape == (cfg.H, TASK.S, TASK.R)


def test_one_narrow_head_and_a_wide_mlp_store_facts_in_the_mlp(trained):
    params, cfg, facts = trained["narrow head"]
    s = attribute(params, cfg, TASK, facts, key=jax.random.key(5)).summary()
    assert s["fraction_stored"] == 1.0
    # one head of size 4 cannot name 24 answers by itself: the MLP holds them
    assert s["share_mlp"] > s["share_attention"]
    assert s["surviving_mlp_ablation"] < 0.5


def test_tradeoff_grid_figure_is_drawn(tmp_path):
    from factrecall.experiments import plots

    rows = [
        {
            "H": H,
            "m": m,
            "d": 16,
            "d_h": 4,
            "fraction_stored": 1.0,
            "share_attention": H / 8,
            "share_mlp": m / 64,
        }
        for H in (1, 2, 8)
        for m in (1, 64)
    ]
    paths = plots.attribution_grid(rows, tmp_path / "grid")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)
