"""Capacity planner, the training half: measure the scaling data, grow a predicted shape until it stores a
fact table, and search the smallest shape that does (the prediction itself is
:mod:`factrecall.facts.scaling`).

Every training goes through :func:`factrecall.core.engine.train_many` (one program per shape, learning
rates and
seeds side by side). ``measure_point`` finds, per family and d, the largest synthetic table S = R = n,
D = 8 a model stores at the criterion; ``grow`` trains a predicted shape on a table and, when it falls
short, grows d by ×1.15, ×1.15², … (bounded); ``smallest`` bisects d to the smallest stored size, against
which a prediction is judged.

Paper: §4, Figure 4 (facts ∝ parameters); SPEC §8 (capacity planner).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Array, Int, Key, Params
from factrecall.core.engine import Problem, Settings, cross_entropy, train_many
from factrecall.core.errors import TrainingError, check
from factrecall.core.search import Trial, search_largest
from factrecall.facts.scaling import Family, fit, load_scaling, predict
from factrecall.facts.table import FactTable
from factrecall.recall.task import RecallTask, every_fact, facts_random, recall_task, sample
from factrecall.recall.transformer import TransformerConfig, forward, frozen, param_counts, transformer


class Recipe(NamedTuple):
    """Training recipe of the planner (measurements and verification use the same one).

    Attributes:
        n_steps: step budget per run.
        batch: sequences sampled per step.
        eval_every: steps between evaluations over every fact.
        n_contexts: contexts per fact in the in-loop evaluation.
        lrs: Adam learning rates trained side by side; the best is kept.
        T: sequence length of the task.

    Lighter than the paper's recipe (batch 1024, T = 32, up to 2^14 steps) so that planning runs in minutes
    on a CPU; the measurements and the verification share it, so predictions hold for this recipe.
    """

    n_steps: int = 4096
    batch: int = 256
    eval_every: int = 256
    n_contexts: int = 2
    lrs: tuple[float, ...] = (3e-3, 1e-2)
    T: int = 16


DEFAULT_RECIPE = Recipe()


# ------------------------------------------------------------------------------------------------ training


def _loss(cfg: TransformerConfig, task: RecallTask, batch: int, params: Params, data: Any, key: Key) -> Array:
    seqs = sample(task, data["facts"], batch, key=key)
    p = frozen(params, cfg)
    logits = jax.vmap(lambda t: forward(p, t, kind=cfg.attention))(seqs.tokens)
    return cross_entropy(logits, seqs.labels)


def _evaluate(cfg: TransformerConfig, task: RecallTask, n_contexts: int, params: Params, data: Any) -> dict:
    seqs = every_fact(task, data["facts"], n_contexts, key=data["eval_key"])
    logits = jax.vmap(lambda t: forward(params, t, kind=cfg.attention))(seqs.tokens)
    hits = jnp.sum(jnp.argmax(logits, axis=-1) == seqs.labels)
    total = seqs.labels.shape[0]
    # exactly 1.0 when every context is right: a criterion of 1.0 must not be missed by float rounding
    return {"fact_accuracy": jnp.where(hits == total, 1.0, hits / total)}


@functools.cache
def _problem(cfg: TransformerConfig, task: RecallTask, batch: int, n_contexts: int) -> Problem:
    return Problem(
        functools.partial(_loss, cfg, task, batch),
        functools.partial(_evaluate, cfg, task, n_contexts),
        "fact_accuracy",
    )


def config_for(shape: Sequence[int], task: RecallTask) -> TransformerConfig:
    """The :class:`TransformerConfig` of shape (d, H, d_h, m) on ``task``."""
    d, H, d_h, m = (int(v) for v in shape)
    return TransformerConfig(d=d, H=H, d_h=d_h, m=m, vocab=task.vocab, n_out=task.n_answers)


def train_seeds(
    cfg: TransformerConfig,
    task: RecallTask,
    facts: Int[Array, "B S R"],
    seeds: Sequence[int],
    recipe: Recipe = DEFAULT_RECIPE,
    criterion: float = 1.0,
) -> list[dict[str, Any]]:
    """Train one model per seed (each on its own facts) at every learning rate of ``recipe``, as one program.

    Returns:
        Per seed: ``params`` (the best run's best parameters), ``accuracy`` (its in-loop fact accuracy),
        ``stored`` (criterion reached), ``lr``, ``steps``, ``diverged`` (runs).
    """
    transformer(cfg)  # validates cfg
    problem = _problem(cfg, task, recipe.batch, recipe.n_contexts)
    settings = Settings(recipe.n_steps, recipe.eval_every, criterion)
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    params = jax.vmap(lambda k: transformer(cfg).init(jax.random.fold_in(k, 0)))(keys)
    data = {
        "facts": jnp.asarray(facts, jnp.int32),
        "eval_key": jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys),
    }
    out = train_many(
        problem,
        settings,
        params,
        data,
        jnp.asarray(recipe.lrs),
        jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys),
    )
    out = jax.tree_util.tree_map(np.asarray, out)
    results = []
    for i in range(len(seeds)):
        metric = np.where(out.diverged[i], -np.inf, out.best_metric[i])
        best = int(np.argmax(metric))
        results.append(
            {
                "params": {k: jnp.asarray(v[i, best]) for k, v in out.best_params.items()},
                "accuracy": float(out.best_metric[i, best]),
                "stored": bool(out.reached[i, best]),
                "lr": float(recipe.lrs[best]),
                "steps": int(out.steps[i, best]),
                "diverged": int(np.sum(out.diverged[i])),
            }
        )
    return results


# ------------------------------------------------------------------------------------------ measurements


def _guess_n(params: int, bits_per_param: float = 0.2) -> int:
    """A starting guess for the capacity search: n with n²·log2 8 = bits_per_param·P."""
    return max(2, round(math.sqrt(bits_per_param * params / 3.0)))


def measure_point(
    family: Family,
    d: int,
    *,
    seed: int = 0,
    recipe: Recipe = DEFAULT_RECIPE,
    criterion: float = 1.0,
    rel_precision: float = 0.05,
    on_round: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Capacity of ``family`` at ``d``: the largest n such that a trained model stores S = R = n, D = 8.

    Returns:
        A row: the shape, its parameter counts, ``n_star``, ``facts`` = n², ``bits`` = n²·log2 8, and the
        number of trainings the search took.
    """
    shape = family.shape(d)
    start = time.perf_counter()

    def run_round(Ns: list[int], seeds: list[int]) -> list[Trial]:
        trials = []
        for n, s in zip(Ns, seeds, strict=True):
            task = recall_task(n, n, 8, T=recipe.T)
            facts = facts_random(task, key=jax.random.key(1000 + s))[None]
            r = train_seeds(config_for(shape, task), task, facts, (s,), recipe, criterion)[0]
            trials.append(Trial(s, n, r["stored"], r["accuracy"], r["lr"], r["diverged"], r["steps"]))
        return trials

    (n_star,), capped, trials = search_largest(
        run_round,
        (seed,),
        _guess_n(family.params(d)),
        n_max=256,
        rel_precision=rel_precision,
        on_round=on_round,
    )
    counts = param_counts(config_for(shape, recall_task(2, 2, 2)))
    return {
        "family": family.name,
        "att_ratio": family.att_ratio,
        "mlp_ratio": family.mlp_ratio,
        "d": shape[0],
        "H": shape[1],
        "d_h": shape[2],
        "m": shape[3],
        "params": counts.paper,
        "attention_params": counts.attention,
        "mlp_params": counts.mlp,
        "seed": seed,
        "n_star": n_star,
        "facts": n_star**2,
        "bits": n_star**2 * math.log2(8),
        "capped": capped,
        "trainings": len(trials),
        "criterion": criterion,
        "recipe": recipe._asdict(),
        "seconds": time.perf_counter() - start,
    }


# ------------------------------------------------------------------------------------------ verification


class Attempt(NamedTuple):
    """One training of a candidate shape on the table."""

    shape: tuple[int, int, int, int]
    params: int
    stored: bool
    accuracy: float
    lr: float
    steps: int
    seconds: float
    diverged: int = 0  # learning rates whose run turned non-finite (never a result)

    def record(self) -> dict[str, Any]:
        d, H, d_h, m = self.shape
        return {**self._asdict(), "shape": {"d": d, "H": H, "d_h": d_h, "m": m}}


def table_task(table: FactTable, T: int = DEFAULT_RECIPE.T) -> tuple[RecallTask, Int[Array, "S R"]]:
    """The recall task (S, R, D = largest answer count) of a fact table and its S×R answer ids."""
    return recall_task(table.S, table.R, table.D, T=T), jnp.asarray(table.facts, jnp.int32)


def _attempt(
    family: Family, d: int, task: RecallTask, facts: Array, recipe: Recipe, criterion: float, seed: int
) -> tuple[Attempt, Params, TransformerConfig]:
    shape = family.shape(d)
    cfg = config_for(shape, task)
    start = time.perf_counter()
    r = train_seeds(cfg, task, facts[None], (seed,), recipe, criterion)[0]
    attempt = Attempt(
        shape,
        family.params(d),
        r["stored"],
        r["accuracy"],
        r["lr"],
        r["steps"],
        time.perf_counter() - start,
        r["diverged"],
    )
    return attempt, r["params"], cfg


def grow(
    task: RecallTask,
    facts: Int[Array, "S R"],
    family: Family,
    d: int,
    *,
    recipe: Recipe = DEFAULT_RECIPE,
    criterion: float = 1.0,
    max_tries: int = 4,
    budget_params: int | None = None,
    seed: int = 0,
    on_try: Callable[[int, int, str], None] | None = None,
) -> tuple[list[Attempt], Params | None, TransformerConfig | None]:
    """Train ``family`` at d; while the table is not stored, grow d by ×1.15, ×1.15², ×1.15⁴ … and retry.

    At most ``max_tries`` trainings, never past ``budget_params``.

    Returns:
        (every attempt, the parameters and config of the first stored one — or of the last one tried when
        none stored — ; ``None`` when the budget forbade even the first).
    """
    attempts: list[Attempt] = []
    params = cfg = None
    step = 1.15
    for i in range(max_tries):
        if budget_params is not None and family.params(d) > budget_params:
            break
        attempt, params, cfg = _attempt(family, d, task, facts, recipe, criterion, seed)
        attempts.append(attempt)
        if on_try is not None:
            on_try(i + 1, max_tries, f"d={d}: accuracy {attempt.accuracy:.4f}")
        if attempt.stored:
            break
        d = max(d + 1, math.ceil(d * step))
        step *= step
    return attempts, params, cfg


def smallest(
    task: RecallTask,
    facts: Int[Array, "S R"],
    family: Family,
    guess_d: int,
    *,
    recipe: Recipe = DEFAULT_RECIPE,
    criterion: float = 1.0,
    rel_precision: float = 0.05,
    d_max: int = 512,
    seed: int = 0,
    on_round: Callable[[int, int, str], None] | None = None,
) -> tuple[int | None, list[Attempt]]:
    """The smallest d of ``family`` whose trained model stores the table (the planner's own search).

    Brackets from ``guess_d`` and bisects geometrically (:func:`factrecall.core.search.search_largest` on the
    largest d that fails), until the smallest stored and the largest failing d are within ``rel_precision``.

    Returns:
        (the smallest stored d tried, or ``None`` when none up to ``d_max`` stored; every attempt).
    """
    attempts: list[Attempt] = []

    def run_round(ds: list[int], seeds: list[int]) -> list[Trial]:
        out = []
        for d, s in zip(ds, seeds, strict=True):
            a = _attempt(family, d, task, facts, recipe, criterion, s)[0]
            attempts.append(a)
            out.append(Trial(s, d, not a.stored, a.accuracy, a.lr, 0, a.steps))  # "stored" = fails
        return out

    search_largest(
        run_round, (seed,), max(guess_d - 1, 1), n_max=d_max, rel_precision=rel_precision, on_round=on_round
    )
    stored = [a.shape[0] for a in attempts if a.stored]
    return (min(stored) if stored else None), attempts


def evaluate_table(
    params: Params,
    cfg: TransformerConfig,
    table: FactTable,
    n_contexts: int = 8,
    T: int = DEFAULT_RECIPE.T,
    *,
    key: Key,
) -> dict[str, Any]:
    """Accuracy over every fact of ``table`` in ``n_contexts`` fresh contexts, per relation, and bits stored.

    ``bits_stored`` sums log2 D_r over the facts answered in every context (a fact of a relation with one
    answer holds no bits); ``missed`` names up to 10 facts that are not stored.
    """
    from factrecall.recall.training import score_facts

    task, facts = table_task(table, T=T)
    scores = score_facts(params, cfg, task, facts, n_contexts, key=key)
    correct = np.asarray(scores.correct, np.float64)
    stored = correct == 1.0
    log_d = np.log2(np.asarray(table.answer_counts, np.float64))
    missed = [table.fact_name(s, r) for s, r in zip(*np.nonzero(~stored), strict=True)]
    return {
        "fact_accuracy": float(correct.mean()),
        "facts_stored": float(stored.mean()),
        "fact_loss": float(scores.fact_loss),
        "eval_contexts": n_contexts,
        "per_relation": {rel: float(correct[:, r].mean()) for r, rel in enumerate(table.relations)},
        "bits_stored": float((stored * log_d[None, :]).sum()),
        "table_bits": table.bits,
        "missed": missed[:10],
        "n_missed": len(missed),
    }


def plan(
    table: FactTable,
    *,
    criterion: float = 1.0,
    budget_params: int | None = None,
    train: bool = False,
    search_smallest: bool = False,
    max_tries: int = 4,
    recipe: Recipe = DEFAULT_RECIPE,
    seed: int = 0,
    scaling_path: str | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> tuple[dict[str, Any], tuple[Params, TransformerConfig] | None]:
    """Predict the smallest transformer for ``table``; optionally train it (growing it if short) and search
    the smallest shape that stores it.

    Returns:
        (the JSON record, the trained (params, config) — ``None`` without ``train``).

    Raises:
        ConfigError: a criterion outside (0, 1], a budget below the prediction, unreadable scaling data.
        TrainingError: with ``train``, no shape tried stored the table.
    """
    check(0.0 < criterion <= 1.0, f"--criterion must be in (0, 1], got {criterion}")
    check(max_tries >= 1, f"--max-tries must be ≥ 1, got {max_tries}")
    data = load_scaling(scaling_path)
    fits = fit(data["rows"])
    best, candidates = predict(table.bits, fits, budget_params)
    first = data["rows"][0].get("run", {})
    record: dict[str, Any] = {
        "table": table.summary(),
        "bits": table.bits,
        "predicted": best.record(),
        "candidates": [c.record() for c in candidates],
        "fits": {
            name: {
                "c": f.c,
                "beta": f.beta,
                "sigma": f.sigma,
                "points": f.n_points,
                "params_range": f.params_range,
            }
            for name, f in fits.items()
        },
        "scaling_data": {"utc": first.get("utc"), "command": first.get("command"), "rows": len(data["rows"])},
        "criterion": criterion,
    }
    if not (train or search_smallest):
        return record, None
    task, facts = table_task(table, T=recipe.T)
    family = fits[best.family].family
    model = None
    if train:
        attempts, params, cfg = grow(
            task, facts, family, best.shape[0], recipe=recipe, criterion=criterion, max_tries=max_tries,
            budget_params=budget_params, seed=seed, on_try=on_progress,
        )  # fmt: skip
        record["attempts"] = [a.record() for a in attempts]
        if params is None or cfg is None or not attempts[-1].stored:
            tried = (
                ", ".join(f"d={a.shape[0]} ({a.accuracy:.4f})" for a in attempts) or "none within the budget"
            )
            raise TrainingError(
                f"no shape stored the table at criterion {criterion}: tried {tried}; raise --max-tries or "
                "--budget-params, or lower --criterion"
            )
        verified = evaluate_table(params, cfg, table, T=recipe.T, key=jax.random.key(seed + 10_000))
        counts = param_counts(cfg)
        record["verified"] = {
            "shape": {"d": cfg.d, "H": cfg.H, "d_h": cfg.d_h, "m": cfg.m},
            "params": counts.paper,
            "attention_params": counts.attention,
            "mlp_params": counts.mlp,
            "bits_per_param": verified["bits_stored"] / counts.paper,
            **verified,
        }
        model = (params, cfg)
    if search_smallest:
        d_search, attempts = smallest(
            task, facts, family, best.shape[0], recipe=recipe, criterion=criterion, seed=seed,
            on_round=on_progress,
        )  # fmt: skip
        # the grow attempts are trainings of the same family and recipe: a stored one counts too
        stored = [a["shape"]["d"] for a in record.get("attempts", []) if a["stored"]]
        stored += [d_search] if d_search else []
        d_star = min(stored) if stored else None
        record["smallest"] = {
            "d": d_star,
            "d_search": d_search,
            "params": family.params(d_star) if d_star else None,
            "predicted_over_smallest": best.params / family.params(d_star) if d_star else None,
            "attempts": [a.record() for a in attempts],
        }
    return record, model
