import functools
import json
import math
import re

import jax
import pytest
from hypothesis import given
from hypothesis import strategies as st

from factrecall.core.errors import ConfigError, TrainingError
from factrecall.facts import planner, scaling
from factrecall.facts.scaling import FAMILIES, Family, fit, predict, predict_family, smallest_d
from factrecall.facts.table import Row, build


def _rows(c, beta, family="mlp-heavy", Ps=(400, 1600, 6400), noise=(1.0, 1.0, 1.0)):
    f = FAMILIES[family]
    spec = {"family": family, "H": f.H, "att_ratio": f.att_ratio, "mlp_ratio": f.mlp_ratio}
    return [{**spec, "params": P, "bits": c * P**beta * e} for P, e in zip(Ps, noise, strict=True)]


@given(st.floats(0.05, 2.0), st.floats(0.6, 1.3), st.floats(50.0, 50_000.0))
def test_prediction_inverts_an_exact_power_law(c, beta, bits):
    ff = fit(_rows(c, beta))["mlp-heavy"]
    assert math.isclose(ff.c, c, rel_tol=1e-6) and math.isclose(ff.beta, beta, rel_tol=1e-6)
    p = predict_family(ff, bits)
    assert math.isclose(ff.c * p.params_needed**ff.beta, bits, rel_tol=1e-6)
    d = p.shape[0]
    fam = FAMILIES["mlp-heavy"]
    assert p.params == fam.params(d) >= p.params_needed
    assert d == 4 or fam.params(d - 1) < p.params_needed  # the smallest shape of the family
    assert p.attention_params + p.mlp_params == p.params
    lo, hi = p.band_params
    assert lo < p.params_needed < hi and hi / p.params_needed >= scaling.MIN_BAND - 1e-9


def test_band_widens_with_scatter_and_best_family_wins():
    tight = fit(_rows(0.3, 1.0))["mlp-heavy"]
    loose = fit(_rows(0.3, 1.0, noise=(1.0, 1.6, 0.7)))["mlp-heavy"]
    assert loose.sigma > tight.sigma
    assert loose.band(1000)[1] / loose.params_for(1000) > tight.band(1000)[1] / tight.params_for(1000)
    both = fit(_rows(0.3, 1.0) + _rows(0.1, 1.0, family="balanced"))
    best, all_ = predict(1000.0, both)
    assert best.family == "mlp-heavy" and len(all_) == 2 and best.params <= all_[1].params
    with pytest.raises(ConfigError, match="over the budget of 100; raise budget_params"):
        predict(1000.0, both, budget_params=100)
    with pytest.raises(ConfigError, match="budget_params must be ≥ 1, got 0"):
        predict(1000.0, both, budget_params=0)


def test_fit_needs_two_points_and_data_must_load(tmp_path):
    with pytest.raises(ConfigError, match="≥ 2 measured points"):
        fit(_rows(0.3, 1.0, Ps=(100,), noise=(1.0,)))
    bad = tmp_path / "s.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="unreadable"):
        scaling.load_scaling(str(bad))


def test_shipped_scaling_data_is_ours_with_provenance():
    data = scaling.load_scaling()
    assert data["rows"] and all(r["bits"] == r["facts"] * 3.0 for r in data["rows"])
    assert all({"versions", "command", "utc"} <= set(r["run"]) for r in data["rows"])
    fits = fit(data["rows"])
    assert set(fits) == set(FAMILIES)
    assert all(0.5 < f.beta < 1.6 for f in fits.values())  # capacity grows with parameters
    json.dumps(predict(1000.0, fits)[0].record())


def test_smallest_d_inverts_the_family():
    f = Family("x", 2, 0.5, 2.0)
    for P in (10, 500, 5000):
        d = smallest_d(f, P)
        assert f.params(d) >= P and (d == 4 or f.params(d - 1) < P)


def _fake_attempt(threshold):
    calls = []

    def attempt(job, d):
        calls.append(d)
        family = job.family
        a = planner.Attempt(
            family.shape(d), family.params(d), d >= threshold, float(d >= threshold), 0.01, 1, 0.0
        )
        return a, {"d": d}, None

    return attempt, calls


def test_grow_retries_larger_until_stored_and_respects_bounds(monkeypatch):
    attempt, calls = _fake_attempt(20)
    monkeypatch.setattr(planner, "_attempt", attempt)
    fam = FAMILIES["balanced"]
    job = planner.Job(None, None, fam)
    attempts, params, _ = planner.grow(job, 10, max_tries=5)
    assert (
        calls == sorted(set(calls)) and calls[0] == 10 and attempts[-1].stored and params == {"d": calls[-1]}
    )
    assert all(not a.stored for a in attempts[:-1])
    calls.clear()
    attempts, _, _ = planner.grow(job, 10, max_tries=2)
    assert len(attempts) == 2 and not attempts[-1].stored
    calls.clear()
    attempts, params, _ = planner.grow(job, 10, budget_params=fam.params(12), max_tries=5)
    assert all(a.params <= fam.params(12) for a in attempts) and not attempts[-1].stored


def _fresh(threshold, missed=12):
    """A stand-in for the verification in fresh contexts: models below d = ``threshold`` miss ``missed``
    facts there (accuracy 0.998), the others none."""
    calls = []

    def verify(params, cfg, **_):
        calls.append(params["d"])
        names = [f"r(s{i})" for i in range(missed)] if params["d"] < threshold else []
        accuracy = 0.998 if names else 1.0
        return {"fact_accuracy": accuracy, "missed": names[:10], "n_missed": len(names)}

    return verify, calls


def test_a_model_stored_in_training_but_missing_in_fresh_contexts_is_not_stored(monkeypatch):
    attempt, calls = _fake_attempt(10)  # every shape tried meets the criterion in training
    monkeypatch.setattr(planner, "_attempt", attempt)
    verify, verified = _fresh(12)
    job = planner.Job(None, None, FAMILIES["balanced"])
    attempts, params, _ = planner.grow(job, 10, verify=verify, max_tries=5)
    assert calls == verified == [10, 12] and params == {"d": 12}
    first, last = attempts
    assert first.accuracy == 1.0 and not first.stored and first.verified == 0.998
    assert first.n_missed == 12 and first.missed == tuple(f"r(s{i})" for i in range(10))
    assert last.stored and last.verified == 1.0 and last.n_missed == 0 and last.record()["missed"] == []
    # unverified (measurements, the smallest search): the in-loop verdict alone, as before
    attempts, _, _ = planner.grow(job, 10, max_tries=5)
    assert attempts[0].stored and attempts[0].verified is None and len(verified) == 2


@pytest.mark.parametrize(
    ("criterion", "in_training", "fresh", "stored"),
    [
        (1.0, 1.0, 0.998, False),  # met in training, missed in fresh contexts
        (1.0, 1.0, 1.0, True),
        (1.0, 0.99, 1.0, False),  # missed in training
        (0.9, 0.95, 0.9, True),
        (0.9, 0.95, 0.8999, False),
    ],
)
def test_verification_holds_the_criterion_in_fresh_contexts(criterion, in_training, fresh, stored):
    a = planner.Attempt((8, 2, 4, 8), 100, in_training >= criterion, in_training, 0.01, 256, 0.0)
    report = {"fact_accuracy": fresh, "n_missed": int(fresh < 1), "missed": ["r(s)"] * (fresh < 1)}
    checked = planner.check_fresh(a, criterion, report)
    assert checked.stored is stored and checked.verified == fresh and checked.accuracy == in_training


@pytest.mark.parametrize("guess", [5, 13, 40])
def test_smallest_search_finds_the_threshold(monkeypatch, guess):
    attempt, calls = _fake_attempt(13)
    monkeypatch.setattr(planner, "_attempt", attempt)
    job = planner.Job(None, None, FAMILIES["balanced"])
    d, attempts = planner.smallest(job, guess, rel_precision=0.01)
    assert d == 13 and len(attempts) == len(calls) <= 12


def test_grow_trains_a_small_table_and_it_answers_every_fact():
    rows = [
        Row(s, r, a, i)
        for i, (s, r, a) in enumerate(
            [
                ("France", "capital_of", "Paris"),
                ("France", "continent_of", "Europe"),
                ("Peru", "capital_of", "Lima"),
                ("Peru", "continent_of", "South America"),
                ("Japan", "capital_of", "Tokyo"),
                ("Japan", "continent_of", "Asia"),
                ("Chile", "capital_of", "Santiago"),
                ("Chile", "continent_of", "South America"),
            ]
        )
    ]
    table = build(rows)
    # from the prediction, with the default recipe, as `plan --train` does (tests/facts/test_plan_cli.py
    # trains this table so: the same compiled programs)
    predicted = planner.plan(table)[0]["predicted"]
    recipe = planner.DEFAULT_RECIPE
    task, facts = planner.table_task(table, T=recipe.T)
    job = planner.Job(task, facts, FAMILIES[predicted["family"]], recipe)
    verify = functools.partial(planner.evaluate_table, table=table, T=recipe.T, key=jax.random.key(9))
    attempts, params, cfg = planner.grow(job, predicted["shape"]["d"], verify=verify, max_tries=2)
    assert attempts[-1].stored and attempts[0].shape[0] == predicted["shape"]["d"]
    assert attempts[-1].verified == 1.0 and attempts[-1].n_missed == 0
    report = verify(params, cfg)
    assert report["facts_stored"] == 1.0 and report["per_relation"] == {
        "capital_of": 1.0,
        "continent_of": 1.0,
    }
    assert report["bits_stored"] == pytest.approx(table.bits) and report["missed"] == []
    assert report["eval_contexts"] == 8


def test_scaling_figure_is_drawn(tmp_path):
    from factrecall.experiments import plots

    rows = _rows(0.3, 0.9) + _rows(0.5, 0.8, family="balanced")
    for r in rows:
        r["facts"] = r["bits"] / 3
    paths = plots.planner_scaling(rows, tmp_path / "scaling")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)


def test_plan_record_predicts_and_compares_with_the_smallest(monkeypatch):
    table = build([Row(f"s{i}", "r", f"a{i % 3}", i) for i in range(9)])
    attempt, _ = _fake_attempt(9)
    monkeypatch.setattr(planner, "_attempt", attempt)
    record, model = planner.plan(table, search_smallest=True)
    assert model is None and record["bits"] == pytest.approx(9 * math.log2(3))
    p, sm = record["predicted"], record["smallest"]
    assert sm["d"] == sm["d_search"] == 9
    fam = FAMILIES[p["family"]]
    assert sm["params"] == fam.params(9) and sm["predicted_over_smallest"] == pytest.approx(
        p["params"] / fam.params(9)
    )
    with pytest.raises(ConfigError, match=r"criterion must be in \(0, 1\], got 1.5"):
        planner.plan(table, criterion=1.5)
    with pytest.raises(ConfigError, match="max_tries must be ≥ 1, got 0"):
        planner.plan(table, train=True, max_tries=0)
    monkeypatch.setattr(planner, "evaluate_table", _fresh(10**6)[0])  # misses 12 facts at every d
    with pytest.raises(TrainingError) as error:
        planner.plan(table, train=True, max_tries=2)
    message = str(error.value)
    assert re.search(r"tried d=(\d+) \(0.0000 in training, 0.9980 in fresh contexts\), d=\d+ \(", message)
    names = ", ".join(f"r(s{i})" for i in range(10))
    assert f"missed {names} and 2 more in fresh contexts; raise max_tries or budget_params" in message


def test_reproduce_targets_cover_both_families_and_compare_with_the_paper():
    from factrecall.experiments import reproduce
    from factrecall.experiments.figures.planner import PLANNER_DS

    points = reproduce.FIGURES["planner-scaling"].points("quick")
    assert {p["family"] for p in points} == set(FAMILIES) and len(points) == 2 * len(PLANNER_DS["quick"])
    rows = scaling.load_scaling()["rows"]
    (cmp,) = reproduce.FIGURES["planner-scaling"].compare(rows)
    assert cmp["paper"] == 0.15 and 0 < cmp["ours"] < 1
    grid = reproduce.FIGURES["attribution-tradeoff"].points("quick")
    assert {(p["H"], p["m"]) for p in grid} == {(H, m) for H in (1, 2, 4, 8) for m in (1, 16, 64)}
