"""Transformer capacity (Figure 4 left) and the attention/MLP grid (Figure 4 right) at toy sizes."""

import numpy as np
import pytest

from factrecall.core.errors import ConfigError
from factrecall.recall import capacity as tc
from factrecall.recall.task import recall_task
from factrecall.recall.tradeoff import tradeoff
from factrecall.recall.training import Recipe

FAST = Recipe(n_steps=384, batch=64, eval_every=32, criterion=0.99, n_contexts=1)


def test_sizes_follow_the_scalings():
    assert tc.sizes(4, "linear", 8) == (4, 4, 8)
    assert tc.sizes(4, "square", 8) == (16, 4, 8)
    assert tc.sizes(4, "distinct", 8) == (4, 4, 4)


def test_capacity_brackets_a_tested_failure(tiny_capacity):
    fields, params = tiny_capacity.fields, tiny_capacity.params  # tests/conftest.py: the same programs
    recipe = tc.trial_recipe(fields["n_steps"], fields["batch"], 0.99)
    shape = {k: fields[k] for k in ("d", "H", "d_h", "m", "D")}
    spec = tc.Spec(
        **shape, scaling="linear", recipe=recipe, lrs=tuple(fields["lrs"]), patience=fields["patience"]
    )
    result = tc.capacity(spec, (0,), guess=2)  # the default guess of 32 parameters (the sweep point uses it)
    k = result.k_per_seed[0]
    record = result.summary()
    assert record["params"] == params == 4 * 1 * 1 * 4 + 2 * 2 * 4 and record["facts"] == k * k
    assert record["attention_params"] + record["mlp_params"] == record["params"]
    stored = {t.N for t in result.trials if t.stored}
    failed = {t.N for t in result.trials if not t.stored}
    assert k in stored and (k + 1 in failed or record["capped"])
    assert 1 <= record["facts"] <= 100  # a 32-parameter model stores a few facts, not a hundred
    assert record["bits_per_param"] == pytest.approx(k * k * 1.0 / record["params"])


def test_tradeoff_grid_trains_every_cell_at_once():
    task = recall_task(4, 4, 2, T=5)
    grid = tradeoff(task, 8, 4, (1, 3), (0, 16), FAST._replace(n_steps=512), (3e-2,), (0, 1))
    assert grid.accuracy.shape == (2, 2, 2) and np.all((grid.accuracy >= 0) & (grid.accuracy <= 1))
    assert grid.accuracy[1, 1].min() >= 0.99  # 3 heads and an MLP store 16 facts
    assert grid.accuracy[1, 1].mean() > grid.accuracy[0, 0].mean()  # more parameters, more facts
    rows = grid.rows(8, 4)
    assert [(r["H"], r["m"]) for r in rows] == [(1, 0), (1, 16), (3, 0), (3, 16)]
    assert rows[3]["attention_axis"] == 8 * 4 * 3 and rows[3]["mlp_axis"] == 8 * 16
    assert rows[3]["params"] == 4 * 3 * 4 * 8 + 2 * 16 * 8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scaling": "cubic"}, "scaling must be one of"),
        ({"H": 0}, "H must be ≥ 1"),
        ({"lrs": ()}, "learning rates must be > 0"),
        ({"D": 0}, "D must be ≥ 1"),
    ],
)
def test_bad_specs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        shape = {"d": 8, "H": 2, "d_h": 2, "m": 8, "D": 8, "scaling": "linear"}
        tc.validate_spec(tc.Spec(**{**shape, "recipe": FAST, "lrs": (3e-2,), "patience": None, **kwargs}))
