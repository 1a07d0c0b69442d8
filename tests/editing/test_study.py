"""The editing study: the edit-capacity rule (censored or not), the sizes of a fill ratio, the edit counts,
the slope fit and its verdict, the point's checks, and the study run end to end on shapes other tests train
(the editing tests' model, the suite's tiny capacity point), so their programs are shared."""

import math

import numpy as np
import pytest

import factrecall
from factrecall.core.errors import ConfigError
from factrecall.editing import study
from factrecall.experiments import specs
from factrecall.experiments.specs import EditingPoint, build

OK = {"efficacy": 1.0, "specificity": 0.995}
BROKEN = {"efficacy": 1.0, "specificity": 0.98}


def _curve(*rows):
    return [{"k": 2**i, **row} for i, row in enumerate(rows)]


def test_edit_capacity_is_the_last_k_before_the_first_break():
    assert study.edit_capacity(_curve(OK, OK, OK, BROKEN)) == (4, False)
    assert study.edit_capacity(_curve(BROKEN)) == (0, False)  # one edit already damages other facts
    low_efficacy = {"efficacy": 0.9, "specificity": 1.0}
    assert study.edit_capacity(_curve(OK, low_efficacy, OK)) == (1, False)  # nothing after a break counts
    assert study.edit_capacity(_curve(OK, BROKEN), threshold=0.95) == (2, True)


def test_edit_capacity_is_censored_when_nothing_broke():
    assert study.edit_capacity(_curve(OK, OK, OK)) == (4, True)  # at least 4: every k tried was absorbed
    assert study.capacity_label(4, True) == "≥ 4" and study.capacity_label(4, False) == "4"
    exactly = {"efficacy": 0.99, "specificity": 0.99}  # the threshold itself is absorbed
    assert study.edit_capacity(_curve(exactly)) == (1, True)


def test_fill_sizes_and_edit_counts():
    N_star = 144  # k* = 12
    assert [study.fill_sizes(N_star, f) for f in (0.25, 0.5, 0.75, 1.0)] == [
        (3, 12),
        (6, 12),
        (9, 12),
        (12, 12),
    ]
    assert study.edit_ks(144) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert study.edit_ks(128) == [1, 2, 4, 8, 16, 32, 64]  # k < N: at least one fact stays unedited
    assert study.edit_ks(144, max_edits=20) == [1, 2, 4, 8, 16]
    assert study.edit_ks(2) == [1] and study.edit_ks(1) == []
    assert study.edit_seed(0, 4) != study.edit_seed(1, 4) != study.edit_seed(1, 8)


def test_slope_fit_band_and_verdict():
    x = np.repeat([0.0, 36.0, 72.0, 108.0], 3)
    rising = study.slope_fit(x, 2 + 0.1 * x + np.tile([-1.0, 0.0, 1.0], 4))
    assert rising.slope == pytest.approx(0.1) and rising.intercept == pytest.approx(2.0)
    assert 0 < rising.lo < 0.1 < rising.hi and rising.verdict().startswith("tracks it")
    flat = study.slope_fit(x, 8 + np.array([-4.0, 0, 4, 4, 0, -4, -4, 4, 0, 0, 4, -4]))
    assert flat.lo < 0 < flat.hi and flat.verdict().startswith("does not track")
    falling = study.slope_fit(x, 20 - 0.1 * x)
    assert falling.hi < 0 and falling.verdict().startswith("runs against")
    few = study.slope_fit([0, 1], [1, 2])
    assert (
        few.slope == pytest.approx(1.0) and math.isnan(few.lo) and few.verdict() == "too few points to tell"
    )
    assert math.isnan(study.slope_fit([3, 3, 3], [1, 2, 3]).slope)  # no spread in x: no slope


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"m": 0}, "where='mlp' edits the MLP, but m=0"),
        ({"D": 1}, "D: Input should be greater than or equal to 2"),
        ({"fill": 0}, "fill: Input should be greater than 0"),
        ({"fill": 1.5}, "fill: Input should be less than or equal to 1"),
        ({"method": "rome"}, "method: Input should be 'rank-one', 'batch' or 'finetune'"),
        ({"mode": "batched"}, "mode: Input should be 'all-at-once' or 'sequential'"),
        ({"seeds": [0, 0]}, "seeds must be distinct"),
        ({"H": 0}, "H: Input should be greater than or equal to 1"),
    ],
)
def test_bad_points_name_the_field(fields, needle):
    with pytest.raises(ConfigError) as info:
        specs.build(specs.EditingPoint, fields)
    assert needle in str(info.value), str(info.value)


def test_point_defaults_are_the_specs_and_values_only_edit_without_mlp():
    point = specs.build(specs.EditingPoint, {"m": 0, "where": "values"})
    assert point.spec == study.EditingSpec(m=0, where="values")
    assert specs.EXPERIMENTS["editing"] is specs.EditingPoint
    assert point.capacity_spec().T == point.T == 8 and point.capacity_spec().scaling == "linear"


@pytest.mark.parametrize("mode", ["all-at-once", "sequential"])
def test_edit_curve_doubles_k_until_the_model_breaks(edit_model, mode):
    spec = study.EditingSpec(method="rank-one", mode=mode)
    curve = study.edit_curve(edit_model, spec)  # S·R = 16 facts: k < 16
    ks = [c["k"] for c in curve]
    assert ks == [1, 2, 4, 8][: len(ks)] and ks
    assert all(study.passes(c, 0.99) for c in curve[:-1])  # it stops at the first k not absorbed
    capacity, censored = study.edit_capacity(curve)
    assert censored == (ks[-1] == 8 and study.passes(curve[-1], 0.99))
    assert capacity == (ks[-1] if censored else ks[-2] if len(ks) > 1 else 0)
    assert curve[0]["efficacy"] > 0.5 and curve[0]["delta_norm"] > 0  # one edit takes in most contexts
    assert all(0 <= c[name] <= 1 for c in curve for name in ("efficacy", "specificity", "paraphrase"))


def test_a_point_measures_the_capacity_fills_and_edits(tmp_path, tiny_capacity):
    """An ``editing`` sweep point on the suite's tiny capacity shape (32 parameters: N* = 4 facts, 2 × 2), so
    the capacity search shares its programs with the capacity tests."""
    from factrecall.experiments import config, sweeps
    from factrecall.experiments.store import Store

    fields = {**tiny_capacity.fields, "T": 32, "seeds": [0], "method": "batch", "mode": "sequential"}
    base = "".join(f"{k} = {config.toml_value(v)}\n" for k, v in fields.items())
    path = tmp_path / "s.toml"
    path.write_text(f'experiment = "editing"\n[base]\n{base}')
    with Store(tmp_path / "r.db") as store:
        summary = sweeps.run_sweep(config.load_sweep(path), store, quiet=True)
        (row,) = store.rows()
    assert summary.failed == 0, row["reason"]
    record = row["metrics"]
    assert (record["N_star"], record["k_star"], record["S"], record["R"], record["N"]) == (4, 2, 2, 2, 4)
    assert record["spare"] == 0 and record["params"] == tiny_capacity.params
    (seed,) = record["per_seed"]
    assert [c["k"] for c in seed["curve"]] in ([1], [1, 2]) and 0 <= seed["facts_stored"] <= 1
    assert (seed["edit_capacity"], seed["censored"]) == tuple(study.edit_capacity(seed["curve"]))
    assert record["edit_capacity"] == [seed["edit_capacity"]] and row["point"]["fill"] == 1.0
    # the Python API runs the same point (its capacity and models come from this process's caches)
    again = factrecall.editing_study(**fields)
    assert again.point == build(EditingPoint, fields)
    scores = [
        [{k: c[k] for k in ("k", "efficacy", "specificity")} for c in s["curve"]] for s in record["per_seed"]
    ]
    assert (again["N_star"], again["edit_capacity"]) == (4, record["edit_capacity"])
    assert [
        [{k: c[k] for k in ("k", "efficacy", "specificity")} for c in s["curve"]] for s in again["per_seed"]
    ] == (scores)
