"""Transformer capacity (Figure 4 left) and the attention/MLP grid (Figure 4 right) at toy sizes."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from factrecall.core.errors import ConfigError
from factrecall.core.queue import RunQueue, search_queued
from factrecall.experiments.specs import TransformerCapacityPoint, build
from factrecall.recall import capacity as tc
from factrecall.recall import padded
from factrecall.recall.task import recall_task
from factrecall.recall.tradeoff import tradeoff
from factrecall.recall.training import Recipe

FAST = Recipe(n_steps=384, batch=64, eval_every=32, criterion=0.99, n_contexts=1)


def test_sizes_follow_the_scalings():
    # linear grows one subject or one relation at a time: S·R strictly increases, S = R on odd indices
    shapes = [tc.sizes(n, "linear", 8) for n in range(1, 12)]
    assert all(a[0] * a[1] < b[0] * b[1] for a, b in itertools.pairwise(shapes))
    assert all(abs(S - R) <= 1 and D == 8 for S, R, D in shapes)
    assert tc.sizes(tc.index_of(4, "linear"), "linear", 8) == (4, 4, 8)
    assert tc.sizes(4, "square", 8) == (16, 4, 8)
    assert tc.sizes(4, "distinct", 8) == (4, 4, 4)


def test_capacity_brackets_one_row_or_column(tiny_capacity):
    fields, params = tiny_capacity.fields, tiny_capacity.params  # tests/conftest.py: the same programs
    recipe = tc.trial_recipe(fields["n_steps"], fields["batch"], 0.99)
    shape = {k: fields[k] for k in ("d", "H", "d_h", "m", "D")}
    spec = tc.Spec(
        **shape, scaling="linear", recipe=recipe, lrs=tuple(fields["lrs"]), patience=fields["patience"]
    )
    result = tc.capacity(spec, (0,), guess=2)  # the default guess of 32 parameters (the sweep point uses it)
    n = result.n_per_seed[0]
    record = result.summary()
    S, R, _ = tc.sizes(n, "linear", fields["D"])
    assert record["params"] == params == 4 * 1 * 1 * 4 + 2 * 2 * 4 and record["facts"] == S * R
    assert record["attention_params"] + record["mlp_params"] == record["params"]
    stored = {t.N for t in result.trials if t.stored}
    failed = {t.N for t in result.trials if not t.stored}
    assert n in stored and (n + 1 in failed or record["capped"])  # the bracket is one size step wide
    S1, R1, _ = tc.sizes(n + 1, "linear", fields["D"])
    assert (record["facts_stored"], record["facts_failed"]) == (S * R, S1 * R1)
    assert record["stored_shape"] == [S, R] and record["failed_shape"] == [S1, R1]
    assert abs(S1 - S) + abs(R1 - R) == 1  # one more subject or one more relation
    assert 1 <= record["facts"] <= 100  # a 32-parameter model stores a few facts, not a hundred
    assert record["bits_per_param"] == pytest.approx(S * R * 1.0 / record["params"])
    assert record["criterion_on"] == "every-fact" and record["buckets"] == 1  # one compiled program


def test_a_padded_trial_is_its_unpadded_problem():
    """Padding adds rows that are never sampled and answers that never compete: the loss is unchanged."""
    d, D, T = 4, 3, 6  # TINY_CAPACITY's model (d = 4, H = 1, d_h = 1, m = 2): its initial weights are shared
    tight, wide = padded.bucket(3, 2, D, T), padded.bucket(7, 5, D, T)
    cfg = tc.TransformerConfig(d, 1, 1, 2, tight.vocab, tight.n_answers)
    weights = padded.initial_weights(cfg, 0)

    @jax.jit  # both buckets in one small program (eager dispatch takes longer)
    def measure(datas):
        out = []
        for pad, data in zip((tight, wide), datas, strict=True):
            c = cfg._replace(vocab=pad.vocab, n_out=pad.n_answers)
            loss = padded._loss(c, pad, 256, weights, data, jax.random.key(1))
            batch = padded.sample_live(pad, data, 256, key=jax.random.key(2))
            out.append((loss, batch, padded.live_fact_accuracy(c, pad, 2, weights, data)))
        return out

    measured = measure([padded.trial_data(pad, d, 0, 3, 2, D) for pad in (tight, wide)])
    for pad, (_, batch, accuracy) in zip((tight, wide), measured, strict=True):
        assert int(batch.subjects.max()) < 3 and int(batch.relations.max()) < 2
        noise = batch.tokens[:, :-1][(batch.tokens[:, :-1] >= pad.S + pad.R)]
        assert int(noise.max()) < pad.S + pad.R + 5  # noise from the live S + R noise tokens only
        assert 0.0 <= float(accuracy) <= 1.0
    assert float(measured[0][0]) == pytest.approx(float(measured[1][0]), rel=1e-5)


def test_a_seeds_tables_are_nested_over_sizes():
    """Every size of a seed's search cuts its problem from one table: a larger size holds the smaller one's
    subjects, relations, answers and facts (so storing is close to monotone in the size); seeds differ."""
    spec = tc.Spec(8, 2, 2, 4, 3, "linear", FAST, (3e-2,), None)
    family = tc.TransformerFamily(spec)
    pad = family.bucket(8)
    small, large = (family.data(0, N, 8) for N in (5, 12))  # 3 × 3 and 7 × 6 facts
    (S, R, _), (S1, R1, _) = tc.sizes(5, "linear", 3), tc.sizes(12, "linear", 3)
    assert (int(small["S"]), int(small["R"]), int(large["S"]), int(large["R"])) == (S, R, S1, R1)
    assert np.array_equal(small["facts"][:S, :R], large["facts"][:S, :R])
    rows = [*range(S), *range(pad.S, pad.S + R)]  # the live subjects' and relations' embeddings
    assert np.array_equal(small["wte"][np.array(rows)], large["wte"][np.array(rows)])
    assert np.array_equal(small["unembed"], large["unembed"])
    other = family.data(1, 12, 8)
    assert not np.array_equal(other["facts"][:S, :R], large["facts"][:S, :R])
    assert not np.array_equal(other["wte"], large["wte"])


def test_evaluation_contexts_are_independent_of_every_training_batch():
    """A trial's evaluation key is none of the keys its training steps draw from (step t: fold_in(key, t))."""
    spec = tc.Spec(8, 2, 2, 4, 3, "linear", FAST, (3e-2,), None)
    family = tc.TransformerFamily(spec)
    for seed, N in ((0, 5), (1, 2)):
        data = padded.trial_data(family.bucket(4), spec.d, seed, *tc.sizes(N, "linear", spec.D))
        key = family.key(seed, N)
        steps = jax.vmap(lambda t, k=key: jax.random.key_data(jax.random.fold_in(k, t)))(jnp.arange(1 << 14))
        evaluation = jax.random.key_data(data["eval_key"])
        assert not bool(jnp.any(jnp.all(steps == evaluation, axis=-1)))  # no step draws the evaluation
        assert not bool(jnp.all(jax.random.key_data(key) == evaluation))


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
        ({"criterion_on": "all"}, "criterion_on must be one of every-fact, sampled"),
    ],
)
def test_bad_specs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        shape = {"d": 8, "H": 2, "d_h": 2, "m": 8, "D": 8, "scaling": "linear"}
        tc.validate_spec(tc.Spec(**{**shape, "recipe": FAST, "lrs": (3e-2,), "patience": None, **kwargs}))


def test_the_race_runs_only_on_long_budgets():
    """The race (a run far behind another rate of its trial stops) starts at a quarter of the budget and never
    before 4,096 steps: on the default 16,384-step recipe from step 4,096; on 4,096 steps (the quick recipe)
    and shorter budgets not at all, where a slow rate far behind early can still be the one that stores."""
    spec = lambda n: tc.Spec(8, 2, 2, 4, 3, "linear", Recipe(n, 64, 128, 0.99), (1e-2, 3e-2), None)  # noqa: E731
    assert tc.TransformerFamily(spec(16384)).race == (tc.RACE_MARGIN, 4096) == (0.1, 4096)
    assert tc.TransformerFamily(spec(32768)).race == (0.1, 8192)
    assert tc.TransformerFamily(spec(8192)).race == (0.1, 4096)
    assert tc.TransformerFamily(spec(4096)).race is None and tc.TransformerFamily(spec(1024)).race is None


def test_without_early_stops_a_failing_run_trains_its_budget(tiny_capacity, monkeypatch):
    """``early_stops`` off: neither the race nor the stall rule stops a run (on the same search with them on,
    the stall rule stops runs at step 768), so with no patience a failed trial trains the whole budget; the
    record says which ran (the compiled program is the same)."""
    fields = {**tiny_capacity.fields, "patience": 0}
    on = build(TransformerCapacityPoint, fields).spec
    off = build(TransformerCapacityPoint, {**fields, "early_stops": False}).spec
    assert on.early_stops and not off.early_stops and off._replace(early_stops=True) == on
    longer = lambda s: tc.TransformerFamily(s._replace(recipe=s.recipe._replace(n_steps=16384)))  # noqa: E731
    assert longer(on).race == (0.1, 4096) and longer(off).race is None
    asked = []  # what the stall rule answered
    rule = tc.hopeless
    monkeypatch.setattr(tc, "hopeless", lambda *a, **k: asked.append(rule(*a, **k)) or asked[-1])
    with_stops = tc.capacity(on, (0,), guess=2)
    assert any(asked)  # with early stops on, the stall rule stopped runs of this search
    asked.clear()
    result = tc.capacity(off, (0,), guess=2)
    assert asked == []  # off: never asked
    failed = [t for t in result.trials if not t.stored]
    assert failed and all(t.steps == off.recipe.n_steps for t in failed)
    assert result.summary()["early_stops"] is False and with_stops.summary()["early_stops"] is True


def test_a_runs_numbers_do_not_depend_on_the_runs_beside_it(tiny_capacity):
    """XLA rounds a batch of one run per device differently from one of two or more, and (at d = 16) 2-3
    differently from 4 or more (benchmarks/RESULTS.md): the queue keeps at least tc.MIN_PER_DEVICE = 4 slots
    per device, so a run's weights are bit-identical in 1 (raised), 8 or 12 slots, and a seed's trials are the
    same searched alone (running ahead) or beside another seed (whose runs end, so the slots shrink)."""
    spec = build(TransformerCapacityPoint, {**tiny_capacity.fields, "patience": 0}).spec
    weights = []
    for n_slots in (1, 8, 12):
        family = tc.TransformerFamily(spec, 0)
        runner = RunQueue(family, n_slots, family.span, compact=False)
        assert runner.K >= 4 * jax.device_count() and runner.K % jax.device_count() == 0
        runner.queue.append((0, 5, 0))  # seed 0, S·R = 3·3, the first rate: two spans of 256 steps
        runner.advance()
        runner.advance()
        i = runner.slots.index((0, 5, 0))
        weights.append([np.asarray(leaf[i]) for leaf in jax.tree_util.tree_leaves(runner.host.params)])
    assert all(np.array_equal(a, b) for other in weights[1:] for a, b in zip(weights[0], other, strict=True))
    alone = tc.capacity(spec, (1,), guess=2).trials
    beside = [t for t in tc.capacity(spec, (0, 1), guess=2).trials if t.seed == 1]
    assert sorted(alone) == sorted(beside) and len(alone) >= 2


def test_a_size_run_ahead_never_opens_a_bucket(tiny_capacity):
    """The bucket is the current trials' (from the guess S = R = 3: k_pad 4): two trials ahead would also run
    S, R = 4, 3 at once, whose own bucket is 8, and pad every run to it (another rounding); so a search one or
    two trials ahead runs the same bucket and gets the same trials."""
    spec = build(TransformerCapacityPoint, {**tiny_capacity.fields, "patience": 0}).spec
    outcomes = []
    for ahead in (1, 2):
        family = tc.TransformerFamily(spec, ahead)
        options = {"n_max": tc.N_MAX, "rel_precision": 1e-9, "on_round": None}
        _, _, trials = search_queued(family, [1], tc.index_of(3, "linear"), **options)
        assert family.pads == {4}
        outcomes.append(sorted(trials))
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) >= 2
