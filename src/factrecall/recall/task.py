"""Token-level data of the synthetic factual-recall task: subjects, relations, answers and noise, sampled
into sequences, and every fact in fresh contexts for evaluation.

Paper: §4.1 (the factual-recall task); SPEC §2.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from factrecall.core.base import Array, Int, Key, Source, categorical, flat, uniform
from factrecall.core.errors import check
from factrecall.memories.targets import zipf_weights


class RecallTask(NamedTuple):
    """Sizes of the synthetic factual-recall task (SPEC §2); hashable, so it can be a static argument.

    Vocabulary ids, in order: S subjects ``[0, S)``, R relations ``[S, S+R)``, ``n_noise`` noise tokens, one
    EOS token (id ``vocab − 1``). Answers form a separate output vocabulary of R·D ids; relation r owns
    ``[r·D, (r+1)·D)``. A sequence has T tokens: with ``eos``, the subject and the relation sit at two
    distinct uniform positions among the first T − 1 and the last token is EOS; without, the relation is the
    last token and the subject sits among the first T − 1. Every other position holds uniform noise.

    Attributes:
        S, R, D: subjects, relations, answers per relation.
        n_noise: noise tokens (build with :func:`recall_task` to get the default S + R).
        T: sequence length, the final token included.
        eos: end the sequence with EOS (the paper's default) rather than with the relation.
        alpha_S, alpha_R: Zipf exponents of p(s) ∝ (s+1)^-α_S and q(r) ∝ (r+1)^-α_R (0: uniform).
    """

    S: int
    R: int
    D: int
    n_noise: int
    T: int = 32
    eos: bool = True
    alpha_S: float = 0.0
    alpha_R: float = 0.0

    @property
    def vocab(self) -> int:
        """Input vocabulary size S + R + n_noise + 1."""
        return self.S + self.R + self.n_noise + 1

    @property
    def eos_id(self) -> int:
        return self.vocab - 1

    @property
    def n_answers(self) -> int:
        """Output vocabulary size R·D."""
        return self.R * self.D

    @property
    def n_facts(self) -> int:
        """Facts to store: S·R."""
        return self.S * self.R


def recall_task(
    S: int,
    R: int,
    D: int,
    *,
    n_noise: int | None = None,
    T: int = 32,
    eos: bool = True,
    alpha_S: float = 0.0,
    alpha_R: float = 0.0,
) -> RecallTask:
    """A validated :class:`RecallTask` (``n_noise`` defaults to S + R).

    >>> task = recall_task(4, 2, 3, T=8)
    >>> task.vocab, task.n_answers, task.eos_id
    (13, 6, 12)

    Raises:
        ConfigError: a size out of range, named with its value.
    """
    n_noise = S + R if n_noise is None else n_noise
    for name, value in (("subjects S", S), ("relations R", R), ("answers per relation D", D)):
        check(value >= 1, f"{name} must be ≥ 1, got {value}")
    check(n_noise >= 0, f"n_noise must be ≥ 0, got {n_noise}")
    fixed = 3 if eos else 2  # positions taken by subject, relation (and EOS)
    check(
        T >= fixed,
        f"sequence length T must be ≥ {fixed} (subject, relation{', EOS' if eos else ''}), got {T}",
    )
    check(
        n_noise >= 1 or T == fixed,
        f"T={T} leaves {T - fixed} noise positions but n_noise=0; add noise tokens",
    )
    check(
        alpha_S >= 0 and alpha_R >= 0, f"Zipf exponents must be ≥ 0, got alpha_S={alpha_S}, alpha_R={alpha_R}"
    )
    return RecallTask(S, R, D, n_noise, T, eos, float(alpha_S), float(alpha_R))


def facts_random(task: RecallTask, *, key: Source) -> Int[Array, "S R"]:
    """The random dictionary: a*(s, r) uniform in relation r's block [r·D, (r+1)·D), seeded.

    >>> import jax
    >>> a = facts_random(recall_task(5, 3, 4), key=jax.random.key(0))
    >>> bool(jnp.all(a // 4 == jnp.arange(3)[None, :]))
    True
    """
    offset = jnp.minimum(jnp.floor(uniform(key, (task.S, task.R)) * task.D), task.D - 1).astype(jnp.int32)
    return offset + task.D * jnp.arange(task.R, dtype=jnp.int32)[None, :]


def facts_structured(task: RecallTask) -> Int[Array, "S R"]:
    """The structured dictionary of the dynamics figure: a*(s, r) = floor(s·D/S) + r·D.

    >>> facts_structured(recall_task(4, 2, 2)).tolist()
    [[0, 2], [0, 2], [1, 3], [1, 3]]
    """
    s = jnp.arange(task.S, dtype=jnp.int32)[:, None]
    r = jnp.arange(task.R, dtype=jnp.int32)[None, :]
    return (s * task.D) // task.S + r * task.D


class RecallBatch(NamedTuple):
    """Sequences with their labels and the (subject, relation) each one asks about."""

    tokens: Int[Array, "B T"]
    labels: Int[Array, " B"]
    subjects: Int[Array, " B"]
    relations: Int[Array, " B"]


def place(
    task: RecallTask, s: Array, r: Array, *, key: Key, n_noise: Array | None = None
) -> Int[Array, "B T"]:
    """Sequences holding subject s and relation r at random positions, noise elsewhere (jit-compatible).

    ``n_noise`` (may be traced) draws the noise from the first ``n_noise`` noise tokens only (a padded task
    whose live part is smaller); default: all of them.
    """
    B = s.shape[0]
    k_noise, k_s, k_r = jax.random.split(key, 3)
    hi = task.S + task.R + (max(task.n_noise, 1) if n_noise is None else n_noise)
    tokens = flat(jax.random.randint, k_noise, (B, task.T), task.S + task.R, hi)
    rows = jnp.arange(B)
    if task.eos:
        pos_s = jax.random.randint(k_s, (B,), 0, task.T - 1)
        pos_r = jax.random.randint(k_r, (B,), 0, task.T - 2)
        pos_r = pos_r + (pos_r >= pos_s)  # a uniform position among the T − 1 others, distinct from pos_s
        tokens = tokens.at[:, task.T - 1].set(task.eos_id)
    else:
        pos_s = jax.random.randint(k_s, (B,), 0, task.T - 1)
        pos_r = jnp.full((B,), task.T - 1)
    return tokens.at[rows, pos_s].set(s).at[rows, pos_r].set(task.S + r)


def sample(task: RecallTask, facts: Int[Array, "S R"], B: int, *, key: Key) -> RecallBatch:
    """B fresh sequences: (s, r) ~ p_s·q_r (Zipf, uniform by default), label a*(s, r). jit-compatible.

    Meant to run inside the compiled training step: no epoch buffer is ever materialised.

    >>> import jax
    >>> task = recall_task(4, 2, 3, T=6)
    >>> batch = sample(task, facts_structured(task), 5, key=jax.random.key(0))
    >>> batch.tokens.shape, bool(jnp.all(batch.tokens[:, -1] == task.eos_id))
    ((5, 6), True)
    """
    k_s, k_r, k_seq = jax.random.split(key, 3)
    s = categorical(k_s, jnp.log(zipf_weights(task.S, task.S, task.alpha_S)), B)
    r = categorical(k_r, jnp.log(zipf_weights(task.R, task.R, task.alpha_R)), B)
    return RecallBatch(place(task, s, r, key=k_seq), facts[s, r], s, r)


def every_fact(
    task: RecallTask,
    facts: Int[Array, "S R"],
    n_contexts: int = 1,
    *,
    key: Key,
    n_noise: Array | None = None,
) -> RecallBatch:
    """Every one of the S·R facts in ``n_contexts`` fresh random contexts each (B = n_contexts·S·R).

    Row order is (context, subject, relation), so ``reshape(n_contexts, S, R)`` recovers the grid.
    ``n_noise``: see :func:`place`.

    >>> import jax
    >>> task = recall_task(3, 2, 2, T=5)
    >>> batch = every_fact(task, facts_structured(task), 2, key=jax.random.key(1))
    >>> batch.tokens.shape, batch.subjects.tolist()[:6]
    ((12, 5), [0, 0, 1, 1, 2, 2])
    """
    s = jnp.tile(jnp.repeat(jnp.arange(task.S), task.R), n_contexts)
    r = jnp.tile(jnp.arange(task.R), task.S * n_contexts)
    return RecallBatch(place(task, s, r, key=key, n_noise=n_noise), facts[s, r], s, r)
