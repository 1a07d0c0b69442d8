import jax
import jax.numpy as jnp
import numpy as np
import pytest

from factrecall.core.errors import ConfigError
from factrecall.memories import models as memories
from factrecall.memories.trials import memory_data


def test_linear_memory_shapes_and_low_rank(key):
    full = memories.linear_memory(8)
    low = memories.linear_memory(8, rank=2)
    p_full, p_low = full.init(key), low.init(key)
    assert p_full["W"].shape == (8, 8)
    assert p_low["A"].shape == (8, 2) and p_low["B"].shape == (2, 8)
    E = jax.random.normal(key, (5, 8))
    np.testing.assert_allclose(full.apply(p_full, E), E @ p_full["W"].T, rtol=1e-6)
    assert jnp.linalg.matrix_rank(low.apply(p_low, jnp.eye(8))) == 2
    assert memories.linear_memory(8) is full  # cached factory: one compiled program per shape


def test_mlp_memory_matches_its_equation(key):
    mlp = memories.mlp_memory(4, 6)
    p = mlp.init(key)
    p = {**p, "b": jnp.linspace(-0.5, 0.5, 6)}
    E = jax.random.normal(key, (3, 4))
    expected = jnp.maximum(E @ p["W"].T + p["b"], 0) @ p["V"]
    np.testing.assert_allclose(mlp.apply(p, E), expected, rtol=1e-6)


def test_rank_of_target_breaks_ties_like_argmax():
    scores = jnp.array([[2.0, 2.0, 1.0], [0.0, 1.0, 1.0], [3.0, 2.0, 1.0]])
    labels = jnp.array([0, 2, 2])
    np.testing.assert_array_equal(memories.rank_of_target(scores, labels), [0, 1, 2])
    np.testing.assert_array_equal(
        memories.rank_of_target(scores, labels) == 0, jnp.argmax(scores, 1) == labels
    )


def test_accuracy_weights_and_top_k():
    scores = jnp.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    labels = jnp.array([1, 2])
    w = jnp.array([0.75, 0.25])
    assert float(memories.accuracy(scores, labels, w)) == pytest.approx(0.25)
    assert float(memories.accuracy(scores, labels, w, top_k=2)) == pytest.approx(1.0)


def test_padded_outputs_are_never_predicted(key):
    data = memory_data(16, 16, 4, 4, 8, key=key)
    mem = memories.linear_memory(8)
    scores = memories.logits(mem, mem.init(key), data)
    assert bool(jnp.all(jnp.argmax(scores, 1) < 4))
    # padding does not change the live problem
    small = memory_data(8, 8, 4, 4, 8, key=key)
    np.testing.assert_array_equal(small.E[:4], data.E[:4])
    np.testing.assert_array_equal(small.U[:4], data.U[:4])


def test_bad_sizes():
    with pytest.raises(ConfigError, match="width m must be ≥ 1"):
        memories.mlp_memory(4, 0)
    with pytest.raises(ConfigError, match="rank must be ≥ 1"):
        memories.linear_memory(4, rank=0)


def test_our_array_code_passes_strict_dtype_promotion(key):
    from factrecall.memories.constructions import construct_hebbian, construct_mlp_random_features

    with jax.numpy_dtype_promotion("strict"):
        data = memory_data(16, 16, 10, 10, 8, key=key, alpha=1.0)
        lin, mlp = memories.linear_memory(8), memories.mlp_memory(8, 4)
        for model, params in (
            (lin, construct_hebbian(data)),
            (mlp, construct_mlp_random_features(data, 4, key=key)),
        ):
            assert 0.0 <= float(memories.memory_accuracy(model, params, data, top_k=2)) <= 1.0
        balanced = memory_data(16, 4, 10, 4, 8, key=key, target="balanced", geometry="spiked")
        assert balanced.targets.dtype == jnp.int32
