import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factrecall.core.errors import ConfigError
from factrecall.memories import targets as task


@settings(max_examples=10)  # each example runs on new shapes, so compiles its operations anew
@given(N=st.integers(2, 200), M=st.integers(2, 40), pad=st.integers(0, 30))
def test_balanced_targets_cover_outputs_evenly(N, M, pad):
    f = np.asarray(task.targets(N + pad, N, M, "balanced"))[:N]
    assert f.min() >= 0 and f.max() <= M - 1
    counts = np.bincount(f, minlength=M)
    if N >= M:
        assert counts.max() - counts.min() <= 1
    assert np.all(np.diff(f) >= 0)


def test_bijection_and_random_targets(key):
    np.testing.assert_array_equal(task.targets(5, 5, 5), np.arange(5))
    f = task.targets(1000, 1000, 7, "random", key=key)
    assert set(np.unique(np.asarray(f)).tolist()) == set(range(7))
    np.testing.assert_array_equal(task.targets(10, 10, 7, "random", key=key), f[:10])


@settings(max_examples=10)
@given(N=st.integers(1, 100), pad=st.integers(0, 20), alpha=st.floats(0.0, 2.0))
def test_zipf_weights_sum_to_one_and_vanish_on_padding(N, pad, alpha):
    w = np.asarray(task.zipf_weights(N + pad, N, alpha))
    assert abs(w.sum() - 1) < 1e-5
    assert np.all(w[N:] == 0)
    assert np.all(np.diff(w[:N]) <= 1e-7)


def test_traced_sizes_work_under_vmap():
    f = jax.vmap(lambda n: task.targets(8, n, 2, "balanced"))(jnp.array([4, 8]))
    np.testing.assert_array_equal(f[0, :4], [0, 0, 1, 1])
    np.testing.assert_array_equal(f[1], [0, 0, 0, 0, 1, 1, 1, 1])


def test_unknown_target_kind():
    with pytest.raises(ConfigError, match="unknown target map 'onto'"):
        task.targets(4, 4, 4, "onto")
