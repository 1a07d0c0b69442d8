"""Capacity planner, the training half: measure the scaling data, grow a predicted shape until it stores a
fact table in fresh contexts, and search the smallest shape that does (the prediction: :mod:`.scaling`).

Every training goes through :func:`factrecall.recall.training.train_seeds` (one program per shape, rates
side by side, the kept one by the one rule). ``measure_point`` finds, per family and d, the largest table
S = R = n, D = 8 a model stores; ``grow`` trains a predicted shape on a table and, while it misses the
criterion in training or in fresh contexts, grows d by ×1.15, ×1.15², … (bounded); ``smallest`` bisects d
to the smallest stored size; ``plan`` is the ``factrecall plan`` command's library entry.

Paper: §4, Figure 4 (facts ∝ parameters); SPEC §8 (capacity planner), §2 (evaluation over all facts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Array, Int, Key, Params
from factrecall.core.bounds import attention_params, mlp_params
from factrecall.core.errors import TrainingError, check
from factrecall.core.search import Trial, search_largest
from factrecall.facts.scaling import Family, FamilyFit, Prediction, fit, load_scaling, predict, shape_record
from factrecall.facts.table import FactTable
from factrecall.recall import training
from factrecall.recall.task import RecallTask, facts_random, recall_task
from factrecall.recall.transformer import TransformerConfig, param_counts

VERIFY_CONTEXTS = 8  # fresh contexts per fact of the verification of a trained model


class Recipe(NamedTuple):
    """How the planner trains (measurements and verification alike), recorded with each measurement.

    Attributes:
        n_steps: step budget per run.
        batch: sequences sampled per step.
        eval_every: steps between evaluations over every fact.
        n_contexts: contexts per fact in the in-loop evaluation.
        lrs: Adam learning rates trained side by side; the kept one is :func:`training.kept_runs`'s.
        T: sequence length of the task.

    Lighter than the paper's (batch 1024, T = 32, ≤ 2^14 steps): planning runs in minutes on a CPU.
    """

    n_steps: int = 4096
    batch: int = 256
    eval_every: int = 256
    n_contexts: int = 2
    lrs: tuple[float, ...] = (3e-3, 1e-2)
    T: int = 16

    def run_recipe(self, criterion: float) -> training.Recipe:
        """The training recipe of one run (Adam, constant rate) at ``criterion``."""
        return training.Recipe(self.n_steps, self.batch, self.eval_every, criterion, self.n_contexts)


DEFAULT_RECIPE = Recipe()


def config_for(shape: Sequence[int], task: RecallTask) -> TransformerConfig:
    """The :class:`TransformerConfig` of shape (d, H, d_h, m) on ``task``."""
    d, H, d_h, m = (int(v) for v in shape)
    return TransformerConfig(d=d, H=H, d_h=d_h, m=m, vocab=task.vocab, n_out=task.n_answers)


class Attempt(NamedTuple):
    """One training of a candidate shape on a table; once verified (:func:`check_fresh`), ``verified`` is its
    fact accuracy in fresh contexts and ``n_missed`` the facts not answered in all of them (``missed``: up to
    10 names)."""

    shape: tuple[int, int, int, int]
    params: int
    stored: bool  # the criterion held in training (``accuracy``) and, if verified, in fresh contexts
    accuracy: float
    lr: float
    steps: int
    seconds: float
    diverged: int = 0  # learning rates whose run turned non-finite (never a result)
    verified: float | None = None
    n_missed: int | None = None
    missed: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        return {**self._asdict(), "shape": shape_record(self.shape), "missed": list(self.missed)}

    def summary(self) -> str:
        fresh = "" if self.verified is None else f", {self.verified:.4f} in fresh contexts"
        return f"d={self.shape[0]} ({self.accuracy:.4f} in training{fresh})"


class Job(NamedTuple):
    """What the planner's trainings learn: a task and its (S, R) facts, by models of one family, trained by
    ``recipe`` until ``criterion``; ``seed`` seeds the initialisation, the contexts and the batches."""

    task: RecallTask
    facts: Int[Array, "S R"]
    family: Family
    recipe: Recipe = DEFAULT_RECIPE
    criterion: float = 1.0
    seed: int = 0


def _attempt(job: Job, d: int) -> tuple[Attempt, Params, TransformerConfig]:
    """Train ``job``'s family at d at every rate of its recipe: the kept run and its weights."""
    shape = job.family.shape(d)
    cfg = config_for(shape, job.task)
    start = time.perf_counter()
    recipe = job.recipe.run_recipe(job.criterion)
    ((run, params),) = training.train_seeds(
        cfg, job.task, recipe, job.facts[None], job.recipe.lrs, (job.seed,)
    )
    seconds = time.perf_counter() - start
    attempt = Attempt(
        shape, job.family.params(d), run.reached, run.accuracy, run.lr, run.steps, seconds, run.diverged
    )
    return attempt, params, cfg


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
            facts = facts_random(task, key=jax.random.key(1000 + s))
            a = _attempt(Job(task, facts, family, recipe, criterion, s), d)[0]
            trials.append(Trial(s, n, a.stored, a.accuracy, a.lr, a.diverged, a.steps))
        return trials

    guess = _guess_n(family.params(d))
    (n_star,), capped, trials = search_largest(
        run_round, (seed,), guess, n_max=256, rel_precision=rel_precision, on_round=on_round
    )
    kind = {"family": family.name, "att_ratio": family.att_ratio, "mlp_ratio": family.mlp_ratio}
    counts = {"params": family.params(d), "attention_params": attention_params(*shape[:3])}
    counts["mlp_params"] = mlp_params(shape[0], shape[3])
    found = {"seed": seed, "n_star": n_star, "facts": n_star**2, "bits": n_star**2 * math.log2(8)}
    search = {"capped": capped, "trainings": len(trials), "criterion": criterion, "recipe": recipe._asdict()}
    search["seconds"] = time.perf_counter() - start
    return {**kind, **shape_record(shape), **counts, **found, **search}


def table_task(table: FactTable, T: int = DEFAULT_RECIPE.T) -> tuple[RecallTask, Int[Array, "S R"]]:
    """The recall task (S, R, D = largest answer count) of a fact table and its S×R answer ids."""
    return recall_task(table.S, table.R, table.D, T=T), jnp.asarray(table.facts, jnp.int32)


Verify = Callable[[Params, TransformerConfig], dict[str, Any]]  # a model's evaluate_table record


def grow(
    job: Job,
    d: int,
    *,
    verify: Verify | None = None,
    max_tries: int = 4,
    budget_params: int | None = None,
    on_try: Callable[[int, int, str], None] | None = None,
) -> tuple[list[Attempt], Params | None, TransformerConfig | None]:
    """Train ``job``'s family at d; while the facts are not stored, grow d by ×1.15, ×1.15², ×1.15⁴ … and
    retry. With ``verify`` (its fresh contexts), an attempt is stored only if the criterion holds there too
    (:func:`check_fresh`). At most ``max_tries`` trainings, never past ``budget_params``.

    Returns:
        (every attempt, the parameters and config of the first stored one — or of the last one tried when
        none stored — ; ``None`` when the budget forbade even the first).
    """
    attempts: list[Attempt] = []
    params = cfg = None
    step = 1.15
    for i in range(max_tries):
        if budget_params is not None and job.family.params(d) > budget_params:
            break
        attempt, params, cfg = _attempt(job, d)
        if verify is not None:
            attempt = check_fresh(attempt, job.criterion, verify(params, cfg))
        attempts.append(attempt)
        if on_try is not None:
            on_try(i + 1, max_tries, attempt.summary())
        if attempt.stored:
            break
        d = max(d + 1, math.ceil(d * step))
        step *= step
    return attempts, params, cfg


def check_fresh(attempt: Attempt, criterion: float, report: dict[str, Any]) -> Attempt:
    """``attempt`` with its verification ``report`` (:func:`evaluate_table` in fresh contexts): stored when
    the criterion c held in training and holds there too,

        acc = (1 / (n·S·R)) Σ_{k<n, s<S, r<R} 1[argmax_a logits_k(s, r)_a = a*(s, r)] ≥ c

    (c = 1: every fact in every context); one that misses there has fallen short like one that misses in
    training, and :func:`grow` grows it.
    """
    return attempt._replace(
        stored=attempt.stored and report["fact_accuracy"] >= criterion,
        verified=report["fact_accuracy"],
        n_missed=report["n_missed"],
        missed=tuple(report["missed"]),
    )


def smallest(
    job: Job,
    guess_d: int,
    *,
    rel_precision: float = 0.05,
    d_max: int = 512,
    on_round: Callable[[int, int, str], None] | None = None,
) -> tuple[int | None, list[Attempt]]:
    """The smallest d of ``job``'s family whose trained model stores its facts: brackets from ``guess_d`` and
    bisects geometrically (:func:`~factrecall.core.search.search_largest` on the largest d that fails).

    Returns:
        (the smallest stored d tried, or ``None`` when none up to ``d_max`` stored; every attempt).
    """
    attempts: list[Attempt] = []

    def run_round(ds: list[int], seeds: list[int]) -> list[Trial]:
        out = []
        for d, s in zip(ds, seeds, strict=True):
            a = _attempt(job._replace(seed=s), d)[0]
            attempts.append(a)
            out.append(Trial(s, d, not a.stored, a.accuracy, a.lr, 0, a.steps))  # "stored" = fails
        return out

    guess = max(guess_d - 1, 1)
    search_largest(run_round, (job.seed,), guess, n_max=d_max, rel_precision=rel_precision, on_round=on_round)
    stored = [a.shape[0] for a in attempts if a.stored]
    return (min(stored) if stored else None), attempts


def evaluate_table(
    params: Params,
    cfg: TransformerConfig,
    table: FactTable,
    n_contexts: int = VERIFY_CONTEXTS,
    T: int = DEFAULT_RECIPE.T,
    *,
    key: Key,
) -> dict[str, Any]:
    """Accuracy over every fact of ``table`` in ``n_contexts`` fresh contexts, per relation, and bits stored.

    ``bits_stored`` sums log2 D_r over the facts answered in every context (a fact of a relation with one
    answer holds no bits); ``missed`` names up to 10 facts that are not stored (``n_missed``: all of them).
    """
    task, facts = table_task(table, T=T)
    scores = training.score_facts(params, cfg, task, facts, n_contexts, key=key)
    correct = np.asarray(scores.correct, np.float64)
    stored = correct == 1.0
    log_d = np.log2(np.asarray(table.answer_counts, np.float64))
    missed = [table.fact_name(s, r) for s, r in zip(*np.nonzero(~stored), strict=True)]
    accuracy = {"fact_accuracy": float(correct.mean()), "facts_stored": float(stored.mean())}
    loss = {"fact_loss": float(scores.fact_loss), "eval_contexts": n_contexts}
    per_relation = {rel: float(correct[:, r].mean()) for r, rel in enumerate(table.relations)}
    bits = {"bits_stored": float((stored * log_d[None, :]).sum()), "table_bits": table.bits}
    names = {"missed": missed[:10], "n_missed": len(missed)}
    return {**accuracy, **loss, "per_relation": per_relation, **bits, **names}


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
    """Predict the smallest transformer for ``table``; optionally train it (growing it if short; kept only
    when it holds the criterion in :data:`VERIFY_CONTEXTS` fresh contexts per fact too) and search the
    smallest shape that stores it. The library entry of ``factrecall plan``: its arguments are checked here.

    Returns:
        (the JSON record, the trained (params, config) — ``None`` without ``train``).

    Raises:
        ConfigError: a criterion outside (0, 1], max_tries < 1, a budget below the prediction, unreadable
            scaling data.
        TrainingError: with ``train``, no shape tried stored the table (the message names missed facts).
    """
    check(0.0 < criterion <= 1.0, f"criterion must be in (0, 1], got {criterion}")
    check(max_tries >= 1, f"max_tries must be ≥ 1, got {max_tries}")
    data = load_scaling(scaling_path)
    fits = fit(data["rows"])
    best, candidates = predict(table.bits, fits, budget_params)
    record = _prediction_record(table, data, fits, best, candidates, criterion)
    if not (train or search_smallest):
        return record, None
    task, facts = table_task(table, T=recipe.T)
    family = fits[best.family].family
    job = Job(task, facts, family, recipe, criterion, seed)
    model = None
    if train:
        reports: list[dict[str, Any]] = []  # each attempt's verification; the last is the kept model's

        def verify(params: Params, cfg: TransformerConfig) -> dict[str, Any]:
            key = jax.random.key(seed + 10_000)
            reports.append(evaluate_table(params, cfg, table=table, T=recipe.T, key=key))
            return reports[-1]

        tries = {"max_tries": max_tries, "budget_params": budget_params, "on_try": on_progress}
        attempts, params, cfg = grow(job, best.shape[0], verify=verify, **tries)
        record["attempts"] = [a.record() for a in attempts]
        if params is None or cfg is None or not attempts[-1].stored:
            raise TrainingError(_not_stored(attempts, criterion))
        counts, report = param_counts(cfg), reports[-1]
        sizes = {"params": counts.paper, "attention_params": counts.attention, "mlp_params": counts.mlp}
        per_param = {"bits_per_param": report["bits_stored"] / counts.paper}
        record["verified"] = {"shape": shape_record(cfg[:4]), **sizes, **per_param, **report}
        model = (params, cfg)
    if search_smallest:
        d_search, attempts = smallest(job, best.shape[0], on_round=on_progress)
        record["smallest"] = _smallest_record(record, family, best, d_search, attempts)
    return record, model


def _prediction_record(
    table: FactTable,
    data: dict[str, Any],
    fits: dict[str, FamilyFit],
    best: Prediction,
    candidates: list[Prediction],
    criterion: float,
) -> dict[str, Any]:
    """The record of a plan before any training: the table, the prediction, the fits and their data."""
    first = data["rows"][0].get("run", {})
    return {
        "table": table.summary(),
        "bits": table.bits,
        "predicted": best.record(),
        "candidates": [c.record() for c in candidates],
        "fits": {name: f.record() for name, f in fits.items()},
        "scaling_data": {"utc": first.get("utc"), "command": first.get("command"), "rows": len(data["rows"])},
        "criterion": criterion,
    }


def _not_stored(attempts: list[Attempt], criterion: float) -> str:
    """Why nothing was stored: each shape tried (accuracy in training, in fresh contexts) and the facts the
    best verified one missed (up to 10, then how many more)."""
    tried = ", ".join(a.summary() for a in attempts) or "none within the budget"
    why = f"no shape stored the table at criterion {criterion}: tried {tried}"
    if best := max((a for a in attempts if a.n_missed), key=lambda a: a.verified or 0.0, default=None):
        more = f" and {best.n_missed - len(best.missed)} more" if best.n_missed > len(best.missed) else ""
        why += f"; d={best.shape[0]} missed {', '.join(best.missed)}{more} in fresh contexts"
    return why + "; raise max_tries or budget_params, or lower the criterion"


def _smallest_record(
    record: dict[str, Any], family: Family, best: Prediction, d_search: int | None, attempts: list[Attempt]
) -> dict[str, Any]:
    """The smallest stored d, the search's and the grow attempts' (same family and recipe) alike."""
    stored = [a["shape"]["d"] for a in record.get("attempts", []) if a["stored"]]
    stored += [d_search] if d_search else []
    d_star = min(stored) if stored else None
    return {
        "d": d_star,
        "d_search": d_search,
        "params": family.params(d_star) if d_star else None,
        "predicted_over_smallest": best.params / family.params(d_star) if d_star else None,
        "attempts": [a.record() for a in attempts],
    }
