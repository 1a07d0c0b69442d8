"""The factual-recall task meets the transformer: evaluation over every fact (training lands here too).

A fact (s, r) is answered correctly in a context when ``argmax logits = a*(s, r)``. We evaluate every one of
the S·R facts in ``n_contexts`` fresh random contexts: ``fact_accuracy`` is the fraction of (fact, context)
pairs answered correctly, ``facts_stored`` the fraction of facts answered correctly in every context, and
``fact_loss`` the mean cross-entropy (nats) over all pairs, which feeds the loss-aware bit bound (SPEC §5).

Paper: §4 (the task and the model), SPEC §2 (evaluation over all facts).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from factrecall.base import Array, Float, Int, Key, Params
from factrecall.engine import cross_entropy
from factrecall.task import RecallTask, every_fact
from factrecall.transformer import TransformerConfig, forward

EVAL_CHUNK = 4096  # sequences per evaluation chunk: bounds memory at paper scale


class FactScores(NamedTuple):
    """Evaluation of a model over every fact."""

    fact_accuracy: Float[Array, ""]
    facts_stored: Float[Array, ""]
    fact_loss: Float[Array, ""]
    correct: Float[Array, "S R"]  # per fact: fraction of its contexts answered correctly


def logits_of(
    params: Params, tokens: Int[Array, "B T"], cfg: TransformerConfig, **ablate: object
) -> Float[Array, "B n_out"]:
    """Logits of a batch of sequences, in chunks of :data:`EVAL_CHUNK` (``ablate``: see ``forward``)."""
    one = functools.partial(forward, params, kind=cfg.attention, **ablate)
    return jax.lax.map(one, tokens, batch_size=EVAL_CHUNK)


def score_facts(
    params: Params,
    cfg: TransformerConfig,
    task: RecallTask,
    facts: Int[Array, "S R"],
    n_contexts: int = 4,
    *,
    key: Key,
    **ablate: object,
) -> FactScores:
    """Accuracy and loss over all S·R facts, each in ``n_contexts`` fresh contexts (jit-compatible).

    >>> from factrecall.task import recall_task, facts_random
    >>> from factrecall.transformer import transformer
    >>> task = recall_task(4, 3, 2, T=8)
    >>> cfg = TransformerConfig(d=8, H=2, d_h=4, m=8, vocab=task.vocab, n_out=task.n_answers)
    >>> params = transformer(cfg).init(jax.random.key(0))
    >>> facts = facts_random(task, key=jax.random.key(1))
    >>> scores = score_facts(params, cfg, task, facts, key=jax.random.key(2))
    >>> scores.correct.shape, 0.0 <= float(scores.fact_accuracy) <= 1.0
    ((4, 3), True)
    """
    batch = every_fact(task, facts, n_contexts, key=key)
    logits = logits_of(params, batch.tokens, cfg, **ablate)
    hit = (jnp.argmax(logits, axis=-1) == batch.labels).astype(jnp.float32)
    correct = hit.reshape(n_contexts, task.S, task.R).mean(axis=0)
    return FactScores(
        fact_accuracy=jnp.mean(hit),
        facts_stored=jnp.mean((correct == 1.0).astype(jnp.float32)),
        fact_loss=cross_entropy(logits, batch.labels),
        correct=correct,
    )
