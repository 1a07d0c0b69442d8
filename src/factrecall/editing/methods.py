"""Editing a trained transformer's facts: closed-form updates of one associative memory, and fine-tuning.

Each method writes into the site(s) of :mod:`factrecall.editing.sites` (``mlp``: W2, keys k; ``values``: O,
keys u; ``both``: O then W2). Row-vector convention, value = key·W. For E edits with mean keys K_E (E × dim,
row e the key k̄_e of edit e averaged over its fit contexts), every closed form is W' = W + G·Δ with a gain
G (dim × E) from the model's own keys and Δ = V* − K_E·W the changes of the edits' values:

* ``rank-one`` (ROME-style, one update per edit, summed): G = C⁻¹K_Eᵀ·diag(1/(k̄_e C⁻¹ k̄_eᵀ)), with
  C = E[kᵀk] + λI the covariance of the keys of every fact of the table in the fit contexts. For one edit
  W' = W + (C⁻¹k̄ᵀ)(v* − k̄W)/(k̄C⁻¹k̄ᵀ): then k̄W' = v* exactly, and a key x with x·C⁻¹k̄ᵀ = 0 keeps xW' = xW.
* ``batch`` (MEMIT-style least squares, all edits at once): W' minimises Σ_{k kept} ‖kW' − kW‖² +
  Σ_e ‖k̄_e W' − v*_e‖², so G = (C₀ + K_EᵀK_E)⁻¹K_Eᵀ with C₀ = Σ kᵀk + λI over the keys of the facts not
  edited. For one edit this is (q/(1+q)) times the rank-one update with C = C₀, q = k̄C₀⁻¹k̄ᵀ.
* ``finetune``: Adam on the site's weights only (W2, O, or both) through
  :func:`factrecall.core.engine.train_many`: the loss is the cross-entropy of the new answers on
  ``ft_contexts`` fresh contexts of each edited fact per step (+ with ``replay``, a sampled batch of every
  fact with its current answer); evaluation every ``ft_eval_every`` steps on ``ft_eval_contexts`` held-out
  contexts (never trained on), stopping at the goal: in every one of them the new answer beats every other
  answer by the margin κ (``margin``), so that it holds in fresh contexts too; learning-rate grid
  ``ft_lrs``, the best kept by :func:`~factrecall.core.engine.best_rate`; divergence raises TrainingError.

Target values (closed forms). Row b of the fit batch (every fact in ``fit_contexts`` fresh contexts) has key
x_b, and the update moves its value by x_b·G·Δ. Writing Δ_e = A_e/g_e with g_e = k̄_e·G_e (1 for rank-one),
the change at each edit's mean key is A. A starts at an analytic point (:func:`~factrecall.editing.sites.
start_targets`: projection steps that lift each edit's worst fit row to the margin κ + 2); when that meets
the goal below it is A (0 steps; the search is neither run nor compiled), else Adam goes on from it
(:func:`~factrecall.editing.sites.solve_targets`) on the exact effect of the update on every fit row:
cross-entropy of the new answer (its logit lowered by the margin κ) on the edited facts' rows, plus
``keep_weight`` × cross-entropy of the model's current answer on the other rows, plus ``penalty``·‖A‖².
The search stops at its goal (the new
answer ahead of every other by κ on every edited row, every other row keeping its answer) or after
``steps``. When it misses the goal, the facts with a row that lost its answer are guarded: their keys weigh
β = ``guard`` times more in C (C₀), and G and A are recomputed (at most ``guard_rounds`` times). Then V* =
K_E·W + Δ. ``both``: the values edit applies ``values_share`` (½) of its change (ΔO = ½·G_u·Δ_u), then the
MLP edit closes the rest on that model, its keys recomputed.

Paper: §4.2–4.3 (facts live in associative memories: MLP and attention values); SPEC §8 (beyond: editing,
after ROME, Meng et al. 2022, and MEMIT, Meng et al. 2023).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Array, Key, Params
from factrecall.core.engine import Problem, Settings, best_rate, cross_entropy, train_many
from factrecall.core.errors import TrainingError, check
from factrecall.core.paper import PAPER_LRS
from factrecall.editing.edits import Edit, edit_names, edited_facts
from factrecall.editing.sites import (
    WEIGHT,
    TargetFit,
    covariance,
    fact_rows,
    fit_stats,
    gaps,
    method_gain,
    site_keys,
    solve_targets,
)
from factrecall.facts.queries import table_of
from factrecall.recall.task import RecallTask, every_fact, sample
from factrecall.recall.training import Trained, exact_fraction
from factrecall.recall.transformer import TransformerConfig, forward

METHODS = ("rank-one", "batch", "finetune")
WHERE = ("mlp", "values", "both")


class EditSettings(NamedTuple):
    """How the methods edit (hashable). Closed forms: the fields up to ``values_share``; finetune: the
    ``ft_`` ones and ``replay``; both: ``margin``.

    Attributes:
        fit_contexts: fresh contexts per fact for the keys, the covariance and the target search.
        steps: the target search's budget of Adam steps (it stops earlier at its goal).
        lr: its learning rate.
        penalty: weight of ‖A‖²_F / E in the target search.
        margin: κ, in logits: the goal is the new answer beating every other answer by κ (closed forms: in
            every fit context; finetune: in every held-out evaluation context).
        guard: β, the weight of a guarded fact's keys in the covariance.
        guard_rounds: at most this many recomputations with more facts guarded when the goal is missed.
        keep_weight: weight of the unedited rows' current answers in the target search.
        ridge: λ of the covariances, relative to the mean eigenvalue (see ``sites.covariance``).
        values_share: ``both``: the share of its change the values edit applies before the MLP edit.
        ft_steps: fine-tuning step budget.
        ft_eval_every: steps between its evaluations (the stop check).
        ft_lrs: its learning-rate grid (the paper's training grid {1e-3, 3e-3, 1e-2}).
        ft_contexts: contexts per edited fact in each step's batch.
        ft_eval_contexts: held-out contexts per edited fact in its evaluation (the stop check).
        replay: also train on a sampled batch of every fact with its current answer.
        replay_batch: size of that batch.
    """

    fit_contexts: int = 16
    steps: int = 300
    lr: float = 0.1
    penalty: float = 1e-3
    margin: float = 2.0
    guard: float = 100.0
    guard_rounds: int = 3
    keep_weight: float = 10.0
    ridge: float = 1e-5
    values_share: float = 0.5
    ft_steps: int = 2048
    ft_eval_every: int = 8
    ft_lrs: tuple[float, ...] = PAPER_LRS
    ft_contexts: int = 16
    ft_eval_contexts: int = 32
    replay: bool = False
    replay_batch: int = 64


class Edited(NamedTuple):
    """An edit's outcome."""

    model: Trained  # the edited model: new params; facts with the edited answers
    seconds: float  # wall time of the edit (compile included)
    delta_norm: float  # Frobenius norm of the change of every edited weight matrix together
    info: dict[str, Any]  # method, where, sequential, settings, per-method extras


class _Model(NamedTuple):
    """What the closed forms read of the model being edited."""

    params: Params
    cfg: TransformerConfig
    task: RecallTask
    facts: Array


def _closed_form(
    m: _Model,
    edits: Sequence[Edit],
    method: str,
    site: str,
    st: EditSettings,
    key: tuple[Key, int],
    C: np.ndarray | None,
    share: float,
) -> tuple[Params, TargetFit, int]:
    """One closed-form update of ``site`` for ``edits``: W' = W + share·G·Δ, Δ = diag(1/g)·A, with the gain G
    of ``method`` (``C``: a fixed covariance for rank-one, else the fit rows'), g_e = k̄_e·G_e and A from
    :func:`~factrecall.editing.sites.solve_targets` on coef = X·G·diag(1/g) (see the module docstring).
    While the goal is missed, the facts with a fit row that lost its answer are guarded (keys weighing β =
    ``st.guard`` times more) and G, A recomputed, at most ``st.guard_rounds`` times; the round with the fewest
    rows off the goal is kept. ``key`` = (root, i): the fit contexts are drawn from fold_in(root, i). Returns
    the new params, the search's result and the round kept (0: none)."""
    n = st.fit_contexts
    acts, second, scale, labels = fit_stats(m.params, m.cfg, m.task, m.facts, n, *key, site=site)
    X, second, labels = site_keys(acts, site), np.asarray(second, np.float64), np.array(labels)
    rows = fact_rows(m.task, *(np.array([getattr(e, f) for e in edits]) for f in ("s", "r")), n)
    labels[rows] = np.array([e.new for e in edits])[None, :]
    edited = np.isin(np.arange(X.shape[0]), rows)
    weights = np.where(edited, 1.0 / rows.size, st.keep_weight / max(X.shape[0] - rows.size, 1))
    fact, guard, best = np.arange(X.shape[0]) % m.task.n_facts, np.zeros(X.shape[0], bool), None
    rows_of = (
        jnp.asarray(labels),
        jnp.asarray(weights.astype(np.float32)),
        jnp.asarray(edited),
        jnp.asarray(rows),
    )
    hyper = jnp.asarray(np.array([st.lr, st.penalty, st.margin], np.float32))  # host casts: no program
    for rounds in range(st.guard_rounds + 1):
        G = method_gain(X, second, rows, method, (st.ridge, st.guard), C, guard)
        g = np.einsum("ed,de->e", X[rows].mean(axis=0), G)
        args = (m.params, acts, jnp.asarray((X @ G / g[None, :]).astype(np.float32)), *rows_of, scale, hyper)
        fit = solve_targets(*args, site=site, steps=0) if site == "mlp" else None  # values: start at A = 0
        met = fit is not None and bool(fit.met)  # the search only when the start misses the goal
        fit = jax.device_get(fit if met else solve_targets(*args, site=site, steps=st.steps))
        gap = fit.gap
        lost = ~edited & (gap <= 0)
        misses = int(np.sum(edited & (gap < st.margin)) + np.sum(lost))
        if best is None or misses < best[0]:
            best = (misses, rounds, G, g, fit)
        if bool(fit.met) or not lost.any():
            break
        guard |= np.isin(fact, fact[lost])
    _, kept, G, g, fit = best
    A = np.asarray(fit.A, np.float64)
    if not (np.all(np.isfinite(A)) and math.isfinite(float(fit.loss))):
        raise TrainingError(f"the target search of the {site} edit diverged (non-finite values)")
    W = np.asarray(m.params[WEIGHT[site]])
    W_new = (W + share * G @ (A / g[:, None])).astype(W.dtype)
    return {**m.params, WEIGHT[site]: jnp.asarray(W_new)}, fit, kept


def _closed_forms(
    m: _Model, edits: Sequence[Edit], method: str, where: str, st: EditSettings, key: Key, sequential: bool
) -> tuple[Params, dict[str, Any]]:
    sites = ("values", "mlp") if where == "both" else (where,)
    share = {"values": st.values_share if where == "both" else 1.0, "mlp": 1.0}
    covs: dict[str, np.ndarray] = {}
    if sequential and method == "rank-one":  # sequential ROME: one covariance, of the unedited model
        acts = fit_stats(m.params, m.cfg, m.task, m.facts, st.fit_contexts, key, 0, site=sites[0]).acts
        covs = {site: covariance(site_keys(acts, site), st.ridge) for site in sites}
    fits = []
    groups = [[e] for e in edits] if sequential else [list(edits)]
    for i, group in enumerate(groups):
        for j, site in enumerate(sites):
            k = (key, 1 + len(sites) * i + j)
            params, fit, rounds = _closed_form(m, group, method, site, st, k, covs.get(site), share[site])
            m = m._replace(params=params)
            fits.append((fit, rounds))
        m = m._replace(facts=jnp.asarray(edited_facts(m.facts, group)))
    return m.params, {
        "target_loss": max(float(f.loss) for f, _ in fits),
        "target_steps": sum(int(f.steps) for f, _ in fits),
        "target_met": all(bool(f.met) for f, _ in fits),
        "guard_rounds": sum(rounds for _, rounds in fits),
    }


def _edited_logits(cfg: TransformerConfig, task: RecallTask, n: int, p: Params, data: Any, key: Key):
    """The logits of the edited facts in n contexts drawn from ``key`` (rows context-major), and their new
    answers."""
    tokens = every_fact(task, data["facts"], n, key=key).tokens
    rows = fact_rows(task, data["s"], data["r"], n).ravel()
    logits = jax.vmap(lambda t: forward(p, t, kind=cfg.attention))(tokens[rows])
    return logits, jnp.tile(data["new"], n)


def _finetune_loss(
    cfg: TransformerConfig, task: RecallTask, n: int, replay: int, trained: Params, data: Any, key: Key
) -> Array:
    """Cross-entropy of the new answers on n fresh contexts of each edited fact (+ a replayed batch)."""
    p = {**data["rest"], **trained}
    loss = cross_entropy(*_edited_logits(cfg, task, n, p, data, key))
    if replay:
        seqs = sample(task, data["facts"], replay, key=jax.random.fold_in(key, 1))
        logits = jax.vmap(lambda t: forward(p, t, kind=cfg.attention))(seqs.tokens)
        loss = loss + cross_entropy(logits, seqs.labels)
    return loss


def _finetune_eval(cfg: TransformerConfig, task: RecallTask, n: int, trained: Params, data: Any) -> dict:
    """Scores on n held-out contexts of each edited fact (never trained on): ``efficacy`` (the new answer
    is the argmax) and ``goal`` (it beats every other answer by the margin κ); each exactly 1.0 when every
    (edit, context) passes."""
    logits, labels = _edited_logits(cfg, task, n, {**data["rest"], **trained}, data, data["eval_key"])
    gap = gaps(logits, labels)
    return {
        "efficacy": exact_fraction(jnp.sum(gap > 0), gap.shape[0]),
        "goal": exact_fraction(jnp.sum(gap >= data["margin"]), gap.shape[0]),
    }


@functools.cache
def finetune_problem(cfg: TransformerConfig, task: RecallTask, n: int, n_eval: int, replay: int) -> Problem:
    """The engine :class:`Problem` of fine-tuning: n fresh contexts per edited fact a step, stopped on the
    goal in n_eval held-out ones (cached: equal arguments, one compiled program)."""
    return Problem(
        loss=functools.partial(_finetune_loss, cfg, task, n, replay),
        evaluate=functools.partial(_finetune_eval, cfg, task, n_eval),
        monitor="goal",
    )


def weights_of(where: str) -> tuple[str, ...]:
    """The weight matrices an edit at ``where`` changes: (``W2``,), (``O``,) or (``O``, ``W2``)."""
    return ("O", "W2") if where == "both" else (WEIGHT[where],)


def _finetune(
    m: _Model, edits: Sequence[Edit], where: str, st: EditSettings, key: Key
) -> tuple[Params, dict]:
    names = weights_of(where)
    replay = st.replay_batch if st.replay else 0
    problem = finetune_problem(m.cfg, m.task, st.ft_contexts, st.ft_eval_contexts, replay)
    data = {
        "rest": {k: v for k, v in m.params.items() if k not in names},
        "s": jnp.array([e.s for e in edits]),
        "r": jnp.array([e.r for e in edits]),
        "new": jnp.array([e.new for e in edits]),
        "facts": jnp.asarray(edited_facts(m.facts, edits)),
        "eval_key": jax.random.fold_in(key, 0),
        "margin": jnp.float32(st.margin),
    }
    batched = jax.tree_util.tree_map(lambda x: x[None], ({n: m.params[n] for n in names}, data))
    settings = Settings(st.ft_steps, st.ft_eval_every, criterion=1.0)
    out = train_many(problem, settings, *batched, jnp.asarray(st.ft_lrs), jax.random.fold_in(key, 1)[None])
    j = best_rate(np.asarray(out.best_metric[0]), np.asarray(out.diverged[0]))
    if j is None:
        raise TrainingError(f"fine-tuning diverged at every learning rate of {list(st.ft_lrs)}")
    params = {**m.params, **{n: out.best_params[n][0, j] for n in names}}
    info = {
        "lr": st.ft_lrs[j],
        "steps": int(out.steps[0, j]),
        "reached": bool(out.reached[0, j]),
        "eval_efficacy": float(out.curves["efficacy"][0, j][int(np.nanargmax(out.curves["goal"][0, j]))]),
        "diverged_runs": int(np.sum(out.diverged[0])),
    }
    return params, info


def _finetunes(
    m: _Model, edits: Sequence[Edit], where: str, st: EditSettings, key: Key, sequential: bool
) -> tuple[Params, dict[str, Any]]:
    groups = [[e] for e in edits] if sequential else [list(edits)]
    runs = []
    for i, group in enumerate(groups):
        params, info = _finetune(m, group, where, st, jax.random.fold_in(key, i))
        m = m._replace(params=params, facts=jnp.asarray(edited_facts(m.facts, group)))
        runs.append(info)
    return m.params, {"runs": runs, "steps": sum(r["steps"] for r in runs)}


def validate(model: Trained, edits: Sequence[Edit], method: str, where: str) -> None:
    """Raise :class:`ConfigError` naming the first bad argument of :func:`apply_edits`."""
    check(method in METHODS, f"method must be one of {', '.join(METHODS)}, got {method!r}")
    check(where in WHERE, f"where must be one of {', '.join(WHERE)}, got {where!r}")
    check(
        model.cfg.m > 0 or where == "values",
        f"where={where!r} edits the MLP, but the model has no MLP (m = 0); use where='values'",
    )
    check(len(edits) >= 1, "no edits given")
    task = model.task
    pairs = {(e.s, e.r) for e in edits}
    check(len(pairs) == len(edits), "the same (subject, relation) is edited twice; keep one edit per fact")
    for e in edits:
        check(
            0 <= e.s < task.S and 0 <= e.r < task.R and e.r * task.D <= e.new < (e.r + 1) * task.D,
            f"edit {tuple(e)}: subject must be in [0, {task.S}), relation in [0, {task.R}) and the new "
            f"answer in relation r's block [r·D, (r+1)·D) with D = {task.D}",
        )


def apply_edits(
    model: Trained,
    edits: Sequence[Edit],
    method: str = "rank-one",
    where: str = "mlp",
    *,
    sequential: bool = False,
    key: Key,
    settings: EditSettings | None = None,
) -> Edited:
    """Apply ``edits`` to ``model`` by ``method`` at ``where`` (see the module docstring).

    ``sequential``: one edit after another, each computed on the model the previous one left (rank-one: the
    key covariance computed once, on the unedited model, as in sequential ROME; batch: one least-squares
    update per edit; finetune: one fine-tuning per edit). Otherwise all at once (rank-one: the updates of
    all edits computed on the unedited model and summed; batch: one least-squares update; finetune: one
    fine-tuning on all edits). ``key`` seeds the fit contexts (or the fine-tuning batches).

    Raises:
        ConfigError: a bad method, site or edit (:func:`validate`).
        TrainingError: the target search or every fine-tuning run diverged.
    """
    validate(model, edits, method, where)
    st = EditSettings() if settings is None else settings
    m = _Model(model.params, model.cfg, model.task, jnp.asarray(model.facts))
    start = time.perf_counter()
    if method == "finetune":
        params, extras = _finetunes(m, edits, where, st, key, sequential)
    else:
        params, extras = _closed_forms(m, edits, method, where, st, key, sequential)
    params = jax.block_until_ready(params)
    seconds = time.perf_counter() - start
    diffs = [np.asarray(params[n]) - np.asarray(model.params[n]) for n in weights_of(where)]
    delta = math.sqrt(sum(float(np.sum(x**2)) for x in diffs))
    table = table_of(model)
    names = [edit_names(e, table) for e in edits]
    done = [
        {k: n[k] for k in ("subject", "relation", "old", "new")} | {"method": method, "where": where}
        for n in names
    ]
    info = {**model.info, "edits": [*model.info.get("edits", []), *done]}
    edited = Trained(params, model.cfg, model.task, jnp.asarray(edited_facts(model.facts, edits)), info)
    tuned = method == "finetune"
    used = {
        k: v for k, v in st._asdict().items() if k.startswith(("ft_", "replay")) == tuned or k == "margin"
    }
    record = {"method": method, "where": where, "sequential": sequential, "settings": used, **extras}
    return Edited(edited, seconds, delta, record)
