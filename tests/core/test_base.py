"""The flat random draws are JAX's draws of the same shape, number for number: switching to them changed no
result, only the time to compile."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from factrecall.core.base import categorical, flat, normal, uniform

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


@settings(max_examples=4)
@given(shapes, st.integers(0, 2**30))
def test_a_flat_draw_is_the_shaped_draw(shape, seed):
    key = jax.random.key(seed)
    np.testing.assert_array_equal(normal(key, shape), jax.random.normal(key, shape))
    np.testing.assert_array_equal(uniform(key, shape), jax.random.uniform(key, shape))
    np.testing.assert_array_equal(
        flat(jax.random.randint, key, shape, 3, 11), jax.random.randint(key, shape, 3, 11)
    )


def test_vmapped_flat_draws_and_categorical_are_jaxs():
    keys = jax.random.split(jax.random.key(7), 3)
    logits = jnp.log(jnp.arange(1, 6.0) ** -1.2)  # Zipf weights, as the task's subjects
    ours = jax.vmap(lambda k: (categorical(k, logits, 40), normal(k, (2, 3, 4))))(keys)
    theirs = jax.vmap(
        lambda k: (jax.random.categorical(k, logits, shape=(40,)), jax.random.normal(k, (2, 3, 4)))
    )(keys)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    assert len(set(np.asarray(ours[0]).ravel().tolist())) == 5  # every category is drawn
