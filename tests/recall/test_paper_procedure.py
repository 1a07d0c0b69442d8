"""The paper's own transformer-capacity procedure: its bisection, its problems (ours), its record, and the
``procedure`` field of the capacity point and of ``factrecall capacity transformer``."""

import json
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from factrecall import cli
from factrecall.core.errors import ConfigError
from factrecall.experiments.specs import TransformerCapacityPoint, build
from factrecall.recall import capacity as tc
from factrecall.recall import padded
from factrecall.recall import paper_procedure as pp


def test_bisection_tries_rates_in_order_and_accepts_the_first_that_stores():
    # sizes k ≤ 9 store at the 2nd rate only, k ≤ 5 at the 1st too: bisection on [1, 32] with 3 rates
    search = pp.paper_search(1, 32, 3, lambda k, j: k <= 5 or (k <= 9 and j == 1))
    assert search.tested == [
        (16, 0, False),
        (16, 1, False),
        (16, 2, False),  # 16 fails at every rate: hi = 16
        (8, 0, False),
        (8, 1, True),  # the 2nd rate stores 8: accepted, the 3rd never tried; lo = 8, back to the 1st rate
        (12, 0, False),
        (12, 1, False),
        (12, 2, False),
        (10, 0, False),
        (10, 1, False),
        (10, 2, False),
        (9, 0, False),
        (9, 1, True),
    ]
    assert (search.lo, search.hi, search.done, search.next()) == (9, 10, True, None)
    # lo is assumed stored and hi assumed failing: neither is tested, even when nothing else stores
    never = pp.paper_search(4, 5, 3, lambda k, j: False)
    assert never.tested == [] and never.lo == 4


def test_a_trial_is_the_same_problem_as_in_our_search():
    """(seed, S = R = k) draws the same embeddings, facts, evaluation key, batch key and initial weights."""
    spec = TransformerCapacityPoint(d=4, H=1, d_h=1, m=2, D=2, n_steps=256, batch=64).spec
    family = tc.TransformerFamily(spec)
    k, seeds = 3, (0, 1)
    pad = padded.bucket(k, k, spec.D, spec.T)
    weights, data, keys = pp.trial_inputs(spec, pad, tc.config_of(spec, pad), k, seeds)
    n = tc.index_of(k, "linear")
    same = lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b)))  # noqa: E731
    for i, seed in enumerate(seeds):
        ours = family.data(seed, n, k)  # our search's trial of size index n in the bucket of k
        theirs = jax.tree_util.tree_map(lambda x, i=i: x[i], data)
        assert same(jax.random.key_data(ours.pop("eval_key")), jax.random.key_data(theirs.pop("eval_key")))
        assert jax.tree_util.tree_all(jax.tree_util.tree_map(same, ours, theirs))
        assert same(jax.random.key_data(family.key(seed, n)), jax.random.key_data(keys[i]))
        mine = jax.tree_util.tree_map(lambda x, i=i: x[i], weights)
        assert jax.tree_util.tree_all(jax.tree_util.tree_map(same, family.params(seed, n), mine))


def test_seeds_at_the_same_size_and_rate_train_together(monkeypatch):
    """A round groups the searches by (k, rate): one call of paper_runs per group (no training here)."""
    calls = []

    def fake_runs(spec, k, lr, seeds, pad_k):
        calls.append((k, lr, tuple(seeds)))
        assert pad_k == 7  # every k in the bucket of the largest k the bisection on [1, 8] can test
        reached = np.array([[k <= 2 + s] for s in seeds])  # seed s stores k ≤ 2 + s
        zeros = np.zeros((len(seeds), 1))
        return SimpleNamespace(reached=reached, diverged=zeros.astype(bool), best_metric=zeros, steps=zeros)

    monkeypatch.setattr(pp, "paper_runs", fake_runs)
    spec = TransformerCapacityPoint(d=4, H=1, d_h=1, m=2, D=2, lrs=[0.1, 0.3]).spec
    result = pp.paper_capacity(spec, (0, 1), (1, 8))
    assert calls[:3] == [(4, 0.1, (0, 1)), (4, 0.3, (0, 1)), (2, 0.1, (0, 1))]
    assert result.k_per_seed == (2, 3) and result.bounds == (1, 8)
    record = result.summary()
    assert record["capacity_per_seed"] == [4, 9] and record["facts"] == 4  # the worst seed's k²
    assert (record["facts_failed"], record["failed_shape"], record["facts_failed_per_seed"]) == (
        9,
        [3, 3],
        [9, 16],
    )
    assert record["floor_untested"] == [] and not record["capped"]


def test_paper_capacity_of_the_tiny_shape(tiny_capacity):
    """Trained (the suite's tiny capacity shape, bounds [1, 3]: k = 2 first): the runs follow the bisection,
    a failing run trains its whole budget (no patience) and the record has our search's keys."""
    fields = {**tiny_capacity.fields, "procedure": "paper", "patience": 0, "n_steps": 256}
    spec = build(TransformerCapacityPoint, fields).spec
    result = pp.paper_capacity(spec, (0,), (1, 3))
    replay = pp.PaperSearch(1, 3, len(spec.lrs))
    for run in result.runs:
        assert (run.k, spec.lrs[replay.lr]) == (replay.next()[0], run.lr)
        replay.update(run.stored)
        assert run.steps == spec.recipe.n_steps or (run.stored and run.accuracy >= 0.99)
    assert replay.done and result.k_per_seed == (replay.lo,)
    record = result.summary()
    keys = tc.Result(spec, (3,), False, (), (0,), 0.0).summary().keys() - {"trials"}
    assert keys <= record.keys()
    assert (record["procedure"], record["criterion_on"], record["bounds"]) == ("paper", "sampled", [1, 3])
    assert record["facts"] == replay.lo**2 and record["params"] == tiny_capacity.params
    assert record["buckets"] == 1  # every k of the search in one padded program
    assert record["floor_untested"] == ([0] if replay.lo == 1 else [])


def test_the_point_resolves_the_papers_settings_and_refuses_others():
    point = TransformerCapacityPoint(procedure="paper")
    assert (point.criterion_on, point.patience, point.early_stops) == ("sampled", 0, False)
    assert point.spec.criterion_on == "sampled" and point.spec.patience is None
    assert not point.spec.early_stops and TransformerCapacityPoint().spec.early_stops
    again = TransformerCapacityPoint(**point.model_dump())  # a sweep's resolved point builds again
    assert again == point and TransformerCapacityPoint().procedure == "ours"
    with pytest.raises(
        ConfigError, match=r"criterion_on \(--criterion-on\): procedure 'paper'.*'every-fact'"
    ):
        build(TransformerCapacityPoint, {"procedure": "paper", "criterion_on": "every-fact"})
    with pytest.raises(ConfigError, match=r"patience \(--patience\): procedure 'paper' has none.*got 512"):
        build(TransformerCapacityPoint, {"procedure": "paper", "patience": 512})
    with pytest.raises(
        ConfigError, match=r"early_stops \(--early-stops\): .*allowed false or unset, got True"
    ):
        build(TransformerCapacityPoint, {"procedure": "paper", "early_stops": True})
    with pytest.raises(ConfigError, match="bounds must be two integers"):
        pp.check_bounds((3, 3))


def _run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(["capacity", "transformer", "--d", "4", "--heads", "1", "--head-dim", "1", *argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_cli_procedure_flag_and_json_key(capsys, monkeypatch):
    """``--procedure`` picks the search and the JSON says which (the searches are faked: no training)."""
    specs = []

    def fake(name):
        def search(spec, seeds, bounds=None, on_round=None):
            specs.append(spec)
            return SimpleNamespace(summary=lambda: {"facts": 1} | ({"procedure": name} if name else {}))

        return search

    monkeypatch.setattr(pp, "paper_capacity", fake("paper"))
    monkeypatch.setattr(tc, "capacity", fake(None))
    code, out, _ = _run(capsys, "--procedure", "paper", "--json", "--quiet")
    assert code == 0 and json.loads(out)["procedure"] == "paper"
    assert specs[-1].criterion_on == "sampled" and specs[-1].patience is None and not specs[-1].early_stops
    code, out, _ = _run(capsys, "--json", "--quiet")
    assert code == 0 and json.loads(out)["procedure"] == "ours"
    assert specs[-1].criterion_on == "every-fact" and specs[-1].patience == 2048 and specs[-1].early_stops
    code, out, _ = _run(capsys, "--no-early-stops", "--json", "--quiet")
    assert code == 0 and not specs[-1].early_stops and specs[-1].patience == 2048
    code, _, err = _run(capsys, "--procedure", "paper", "--criterion-on", "every-fact")
    assert code == 2 and "error: criterion_on (--criterion-on): procedure 'paper'" in err
    code, _, err = _run(capsys, "--procedure", "paper", "--patience", "64")
    assert code == 2 and "got 64" in err and len(specs) == 3
    code, _, err = _run(capsys, "--procedure", "paper", "--early-stops")
    assert code == 2 and "error: early_stops (--early-stops): procedure 'paper' has none" in err
    assert len(specs) == 3
    code, _, err = _run(capsys, "--procedure", "theirs")
    assert code == 2 and "--procedure" in err
