import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from factrecall.core.engine import Problem, Settings, cross_entropy, make_optimizer, train, train_many
from factrecall.core.errors import ConfigError
from factrecall.core.runs import advance_runs, start_runs
from factrecall.memories.models import linear_memory
from factrecall.memories.trials import memory_data, memory_problem


def test_cross_entropy_is_stable_and_weighted():
    z = jnp.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]])
    y = jnp.array([1, 2])
    loss = cross_entropy(z, y, jnp.array([0.0, 1.0]))
    assert float(loss) == pytest.approx(np.log(3.0), rel=1e-6)
    assert np.isfinite(float(cross_entropy(z, y)))
    # the naive form overflows where log_softmax does not
    naive = -jnp.log(jax.nn.softmax(z)[0, 1])
    assert not np.isfinite(float(naive))


def _batch(n_rows, N=24, d=8, seed=0):
    keys = jnp.stack([jax.random.key(seed + i) for i in range(n_rows)])
    data = jax.vmap(lambda k: memory_data(32, 32, N, N, d, key=k))(keys)
    mem = linear_memory(d)
    return mem, jax.vmap(mem.init)(keys), data, keys


@pytest.fixture(scope="module")
def two_rates():
    """Two problems (N = 8, d = 16) at two learning rates: 1e-4 never stores them, 1.0 does (one program)."""
    mem, params, data, keys = _batch(2, N=8, d=16)
    return train_many(memory_problem(mem), Settings(4096, 32, 1.0), params, data, [1e-4, 1.0], keys)


def test_training_stops_at_the_criterion_inside_the_program(two_rates):
    out = two_rates
    assert out.best_metric.shape == (2, 2)
    assert bool(jnp.all(out.reached[:, 1]))
    assert int(out.steps.max()) < 4096  # stopped early
    assert not bool(jnp.any(out.diverged))


def test_budget_without_criterion_runs_every_step_and_records_curves():
    mem, params, data, keys = _batch(1)
    out = train_many(memory_problem(mem), Settings(100, 32, None), params, data, [0.1], keys)
    assert int(out.steps[0, 0]) == 100  # the last, partial chunk is honoured
    assert out.loss_curve.shape == (1, 1, 4)
    assert np.all(np.isfinite(np.asarray(out.curves["accuracy"])))
    assert float(out.loss_curve[0, 0, -1]) < float(out.loss_curve[0, 0, 0])


# two linear-memory problems (N = 24, d = 8), each at its own rate, and what each gives trained alone
SPANS = Settings(1024, 32, 0.99)
SPAN_LRS = (0.03, 0.3)


@pytest.fixture(scope="module")
def single_runs():
    """The batch of two problems and each one's run by :func:`train` alone (one compiled program)."""
    mem, params, data, keys = _batch(2, N=24, d=8)
    problem = memory_problem(mem)
    one = jax.jit(functools.partial(train, problem, SPANS))
    lrs = jnp.asarray(SPAN_LRS)
    pick = lambda tree, i: jax.tree_util.tree_map(lambda x: x[i], tree)  # noqa: E731
    ref = [one(pick(params, i), pick(data, i), lrs[i : i + 1], keys[i]) for i in range(2)]
    return problem, params, data, keys, ref


def test_batched_runs_equal_single_runs(single_runs):
    problem, params, data, keys, ref = single_runs
    batched = train_many(problem, SPANS, params, data, jnp.asarray(SPAN_LRS)[:, None], keys)
    for i, one in enumerate(ref):
        np.testing.assert_allclose(one.best_metric, batched.best_metric[i], rtol=1e-5)
        np.testing.assert_allclose(one.final_loss, batched.final_loss[i], rtol=1e-4)
        assert int(one.steps[0]) == int(batched.steps[i, 0])


def _toy_problem(loss):
    return Problem(loss, lambda params, data: {"accuracy": jnp.mean(1 / (1 + params["w"] ** 2))})


def test_divergence_is_detected_and_not_a_result():
    # minimising −w² by gradient descent blows w up geometrically: the loss reaches −inf, then NaN
    problem = _toy_problem(lambda params, data, key: -jnp.sum(params["w"] ** 2))
    keys = jax.random.split(jax.random.key(0), 1)
    out = train_many(
        problem,
        Settings(512, 8, 1.0, optimizer="sgd"),
        {"w": jnp.ones((1, 2))},
        jnp.zeros(1),
        [10.0, 1e-6],
        keys,
    )
    assert bool(out.diverged[0, 0]) and not bool(out.diverged[0, 1])
    assert not bool(out.reached[0, 0])
    assert int(out.steps[0, 0]) < 512 and int(out.steps[0, 1]) == 512
    assert np.all(np.isfinite(np.asarray(out.best_params["w"][0, 0])))  # the best params are from before


def test_group_stops_when_any_learning_rate_reaches_the_criterion(two_rates):
    out = two_rates
    assert bool(jnp.all(out.reached[:, 1])) and not bool(jnp.any(out.reached[:, 0]))
    assert np.array_equal(out.steps[:, 0], out.steps[:, 1]) and int(out.steps.max()) < 4096


def test_patience_stops_a_plateau():
    problem = Problem(
        lambda params, data, key: jnp.sum(params["w"] ** 2),
        lambda params, data: {"accuracy": jnp.asarray(0.5)},
    )
    out = train_many(
        problem,
        Settings(10_000, 10, 1.0, patience=50),
        {"w": jnp.ones((1, 2))},
        jnp.zeros(1),
        [0.1],
        jax.random.split(jax.random.key(0), 1),
    )
    assert int(out.steps[0, 0]) <= 70


def test_cosine_schedule_accepts_a_traced_learning_rate():
    settings = Settings(100, 10, schedule="cosine", warmup=10)
    opt = jax.jit(lambda lr: make_optimizer(settings, lr).init({"w": jnp.ones(2)}))
    assert opt(jnp.asarray(0.1)) is not None


def _plateau(accuracy):
    return Problem(
        lambda params, data, key: jnp.sum(params["w"] ** 2),
        lambda params, data: {"accuracy": jnp.asarray(accuracy)},
    )


@pytest.mark.parametrize(("accuracy", "stops"), [(0.5, True), (0.985, False)])
def test_patience_of_runs_spares_those_close_to_the_criterion(accuracy, stops):
    settings = Settings(1000, 10, 0.99, patience=50)
    keys = jax.random.split(jax.random.key(0), 1)
    runs = start_runs(settings, {"w": jnp.ones((1, 2))}, jnp.asarray([0.1]))
    runs = advance_runs(_plateau(accuracy), settings, runs, jnp.zeros((1, 1)), [0.1], keys, 1000, [0.98])
    assert (int(runs.step[0]) <= 70) == stops and not bool(runs.active[0])


def test_runs_advanced_in_spans_take_the_steps_train_takes(single_runs):
    """The work-queue API (start_runs / advance_runs) runs the same chunks as train, run by run."""
    problem, params, data, keys, ref = single_runs
    lrs = jnp.asarray(SPAN_LRS)
    runs = start_runs(SPANS, params, lrs)
    spans = 0
    while bool(jnp.any(runs.active)):
        runs = advance_runs(problem, SPANS, runs, data, lrs, keys, 96)  # rounded up to whole chunks
        spans += 1
        assert int(runs.step.max()) <= 128 * spans
    for i in range(2):
        assert int(runs.step[i]) == int(ref[i].steps[0])
        assert float(runs.best[i]) == pytest.approx(float(ref[i].best_metric[0]), abs=1e-6)
        assert bool(runs.best[i] >= 0.99) == bool(ref[i].reached[0])
    assert spans > 1


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        (Settings(0), "n_steps"),
        (Settings(10, eval_every=0), "eval_every"),
        (Settings(10, optimizer="lbfgs"), "unknown optimizer 'lbfgs'"),
        (Settings(10, schedule="step"), "unknown schedule 'step'"),
        (Settings(10, criterion=1.5), "criterion"),
        (Settings(10, patience=0), "patience"),
    ],
)
def test_bad_settings(settings, match):
    mem, params, data, keys = _batch(1)
    with pytest.raises(ConfigError, match=match):
        train_many(memory_problem(mem), settings, params, data, [0.1], keys)
