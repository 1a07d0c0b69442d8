"""The problems of a transformer capacity search, padded to one bucket so that every size of a search, every
learning rate and every seed trains in one compiled program.

A search tests fact tables of many sizes (S, R, D) on one model shape. Each trial's task is embedded in a
bucket task of S_pad ≥ S subjects, R_pad ≥ R relations and D_pad ≥ D answers per relation (its own
noise count S_pad + R_pad), and carries its live sizes as data: training sequences draw subjects from
[0, S), relations from [0, R) and noise from the first S + R noise tokens, exactly the distribution of
the unpadded task; logits of answers outside the live ones (relation ≥ R or offset ≥ D) are −∞ in the
loss and in every evaluation, so the padded rows of the output vocabulary never compete. The trial's
model is therefore the unpadded model, up to how its embeddings are laid out.

The frozen embeddings and the fact table live in the data, not in the weights: the weights (Q, K, V, O,
W1, b1, W2) have the same shape at every size, and a pad change only re-stacks data. Every random table
is drawn on the host from the seed tuple (seed, D) role by role, relation by relation, so that a trial's
problem does not depend on the bucket it is padded to, and a seed's problems are **nested** over sizes: the
first S subjects, R relations, their answers and the facts among them are the same at every size ≥ (S, R),
so a larger table extends a smaller one (:func:`trial_data`; training batches and evaluation contexts are
drawn per size, :func:`trial_key`).

Two storage criteria (``criterion_on``): ``every-fact`` (ours: ``fact_accuracy`` over every fact in
``n_contexts`` fixed fresh contexts) and ``sampled`` (the paper's: accuracy on 1,024 test sequences
sampled from the task distribution, fixed per trial).

Paper: §4 and Figure 4 left (the capacity search); SPEC §2, §3.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Array, Float, Key, Params, substream
from factrecall.core.engine import Problem, cross_entropy
from factrecall.recall.task import RecallBatch, RecallTask, every_fact, place
from factrecall.recall.training import exact_fraction, logits_of
from factrecall.recall.transformer import EMBEDDINGS, TransformerConfig, forward, init

CRITERIA_ON: tuple[str, ...] = ("every-fact", "sampled")
SAMPLED_TESTS = 1024  # the paper's test sequences per evaluation (criterion_on = "sampled")


def bucket(S: int, R: int, D: int, T: int) -> RecallTask:
    """The bucket task of S_pad subjects, R_pad relations, D_pad answers each (noise S_pad + R_pad).

    >>> b = bucket(8, 8, 4, 32)
    >>> b.vocab, b.n_answers
    (33, 32)
    """
    return RecallTask(S, R, D, S + R, T)


def trial_source(seed: int, D: int) -> tuple[int, ...]:
    """The seed tuple every random table of a trial of ``seed`` with D answers per relation is drawn from (on
    the host): the same at every S and R, so that a seed's tables are nested over sizes."""
    return (seed, D)


def trial_data(pad: RecallTask, d: int, seed: int, S: int, R: int, D: int) -> dict[str, Any]:
    """The data of trial (seed, S, R, D) padded to the bucket ``pad``: embeddings, facts and live sizes.

    Subject, relation, noise and EOS embeddings are drawn from their own substreams (prefix-stable rows);
    relation r's D_pad answer embeddings and its column of the fact table from substreams of r. Rows and
    answers beyond the live sizes exist only as padding. The draws do not depend on S and R: a larger trial
    of the same seed and D holds the smaller one's table.

    >>> data = trial_data(bucket(6, 6, 4, 8), 8, 0, 4, 3, 4)
    >>> small = trial_data(bucket(4, 3, 4, 8), 8, 0, 4, 3, 4)
    >>> same = lambda a, b: bool(jnp.all(a == b))
    >>> same(data["facts"][:4, :3], small["facts"]), same(data["wte"][:4], small["wte"][:4])
    (True, True)
    >>> larger = trial_data(bucket(6, 6, 4, 8), 8, 0, 6, 5, 4)  # 6 × 5 facts: the 4 × 3 table and more
    >>> same(larger["facts"][:4, :3], small["facts"]), same(larger["unembed"], data["unembed"])
    (True, True)
    """
    src = trial_source(seed, D)
    rows = (pad.S, pad.R, pad.n_noise, 1)
    subj, rel, noise, eos = (_gaussian(substream(src, i), n, d) for i, n in enumerate(rows))
    answers = [_gaussian(substream(substream(src, 4), r), pad.D, d) for r in range(pad.R)]
    u = np.stack([_uniform(substream(substream(src, 5), r), pad.S) for r in range(pad.R)], axis=1)
    offset = np.minimum(np.floor(u * D), D - 1).astype(np.int32)
    return {
        "wte": jnp.asarray(np.concatenate([subj, rel, noise, eos])),
        "unembed": jnp.asarray(np.concatenate(answers)),
        "facts": jnp.asarray(offset + pad.D * np.arange(pad.R, dtype=np.int32)[None, :]),
        "S": jnp.asarray(S, jnp.int32),
        "R": jnp.asarray(R, jnp.int32),
        "D": jnp.asarray(D, jnp.int32),
        "eval_key": jax.random.fold_in(trial_key(seed, S, R, D), 1),
    }


def _gaussian(src: tuple[int, ...], n: int, d: int) -> np.ndarray:
    """n rows of N(0, 1/d) entries drawn on the host, as :func:`factrecall.memories.embeddings.gaussian` draws
    from a seed tuple (NumPy throughout: no program is compiled per bucket shape)."""
    return np.random.default_rng(src).standard_normal((n, d), dtype=np.float32) / np.sqrt(np.float32(d))


def _uniform(src: tuple[int, ...], n: int) -> np.ndarray:
    return np.random.default_rng(src).random(n, dtype=np.float32)


def trial_key(seed: int, S: int, R: int, D: int) -> Key:
    """The root key of trial (seed, S, R, D), split into two independent children: ``fold_in(·, 1)`` fixes
    its evaluation contexts (:func:`trial_data`'s ``eval_key``) and ``fold_in(·, 2)`` is its batch key
    (:func:`batch_key`; step t of training samples from ``fold_in(batch_key, t)``).

    The batch key is a child of the root, not the root itself: were it the root, step 1's batch would be
    drawn from ``fold_in(root, 1)``, the evaluation's key, and the "fresh" evaluation contexts would share
    their randomness with a training batch. As siblings, no step index t reaches the evaluation's key.
    """
    key = jax.random.key(seed)
    for size in (S, R, D):
        key = jax.random.fold_in(key, size)
    return key


def batch_key(seed: int, S: int, R: int, D: int) -> Key:
    """The batch key of trial (seed, S, R, D): ``fold_in(trial_key, 2)`` (see :func:`trial_key`)."""
    return jax.random.fold_in(trial_key(seed, S, R, D), 2)


def initial_weights(cfg: TransformerConfig, seed: int) -> Params:
    """The weights every trial of ``seed`` starts from (the embeddings are the trial's data)."""
    return _weights(cfg._replace(vocab=1, n_out=1), jax.random.fold_in(jax.random.key(seed), 0))


@functools.partial(jax.jit, static_argnums=0)
def _weights(cfg: TransformerConfig, key: Key) -> Params:
    return {k: v for k, v in init(cfg, key=key).items() if k not in EMBEDDINGS}


def _model(weights: Params, data: dict[str, Any]) -> Params:
    return {**weights, "wte": data["wte"], "unembed": data["unembed"]}


def _live_logits(pad: RecallTask, data: dict[str, Any], logits: Float[Array, "B n_out"]) -> Array:
    """``logits`` with the answers outside the trial's live ones set to −∞."""
    ids = jnp.arange(pad.n_answers)
    live = (ids // pad.D < data["R"]) & (ids % pad.D < data["D"])
    return jnp.where(live, logits, -jnp.inf)


def sample_live(pad: RecallTask, data: dict[str, Any], B: int, *, key: Key) -> RecallBatch:
    """B sequences of the trial's live task: s ~ U[0, S), r ~ U[0, R), noise from its S + R noise tokens."""
    k_s, k_r, k_seq = jax.random.split(key, 3)
    s = jax.random.randint(k_s, (B,), 0, data["S"])
    r = jax.random.randint(k_r, (B,), 0, data["R"])
    tokens = place(pad, s, r, key=k_seq, n_noise=data["S"] + data["R"])
    return RecallBatch(tokens, data["facts"][s, r], s, r)


def _loss(cfg: TransformerConfig, pad: RecallTask, batch: int, weights: Params, data: Any, key: Key) -> Array:
    seqs = sample_live(pad, data, batch, key=key)
    p = _model(weights, data)
    logits = jax.vmap(lambda t: forward(p, t, kind=cfg.attention))(seqs.tokens)
    return cross_entropy(_live_logits(pad, data, logits), seqs.labels)


def live_fact_accuracy(
    cfg: TransformerConfig, pad: RecallTask, n_contexts: int, weights: Params, data: dict[str, Any]
) -> Float[Array, ""]:
    """``fact_accuracy`` over the trial's S·R live facts, each in ``n_contexts`` fixed fresh contexts."""
    batch = every_fact(pad, data["facts"], n_contexts, key=data["eval_key"], n_noise=data["S"] + data["R"])
    logits = _live_logits(pad, data, logits_of(_model(weights, data), batch.tokens, cfg))
    live = (batch.subjects < data["S"]) & (batch.relations < data["R"])
    hit = (jnp.argmax(logits, axis=-1) == batch.labels) & live
    return exact_fraction(jnp.sum(hit), n_contexts * data["S"] * data["R"])


def sampled_accuracy(
    cfg: TransformerConfig, pad: RecallTask, weights: Params, data: dict[str, Any]
) -> Float[Array, ""]:
    """Accuracy on :data:`SAMPLED_TESTS` sequences sampled from the trial's task (fixed per trial)."""
    batch = sample_live(pad, data, SAMPLED_TESTS, key=data["eval_key"])
    logits = _live_logits(pad, data, logits_of(_model(weights, data), batch.tokens, cfg))
    return jnp.mean((jnp.argmax(logits, axis=-1) == batch.labels).astype(jnp.float32))


def _evaluate(
    cfg: TransformerConfig, pad: RecallTask, n_contexts: int, criterion_on: str, weights: Params, data: Any
) -> dict[str, Float[Array, ""]]:
    if criterion_on == "sampled":
        return {"accuracy": sampled_accuracy(cfg, pad, weights, data)}
    return {"accuracy": live_fact_accuracy(cfg, pad, n_contexts, weights, data)}


@functools.cache
def padded_problem(
    cfg: TransformerConfig, pad: RecallTask, batch: int, n_contexts: int, criterion_on: str
) -> Problem:
    """The engine :class:`Problem` of a search's trials in bucket ``pad`` (cached: one program per bucket);
    its monitored ``accuracy`` is the storage criterion's (see the module)."""
    return Problem(
        loss=functools.partial(_loss, cfg, pad, batch),
        evaluate=functools.partial(_evaluate, cfg, pad, n_contexts, criterion_on),
        monitor="accuracy",
    )
