"""How many edits a memory absorbs as it fills up (beyond the paper): the editing study.

Owns :class:`EditingSpec` (one point of the study: a transformer shape, a fill ratio f, an editing method and
mode, the seeds and the training recipe, written once with their defaults and checks), the capacity N* of
the shape, the models trained to a fraction of it, the doubling of the number of edits k until a model
breaks, the edit-capacity rule (:func:`edit_capacity`) and the fit of edit capacity against spare capacity
N* − N (:func:`slope_fit`).

* **Capacity.** N* is measured, never quoted: the transformer capacity search
  (:func:`factrecall.recall.capacity.capacity`, one row or column at a time) at the spec's recipe gives
  each seed's largest stored S·R (``capacity_per_seed``); N* is their median (the seeds' capacities spread
  by tens of percent at quick budgets, and the worst seed's would leave the others half empty at f = 1),
  k* = round(√N*).
* **Fill.** At fill ratio f the model stores N = S·R facts with R = k* fixed and S = max(1, round(f·N*/k*)),
  so N ≈ f·N*; each seed's model is trained on its own random facts (fold_in(key(seed), 1)) by the capacity
  trials' recipe until every fact is answered in :data:`TRAIN_CONTEXTS` fixed contexts (criterion 1.0;
  training stops at the first evaluation that passes, and a model that barely passes a capacity trial's
  2 contexts misses facts, and edits, in fresh ones), all seeds as one program
  (:func:`factrecall.recall.training.train_seeds`). What each stores before editing is recorded; at f = 1
  a model may not store all its facts, and specificity is measured against its own pre-edit answers
  anyway.
* **Edits.** k = 1, 2, 4, … (k < N, so some facts stay unedited; at most ``max_edits``) random edits
  (:func:`factrecall.editing.edits.random_edits`, seed :func:`edit_seed`), each applied to the unedited model
  and scored (:func:`factrecall.editing.run.edit_record`), until efficacy or specificity falls below the
  threshold. The edit capacity is the largest k before that; when no k failed it is censored (≥ k).

No JAX at import: the library code is imported when a point runs, so the experiments' point model
(:class:`factrecall.experiments.specs.EditingPoint`) can be built cheaply.

Paper: beyond the paper (editing the associative memories of §3–§4, Nichani, Lee & Bietti, ICLR 2025);
SPEC §4, §8.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, Field, model_validator

from factrecall.core.errors import TrainingError, check
from factrecall.core.fields import FROZEN, Criterion, NonNeg, Pos, Rates, Seeds
from factrecall.core.progress import Update

if TYPE_CHECKING:
    from factrecall.recall.capacity import Spec
    from factrecall.recall.task import RecallTask
    from factrecall.recall.training import Recipe, Trained
    from factrecall.recall.transformer import TransformerConfig

MODES = ("all-at-once", "sequential")
# contexts per fact in which a model must answer every fact before editing (its training's stop check)
TRAIN_CONTEXTS = 32
# the scores an edit curve keeps from each edit record (the `factrecall edit --json` keys)
SCORES = (
    "efficacy",
    "specificity",
    "paraphrase",
    "edits_stored",
    "retained_accuracy",
    "delta_norm",
    "seconds",
)


class EditingSpec(BaseModel):
    """One point of the editing study (frozen, hashable): a shape filled to f·N*, edited by one method.

    Attributes:
        d, H, d_h, m: the transformer shape (m ≥ 1 to edit the MLP).
        D, T: answers per relation (≥ 2: an edit needs another answer), sequence length.
        fill: the fill ratio f = N / N* of the trained models.
        method, where: how the edits are computed (``rank-one``, ``batch`` or ``finetune``) and which weights
            they change (``mlp``, ``values`` or ``both``).
        mode: ``all-at-once`` (every edit computed on the unedited model) or ``sequential`` (one after
            another).
        seeds: one trained model (and its edits) per seed; the capacity search runs the same seeds.
        lrs, n_steps, batch: the training recipe of the capacity trials and of the models (best rate kept).
        criterion, patience: the capacity's storage criterion; a capacity trial stops after this many steps
            without gain (0: never).
        threshold: efficacy and specificity an edit count must reach to count as absorbed.
        n_contexts: fresh contexts per fact when edits are scored.
        max_edits: the largest k tried (None: below the number of facts N).
    """

    model_config = FROZEN

    d: Pos = 16
    H: Pos = 2
    d_h: Pos = 4
    m: NonNeg = 16
    D: Annotated[int, Field(ge=2)] = 8
    T: Annotated[int, Field(ge=3)] = 8
    fill: Annotated[float, Field(gt=0, le=1)] = 1.0
    method: Literal["rank-one", "batch", "finetune"] = "rank-one"
    where: Literal["mlp", "values", "both"] = "mlp"
    mode: Literal["all-at-once", "sequential"] = "all-at-once"
    seeds: Seeds = [0, 1, 2]
    lrs: Rates = [1e-2, 3e-2]
    n_steps: Pos = 4096
    batch: Pos = 256
    criterion: Criterion = 0.99
    patience: NonNeg = 1024
    threshold: Criterion = 0.99
    n_contexts: Pos = 8
    max_edits: Pos | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EditingSpec:
        """The checks that tie fields together; each raises :class:`~factrecall.core.errors.ConfigError`."""
        check(
            self.m >= 1 or self.where == "values",
            f"where={self.where!r} edits the MLP, but m=0 (no MLP); use where='values' or m ≥ 1",
        )
        check(len(set(self.seeds)) == len(self.seeds), f"seeds must be distinct, got {self.seeds}")
        from factrecall.recall.capacity import validate_spec

        validate_spec(self.capacity_spec())  # the shape, the recipe and the rates
        return self

    def capacity_spec(self) -> Spec:
        """The transformer capacity search of the shape (S = R = k) at this recipe."""
        from factrecall.recall import capacity as tc

        recipe = tc.trial_recipe(self.n_steps, self.batch, self.criterion)
        shape = (self.d, self.H, self.d_h, self.m, self.D, "linear")
        return tc.Spec(*shape, recipe, tuple(self.lrs), self.patience or None, self.T)


@functools.cache
def shape_capacity(spec: Spec, seeds: tuple[int, ...]) -> dict[str, Any]:
    """The capacity record of a shape (:meth:`factrecall.recall.capacity.Result.summary`), measured once per
    process for all the fill ratios, methods and modes of the shape (cached; treat it as read-only)."""
    from factrecall.recall.capacity import capacity

    return capacity(spec, seeds).summary()


def fill_sizes(N_star: int, fill: float) -> tuple[int, int]:
    """(S, R) of fill ratio f for a capacity of N* facts: R = k* = round(√N*) and S = max(1, round(f·N*/R)),
    so S·R ≈ f·N* (N* need not be a square: the capacity search grows one row or column at a time).

    >>> fill_sizes(144, 0.25), fill_sizes(144, 1.0), fill_sizes(9, 0.1)
    ((3, 12), (12, 12), (1, 3))
    >>> fill_sizes(210, 1.0), fill_sizes(2, 1.0)
    ((15, 14), (2, 1))
    """
    R = max(1, round(math.sqrt(N_star)))
    return max(1, round(fill * N_star / R)), R


def edit_ks(n_facts: int, max_edits: int | None = None) -> list[int]:
    """The edit counts tried: k = 1, 2, 4, … while k < N (some facts stay unedited) and k ≤ ``max_edits``.

    >>> edit_ks(36), edit_ks(36, max_edits=8), edit_ks(1)
    ([1, 2, 4, 8, 16, 32], [1, 2, 4, 8], [])
    """
    top = n_facts - 1 if max_edits is None else min(n_facts - 1, max_edits)
    return [2**j for j in range(max(top, 1).bit_length()) if 2**j <= top]


def edit_seed(seed: int, k: int) -> int:
    """The seed of the k random edits of seed ``seed``'s model (the same edits for every method and mode)."""
    return 1_000_003 * seed + k


def passes(scores: dict[str, Any], threshold: float) -> bool:
    """Whether an edit count was absorbed: efficacy and specificity both ≥ ``threshold``."""
    return scores["efficacy"] >= threshold and scores["specificity"] >= threshold


def edit_capacity(curve: Sequence[dict[str, Any]], threshold: float = 0.99) -> tuple[int, bool]:
    """The edit capacity of a curve of edit counts (increasing k) and whether it is censored.

    It is the largest k before the first k with efficacy or specificity below ``threshold`` (0 when k = 1
    already fails); when no k failed it is the last k tried, a lower bound (censored: "≥ k").

    >>> ok, bad = {"efficacy": 1.0, "specificity": 1.0}, {"efficacy": 1.0, "specificity": 0.9}
    >>> edit_capacity([{"k": 1, **ok}, {"k": 2, **ok}, {"k": 4, **bad}])
    (2, False)
    >>> edit_capacity([{"k": 1, **ok}, {"k": 2, **ok}]), edit_capacity([{"k": 1, **bad}]), edit_capacity([])
    ((2, True), (0, False), (0, True))
    """
    best = 0
    for row in curve:
        if not passes(row, threshold):
            return best, False
        best = row["k"]
    return best, True


def capacity_label(value: float, censored: bool) -> str:
    """An edit capacity as the report writes it: ``≥ k`` when censored.

    >>> capacity_label(32, True), capacity_label(4.0, False)
    ('≥ 32', '4')
    """
    return f"≥ {value:g}" if censored else f"{value:g}"


@functools.lru_cache(maxsize=4)
def trained_models(
    cfg: TransformerConfig, task: RecallTask, recipe: Recipe, lrs: tuple[float, ...], seeds: tuple[int, ...]
) -> tuple[Trained, ...]:
    """One model per seed trained on its own random facts, all seeds as one program (cached: the methods
    and modes of one fill ratio edit the same models).

    Raises:
        TrainingError: every learning rate of a seed diverged.
    """
    import jax
    import jax.numpy as jnp

    from factrecall.recall.task import facts_random
    from factrecall.recall.training import Trained, train_seeds

    start = time.perf_counter()
    facts = jnp.stack([facts_random(task, key=jax.random.fold_in(jax.random.key(s), 1)) for s in seeds])
    runs = train_seeds(cfg, task, recipe, facts, lrs, seeds)
    seconds = time.perf_counter() - start
    out = []
    for seed, f, (run, params) in zip(seeds, facts, runs, strict=True):
        if not run.kept:
            raise TrainingError(f"seed {seed}: every learning rate in {list(lrs)} diverged")
        info = {"lr": run.lr, "steps": run.steps, "reached": run.reached, "seconds": seconds, "seed": seed}
        out.append(Trained(params, cfg, task, f, info))
    return tuple(out)


def before_editing(model: Trained, n_contexts: int) -> dict[str, float]:
    """What a model stores before editing: ``fact_accuracy`` and ``facts_stored`` over every fact."""
    import jax

    from factrecall.recall.training import score_facts_jit

    key = jax.random.fold_in(jax.random.key(model.info["seed"]), 2)
    scores = score_facts_jit(model.params, model.cfg, model.task, model.facts, n_contexts, key=key)
    return {"fact_accuracy": float(scores.fact_accuracy), "facts_stored": float(scores.facts_stored)}


def edit_curve(model: Trained, spec: EditingSpec, update: Update | None = None) -> list[dict[str, Any]]:
    """The scores of k = 1, 2, 4, … random edits of ``model`` (:func:`edit_ks`), each applied to the
    unedited model, up to the first k that is not absorbed (:func:`passes`)."""
    from factrecall.editing.edits import random_edits
    from factrecall.editing.run import edit_record

    seed, ks = model.info["seed"], edit_ks(model.task.n_facts, spec.max_edits)
    curve = []
    for i, k in enumerate(ks):
        edits = random_edits(model.facts, model.task.D, k, seed=edit_seed(seed, k))
        record, _ = edit_record(
            model,
            edits,
            spec.method,
            spec.where,
            sequential=spec.mode == "sequential",
            n_contexts=spec.n_contexts,
            seed=edit_seed(seed, k),
        )
        curve.append({"k": k, **{name: float(record[name]) for name in SCORES}})
        if update is not None:
            update(i + 1, len(ks), f"seed {seed}: {k} edits, efficacy {record['efficacy']:.3f}")
        if not passes(record, spec.threshold):
            break
    return curve


def run_point(spec: EditingSpec, update: Update | None = None) -> dict[str, Any]:
    """One point of the study: N* of the shape, the models at N ≈ f·N*, each seed's edit curve and edit
    capacity. Returns the record (``per_seed`` holds each seed's model, curve and edit capacity)."""
    from factrecall.recall import capacity as tc
    from factrecall.recall.task import recall_task
    from factrecall.recall.training import validate_recipe

    start = time.perf_counter()
    seeds = tuple(spec.seeds)
    if update is not None:
        update(0, 1, "capacity of the shape")
    cap_spec = spec.capacity_spec()
    cap = shape_capacity(cap_spec, seeds)
    N_star = int(np.median(cap["capacity_per_seed"]))
    check(N_star >= 1, f"the shape d={spec.d}, H={spec.H}, d_h={spec.d_h}, m={spec.m} stores no fact set")
    S, R = fill_sizes(N_star, spec.fill)
    k_star = R
    task = recall_task(S, R, spec.D, T=spec.T)
    recipe = cap_spec.recipe._replace(criterion=1.0, n_contexts=TRAIN_CONTEXTS)
    validate_recipe(recipe)
    models = trained_models(tc.config_of(cap_spec, task), task, recipe, tuple(spec.lrs), seeds)
    per_seed = []
    for model in models:
        curve = edit_curve(model, spec, update)
        k, censored = edit_capacity(curve, spec.threshold)
        before = before_editing(model, spec.n_contexts)
        per_seed.append({**model.info, **before, "curve": curve, "edit_capacity": k, "censored": censored})
    capacities = [p["edit_capacity"] for p in per_seed]
    return {
        "S": S,
        "R": R,
        "N": S * R,
        "N_star": N_star,
        "k_star": k_star,
        "spare": N_star - S * R,
        "capacity_per_seed": cap["capacity_per_seed"],
        "params": cap["params"],
        "edit_capacity": capacities,
        "censored": [p["censored"] for p in per_seed],
        "edit_capacity_median": float(np.median(capacities)),
        "per_seed": per_seed,
        "capacity_seconds": cap["seconds"],
        "seconds": time.perf_counter() - start,
    }


class SlopeFit(NamedTuple):
    """y ≈ intercept + slope·x by least squares, with the slope's 95% band (Student t, n − 2 dof)."""

    slope: float
    intercept: float
    stderr: float
    lo: float
    hi: float
    n_points: int

    def verdict(self) -> str:
        """Whether y tracks x, in words: the sign of the slope when its band excludes 0."""
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            return "too few points to tell"
        if self.lo > 0:
            return "tracks it: more spare capacity, more edits absorbed (band above 0)"
        if self.hi < 0:
            return "runs against it: more spare capacity, fewer edits absorbed (band below 0)"
        return "does not track it (band includes 0)"


def slope_fit(x: Sequence[float], y: Sequence[float]) -> SlopeFit:
    """Ordinary least squares of y on x, slope b = Σ(x − x̄)(y − ȳ) / Σ(x − x̄)², its standard error
    se = sqrt(Σ residual² / (n − 2) / Σ(x − x̄)²) and band b ± t_{0.975, n−2}·se.

    >>> fit = slope_fit([0, 1, 2, 3], [1, 3, 5, 7])
    >>> round(fit.slope, 6), round(fit.intercept, 6), round(fit.stderr, 6), fit.verdict()[:9]
    (2.0, 1.0, 0.0, 'tracks it')
    """
    from scipy.stats import t as student

    xs, ys = np.asarray(x, float), np.asarray(y, float)
    n, sxx = len(xs), float(np.sum((xs - xs.mean()) ** 2)) if len(xs) else 0.0
    if n < 2 or sxx == 0:
        return SlopeFit(math.nan, math.nan, math.nan, math.nan, math.nan, n)
    slope = float(np.sum((xs - xs.mean()) * (ys - ys.mean())) / sxx)
    intercept = float(ys.mean() - slope * xs.mean())
    if n < 3:
        return SlopeFit(slope, intercept, math.nan, math.nan, math.nan, n)
    residual = ys - intercept - slope * xs
    stderr = float(np.sqrt(np.sum(residual**2) / (n - 2) / sxx))
    half = float(student.ppf(0.975, n - 2)) * stderr
    return SlopeFit(slope, intercept, stderr, slope - half, slope + half, n)
