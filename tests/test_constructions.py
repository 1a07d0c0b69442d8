import jax
import jax.numpy as jnp
import pytest

from factrecall import bounds
from factrecall.capacity import MemorySpec, capacity, memory_data, run_trials
from factrecall.constructions import (
    centred_relu,
    construct_hebbian,
    construct_low_rank_hebbian,
    construct_mlp_random_features,
)
from factrecall.errors import ConfigError
from factrecall.memories import linear_memory, memory_accuracy, mlp_memory


def _acc(model, params, data):
    return float(memory_accuracy(model, params, data))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hebbian_stores_everything_well_below_capacity_and_fails_far_above(seed):
    d, key = 64, jax.random.key(seed)
    mem = linear_memory(d)
    below = memory_data(32, 32, 32, 32, d, key=key)  # N log N / d² ≈ 0.03
    above = memory_data(4096, 4096, 4096, 4096, d, key=key)  # ≈ 8
    assert _acc(mem, construct_hebbian(below), below) == 1.0
    assert _acc(mem, construct_hebbian(above), above) < 0.5


def test_low_rank_hebbian_returns_the_low_rank_pytree():
    d, r, key = 64, 16, jax.random.key(0)
    mem = linear_memory(d, rank=r)
    data = memory_data(8, 8, 8, 8, d, key=key)
    params = construct_low_rank_hebbian(data, r, key=key)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(mem.init(key))
    assert _acc(mem, params, data) == 1.0
    big = memory_data(2048, 2048, 2048, 2048, d, key=key)
    assert _acc(mem, construct_low_rank_hebbian(big, r, key=key), big) < 0.5


def test_mlp_random_features_store_below_and_fail_above():
    d, m, key = 32, 256, jax.random.key(0)
    mem = mlp_memory(d, m)
    small = memory_data(64, 64, 64, 64, d, key=key)
    params = construct_mlp_random_features(small, m, key=key)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(mem.init(key))
    assert _acc(mem, params, small) == 1.0
    big = memory_data(8192, 8192, 8192, 8192, d, key=key)
    assert _acc(mem, construct_mlp_random_features(big, m, key=key), big) < 0.5


def test_centred_relu_has_no_constant_or_linear_component():
    z = jax.random.normal(jax.random.key(0), (400_000,)) * 0.3
    phi = centred_relu(z, 0.3)
    assert abs(float(jnp.mean(phi))) < 2e-3
    assert abs(float(jnp.mean(phi * z))) < 2e-3


@pytest.mark.parametrize("d", [32, 64, 128])
def test_hebbian_all_correct_capacity_matches_theorem_1(d):
    result = capacity(MemorySpec("linear", d, method="hebbian", criterion=1.0), seeds=(0, 1, 2))
    ratio = bounds.n_log_n(result.capacity) / d**2
    assert 0.08 <= ratio <= 0.2, ratio


def test_constructions_go_through_the_same_search_with_counted_params():
    result = capacity(MemorySpec("mlp", 16, m=64, method="construction", criterion=1.0), seeds=(0,))
    assert result.params == bounds.mlp_params(16, 64) and result.extra_params == 64
    assert result.capacity >= 4
    trial = run_trials(
        MemorySpec("mlp", 16, m=64, method="construction", criterion=1.0), [result.capacity_per_seed[0]], [0]
    )[0]
    assert trial.stored


def test_construction_rank_out_of_range():
    data = memory_data(8, 8, 8, 8, 4, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="rank must be in"):
        construct_low_rank_hebbian(data, 5, key=jax.random.key(0))


# ------------------------------------------------------------------ transformers storing the facts (issue 4)

from factrecall.constructions import construct_transformer  # noqa: E402
from factrecall.recall import score_facts  # noqa: E402
from factrecall.task import facts_random, recall_task  # noqa: E402
from factrecall.transformer import TransformerConfig, init  # noqa: E402


def _recall(S, R, D, d, H, m, mechanism, seed=0, **kwargs):
    task = recall_task(S, R, D)
    cfg = TransformerConfig(d=d, H=H, d_h=8, m=m, vocab=task.vocab, n_out=task.n_answers)
    facts = facts_random(task, key=jax.random.key(seed + 100))
    params = construct_transformer(cfg, task, facts, mechanism, key=jax.random.key(seed), **kwargs)
    return cfg, task, facts, params


@pytest.mark.parametrize("mechanism, d, m", [("attention", 72, 0), ("mlp", 64, 96), ("hybrid", 64, 96)])
def test_constructed_transformers_are_init_shaped_and_store_every_fact(mechanism, d, m):
    cfg, task, facts, params = _recall(8, 8, 8, d, 4, m, mechanism)
    reference = init(cfg, key=jax.random.key(0))
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(reference)
    for name, value in reference.items():
        assert params[name].shape == value.shape and params[name].dtype == value.dtype, name
    assert jnp.allclose(params["wte"], reference["wte"], atol=1e-6)  # init's embeddings (jit: ULP-close)
    scores = score_facts(params, cfg, task, facts, 8, key=jax.random.key(5))
    assert float(scores.facts_stored) == 1.0
    assert float(scores.fact_loss) < 0.05  # the fitted output scale makes the loss meaningful
    if mechanism == "attention":
        assert not bool(jnp.any(params["W2"]))


def test_pseudo_inverse_memories_beat_hebbian_sums():
    scores = {}
    for memory in ("pinv", "hebbian"):
        cfg, task, facts, params = _recall(8, 8, 8, 64, 4, 0, "attention", memory=memory)
        scores[memory] = float(score_facts(params, cfg, task, facts, 4, key=jax.random.key(5)).fact_accuracy)
    assert scores["pinv"] == 1.0
    assert scores["hebbian"] < 0.9


def test_hybrid_gate_keeps_the_mlp_off_the_attentions_facts():
    cfg, task, facts, params = _recall(8, 8, 8, 64, 4, 96, "hybrid", attention_share=0.5)
    key = jax.random.key(5)
    full = score_facts(params, cfg, task, facts, 4, key=key)
    attention_only = score_facts(params, cfg, task, facts, 4, key=key, use_mlp=False)
    assert float(full.facts_stored) == 1.0
    # relations [0, 4) live in the attention: they need no MLP; the others need it
    assert float(attention_only.correct[:, :4].mean()) == 1.0
    assert float(attention_only.correct[:, 4:].mean()) < 0.5


def test_construct_transformer_rejects_bad_input():
    task = recall_task(4, 4, 2)
    facts = facts_random(task, key=jax.random.key(0))
    cfg = TransformerConfig(d=16, H=2, d_h=8, m=0, vocab=task.vocab, n_out=task.n_answers)
    with pytest.raises(ConfigError, match="unknown mechanism"):
        construct_transformer(cfg, task, facts, "both", key=jax.random.key(0))
    with pytest.raises(ConfigError, match="needs an MLP"):
        construct_transformer(cfg, task, facts, "mlp", key=jax.random.key(0))
    with pytest.raises(ConfigError, match="vocab"):
        construct_transformer(cfg._replace(vocab=99), task, facts, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="attention_share"):
        construct_transformer(cfg, task, facts, "attention", attention_share=0.5, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="EOS"):
        construct_transformer(cfg, recall_task(4, 4, 2, eos=False), facts, key=jax.random.key(0))
