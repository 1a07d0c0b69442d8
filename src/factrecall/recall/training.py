"""The factual-recall task meets the transformer: evaluation over every fact, training, save and load.

A fact (s, r) is answered correctly in a context when ``argmax logits = a*(s, r)``. We evaluate every one of
the S·R facts in ``n_contexts`` fresh random contexts: ``fact_accuracy`` is the fraction of (fact, context)
pairs answered correctly, ``facts_stored`` the fraction of facts answered correctly in every context, and
``fact_loss`` the mean cross-entropy (nats) over all pairs, which feeds the loss-aware bit bound (SPEC §5).

Training (:func:`train`) goes through :func:`factrecall.core.engine.train_many`: the loss samples a fresh
batch of
sequences from the step's key inside the compiled step (no epoch buffer), the monitored metric is
``fact_accuracy`` over every fact in fixed fresh contexts, and the learning-rate grid (and any batch of
models) is one vmapped program. Models may be zero-padded to a larger H and m (:func:`recall_data` carries
the head/unit masks) so that a grid of shapes trains together.

Save format (``.npz``, read with :func:`load`; ``numpy.load(path)`` needs no pickle):

* ``param/<name>``: each parameter of :mod:`factrecall.recall.transformer` (``wte``, ``unembed``, ``Q``,
``K``,
  ``V``, ``O``, ``W1``, ``b1``, ``W2``), float32, unpadded;
* ``facts``: the (S, R) int32 dictionary a*(s, r) (answer ids in [0, R·D));
* ``meta``: a 0-d string holding JSON ``{"format": "factrecall-transformer", "version": 1, "config":
  {TransformerConfig fields}, "task": {RecallTask fields}, "train": {lr, steps, seed, ...}}``.

Paper: §4 (the task and the model), Appendix B (training); SPEC §2 (evaluation over all facts), §3.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Array, Float, Int, Key, Params
from factrecall.core.engine import Problem, RunResult, Settings, cross_entropy, train_many
from factrecall.core.errors import ConfigError, TrainingError, check
from factrecall.recall.task import RecallTask, every_fact, recall_task, sample
from factrecall.recall.transformer import (
    TransformerConfig,
    forward,
    frozen,
    init_padded,
    masked,
    param_counts,
    validate,
)

FORMAT, VERSION = "factrecall-transformer", 1
PAPER_LRS = (1e-3, 3e-3, 1e-2)

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
        fact_accuracy=_fraction(jnp.sum(hit), hit.shape[0]),
        facts_stored=_fraction(jnp.sum(per_fact == n_contexts), task.n_facts),
        fact_loss=cross_entropy(logits, batch.labels),
        correct=per_fact / n_contexts,
        n_correct=jnp.sum(hit),
    )


def _fraction(count: Int[Array, ""], total: int) -> Float[Array, ""]:
    """count / total in float32, exactly 1.0 when count == total (XLA may divide by multiplying by 1/total,
    which turns n·(1/n) into 0.99999994 and would miss a criterion of 1.0)."""
    return jnp.where(count == total, 1.0, count.astype(jnp.float32) / total)


# ------------------------------------------------------------------------------------------------ training


class Recipe(NamedTuple):
    """Training recipe (hashable). Paper: Adam, batch 1024, ≤ 2^14 steps, evaluation every 128 steps
    (we evaluate every 64: it costs little and stops closer to the criterion).

    Attributes:
        n_steps: step budget.
        batch: sequences sampled per step (inside the compiled step).
        eval_every: steps between evaluations over every fact.
        criterion: stop once ``fact_accuracy`` ≥ criterion.
        n_contexts: contexts per fact in the in-loop evaluation.
        schedule: ``constant`` (the paper's) or ``cosine`` (warm-up then decay to 0 at ``n_steps``).
    """

    n_steps: int = 16384
    batch: int = 1024
    eval_every: int = 64
    criterion: float = 0.99
    n_contexts: int = 4
    schedule: str = "constant"


DEFAULT_RECIPE = Recipe()


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


def _effective(params: Params, cfg: TransformerConfig, data: dict[str, Any]) -> Params:
    return masked(frozen(params, cfg), data["heads"], data["units"])


def _loss(cfg: TransformerConfig, task: RecallTask, batch: int, params: Params, data: Any, key: Key) -> Array:
    """Cross-entropy on ``batch`` sequences sampled from ``key`` (inside the compiled step)."""
    seqs = sample(task, data["facts"], batch, key=key)
    p = _effective(params, cfg, data)
    logits = jax.vmap(lambda t: forward(p, t, kind=cfg.attention))(seqs.tokens)
    return cross_entropy(logits, seqs.labels)


def _evaluate(cfg: TransformerConfig, task: RecallTask, n_contexts: int, params: Params, data: Any) -> dict:
    scores = score_facts(
        _effective(params, cfg, data), cfg, task, data["facts"], n_contexts, key=data["eval_key"]
    )
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
    """The data pytree of one run: its facts, its masks (the first H heads, m units are live) and eval key."""
    H = cfg.H if H is None else H
    m = cfg.m if m is None else m
    return {
        "facts": jnp.asarray(facts, jnp.int32),
        "heads": (jnp.arange(cfg.H) < H).astype(jnp.float32),
        "units": (jnp.arange(cfg.m) < m).astype(jnp.float32),
        "eval_key": key,
    }


def train_batch(
    cfg: TransformerConfig,
    task: RecallTask,
    recipe: Recipe,
    facts: Int[Array, "B S R"],
    shapes: Int[Array, "B 2"],
    lrs: Float[Array, " L"],
    *,
    key: Key,
    patience: int | None = None,
) -> RunResult:
    """Train B models (each its own (H, m) ≤ (cfg.H, cfg.m), facts and seed) at L learning rates at once.

    Every run is zero-padded to ``cfg``'s shape; ``key`` is a batch of B keys (one per run: it seeds the
    initialisation, the evaluation contexts and the training batches). ``patience``: stop when no run
    improved for this many steps (see :class:`~factrecall.core.engine.Settings`).

    Returns:
        The engine's :class:`RunResult` with leading axes (B, L); parameters are padded.
    """
    validate_recipe(recipe)
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
    H, m = shapes[:, 0], shapes[:, 1]
    params = jax.vmap(lambda h, w, k: init_padded(cfg, h, w, key=k))(H, m, k_init)
    data = jax.vmap(lambda f, h, w, k: recall_data(f, cfg, h, w, key=k))(facts, H, m, k_eval)
    return train_many(problem, settings, params, data, jnp.asarray(lrs, jnp.float32), k_train)


class Trained(NamedTuple):
    """One trained model (the best learning rate's best parameters) and how it was trained."""

    params: Params
    cfg: TransformerConfig
    task: RecallTask
    facts: Int[Array, "S R"]
    info: dict[str, Any]  # lr, steps, reached, diverged runs, seconds, seed


def train(
    cfg: TransformerConfig,
    task: RecallTask,
    facts: Int[Array, "S R"],
    recipe: Recipe = DEFAULT_RECIPE,
    lrs: tuple[float, ...] = (1e-2,),
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
    shapes = jnp.array([[cfg.H, cfg.m]])
    out = train_batch(cfg, task, recipe, jnp.asarray(facts)[None], shapes, jnp.array(lrs), key=key)
    out = jax.tree_util.tree_map(lambda x: np.asarray(x[0]), out)
    if bool(np.all(out.diverged)):
        raise TrainingError(f"every learning rate in {list(lrs)} diverged (non-finite loss or weights)")
    best = int(np.argmax(np.where(out.diverged, -np.inf, out.best_metric)))
    info = {
        "lr": float(lrs[best]),
        "steps": int(out.steps[best]),
        "reached": bool(out.reached[best]),
        "diverged_runs": int(np.sum(out.diverged)),
        "seconds": time.perf_counter() - start,
        "seed": seed,
        "recipe": recipe._asdict(),
    }
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x[best]), out.best_params)
    return Trained(params, cfg, task, jnp.asarray(facts), info)


def sampled_accuracy(
    params: Params, cfg: TransformerConfig, task: RecallTask, facts: Int[Array, "S R"], B: int, *, key: Key
) -> float:
    """Accuracy on B freshly sampled sequences (s, r) ~ p·q: the paper's test batch."""
    return int(_sampled_hits(params, cfg, task, facts, B, key)) / B


@functools.partial(jax.jit, static_argnums=(1, 2, 4))
def _sampled_hits(params: Params, cfg: TransformerConfig, task: RecallTask, facts: Array, B: int, key: Key):
    seqs = sample(task, facts, B, key=key)
    return jnp.sum(jnp.argmax(logits_of(params, seqs.tokens, cfg), axis=-1) == seqs.labels)


# score_facts compiled as one program (run op by op, its many small operations each compile on first use:
# seconds for a one-off report)
_score_facts = jax.jit(score_facts, static_argnums=(1, 2, 4))


def report(model: Trained, n_contexts: int = 8, n_sampled: int = 4096, *, key: Key) -> dict[str, Any]:
    """The JSON record of a model: parameter counts, accuracy over every fact and sampled, bits/param."""
    cfg, task = model.cfg, model.task
    k_all, k_sample = jax.random.split(key)
    scores = _score_facts(model.params, cfg, task, model.facts, n_contexts, key=k_all)
    counts = param_counts(cfg)
    total = n_contexts * task.n_facts
    stored_mask = np.rint(np.asarray(scores.correct) * n_contexts) == n_contexts  # right in every context
    stored = float(np.mean(stored_mask))
    fact_bits = _fact_bits(model)
    bits_stored = float(fact_bits[stored_mask].sum())
    return {
        "params": counts.paper,
        "attention_params": counts.attention,
        "mlp_params": counts.mlp,
        "bias_params": counts.bias,
        "embedding_params": counts.embeddings,
        "params_note": "4·H·d_h·d + 2·m·d (Q, K, V, O, W1, W2); bias and trained embeddings apart",
        "facts": task.n_facts,
        "fact_accuracy": int(scores.n_correct) / total,
        "facts_stored": stored,
        "fact_loss": float(scores.fact_loss),
        "eval_contexts": n_contexts,
        "sampled_accuracy": sampled_accuracy(model.params, cfg, task, model.facts, n_sampled, key=k_sample),
        "bits": float(fact_bits.sum()),
        "bits_stored": bits_stored,
        "bits_per_param": bits_stored / counts.paper,
        "bits_note": "Σ over facts stored of log2 D_r (D_r: answers of the fact's relation; D on the "
        "synthetic task), per paper parameter (SPEC §5)",
        **model.info,
        "config": cfg._asdict(),
        "task": task._asdict(),
    }


def _fact_bits(model: Trained) -> np.ndarray:
    """log2 D_r of each fact (S, R): its relation's answer count — D on the synthetic task, the table's own
    counts for a model trained on a fact table (saved in ``info["table"]``), which may be uneven."""
    names = model.info.get("table")
    counts = [len(a) for a in names["answers"]] if names else [model.task.D] * model.task.R
    return np.broadcast_to(np.log2(np.asarray(counts, np.float64))[None, :], (model.task.S, model.task.R))


def unpad(params: Params, cfg: TransformerConfig) -> Params:
    """The first ``cfg.H`` heads and ``cfg.m`` units of (possibly padded) ``params``."""
    H, m, d_h = cfg.H, cfg.m, cfg.d_h
    cut = {"Q": (slice(0, H),), "K": (slice(0, H),), "V": (slice(0, H),), "O": (slice(0, H * d_h),)}
    cut |= {"W1": (slice(None), slice(0, m)), "b1": (slice(0, m),), "W2": (slice(0, m),)}
    return {k: v[cut[k]] if k in cut else v for k, v in params.items()}


def save(path: str | Path, model: Trained) -> None:
    """Write ``model`` to ``path`` (.npz: params, facts and a JSON ``meta``; see the module docstring)."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.cfg._asdict(),
        "task": model.task._asdict(),
        "train": model.info,
    }
    arrays = {f"param/{k}": np.asarray(v, np.float32) for k, v in unpad(model.params, model.cfg).items()}
    with open(path, "wb") as f:
        np.savez(f, facts=np.asarray(model.facts, np.int32), meta=np.array(json.dumps(meta)), **arrays)


def load(path: str | Path) -> Trained:
    """Read a model written by :func:`save`.

    Raises:
        ConfigError: the file is missing, not an .npz, or not in this format.
    """
    path = Path(path)
    check(path.is_file(), f"model file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            params = {k.removeprefix("param/"): jnp.asarray(z[k]) for k in z.files if k.startswith("param/")}
            facts = jnp.asarray(z["facts"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{str(path)!r} is not a saved factrecall model ({exc})") from exc
    check(
        meta.get("format") == FORMAT and meta.get("version") == VERSION,
        f"{str(path)!r} has format {meta.get('format')!r} v{meta.get('version')}; "
        f"expected {FORMAT!r} v{VERSION}",
    )
    cfg, task = TransformerConfig(**meta["config"]), RecallTask(**meta["task"])
    check(
        facts.shape == (task.S, task.R), f"facts of shape {facts.shape} do not match S={task.S}, R={task.R}"
    )
    return Trained(params, cfg, task, facts, meta.get("train", {}))
