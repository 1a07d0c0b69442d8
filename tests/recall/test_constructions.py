"""Transformers written down by hand store every fact (paper §4)."""

import jax
import jax.numpy as jnp
import pytest

from factrecall.core.errors import ConfigError
from factrecall.recall.constructions import construct_transformer
from factrecall.recall.task import facts_random, recall_task
from factrecall.recall.training import score_facts, score_facts_jit
from factrecall.recall.transformer import TransformerConfig, init

# S = R = D = 8 at d = 64 in the shapes construction_search gives d = 64 (H·d_h/d = 1/4, m/d = 4 or 2), in 8
# contexts per fact: the programs this module compiles are the search's (tests/recall/test_constructed.py)
SHAPES = {"attention": (64, 2, 0), "mlp": (64, 2, 256), "hybrid": (64, 2, 128)}
N_CONTEXTS = 8
# init as one program (construct_transformer's own: the session's compilation cache holds it)
_init = jax.jit(lambda cfg, key: init(cfg, key=key), static_argnums=0)


def _recall(mechanism, seed=0, **kwargs):
    task = recall_task(8, 8, 8)
    d, H, m = SHAPES[mechanism]
    cfg = TransformerConfig(d=d, H=H, d_h=8, m=m, vocab=task.vocab, n_out=task.n_answers)
    facts = facts_random(task, key=jax.random.key(seed + 100))
    params = construct_transformer(cfg, task, facts, mechanism, key=jax.random.key(seed), **kwargs)
    return cfg, task, facts, params


@pytest.mark.parametrize("mechanism", ["attention", "mlp", "hybrid"])
def test_constructed_transformers_are_init_shaped_and_store_every_fact(mechanism):
    cfg, task, facts, params = _recall(mechanism)
    reference = _init(cfg, jax.random.key(0))
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(reference)
    for name, value in reference.items():
        assert params[name].shape == value.shape and params[name].dtype == value.dtype, name
    assert jnp.allclose(params["wte"], reference["wte"], atol=1e-6)  # init's embeddings
    scores = score_facts_jit(params, cfg, task, facts, N_CONTEXTS, key=jax.random.key(5))
    assert float(scores.facts_stored) == 1.0
    assert float(scores.fact_loss) < 0.05  # the fitted output scale makes the loss meaningful
    if mechanism == "attention":
        assert not bool(jnp.any(params["W2"]))


def test_pseudo_inverse_memories_beat_hebbian_sums():
    scores = {}
    for memory in ("pinv", "hebbian"):
        cfg, task, facts, params = _recall("attention", memory=memory)
        key = jax.random.key(5)
        scores[memory] = float(score_facts_jit(params, cfg, task, facts, N_CONTEXTS, key=key).fact_accuracy)
    assert scores["pinv"] == 1.0
    assert scores["hebbian"] < 0.9


def test_hybrid_gate_keeps_the_mlp_off_the_attentions_facts():
    cfg, task, facts, params = _recall("hybrid", attention_share=0.5)
    key = jax.random.key(5)
    full = score_facts_jit(params, cfg, task, facts, N_CONTEXTS, key=key)
    attention_only = jax.jit(lambda p: score_facts(p, cfg, task, facts, N_CONTEXTS, key=key, use_mlp=False))
    attention_only = attention_only(params)
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
