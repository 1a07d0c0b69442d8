"""Fixtures shared by the suite, and a seeded hypothesis profile (JAX devices and the session's compilation
cache are set in ../conftest.py).

Compiling is most of the suite's time: XLA compiles a program once per process for each new shape or recipe.
So the tests that need "a tiny trained transformer" all train the same one, :data:`TINY_TRAIN` (the fields
of ``factrecall train transformer``, the train sweep point and ``factrecall.train_transformer``): the library
tests, the command, the sweep and the Python API then share one compiled training program and one scorer,
and :func:`tiny_model` trains it once per session for the tests that only read a trained model.
"""

from typing import NamedTuple

import jax
import pytest
from hypothesis import settings

settings.register_profile("factrecall", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("factrecall")

# S·R = 16 facts on a transformer of 4·H·d_h·d + 2·m·d = 1,024 parameters; stored within a few evaluations
TINY_TRAIN = {
    "S": 4,
    "R": 4,
    "D": 2,
    "T": 6,
    "d": 16,
    "H": 2,
    "d_h": 4,
    "m": 16,
    "n_steps": 1024,
    "batch": 128,
    "lrs": [1e-2, 3e-2],
    "criterion": 1.0,
}
TINY_PARAMS = 4 * 2 * 4 * 16 + 2 * 16 * 16
# the suite's transformer-capacity point (``factrecall capacity transformer``): 4·H·d_h·d + 2·m·d = 32
# parameters; its search starts at S = R = 2 (from 0.11 facts per parameter): seed 0 stores it (4 facts)
# and fails 3 × 2 at 0.83: one compiled program (one bucket), shared by the tests that search it
TINY_CAPACITY = {
    "d": 4,
    "H": 1,
    "d_h": 1,
    "m": 2,
    "D": 2,
    "n_steps": 2048,
    "batch": 64,
    "lrs": [3e-2, 1e-1],
    "patience": 256,
}
TINY_CAPACITY_PARAMS = 4 * 1 * 1 * 4 + 2 * 2 * 4
# the command's flag of each field (README "Commands")
FLAGS = {
    "S": "--subjects",
    "R": "--relations",
    "D": "--answers-per-relation",
    "T": "--seq-len",
    "d": "--d",
    "H": "--heads",
    "d_h": "--head-dim",
    "m": "--width",
    "n_steps": "--steps",
    "batch": "--batch",
    "lrs": "--lr",
    "criterion": "--criterion",
    "criterion_on": "--criterion-on",
    "seed": "--seed",
}


def flags(fields):
    """Command-line flags setting ``fields`` (a list is one flag per value)."""
    out = []
    for name, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            out += [FLAGS[name], str(v)]
    return out


@pytest.fixture
def key():
    return jax.random.key(0)


class Tiny(NamedTuple):
    """One of the suite's shared experiments: its point's fields, their command-line flags, its parameters."""

    fields: dict
    flags: list
    params: int


@pytest.fixture
def tiny():
    """The suite's tiny transformer (:data:`TINY_TRAIN`; the fields are a fresh copy)."""
    return Tiny(dict(TINY_TRAIN), flags(TINY_TRAIN), TINY_PARAMS)


@pytest.fixture
def tiny_capacity():
    """The suite's transformer-capacity point (:data:`TINY_CAPACITY`; the fields are a fresh copy)."""
    return Tiny(dict(TINY_CAPACITY), [], TINY_CAPACITY_PARAMS)


@pytest.fixture(scope="session")
def tiny_model():
    """:data:`TINY_TRAIN` trained as ``factrecall train transformer`` trains it (facts from fold_in(key(0),
    1), seed 0), through the library: a :class:`factrecall.recall.training.Trained`. Read it, don't mutate."""
    from factrecall.recall import training
    from factrecall.recall.task import facts_random

    t = TINY_TRAIN
    task, cfg = training.task_and_config(*(t[k] for k in ("S", "R", "D", "T", "d", "H", "d_h", "m")))
    recipe = training.Recipe(t["n_steps"], t["batch"], training.EVAL_EVERY, t["criterion"])
    facts = facts_random(task, key=jax.random.fold_in(jax.random.key(0), 1))
    return training.train(cfg, task, facts, recipe, tuple(t["lrs"]), seed=0)
