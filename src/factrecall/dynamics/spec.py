"""What one training trajectory is: :class:`DynamicsSpec`, its fields, their defaults (the paper's Figure 5)
and their constraints, written once.

The spec is a frozen pydantic model (hashable): building it validates it, each field's type and range, then
what ties fields together (the step budget a multiple of the evaluation period, a sequence long enough,
one-hot embeddings as wide as the vocabulary). The experiments' :class:`factrecall.experiments.specs.
DynamicsPoint` is this class plus how the experiment runs; :mod:`factrecall.dynamics.trajectory` trusts a
spec it is given. No JAX here: the task's own checks are imported when a spec is built.

Paper: §5, Eq. (15), Figure 5; SPEC §6.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, model_validator

from factrecall.core.errors import check
from factrecall.core.fields import FROZEN, NonNeg, NonNegFloat, Pos, PosFloat

if TYPE_CHECKING:
    from factrecall.recall.task import RecallTask


class DynamicsSpec(BaseModel):
    """Everything that defines one trajectory (frozen, hashable). Defaults are the paper's Figure 5.

    Attributes:
        S, R, D: subjects, relations, answers per relation.
        n_noise: noise tokens (None: S + R); T: sequence length, EOS last.
        alpha_S, alpha_R: Zipf exponents of the subject and relation frequencies.
        model: ``simplified`` (Eq. 15) or ``transformer`` (the full one-layer model, §3).
        attention: ``linear`` (the paper's) or ``softmax``.
        embeddings: ``onehot`` (d = vocab, the paper's) or ``random`` (Gaussian N(0, 1/d) rows); the
            transformer always uses its own Gaussian embeddings (§3).
        facts: ``structured`` (a*(s, r) = floor(s·D/S) + r·D, the paper's) or ``random``.
        lr, B, n_steps: plain gradient descent: rate, fresh batch size, steps.
        eval_every, n_test: evaluate every ``eval_every`` steps on a fixed test set of ``n_test`` sequences.
        init: ε, the initial value of every entry of A and V (simplified model).
        substeps: gradient flow: each step is ``substeps`` steps of lr/substeps on fresh batches (1: GD).
        d: embedding dimension for random embeddings and the transformer (None: vocab size).
        H, d_h, m: transformer heads, head size and MLP width.
        seed: seeds facts, embeddings, test set and batches.

    >>> DynamicsSpec(S=4, n_steps=100)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for DynamicsSpec
      Value error, n_steps=100 must be a multiple of eval_every=64 ...
    """

    model_config = FROZEN

    S: Pos = 16
    R: Pos = 4
    D: Pos = 8
    n_noise: int | None = None
    T: Pos = 32
    alpha_S: NonNegFloat = 0.0
    alpha_R: NonNegFloat = 0.0
    model: Literal["simplified", "transformer"] = "simplified"
    attention: Literal["linear", "softmax"] = "linear"
    embeddings: Literal["onehot", "random"] = "onehot"
    facts: Literal["structured", "random"] = "structured"
    lr: PosFloat = 0.1
    B: Pos = 1024
    n_steps: Pos = 8192
    eval_every: Pos = 64
    n_test: Pos = 2**14
    init: float = 1e-5
    substeps: Pos = 1
    d: Pos | None = None
    H: Pos = 4
    d_h: Pos = 16
    m: NonNeg = 64
    seed: NonNeg = 0

    def task(self) -> RecallTask:
        """The factual-recall task of this spec (EOS last)."""
        from factrecall.recall.task import recall_task

        return recall_task(
            self.S, self.R, self.D, n_noise=self.n_noise, T=self.T, alpha_S=self.alpha_S, alpha_R=self.alpha_R
        )

    @model_validator(mode="after")
    def _consistent(self) -> DynamicsSpec:
        """The checks that tie fields together; each raises :class:`~factrecall.core.errors.ConfigError`."""
        check(math.isfinite(self.lr), f"lr must be a positive number, got lr={self.lr}")
        check(self.init > 0, f"init must be > 0 (the saddle at 0 never escapes), got init={self.init}")
        check(
            self.n_steps % self.eval_every == 0,
            f"n_steps={self.n_steps} must be a multiple of eval_every={self.eval_every}",
        )
        transformer = self.model == "transformer"
        check(transformer or self.T >= 3, f"T must be ≥ 3 (subject, relation, EOS), got T={self.T}")
        vocab = self.task().vocab  # the task validates S, R, D, T, n_noise and the Zipf exponents
        d = self.d or vocab
        check(
            transformer or self.embeddings != "onehot" or d == vocab,
            f"one-hot embeddings need d = vocab = {vocab}, got d={d}",
        )
        return self
