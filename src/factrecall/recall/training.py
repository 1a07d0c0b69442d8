"""Training one-layer transformers on the factual-recall task, and scoring them over every fact.

Owns the evaluation over every fact (:func:`score_facts`): a fact (s, r) is answered in a context when
``argmax logits = a*(s, r)``; over ``n_contexts`` fresh random contexts per fact, ``fact_accuracy`` is the
fraction of (fact, context) pairs answered, ``facts_stored`` the fraction of facts answered in every
context and ``fact_loss`` the mean cross-entropy (nats) over all pairs, which feeds the loss-aware bit bound
(SPEC §5). Owns the one training path of the transformers too: :func:`train_batch` trains B models at L
learning rates as one program of :func:`factrecall.core.engine.train_many` (the loss samples a fresh batch
from the step's key inside the compiled step; the monitored metric is ``fact_accuracy`` in fixed fresh
contexts), and :func:`kept_runs` keeps each model's learning rate by the one rule,
:func:`factrecall.core.engine.best_rate`. :func:`train` (one model), :func:`train_seeds` (one model per
seed), the capacity searches and the planner all train through it; a trained model's record and file are
:mod:`factrecall.recall.models`.

Paper: §4 (the task and the model), Appendix B (training); SPEC §2 (evaluation over all facts), §3.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Array, Float, Int, Key, Params
from factrecall.core.engine import Problem, RunResult, Settings, best_rate, cross_entropy, train_many
from factrecall.core.errors import TrainingError, check
from factrecall.core.paper import PAPER_LRS as PAPER_LRS  # re-exported: its home is core.paper
from factrecall.recall.task import RecallTask, every_fact, recall_task, sample
from factrecall.recall.transformer import (
    TransformerConfig,
    forward,
    frozen,
    init,
    init_padded,
    masked,
    validate,
)

EVAL_CHUNK = 4096  # sequences per evaluation chunk: bounds memory at paper scale


class FactScores(NamedTuple):
    """Evaluation of a model over every fact."""

    fact_accuracy: Float[Array, ""]  # exactly 1.0 when every (fact, context) pair is right
    facts_stored: Float[Array, ""]
    fact_loss: Float[Array, ""]
    correct: Float[Array, "S R"]  # per fact: fraction of its contexts answered correctly
    n_correct: Int[Array, ""]  # (fact, context) pairs answered correctly, out of n_contexts·S·R


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

    >>> from factrecall.recall.task import recall_task, facts_random
    >>> from factrecall.recall.transformer import transformer
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
    hit = (jnp.argmax(logits, axis=-1) == batch.labels).astype(jnp.int32)
    per_fact = hit.reshape(n_contexts, task.S, task.R).sum(axis=0)
    return FactScores(
        fact_accuracy=exact_fraction(jnp.sum(hit), hit.shape[0]),
        facts_stored=exact_fraction(jnp.sum(per_fact == n_contexts), task.n_facts),
        fact_loss=cross_entropy(logits, batch.labels),
        correct=per_fact / n_contexts,
        n_correct=jnp.sum(hit),
    )


# score_facts as one compiled program, for scoring a model once (run op by op, its many small operations
# would each compile on first use: seconds)
score_facts_jit = jax.jit(score_facts, static_argnums=(1, 2, 4))


def exact_fraction(count: Int[Array, ""], total: int) -> Float[Array, ""]:
    """count / total in float32, exactly 1.0 when count == total (XLA may divide by multiplying by 1/total,
    which turns n·(1/n) into 0.99999994 and would miss a criterion of 1.0)."""
    return jnp.where(count == total, 1.0, count.astype(jnp.float32) / total)


EVAL_EVERY = 64
"""Steps between evaluations over every fact of a trained transformer. The paper evaluates every 128 steps (so
do the capacity searches, :func:`factrecall.recall.capacity.trial_recipe`); every 64 costs little and stops
closer to the criterion."""


class Recipe(NamedTuple):
    """Training recipe (hashable). Paper: Adam, batch 1024, ≤ 2^14 steps, evaluation every 128 steps. The
    budget, batch and criterion come from the experiment (its model in :mod:`factrecall.experiments.specs`
    holds their defaults), given explicitly.

    Attributes:
        n_steps: step budget.
        batch: sequences sampled per step (inside the compiled step).
        eval_every: steps between evaluations over every fact.
        criterion: stop once ``fact_accuracy`` ≥ criterion.
        n_contexts: contexts per fact in the in-loop evaluation.
        schedule: ``constant`` (the paper's) or ``cosine`` (warm-up then decay to 0 at ``n_steps``).
    """

    n_steps: int
    batch: int
    eval_every: int
    criterion: float
    n_contexts: int = 4
    schedule: str = "constant"


def validate_recipe(recipe: Recipe) -> None:
    """Raise :class:`ConfigError` naming the first bad field of ``recipe``."""
    for name in ("n_steps", "batch", "eval_every", "n_contexts"):
        check(getattr(recipe, name) >= 1, f"{name} must be ≥ 1, got {getattr(recipe, name)}")
    check(0.0 < recipe.criterion <= 1.0, f"criterion must be in (0, 1], got {recipe.criterion}")
    check(
        recipe.schedule in ("constant", "cosine"),
        f"schedule must be constant or cosine, got {recipe.schedule!r}",
    )


def task_and_config(
    S: int,
    R: int,
    D: int,
    T: int,
    d: int,
    H: int,
    d_h: int,
    m: int,
    attention: str = "softmax",
    train_embeddings: bool = False,
) -> tuple[RecallTask, TransformerConfig]:
    """The recall task and a transformer for it (vocabulary and outputs from the task), both validated.

    Raises:
        ConfigError: the first invalid size or option, named.
    """
    task = recall_task(S, R, D, T=T)
    cfg = TransformerConfig(d, H, d_h, m, task.vocab, task.n_answers, attention, train_embeddings)
    validate(cfg)
    return task, cfg


def _live(params: Params, cfg: TransformerConfig, data: dict[str, Any]) -> Params:
    """The parameters a run trains and is scored with: embeddings frozen (unless trained) and, for a padded
    run (its data holds masks), the heads and units beyond its shape masked."""
    p = frozen(params, cfg)
    return masked(p, data["heads"], data["units"]) if "heads" in data else p


def _loss(cfg: TransformerConfig, task: RecallTask, batch: int, params: Params, data: Any, key: Key) -> Array:
    """Cross-entropy on ``batch`` sequences sampled from ``key`` (inside the compiled step)."""
    seqs = sample(task, data["facts"], batch, key=key)
    p = _live(params, cfg, data)
    logits = jax.vmap(lambda t: forward(p, t, kind=cfg.attention))(seqs.tokens)
    return cross_entropy(logits, seqs.labels)


def _evaluate(cfg: TransformerConfig, task: RecallTask, n_contexts: int, params: Params, data: Any) -> dict:
    scores = score_facts(_live(params, cfg, data), cfg, task, data["facts"], n_contexts, key=data["eval_key"])
    return {"fact_accuracy": scores.fact_accuracy, "fact_loss": scores.fact_loss}


@functools.cache
def recall_problem(cfg: TransformerConfig, task: RecallTask, batch: int, n_contexts: int) -> Problem:
    """The engine :class:`Problem` of training ``cfg`` on ``task`` (cached: equal arguments, one program)."""
    return Problem(
        loss=functools.partial(_loss, cfg, task, batch),
        evaluate=functools.partial(_evaluate, cfg, task, n_contexts),
        monitor="fact_accuracy",
    )


def recall_data(
    facts: Int[Array, "S R"], cfg: TransformerConfig, H: int | None = None, m: int | None = None, *, key: Key
) -> dict[str, Array]:
    """The data pytree of one run: its facts and evaluation key and, for a run of H heads and m units padded
    to ``cfg``'s shape, the masks of its live heads and units (none when H and m are not given)."""
    data = {"facts": jnp.asarray(facts, jnp.int32), "eval_key": key}
    if H is None or m is None:
        return data
    return data | {
        "heads": (jnp.arange(cfg.H) < H).astype(jnp.float32),
        "units": (jnp.arange(cfg.m) < m).astype(jnp.float32),
    }


def train_batch(
    cfg: TransformerConfig,
    task: RecallTask,
    recipe: Recipe,
    facts: Int[Array, "B S R"],
    shapes: Int[Array, "B 2"] | None,
    lrs: Float[Array, " L"],
    *,
    key: Key,
    patience: int | None = None,
) -> RunResult:
    """Train B models (each its own facts and seed) at L learning rates at once; arguments are trusted.

    ``key`` is a batch of B keys (one per run: it seeds the initialisation, the evaluation contexts and the
    training batches). ``shapes`` gives each run's (H, m) ≤ (cfg.H, cfg.m): every run is zero-padded to
    ``cfg``'s shape and its padded heads and units are masked in the loss, so a grid of shapes is one
    program. ``None``: every run has ``cfg``'s shape and nothing is masked. Both train the same models, but
    the masks (products with ones) change how XLA fuses the step and so its float rounding: :func:`train`
    and the capacity searches run masked and the planner unmasked, as each always has, so that their
    numbers stay reproducible. ``patience``: stop when no run improved for this many steps (see
    :class:`~factrecall.core.engine.Settings`).

    Returns:
        The engine's :class:`RunResult` with leading axes (B, L); parameters are padded.
    """
    problem = recall_problem(cfg, task, recipe.batch, recipe.n_contexts)
    settings = Settings(
        recipe.n_steps,
        recipe.eval_every,
        recipe.criterion,
        schedule=recipe.schedule,
        warmup=recipe.n_steps // 32,
        patience=patience,
    )
    k_init, k_eval, k_train = (jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(key) for i in range(3))
    if shapes is None:
        params = jax.vmap(lambda k: init(cfg, key=k))(k_init)
        data = jax.vmap(lambda f, k: recall_data(f, cfg, key=k))(facts, k_eval)
    else:
        H, m = shapes[:, 0], shapes[:, 1]
        params = jax.vmap(lambda h, w, k: init_padded(cfg, h, w, key=k))(H, m, k_init)
        data = jax.vmap(lambda f, h, w, k: recall_data(f, cfg, h, w, key=k))(facts, H, m, k_eval)
    return train_many(problem, settings, params, data, jnp.asarray(lrs, jnp.float32), k_train)


class Kept(NamedTuple):
    """The run one model's learning-rate grid keeps (:func:`factrecall.core.engine.best_rate`).

    When every rate diverged no run is a result: ``kept`` is False, ``accuracy`` 0 and the other fields are
    the grid's first rate's.
    """

    index: int  # into the learning-rate grid
    kept: bool
    lr: float
    accuracy: float  # its best fact_accuracy
    reached: bool  # the criterion
    steps: int
    diverged: int  # learning rates of the grid whose run diverged


def kept_runs(out: RunResult, lrs: Sequence[float]) -> list[Kept]:
    """The kept run of each model of ``out`` (leading axes (B, L)), trained at the rates ``lrs``."""
    best, reached, diverged, steps = (
        np.asarray(x) for x in (out.best_metric, out.reached, out.diverged, out.steps)
    )
    runs = []
    for i in range(best.shape[0]):
        j = best_rate(best[i], diverged[i])
        k = 0 if j is None else j
        accuracy = 0.0 if j is None else float(best[i, j])
        runs.append(
            Kept(
                k,
                j is not None,
                float(lrs[k]),
                accuracy,
                bool(reached[i, k]),
                int(steps[i, k]),
                int(diverged[i].sum()),
            )
        )
    return runs


def kept_params(out: RunResult, i: int, run: Kept) -> Params:
    """The best parameters of model ``i``'s kept run (padded as trained)."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x[i, run.index]), out.best_params)


def train_seeds(
    cfg: TransformerConfig,
    task: RecallTask,
    recipe: Recipe,
    facts: Int[Array, "B S R"],
    lrs: Sequence[float],
    seeds: Sequence[int],
) -> list[tuple[Kept, Params]]:
    """Train one model of ``cfg``'s shape per seed (each on its own facts; ``key(seed)`` seeds the rest) at
    every rate of ``lrs``, as one unmasked program (see :func:`train_batch`).

    Returns:
        Per seed: its kept run and that run's best parameters.
    """
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    out = train_batch(cfg, task, recipe, facts, None, jnp.asarray(lrs), key=keys)
    return [(run, kept_params(out, i, run)) for i, run in enumerate(kept_runs(out, lrs))]


class Trained(NamedTuple):
    """One trained model (the kept learning rate's best parameters) and how it was trained."""

    params: Params
    cfg: TransformerConfig
    task: RecallTask
    facts: Int[Array, "S R"]
    info: dict[str, Any]  # lr, steps, reached, diverged runs, seconds, seed


def train(
    cfg: TransformerConfig,
    task: RecallTask,
    facts: Int[Array, "S R"],
    recipe: Recipe,
    lrs: tuple[float, ...],
    *,
    seed: int = 0,
) -> Trained:
    """Train one transformer on ``task`` at each learning rate of ``lrs`` (one program); keep the best.

    Raises:
        TrainingError: every learning rate diverged.
    """
    check(len(lrs) >= 1 and all(lr > 0 for lr in lrs), f"learning rates must be > 0, got {list(lrs)}")
    start = time.perf_counter()
    key = jax.random.key(seed)[None]
    shapes = jnp.array([[cfg.H, cfg.m]])  # the masked program (see train_batch)
    out = train_batch(cfg, task, recipe, jnp.asarray(facts)[None], shapes, jnp.array(lrs), key=key)
    (run,) = kept_runs(out, lrs)
    if not run.kept:
        raise TrainingError(f"every learning rate in {list(lrs)} diverged (non-finite loss or weights)")
    info = {
        "lr": run.lr,
        "steps": run.steps,
        "reached": run.reached,
        "diverged_runs": run.diverged,
        "seconds": time.perf_counter() - start,
        "seed": seed,
        "recipe": recipe._asdict(),
    }
    return Trained(kept_params(out, 0, run), cfg, task, jnp.asarray(facts), info)
