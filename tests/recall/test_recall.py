import jax
import jax.numpy as jnp
import numpy as np
import pytest

from factrecall.recall.task import facts_random, recall_task
from factrecall.recall.transformer import TransformerConfig, transformer


def test_scores_count_contexts_and_facts(key, monkeypatch):
    from factrecall.recall import training as recall

    task = recall_task(4, 3, 2, T=8)
    facts = facts_random(task, key=key)
    cfg = TransformerConfig(d=8, H=1, d_h=4, m=0, vocab=task.vocab, n_out=task.n_answers)
    params = transformer(cfg).init(key)

    def oracle(params, tokens, cfg, **ablate):
        # answers every fact except (0, 0), and (1, 1) in half the contexts
        s = jnp.argmax(tokens < task.S, axis=1)
        s = jnp.take_along_axis(tokens, s[:, None], 1)[:, 0]
        r = (
            jnp.take_along_axis(
                tokens, jnp.argmax((tokens >= task.S) & (tokens < task.S + task.R), 1)[:, None], 1
            )[:, 0]
            - task.S
        )
        ans = facts[s, r]
        wrong = ((s == 0) & (r == 0)) | (
            (s == 1) & (r == 1) & (jnp.arange(tokens.shape[0]) < tokens.shape[0] // 2)
        )
        ans = jnp.where(wrong, (ans + 1) % task.n_answers, ans)
        return jax.nn.one_hot(ans, task.n_answers) * 10.0

    monkeypatch.setattr(recall, "logits_of", oracle)
    scores = jax.jit(lambda p: recall.score_facts(p, cfg, task, facts, 2, key=key))(params)  # one program
    correct = np.ones((4, 3))
    correct[0, 0], correct[1, 1] = 0.0, 0.5
    np.testing.assert_allclose(scores.correct, correct)
    assert abs(float(scores.facts_stored) - 10 / 12) < 1e-6
    assert abs(float(scores.fact_accuracy) - (10 + 0.5) / 12) < 1e-6


# ------------------------------------------------------------------------------------- training, save, load

# the suite's tiny transformer (tests/conftest.py: TINY_TRAIN, trained once as the `tiny_model` fixture)
TINY = recall_task(4, 4, 2, T=6)
TINY_CFG = TransformerConfig(d=16, H=2, d_h=4, m=16, vocab=TINY.vocab, n_out=TINY.n_answers)


def _tiny_recipe():
    from factrecall.recall.training import EVAL_EVERY, Recipe

    return Recipe(n_steps=1024, batch=128, eval_every=EVAL_EVERY, criterion=1.0)


def test_all_correct_is_exactly_one(key, monkeypatch):
    from factrecall.recall import training as recall

    task = recall_task(3, 7, 2, T=5)  # 3 contexts · 21 facts: n·(1/n) ≠ 1 in float32 for many n
    facts = facts_random(task, key=key)
    cfg = TransformerConfig(d=8, H=1, d_h=4, m=0, vocab=task.vocab, n_out=task.n_answers)
    params = transformer(cfg).init(key)

    def oracle(params, tokens, cfg, **ablate):
        s = tokens[:, :-1].min(axis=1)  # subjects have the smallest ids
        r = jnp.where((tokens >= task.S) & (tokens < task.S + task.R), tokens, 10**6).min(axis=1) - task.S
        return jax.nn.one_hot(facts[s, r], task.n_answers)

    monkeypatch.setattr(recall, "logits_of", oracle)
    scores = jax.jit(lambda p: recall.score_facts(p, cfg, task, facts, 3, key=key))(params)
    assert float(scores.fact_accuracy) == 1.0 and float(scores.facts_stored) == 1.0
    assert int(scores.n_correct) == 3 * 21


def test_training_stores_tiny_task_and_report_counts(tiny_model, key):
    from factrecall.recall import models

    model = tiny_model  # recall.train(TINY_CFG, TINY, facts, _tiny_recipe(), (1e-2, 3e-2), seed=0)
    assert (model.cfg, model.task, model.info["recipe"]) == (TINY_CFG, TINY, _tiny_recipe()._asdict())
    assert model.info["reached"] and model.info["steps"] < 1024 and model.info["steps"] % 64 == 0
    assert model.info["lr"] in (1e-2, 3e-2) and model.info["seed"] == 0
    record = models.report(model, key=key)
    assert record["fact_accuracy"] == 1.0 and record["facts"] == 16
    assert record["params"] == 4 * 2 * 4 * 16 + 2 * 16 * 16
    assert record["attention_params"] + record["mlp_params"] == record["params"]
    assert record["sampled_accuracy"] > 0.99
    assert record["bits_per_param"] == 16 * 1.0 / record["params"]


def test_untrained_model_is_near_chance(key):
    """The report of the tiny model at its initialisation (as training starts) is near chance, not stored."""
    from factrecall.recall import models
    from factrecall.recall import training as recall

    facts = facts_random(TINY, key=key)
    untrained = recall.Trained(transformer(TINY_CFG).init(key), TINY_CFG, TINY, facts, {})
    assert models.report(untrained, key=key)["fact_accuracy"] < 0.9


def test_save_and_load_round_trip(tiny_model, key, tmp_path):
    from factrecall.recall import models

    model = tiny_model
    path = tmp_path / "m.npz"
    models.save(path, model)
    back = models.load(path)
    assert back.cfg == TINY_CFG and back.task == TINY and back.info == model.info
    np.testing.assert_array_equal(back.facts, model.facts)
    for k, v in model.params.items():
        np.testing.assert_array_equal(back.params[k], v)
    assert models.report(back, key=key)["fact_accuracy"] == models.report(model, key=key)["fact_accuracy"]
    with np.load(path, allow_pickle=False) as z:  # readable without pickle
        assert "param/Q" in z.files and "meta" in z.files


def test_load_rejects_other_files(tmp_path):
    from factrecall.core.errors import ConfigError
    from factrecall.recall import models

    with pytest.raises(ConfigError, match="does not exist"):
        models.load(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_text("hello")
    with pytest.raises(ConfigError, match="not a saved factrecall model"):
        models.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", meta=np.array('{"format": "x"}'), facts=np.zeros((1, 1)))
    with pytest.raises(ConfigError, match="expected 'factrecall-transformer'"):
        models.load(tmp_path / "other.npz")


def test_padded_training_equals_unpadded(key):
    """A model padded with inert heads/units trains exactly like the small one (prefix-stable init)."""
    from factrecall.recall import models
    from factrecall.recall import training as recall

    recipe, lrs = _tiny_recipe(), jnp.array([1e-2, 3e-2])  # the tiny model's program (compiled once)
    facts = facts_random(TINY, key=key)[None]
    keys = jax.random.key(3)[None]
    small = recall.train_batch(TINY_CFG, TINY, recipe, facts, jnp.array([[2, 16]]), lrs, key=keys)
    big_cfg = TINY_CFG._replace(H=5, m=40)
    big = recall.train_batch(big_cfg, TINY, recipe, facts, jnp.array([[2, 16]]), lrs, key=keys)
    np.testing.assert_array_equal(big.steps, small.steps)
    for j in range(len(lrs)):
        unpadded = models.unpad(jax.tree_util.tree_map(lambda x, j=j: x[0, j], big.params), TINY_CFG)
        for k, v in unpadded.items():
            np.testing.assert_allclose(v, small.params[k][0, j], rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(big.loss_curve, small.loss_curve, rtol=1e-4)
    # padded weights stayed exactly zero
    assert float(jnp.abs(big.params["Q"][0, :, 2:]).max()) == 0.0
    assert float(jnp.abs(big.params["W2"][0, :, 16:]).max()) == 0.0
    assert float(jnp.abs(big.params["W1"][0, :, :, 16:]).max()) == 0.0


def test_bad_recipe():
    from factrecall.core.errors import ConfigError
    from factrecall.recall import training as recall

    with pytest.raises(ConfigError, match="batch must be ≥ 1"):
        recall.validate_recipe(_tiny_recipe()._replace(batch=0))
    with pytest.raises(ConfigError, match=r"criterion must be in \(0, 1\]"):
        recall.validate_recipe(_tiny_recipe()._replace(criterion=1.5))


def test_report_bits_follow_each_relations_answer_count(key, monkeypatch):
    """A fact table with uneven answers per relation: bits are Σ log2 D_r over the facts, not S·R·log2 D."""
    from factrecall.recall import models
    from factrecall.recall import training as recall

    task = recall_task(2, 2, 4, T=6)
    cfg = TransformerConfig(d=8, H=1, d_h=4, m=4, vocab=task.vocab, n_out=task.n_answers)
    table = {"source": "t", "subjects": ["a", "b"], "relations": ["p", "q"]}
    table["answers"] = [["w", "x", "y", "z"], ["u", "v"]]  # D_p = 4 (2 bits), D_q = 2 (1 bit)
    facts = jnp.array([[0, 4], [1, 5]])
    model = recall.Trained(transformer(cfg).init(key), cfg, task, facts, {"table": table})
    correct = jnp.array([[1.0, 1.0], [0.75, 1.0]])  # (b, p) wrong in one of 4 contexts: not stored
    scores = recall.FactScores(jnp.float32(0.9375), jnp.float32(0.75), jnp.float32(0.1), correct, 15)
    monkeypatch.setattr(models, "score_facts_jit", lambda *a, **k: scores)
    monkeypatch.setattr(models, "sampled_accuracy", lambda *a, **k: 1.0)
    record = models.report(model, 4, key=key)
    assert record["bits"] == 2 * 2 + 2 * 1 and record["bits_stored"] == 2 + 1 + 1
    assert record["facts_stored"] == 0.75 and record["bits_per_param"] == 4 / record["params"]
    synthetic = models.report(model._replace(info={}), 4, key=key)
    assert synthetic["bits"] == 4 * 2 and synthetic["bits_stored"] == 3 * 2


def test_kept_run_follows_the_one_rule():
    """Diverged runs are never kept; the largest best metric wins, a tie the first rate; else none is kept."""
    from factrecall.core.engine import RunResult
    from factrecall.recall.training import kept_runs

    best = np.array([[0.5, 0.9, 0.9], [0.95, 0.9, 0.1], [0.7, 0.8, -np.inf]], np.float32)
    diverged = np.array([[False, False, False], [True, False, False], [True, True, True]])
    steps = np.array([[64, 128, 192], [32, 96, 160], [16, 16, 16]])
    out = RunResult({}, {}, best, best, steps, best >= 0.9, diverged, best, {})
    first, second, none = kept_runs(out, (1e-3, 3e-3, 1e-2))
    assert (first.index, first.kept, first.lr, first.steps, first.diverged) == (1, True, 3e-3, 128, 0)
    assert first.accuracy == pytest.approx(0.9) and first.reached
    assert (second.index, second.lr, second.diverged) == (1, 3e-3, 1)  # 0.95 diverged: not a result
    assert (none.kept, none.accuracy, none.reached, none.lr, none.diverged) == (False, 0.0, False, 1e-3, 3)


def test_train_seeds_keeps_one_run_per_seed():
    """The unmasked path: one model per seed, each on its own facts; the kept run's parameters come back."""
    from factrecall.recall import training as recall

    facts = jnp.stack([facts_random(TINY, key=jax.random.key(s)) for s in (0, 1)])
    runs = recall.train_seeds(TINY_CFG, TINY, _tiny_recipe(), facts, (1e-2, 3e-2), (0, 1))
    assert len(runs) == 2 and all(run.reached and run.lr in (1e-2, 3e-2) for run, _ in runs)
    n_contexts = _tiny_recipe().n_contexts
    for seed, (run, params) in enumerate(runs):  # scored again in the run's own evaluation contexts
        contexts = jax.random.fold_in(jax.random.key(seed), 1)
        scores = recall.score_facts_jit(params, TINY_CFG, TINY, facts[seed], n_contexts, key=contexts)
        assert float(scores.fact_accuracy) == run.accuracy == 1.0 and params["Q"].shape == (2, 16, 4)
