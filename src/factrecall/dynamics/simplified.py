"""The paper's simplified model of factual recall (Eq. 15): its parameters, its logits, and its inputs
sampled as token counts.

One key-query matrix A ∈ R^{d×d} and one value matrix V ∈ R^{d×R·D} map straight to the answer logits,
over fixed embeddings x_t (one-hot by default, d = vocab):

    logits = Σ_t (x_Tᵀ A x_t) · Vᵀ x_t        (linear attention; softmax: weights softmax_t(x_Tᵀ A x_t)).

It has no positions, so a sequence enters only through its token counts c ∈ N^vocab and its last token:
logits = Vᵀ Eᵀ (c ⊙ (E Aᵀ x_T)) with E the embedding table. :func:`sample_counts` samples those counts
directly (subject, relation, EOS and T − 3 uniform noise tokens), which is exact and costs O(vocab·d) per
sequence instead of O(T·d).

Paper: §5, Eq. (15); SPEC §6.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from factrecall.core.base import Array, Float, Int, Key, Params, categorical, flat
from factrecall.recall.task import RecallTask


class Counts(NamedTuple):
    """Sequences of the simplified model as token counts (no positions) plus the ids asked about."""

    counts: Float[Array, "B vocab"]
    last: Int[Array, " B"]
    subjects: Int[Array, " B"]
    relations: Int[Array, " B"]


def init_params(d: int, n_out: int, init: float) -> Params:
    """A and V with every entry ε = ``init`` (the paper starts near the saddle at 0).

    >>> {k: v.shape for k, v in init_params(5, 4, 1e-5).items()}
    {'A': (5, 5), 'V': (5, 4)}
    """
    return {"A": jnp.full((d, d), init), "V": jnp.full((d, n_out), init)}


def sample_counts(task: RecallTask, B: int, *, key: Key) -> Counts:
    """B fresh sequences as counts: s ~ p_s (Zipf), r ~ q_r, EOS, and T − 3 uniform noise tokens.

    The same distribution as ``task.sample`` with positions forgotten (the simplified model has none).

    >>> from factrecall.recall.task import recall_task
    >>> task = recall_task(4, 2, 3, T=8)
    >>> c = sample_counts(task, 5, key=jax.random.key(0))
    >>> c.counts.shape, c.counts.sum(axis=1).tolist()
    ((5, 13), [8.0, 8.0, 8.0, 8.0, 8.0])
    """
    k_s, k_r, k_n = jax.random.split(key, 3)
    log_p = -task.alpha_S * jnp.log(jnp.arange(1, task.S + 1.0))
    log_q = -task.alpha_R * jnp.log(jnp.arange(1, task.R + 1.0))
    s = categorical(k_s, log_p, B)
    r = categorical(k_r, log_q, B)
    first_noise = task.S + task.R
    noise = flat(jax.random.randint, k_n, (B, task.T - 3), first_noise, first_noise + max(task.n_noise, 1))
    counts = jnp.zeros((B, task.vocab)).at[jnp.arange(B)[:, None], noise].add(1.0)
    counts = counts.at[jnp.arange(B), s].add(1.0).at[jnp.arange(B), task.S + r].add(1.0)
    counts = counts.at[:, task.eos_id].add(1.0)
    return Counts(counts, jnp.full((B,), task.eos_id), s, r)


def simplified_logits(
    params: Params, E: Float[Array, "vocab d"] | None, x: Counts, attention: str = "linear"
) -> Float[Array, "B n_out"]:
    """Logits of the simplified model, Σ_t a_t Vᵀ x_t with a_t = x_Tᵀ A x_t (or its softmax over t).

    ``E = None`` means one-hot embeddings (E = I, d = vocab), computed without the products with I.

    >>> p = {"A": jnp.ones((3, 3)), "V": jnp.eye(3)[:, :2]}
    >>> x = Counts(jnp.array([[2.0, 1.0, 0.0]]), jnp.array([1]), jnp.array([0]), jnp.array([0]))
    >>> simplified_logits(p, None, x).tolist() == simplified_logits(p, jnp.eye(3), x).tolist() == [[2.0, 1.0]]
    True
    """
    onehot = E is None  # x_t = e_t: skip the products with the identity
    q = params["A"][x.last] if onehot else E[x.last] @ params["A"]  # x_Tᵀ A, (B, d)
    scores = q if onehot else q @ E.T  # per token type, (B, vocab)
    if attention == "softmax":
        w = jax.nn.softmax(
            jnp.where(x.counts > 0, scores + jnp.log(jnp.maximum(x.counts, 1e-30)), -jnp.inf), axis=-1
        )
    else:
        w = x.counts * scores
    return (w if onehot else w @ E) @ params["V"]


def apply(params: Params, x: Counts, *, E: Array | None, attention: str) -> Float[Array, "B n_out"]:
    """:func:`simplified_logits` with the embeddings and the attention bound by keyword (for ``partial``)."""
    return simplified_logits(params, E, x, attention)
