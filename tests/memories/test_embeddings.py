import jax
import jax.numpy as jnp
import numpy as np
import pytest

from factrecall.core.errors import ConfigError
from factrecall.memories import embeddings as emb


def test_sphere_rows_have_unit_norm_and_are_prefix_stable(key):
    big = emb.sphere(50, 8, key=key)
    small = emb.sphere(20, 8, key=key)
    np.testing.assert_allclose(jnp.linalg.norm(big, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(big[:20], small)


def test_sphere_is_isotropic(key):
    e = emb.sphere(20_000, 4, key=key)
    np.testing.assert_allclose(jnp.mean(e, axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(e.T @ e / 20_000, jnp.eye(4) / 4, atol=0.01)


def test_orthogonal_rows_are_orthonormal_and_prefix_stable(key):
    e = emb.orthogonal(6, 8, key=key)
    np.testing.assert_allclose(e @ e.T, jnp.eye(6), atol=1e-5)
    np.testing.assert_array_equal(emb.orthogonal(3, 8, key=key), e[:3])


def test_onehot_and_gaussian():
    np.testing.assert_array_equal(emb.onehot(3, 5), jnp.eye(3, 5))
    g = emb.gaussian(4000, 16, key=jax.random.key(1))
    assert abs(float(jnp.var(g)) - 1 / 16) < 0.005


def test_spiked_crowds_rows_around_the_spike(key):
    flat, spiky = emb.spiked(2000, 16, key=key, beta=0.0), emb.spiked(2000, 16, key=key, beta=50.0)
    # the top singular value of the second moment grows with beta
    top = lambda e: float(jnp.linalg.eigvalsh(e.T @ e / e.shape[0])[-1])  # noqa: E731
    assert top(spiky) > 3 * top(flat)
    np.testing.assert_allclose(jnp.linalg.norm(spiky, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: emb.orthogonal(9, 8, key=jax.random.key(0)), "n ≤ d"),
        (lambda: emb.onehot(9, 8), "n ≤ d"),
        (lambda: emb.spiked(4, 4, key=jax.random.key(0), beta=-1.0), "beta"),
        (lambda: emb.table("cube", 4, 4, key=jax.random.key(0)), "unknown geometry 'cube'"),
    ],
)
def test_bad_tables_raise_config_errors(call, match):
    with pytest.raises(ConfigError, match=match):
        call()
