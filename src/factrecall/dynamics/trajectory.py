"""Training dynamics of factual recall: a trajectory of plain gradient descent, the loss split by what is
known (relation, subject), and the stages of learning read from it.

The model is either the paper's simplified model (Eq. 15, :mod:`factrecall.dynamics.simplified`: A and
V start at ε = 1e-5 everywhere, inputs sampled as token counts) or, with ``model="transformer"``, the full
one-layer transformer (:mod:`factrecall.recall.transformer`) on ``task.sample`` sequences; both train by
plain gradient descent on fresh batches, sampled inside the compiled step, through the same loop.

This module owns the setup of either model for a spec (:class:`~factrecall.dynamics.spec.DynamicsSpec`,
validated when built, trusted here), the metrics of the loss split, the compiled loop, and the summaries
and curves the CLI and the figures read.

The loop is our own small ``lax.scan`` (gradient descent on fresh batches, an evaluation every
``eval_every`` steps), as STYLE allows for dynamics: the engine stops at a criterion, this records a curve.

Paper: §5, Eq. (15), Figure 5; SPEC §6.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Array, Float, Int, Key, Params
from factrecall.core.errors import TrainingError
from factrecall.core.io import curves_csv as _curves_csv
from factrecall.dynamics import simplified
from factrecall.dynamics import stages as stages_mod
from factrecall.dynamics.simplified import Counts, sample_counts
from factrecall.dynamics.spec import DynamicsSpec as DynamicsSpec  # re-exported: the spec of trajectory()
from factrecall.memories.embeddings import gaussian
from factrecall.recall import task as task_mod
from factrecall.recall.transformer import TransformerConfig, forward
from factrecall.recall.transformer import init as transformer_init

METRICS = ("loss", "relation_loss", "subject_loss", "accuracy", "relation_accuracy", "subject_accuracy")
EVAL_CHUNK = 4096


def facts_of(spec: DynamicsSpec, task: task_mod.RecallTask, *, key: Key) -> Int[Array, "S R"]:
    """The dictionary a*(s, r): structured floor(s·D/S) + r·D (Figure 5), or uniform in each block."""
    if spec.facts == "random":
        return task_mod.facts_random(task, key=key)
    s = jnp.arange(task.S, dtype=jnp.int32)[:, None]
    return (s * task.D) // task.S + task.D * jnp.arange(task.R, dtype=jnp.int32)[None, :]


# ------------------------------------------------------------------------------ both models


class Setup(NamedTuple):
    """A model and its data, as the loop needs them (all jit-compatible functions)."""

    params: Params
    logits: Callable[[Params, Any], Float[Array, "B n_out"]]
    sample: Callable[[Key], tuple[Any, Int[Array, " B"], Int[Array, " B"]]]  # inputs, subjects, relations
    test: tuple[Any, Int[Array, " N"], Int[Array, " N"]]
    facts: Int[Array, "S R"]


def setup(spec: DynamicsSpec, *, key: Key) -> Setup:
    """Initial parameters, the logits function, the batch sampler and the fixed test set of ``spec``."""
    task = spec.task()
    k_facts, k_emb, k_test = (jax.random.fold_in(key, i) for i in range(3))
    facts = facts_of(spec, task, key=k_facts)
    if spec.model == "transformer":
        return _transformer_setup(spec, task, facts, k_emb, k_test)
    d = spec.d or task.vocab
    E = None if spec.embeddings == "onehot" else gaussian(task.vocab, d, key=k_emb)
    params = simplified.init_params(d, task.n_answers, spec.init)

    def sample(k: Key) -> tuple[Counts, Array, Array]:
        x = sample_counts(task, spec.B, key=k)
        return x, x.subjects, x.relations

    test = sample_counts(task, spec.n_test, key=k_test)
    logits = functools.partial(simplified.apply, E=E, attention=spec.attention)
    return Setup(params, logits, sample, (test, test.subjects, test.relations), facts)


def _transformer_setup(
    spec: DynamicsSpec, task: task_mod.RecallTask, facts: Array, k_init: Key, k_test: Key
) -> Setup:
    cfg = TransformerConfig(
        d=spec.d or 64,
        H=spec.H,
        d_h=spec.d_h,
        m=spec.m,
        vocab=task.vocab,
        n_out=task.n_answers,
        attention=spec.attention,
    )
    params = transformer_init(cfg, key=k_init)
    frozen = {"wte": params.pop("wte"), "unembed": params.pop("unembed")}

    def logits(p: Params, tokens: Array) -> Array:
        one = functools.partial(forward, {**p, **frozen}, kind=cfg.attention)
        if tokens.shape[0] <= EVAL_CHUNK:  # a training batch: one vmapped program
            return jax.vmap(one)(tokens)
        return jax.lax.map(one, tokens, batch_size=EVAL_CHUNK)  # the test set, in chunks

    def sample(k: Key) -> tuple[Array, Array, Array]:
        batch = task_mod.sample(task, facts, spec.B, key=k)
        return batch.tokens, batch.subjects, batch.relations

    test = task_mod.sample(task, facts, spec.n_test, key=k_test)
    return Setup(params, logits, sample, (test.tokens, test.subjects, test.relations), facts)


def metrics(
    logits: Float[Array, "N n_out"],
    subjects: Int[Array, " N"],
    relations: Int[Array, " N"],
    facts: Int[Array, "S R"],
) -> dict[str, Float[Array, ""]]:
    """Total, relation-only and subject-only losses and accuracies (SPEC §6).

    relation loss = −log Σ_{a ∈ block(r)} p(a); subject loss = −log Σ_{r'} p(a*(s, r')). An answer counts
    for the relation when it lies in block(r), for the subject when it is a*(s, r') for some r'.
    """
    N, R = relations.shape[0], facts.shape[1]
    logp = jax.nn.log_softmax(logits, axis=-1)
    labels = facts[subjects, relations]
    own = facts[subjects]  # (N, R): the subject's answer for every relation
    block = jax.nn.logsumexp(logp.reshape(N, R, -1), axis=-1)[jnp.arange(N), relations]
    subject = jax.nn.logsumexp(jnp.take_along_axis(logp, own, axis=1), axis=-1)
    guess = jnp.argmax(logits, axis=-1)
    D = logits.shape[-1] // R
    return {
        "loss": -jnp.mean(logp[jnp.arange(N), labels]),
        "relation_loss": -jnp.mean(block),
        "subject_loss": -jnp.mean(subject),
        "accuracy": jnp.mean(guess == labels),
        "relation_accuracy": jnp.mean(guess // D == relations),
        "subject_accuracy": jnp.mean(jnp.any(guess[:, None] == own, axis=1)),
    }


# ------------------------------------------------------------------------------ the loop


class Trajectory(NamedTuple):
    """The curves of one run: ``steps`` (n,) and each of :data:`METRICS` at those steps; wall time."""

    steps: np.ndarray
    curves: dict[str, np.ndarray]
    seconds: float


def _compile(spec: DynamicsSpec, st: Setup) -> tuple[Callable[..., Any], Callable[..., dict[str, Array]]]:
    """A jitted ``chunk(params, key, test, n_evals)``: n_evals × (eval_every GD steps, then an evaluation).

    The test set is an argument, not a closed-over constant: baked into the program it slows compilation.
    """
    lr = spec.lr / spec.substeps

    def loss(p: Params, k: Key) -> Array:
        x, s, r = st.sample(k)
        logp = jax.nn.log_softmax(st.logits(p, x), axis=-1)
        return -jnp.mean(logp[jnp.arange(s.shape[0]), st.facts[s, r]])

    grad = jax.grad(loss)

    def step(p: Params, k: Key) -> tuple[Params, None]:
        return jax.tree.map(lambda w, g: w - lr * g, p, grad(p, k)), None

    def evaluate(p: Params, test: Any) -> dict[str, Array]:
        x, s, r = test
        return metrics(st.logits(p, x), s, r, st.facts)

    @functools.partial(jax.jit, static_argnums=3)
    def chunk(p: Params, key: Key, test: Any, n_evals: int) -> tuple[Params, dict[str, Array]]:
        def one(p: Params, k: Key) -> tuple[Params, dict[str, Array]]:
            p, _ = jax.lax.scan(step, p, jax.random.split(k, spec.eval_every * spec.substeps))
            return p, evaluate(p, test)

        return jax.lax.scan(one, p, jax.random.split(key, n_evals))

    return chunk, jax.jit(evaluate)


def _chunk_evals(n_evals: int, most: int = 16) -> int:
    return max(c for c in range(1, min(n_evals, most) + 1) if n_evals % c == 0)


def trajectory(spec: DynamicsSpec, on_chunk: Callable[[int, int, str], None] | None = None) -> Trajectory:
    """Train ``spec`` by gradient descent on fresh batches and record every metric every ``eval_every`` steps.

    Args:
        spec: the run (validated when it was built).
        on_chunk: ``on_chunk(done_steps, n_steps, status)`` after each compiled chunk (a progress bar).

    Returns:
        The :class:`Trajectory`, step 0 included.

    Raises:
        TrainingError: the loss or the weights became non-finite (lower ``lr``).

    >>> traj = trajectory(DynamicsSpec(S=4, R=2, D=2, n_steps=128, n_test=256, B=64))
    >>> traj.steps.tolist(), round(float(traj.curves["loss"][0]), 3) == round(math.log(4), 3)
    ([0, 64, 128], True)
    """
    start = time.perf_counter()
    key = jax.random.key(spec.seed)
    st = setup(spec, key=jax.random.fold_in(key, 0))
    chunk, evaluate = _compile(spec, st)
    n_evals = spec.n_steps // spec.eval_every
    per_chunk = _chunk_evals(n_evals)
    params, rows = st.params, [jax.tree.map(lambda v: v[None], evaluate(st.params, st.test))]
    for i in range(n_evals // per_chunk):
        params, curves = chunk(params, jax.random.fold_in(key, 1 + i), st.test, per_chunk)
        curves = jax.device_get(curves)
        done = (i + 1) * per_chunk * spec.eval_every
        if not all(np.all(np.isfinite(v)) for v in curves.values()):
            raise TrainingError(
                f"training diverged before step {done} (lr={spec.lr}): the loss became non-finite; lower lr"
            )
        rows.append(curves)
        if on_chunk is not None:
            on_chunk(done, spec.n_steps, f"step {done}, loss {float(curves['loss'][-1]):.3f}")
    out = {k: np.concatenate([np.asarray(r[k], float) for r in rows]) for k in METRICS}
    steps = np.arange(n_evals + 1) * spec.eval_every
    return Trajectory(steps, out, time.perf_counter() - start)


# ------------------------------------------------------------------------------ summaries


def levels(spec: DynamicsSpec) -> dict[str, float]:
    """Reference losses: ``uniform`` = log(R·D) (nothing known), ``hallucination`` = log D (relation only)."""
    return {"uniform": math.log(spec.R * spec.D), "hallucination": math.log(spec.D)}


def summarize(spec: DynamicsSpec, traj: Trajectory) -> dict[str, Any]:
    """Stages, final loss, predicted and measured transition steps of a trajectory (JSON-ready).

    ``stages``: list of {name, start, end, loss}; ``measured``/``predicted``: {relation, subject} steps (the
    prediction holds for the simplified model only; None for the transformer). ``relation_accuracy_in_
    hallucination``: minimum relation accuracy over the hallucination plateau (None when not found).
    """
    loss = traj.curves["loss"]
    found = stages_mod.find_stages(traj.steps, loss, levels(spec)) if len(loss) >= 5 else []
    measured = stages_mod.transitions(traj.steps, loss, found, spec.R, spec.D)
    predicted = None
    if spec.model == "simplified":
        predicted = stages_mod.predicted_steps(
            spec.S, spec.R, spec.D, lr=spec.lr, init=spec.init, alpha_S=spec.alpha_S, alpha_R=spec.alpha_R
        )
    halluc = [s for s in found if s.name == "hallucination"]
    rel_acc = None
    if halluc:
        inside = (traj.steps >= halluc[0].start) & (traj.steps <= halluc[0].end)
        rel_acc = float(np.min(traj.curves["relation_accuracy"][inside]))
    return {
        "stages": [s._asdict() for s in found],
        "final_loss": float(loss[-1]),
        "final_accuracy": float(traj.curves["accuracy"][-1]),
        "predicted": predicted,
        "measured": measured,
        "relation_accuracy_in_hallucination": rel_acc,
        "levels": levels(spec),
        "seconds": traj.seconds,
    }


def curves_csv(traj: Trajectory) -> str:
    """The curves as CSV text: a ``step`` column, then one column per metric (:data:`METRICS`)."""
    return _curves_csv(traj.steps, traj.curves)


def record(spec: DynamicsSpec, traj: Trajectory) -> dict[str, Any]:
    """:func:`summarize` plus the curves, the spec and a title: what the CLI saves and the figures draw."""
    model = f"{spec.model} model, {spec.embeddings} embeddings"
    if spec.model == "transformer":  # its own N(0, 1/d) embeddings (§3)
        model = f"one-layer transformer (d={spec.d or 64}, H={spec.H}, d_h={spec.d_h}, m={spec.m})"
    title = (
        f"{model}, {spec.attention} attention: "
        f"S={spec.S}, R={spec.R}, D={spec.D}, lr={spec.lr:g}, batch {spec.B}"
        + (f", Zipf α_S={spec.alpha_S:g}" if spec.alpha_S else "")
        + (f", gradient flow ({spec.substeps} substeps)" if spec.substeps > 1 else "")
    )
    return {
        **summarize(spec, traj),
        "steps": traj.steps.tolist(),
        "curves": {k: v.tolist() for k, v in traj.curves.items()},
        "spec": spec.model_dump(),
        "title": title,
    }
