import json
import math
from pathlib import Path

import pytest

from factrecall.core import bounds
from factrecall.core.errors import ConfigError, TrainingError
from factrecall.core.queue import decided
from factrecall.core.search import Trial
from factrecall.memories import trials
from factrecall.memories.capacity import capacity
from factrecall.memories.queue import MemoryFamily
from factrecall.memories.spec import (
    LINEAR_LRS,
    MLP_PATIENCE,
    MemorySpec,
    default_guess,
    recipe,
    validate_spec,
)

BANDS = json.loads((Path(__file__).parents[1] / "data" / "capacity_bands.json").read_text())


def _fake_runner(threshold_per_seed, calls):
    def run(spec, Ns, seeds, shape=None):
        calls.append(list(zip(seeds, Ns)))
        return [Trial(s, n, n <= threshold_per_seed[s], 1.0, None, 0, 0) for s, n in zip(seeds, Ns)]

    return run


@pytest.mark.parametrize("guess", [1, 7, 100, 5000])
def test_search_finds_the_exact_threshold_from_any_guess(monkeypatch, guess):
    calls = []
    monkeypatch.setattr(trials, "run_trials", _fake_runner({0: 137, 1: 12}, calls))
    result = capacity(MemorySpec("linear", 8), seeds=(0, 1), guess=guess, rel_precision=1e-9)
    assert result.capacity_per_seed == (137, 12)
    # the reported N* was itself tested and stored, and N* + 1 was tested and failed
    tested = {(t.seed, t.N): t.stored for t in result.trials}
    assert tested[(0, 137)] and not tested[(0, 138)]
    assert tested[(1, 12)] and not tested[(1, 13)]
    assert all(len(round_) <= 2 for round_ in calls)  # seeds advance together


def test_search_stops_at_relative_precision(monkeypatch):
    monkeypatch.setattr(trials, "run_trials", _fake_runner({0: 1000}, []))
    result = capacity(MemorySpec("linear", 8), seeds=(0,), guess=10, rel_precision=0.05)
    hi = min(t.N for t in result.trials if not t.stored)
    assert result.capacity_per_seed[0] <= 1000 < hi <= 1.05 * result.capacity_per_seed[0] + 1


def test_search_reports_a_capped_result(monkeypatch):
    monkeypatch.setattr(trials, "run_trials", _fake_runner({0: 10**9}, []))
    result = capacity(MemorySpec("linear", 8), seeds=(0,), guess=10, n_max=50)
    assert result.capacity_per_seed == (50,) and result.capped


def test_trained_linear_capacity_meets_the_target_at_d16():
    band = BANDS["linear_trained_0.99"]["16"]
    result = capacity(MemorySpec("linear", 16), seeds=(0, 1, 2))
    summary = result.summary()
    assert result.capacity >= band["min"], summary
    assert summary["NlogN_over_d2"] <= 1.5  # more would mean a broken evaluation
    assert set(summary["lr_per_seed"]) <= set(LINEAR_LRS)
    assert summary["params"] == 256 and summary["bits_per_param"] == pytest.approx(
        result.capacity * math.log2(result.capacity) / 256
    )
    assert summary["diverged_runs"] == 0


def test_same_seed_gives_the_same_capacity():
    spec = MemorySpec("linear", 8)
    a, b = capacity(spec, seeds=(3,)), capacity(spec, seeds=(3,))
    assert a.capacity_per_seed == b.capacity_per_seed
    assert [t.accuracy for t in a.trials] == [t.accuracy for t in b.trials]


def test_trained_mlp_capacity_at_d8():
    # near capacity, whether a trial stores its facts is close to a coin flip that float rounding decides
    # (benchmarks/RESULTS.md), so one seed's N* moves by ±3 with any change to the computation: the band is
    # checked on the median of the paper's five seeds
    band = BANDS["mlp_trained_alpha1"]["8"]
    result = capacity(recipe("mlp", 8, 8), seeds=(0, 1, 2, 3, 4))
    assert result.capacity >= band["min"], result.summary()
    assert result.summary()["patience"] == MLP_PATIENCE


def test_fixed_outputs_use_the_balanced_map_and_count_bits_with_log2_M():
    result = capacity(
        MemorySpec("mlp", 16, m=64, M=32, target="balanced", method="construction", criterion=0.9), seeds=(0,)
    )
    s = result.summary()
    assert s["outputs"] == 32 and result.capacity >= 8
    assert s["bits_per_param"] == pytest.approx(result.capacity * 5 / (2 * 16 * 64))


def test_a_memory_that_stores_nothing_has_capacity_zero(monkeypatch):
    monkeypatch.setattr(trials, "run_trials", _fake_runner({0: 0}, []))
    assert capacity(MemorySpec("linear", 8), seeds=(0,), guess=4).capacity_per_seed == (0,)


def test_diverged_training_is_an_error_not_a_capacity(monkeypatch):
    monkeypatch.setattr(
        trials,
        "run_trials",
        lambda spec, Ns, seeds, shape=None: [
            Trial(s, n, False, float("nan"), None, 3, 5) for s, n in zip(seeds, Ns)
        ],
    )
    with pytest.raises(TrainingError, match="diverged"):
        capacity(MemorySpec("linear", 8), seeds=(0,), guess=4)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (MemorySpec("conv", 8), "model must be one of"),
        (MemorySpec("linear", 0), "d must be ≥ 1"),
        (MemorySpec("linear", 8, method="construction"), "method for linear"),
        (MemorySpec("mlp", 8), "width must be ≥ 1"),
        (MemorySpec("linear", 8, rank=9), "rank must be in"),
        (MemorySpec("linear", 8, M=32), "bijection"),
        (MemorySpec("linear", 8, criterion=0.0), "criterion"),
        (MemorySpec("linear", 8, lrs=(0.1, -1.0)), "learning rates"),
        (MemorySpec("linear", 8, geometry="torus"), "geometry"),
    ],
)
def test_bad_specs_are_rejected_with_the_field_named(spec, match):
    with pytest.raises(ConfigError, match=match):
        validate_spec(spec)


def test_guesses_are_close_to_the_guides():
    assert default_guess(MemorySpec("linear", 32)) == pytest.approx(bounds.solve_n_log_n(1024 / 1.1), abs=1)


def test_a_huge_learning_rate_is_an_error_even_though_n_1_is_trivially_stored():
    """With M = N = 1 any weights store the one association: N* = 1 beside diverged runs is no result."""
    with pytest.raises(TrainingError, match="nothing beyond N = 1"):
        capacity(recipe("linear", 4, lrs=(1e38,), n_steps=64), seeds=(0,))


def test_mlp_search_runs_on_the_work_queue_and_keeps_the_search_contract():
    """Trained MLP memories search on a queue of runs; the bracket contract is the lockstep search's."""
    spec = recipe("mlp", 4, 4, n_steps=2048)
    a = capacity(spec, seeds=(0, 1, 2))
    for seed, n_star in zip(a.seeds, a.capacity_per_seed, strict=True):
        tested = [(t.N, t.stored) for t in a.trials if t.seed == seed]
        assert (n_star, True) in tested
        hi = min(N for N, stored in tested if not stored)
        assert hi > n_star and (hi - n_star <= 1 or hi / n_star <= 1.01)
        assert len({N for N, _ in tested}) == len(tested)  # no (seed, N) is trained twice
    assert all(t.lr in spec.lrs for t in a.trials)
    b = capacity(spec, seeds=(0, 1, 2))
    assert b.capacity_per_seed == a.capacity_per_seed
    assert [t.accuracy for t in b.trials] == [t.accuracy for t in a.trials]


def test_a_trial_keeps_the_rate_of_the_one_rule():
    """Both schedules decide a trial through trials.decide, i.e. engine.best_rate: diverged runs are never
    kept, the largest best accuracy wins, a tie goes to the first rate in grid order."""
    spec = recipe("linear", 4)
    lrs = spec.lrs
    t = trials.decide(spec, 0, 9, lrs, [0.5, 0.9, 0.9], [False, False, False], [64, 128, 192])
    assert (t.lr, t.accuracy, t.steps, t.stored, t.diverged) == (1.0, 0.9, 128, False, 0)
    t = trials.decide(spec, 0, 9, lrs, [0.5, 0.9, 0.95], [False, False, True], [64, 128, 192])
    assert (t.lr, t.diverged) == (1.0, 1)
    t = trials.decide(spec, 0, 9, lrs, [float("nan"), -math.inf, 0.2], [True, True, True], [8, 16, 32])
    assert t.lr is None and math.isnan(t.accuracy) and (t.steps, t.diverged, t.stored) == (32, 3, False)


def test_a_queued_trial_is_decided_by_the_first_success_or_when_all_runs_stopped():
    spec = recipe("mlp", 4, 4)
    assert decided(MemoryFamily(spec), 0, 9, {2: (0.5, False, 64)}) is None  # other rates still running
    t = decided(MemoryFamily(spec), 0, 9, {2: (1.0, False, 64)})  # a success decides at once
    assert t.stored and t.lr == spec.lrs[2]
    t = decided(MemoryFamily(spec), 0, 9, {2: (0.6, False, 64), 0: (0.6, False, 32), 1: (0.5, True, 16)})
    assert not t.stored and t.lr == spec.lrs[0] and t.steps == 32 and t.diverged == 1
