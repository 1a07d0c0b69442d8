import jax
import jax.numpy as jnp
import numpy as np

from factrecall.task import facts_random, recall_task
from factrecall.transformer import TransformerConfig, transformer


def test_scores_count_contexts_and_facts(key, monkeypatch):
    from factrecall import recall

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
    scores = recall.score_facts(params, cfg, task, facts, 2, key=key)
    correct = np.ones((4, 3))
    correct[0, 0], correct[1, 1] = 0.0, 0.5
    np.testing.assert_allclose(scores.correct, correct)
    assert abs(float(scores.facts_stored) - 10 / 12) < 1e-6
    assert abs(float(scores.fact_accuracy) - (10 + 0.5) / 12) < 1e-6
