import functools

import jax
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from factrecall.core.errors import ConfigError
from factrecall.memories.targets import zipf_weights
from factrecall.recall import task

task_sizes = st.tuples(
    st.integers(1, 12), st.integers(1, 6), st.integers(1, 6), st.integers(3, 20), st.booleans()
)


# Each example has its own sizes, so its own programs: one compiled program per example (facts, then the
# batch) costs about half of running the functions op by op, which compiles each small operation anew.
@functools.partial(jax.jit, static_argnums=(0, 1))
def _facts_and_sample(t, B, seed):
    facts = task.facts_random(t, key=jax.random.key(seed))
    return facts, task.sample(t, facts, B, key=jax.random.key(seed + 1))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _facts_and_every_fact(t, n_contexts, seed):
    facts = task.facts_random(t, key=jax.random.key(seed))
    return facts, task.every_fact(t, facts, n_contexts, key=jax.random.key(seed + 1))


@settings(max_examples=6)
@given(task_sizes, st.integers(0, 2**30))
@example((1, 1, 1, 3, True), 0)  # the smallest sizes, with EOS (the first generated example has none)
def test_every_sequence_holds_one_subject_one_relation_and_ends_right(sizes, seed):
    S, R, D, T, eos = sizes
    t = task.recall_task(S, R, D, T=T, eos=eos)
    facts, b = _facts_and_sample(t, 64, seed)
    tok = np.asarray(b.tokens)
    is_s, is_r = tok < S, (tok >= S) & (tok < S + R)
    assert np.all(is_s.sum(1) == 1) and np.all(is_r.sum(1) == 1)  # exactly one each, so distinct positions
    np.testing.assert_array_equal(tok[is_s], np.asarray(b.subjects))
    np.testing.assert_array_equal(tok[is_r] - S, np.asarray(b.relations))
    if eos:
        assert np.all(tok[:, -1] == t.eos_id) and np.all(tok[:, :-1] != t.eos_id)
    else:
        assert np.all(tok[:, -1] == S + np.asarray(b.relations))
    noise = tok[~is_s & ~is_r & (tok != t.eos_id)]
    assert np.all((noise >= S + R) & (noise < S + R + t.n_noise))
    labels, r = np.asarray(b.labels), np.asarray(b.relations)
    assert np.all(labels // D == r)  # the label lies in its relation's block
    np.testing.assert_array_equal(labels, np.asarray(facts)[np.asarray(b.subjects), r])


def test_marginals_match_the_zipf_weights():
    t = task.recall_task(6, 4, 2, alpha_S=1.0, alpha_R=0.5)
    b = task.sample(t, task.facts_structured(t), 200_000, key=jax.random.key(0))
    p = np.asarray(zipf_weights(6, 6, 1.0))
    q = np.asarray(zipf_weights(4, 4, 0.5))
    np.testing.assert_allclose(np.bincount(np.asarray(b.subjects), minlength=6) / 200_000, p, atol=0.005)
    np.testing.assert_allclose(np.bincount(np.asarray(b.relations), minlength=4) / 200_000, q, atol=0.005)


def test_positions_are_uniform_and_distinct():
    t = task.recall_task(2, 2, 2, T=6)
    b = task.sample(t, task.facts_structured(t), 60_000, key=jax.random.key(3))
    tok = np.asarray(b.tokens)
    pos_s = np.argmax(tok < 2, axis=1)
    pos_r = np.argmax((tok >= 2) & (tok < 4), axis=1)
    assert np.all(pos_s != pos_r)
    for pos in (pos_s, pos_r):
        np.testing.assert_allclose(np.bincount(pos, minlength=5) / 60_000, 0.2, atol=0.01)


def test_every_fact_covers_the_grid_in_each_context():
    t = task.recall_task(5, 3, 4)
    facts = task.facts_random(t, key=jax.random.key(0))
    b = task.every_fact(t, facts, 3, key=jax.random.key(1))
    s = np.asarray(b.subjects).reshape(3, 5, 3)
    r = np.asarray(b.relations).reshape(3, 5, 3)
    np.testing.assert_array_equal(s[1], np.repeat(np.arange(5)[:, None], 3, 1))
    np.testing.assert_array_equal(r[2], np.repeat(np.arange(3)[None, :], 5, 0))
    np.testing.assert_array_equal(np.asarray(b.labels).reshape(3, 5, 3)[0], np.asarray(facts))
    assert not np.array_equal(np.asarray(b.tokens[:15]), np.asarray(b.tokens[15:30]))  # fresh contexts


def test_random_facts_use_every_answer_and_are_seeded():
    t = task.recall_task(200, 3, 4)
    a = np.asarray(task.facts_random(t, key=jax.random.key(0)))
    assert set(np.unique(a % 4)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(a, np.asarray(task.facts_random(t, key=jax.random.key(0))))


def test_sampling_compiles_inside_jit():
    t = task.recall_task(4, 4, 2)
    f = jax.jit(lambda k: task.sample(t, task.facts_structured(t), 8, key=k).tokens)
    assert f(jax.random.key(0)).shape == (8, 32)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"S": 0, "R": 1, "D": 1}, "subjects S must be ≥ 1, got 0"),
        ({"S": 1, "R": 1, "D": 0}, "answers per relation D must be ≥ 1"),
        ({"S": 1, "R": 1, "D": 1, "T": 2}, "sequence length T must be ≥ 3"),
        ({"S": 1, "R": 1, "D": 1, "n_noise": 0}, "noise positions but n_noise=0"),
        ({"S": 1, "R": 1, "D": 1, "alpha_S": -1.0}, "Zipf exponents must be ≥ 0"),
    ],
)
def test_bad_task_sizes(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        task.recall_task(**kwargs)


@settings(max_examples=10)  # each example runs on new shapes, so compiles its operations anew
@given(st.integers(1, 40), st.integers(1, 6), st.integers(1, 9))
def test_structured_facts_are_balanced_within_each_block(S, R, D):
    t = task.recall_task(S, R, D)
    a = np.asarray(task.facts_structured(t))
    assert np.all(a // D == np.arange(R)[None, :])  # in the relation's block
    counts = np.bincount(a[:, 0], minlength=D)[:D]
    hit = counts[counts > 0]
    assert counts.sum() == S and hit.max() - hit.min() <= 1 and len(hit) == min(S, D)
    assert np.all(np.diff(a[:, 0]) >= 0)  # floor(s·D/S) is non-decreasing in s


@settings(max_examples=5)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2**30))
def test_every_fact_labels_match_the_dictionary(S, R, n_contexts, seed):
    t = task.recall_task(S, R, 3, T=7)
    facts, b = _facts_and_every_fact(t, n_contexts, seed)
    tok = np.asarray(b.tokens)
    assert tok.shape == (n_contexts * S * R, 7) and np.all(tok[:, -1] == t.eos_id)
    s = tok[np.arange(len(tok)), np.argmax(tok < S, axis=1)]
    np.testing.assert_array_equal(np.asarray(b.labels), np.asarray(facts)[s, np.asarray(b.relations)])
