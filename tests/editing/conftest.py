"""The editing tests' model, trained once per session (per worker) and shared by test_methods, test_study
and test_edit_cli (which saves it and edits the file through the command).

It is the suite's tiny transformer (tests/conftest.py TINY_TRAIN: S = R = 4, d = 16, H = 2, d_h = 4, m = 16,
T = 6, the tiny recipe: 1024 steps of 128, lrs {1e-2, 3e-2}, stop at 1.0) with D = 8 answers per relation
instead of 2. The suite's ``tiny_model`` (D = 2) is not editable one fact at a time: with two answers per
relation it stores rules such as "relation 3 answers a7 unless the subject is s0", and the MLP keys of the
facts that share an answer coincide, so no change of W2 alone moves one of them without the others. With
D = 8 the answers of a relation's four subjects differ and the model keeps one key per fact.
"""

import jax
import pytest

# the fields of ``factrecall train transformer``: TINY_TRAIN's shape with D = 8, and its recipe
EDIT_TRAIN = {"S": 4, "R": 4, "D": 8, "T": 6, "d": 16, "H": 2, "d_h": 4, "m": 16}
EDIT_RECIPE = {"n_steps": 1024, "batch": 128, "lrs": [1e-2, 3e-2], "criterion": 1.0}


@pytest.fixture(scope="session")
def edit_model():
    """:data:`EDIT_TRAIN` trained by the tiny recipe (facts from fold_in(key(0), 1), seed 0), as
    ``factrecall train transformer`` with those fields trains it. Read it, don't mutate."""
    from factrecall.recall import training
    from factrecall.recall.task import facts_random

    task, cfg = training.task_and_config(*EDIT_TRAIN.values())
    r = EDIT_RECIPE
    recipe = training.Recipe(r["n_steps"], r["batch"], training.EVAL_EVERY, r["criterion"])
    facts = facts_random(task, key=jax.random.fold_in(jax.random.key(0), 1))
    return training.train(cfg, task, facts, recipe, tuple(r["lrs"]), seed=0)
