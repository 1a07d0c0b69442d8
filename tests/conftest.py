"""Fixtures and a seeded hypothesis profile (JAX devices and dtype promotion are set in ../conftest.py)."""

import jax
import pytest
from hypothesis import settings

settings.register_profile("factrecall", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("factrecall")


@pytest.fixture
def key():
    return jax.random.key(0)
