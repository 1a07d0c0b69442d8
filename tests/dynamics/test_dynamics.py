"""The simplified model's training dynamics: sampler invariants, the loss split, and the three stages.

One module-scoped run of the paper's setting (S=16, R=4, D=8, batch 1024, test set 2^14) at lr 0.4 for
1,536 steps: escape times scale as 1/lr, so this is the paper's curve (lr 0.1, 8,192 steps) 4× faster.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pydantic import ValidationError

from factrecall.core.errors import TrainingError
from factrecall.dynamics import simplified
from factrecall.dynamics import trajectory as dynamics
from factrecall.recall.task import recall_task

FAST = dynamics.DynamicsSpec(lr=0.4, n_steps=1536)


@pytest.fixture(scope="module")
def default_run():
    traj = dynamics.trajectory(FAST)
    return traj, dynamics.summarize(FAST, traj)


def test_three_stages_are_found_on_the_default_run(default_run):
    traj, summary = default_run
    assert [s["name"] for s in summary["stages"]] == ["uniform", "hallucination", "learned"]
    assert traj.curves["loss"][0] == pytest.approx(math.log(32), rel=1e-4)
    assert summary["final_loss"] <= 0.05 and summary["final_accuracy"] == 1.0


def test_hallucination_plateau_at_log_D_with_the_relation_known(default_run):
    _, summary = default_run
    (halluc,) = [s for s in summary["stages"] if s["name"] == "hallucination"]
    assert halluc["loss"] == pytest.approx(math.log(8), rel=0.05)
    assert summary["relation_accuracy_in_hallucination"] >= 0.99


def test_subject_accuracy_is_chance_on_the_plateau(default_run):
    traj, summary = default_run
    (halluc,) = [s for s in summary["stages"] if s["name"] == "hallucination"]
    inside = (traj.steps >= halluc["start"]) & (traj.steps <= halluc["end"])
    # ≈ 1/D: a confident answer of the right relation, the subject's a guess (the plateau's last point
    # already sees the subject transition begin)
    assert abs(np.median(traj.curves["accuracy"][inside]) - 1 / 8) < 0.02


def test_measured_transitions_match_the_prediction(default_run):
    _, summary = default_run
    for name in ("relation", "subject"):
        assert summary["measured"][name] == pytest.approx(summary["predicted"][name], rel=0.3)


def test_sample_counts_invariants(key):
    task = recall_task(5, 3, 2, T=10, alpha_S=1.0)
    x = simplified.sample_counts(task, 20000, key=key)
    c = np.asarray(x.counts)
    assert np.all(c.sum(axis=1) == task.T) and np.all(c[:, task.eos_id] == 1)
    assert np.all(c[:, : task.S].sum(axis=1) == 1) and np.all(c[:, task.S : task.S + task.R].sum(axis=1) == 1)
    assert np.all(c[np.arange(len(c)), np.asarray(x.subjects)] == 1)
    p = 1 / np.arange(1, 6)
    freq = np.bincount(np.asarray(x.subjects), minlength=5) / len(c)
    np.testing.assert_allclose(freq, p / p.sum(), atol=0.01)


def test_loss_split_on_handmade_logits():
    facts = jnp.array([[0, 2], [1, 3]])  # S=2, R=2, D=2
    # all mass on block of r=0, spread evenly inside it: relation known, subject not
    logits = jnp.log(jnp.array([[0.5, 0.5, 1e-9, 1e-9]]))
    m = dynamics.metrics(logits, jnp.array([1]), jnp.array([0]), facts)
    assert float(m["relation_loss"]) == pytest.approx(0.0, abs=1e-6)
    assert float(m["loss"]) == pytest.approx(math.log(2), abs=1e-6)
    assert float(m["subject_loss"]) == pytest.approx(math.log(2), abs=1e-6)
    assert float(m["relation_accuracy"]) == 1.0


@pytest.mark.parametrize(
    "change",
    [  # softmax attention with random embeddings; random facts under gradient flow (2 substeps)
        {"attention": "softmax", "embeddings": "random", "lr": 1.0},
        {"facts": "random", "substeps": 2, "lr": 0.3},
    ],
)
def test_variants_train(change):
    spec = dynamics.DynamicsSpec(S=4, R=2, D=2, n_steps=256, n_test=512, B=256, **change)
    traj = dynamics.trajectory(spec)
    assert traj.steps.tolist() == [0, 64, 128, 192, 256]
    assert np.all(np.isfinite(traj.curves["loss"])) and traj.curves["loss"][-1] < traj.curves["loss"][0] - 0.1


def test_transformer_model_trains():
    spec = dynamics.DynamicsSpec(
        S=4, R=2, D=2, n_steps=128, n_test=256, B=128, model="transformer", d=16, H=1, d_h=8
    )
    traj = dynamics.trajectory(spec)
    assert traj.curves["loss"][-1] < traj.curves["loss"][0]
    assert dynamics.summarize(spec, traj)["predicted"] is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"model": "rnn"}, "model\n  Input should be 'simplified' or 'transformer'"),
        ({"attention": "relu"}, "attention\n  Input should be 'linear' or 'softmax'"),
        ({"n_steps": 100}, "n_steps=100 must be a multiple of eval_every=64"),
        ({"init": 0.0}, "init must be > 0"),
        ({"lr": -1.0}, "lr\n  Input should be greater than 0"),
        ({"lr": math.inf}, "lr must be a positive number, got lr=inf"),
        ({"S": 0}, "S\n  Input should be greater than or equal to 1"),
        ({"d": 7}, "one-hot embeddings need d = vocab = 41, got d=7"),
    ],
)
def test_bad_specs_are_rejected_when_built(change, match):
    with pytest.raises(ValidationError, match=match):
        dynamics.DynamicsSpec(**change)


# the sizes of trajectory's example (its doctest; the sweep's dynamics point): shared programs and data
def test_divergence_is_a_training_error():
    with pytest.raises(TrainingError, match="diverged"):
        dynamics.trajectory(dynamics.DynamicsSpec(S=4, R=2, D=2, n_steps=128, n_test=256, B=64, lr=1e30))


def test_curves_csv_has_a_row_per_evaluation(key):
    spec = dynamics.DynamicsSpec(S=4, R=2, D=2, n_steps=128, n_test=256, B=64)
    text = dynamics.curves_csv(dynamics.trajectory(spec))
    lines = text.strip().splitlines()
    assert lines[0].split(",") == ["step", *dynamics.METRICS] and len(lines) == 4
    assert jax.numpy.isfinite(float(lines[-1].split(",")[1]))
