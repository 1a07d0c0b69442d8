import jax
import jax.numpy as jnp
import pytest

from factrecall.core import bounds
from factrecall.core.errors import ConfigError
from factrecall.memories.capacity import capacity
from factrecall.memories.constructions import (
    centred_relu,
    construct_hebbian,
    construct_low_rank_hebbian,
    construct_mlp_random_features,
)
from factrecall.memories.models import linear_memory, memory_accuracy, mlp_memory
from factrecall.memories.spec import MemorySpec
from factrecall.memories.trials import memory_data, run_trials


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
