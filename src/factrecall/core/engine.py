"""The one training engine: stable cross-entropy, optax optimizers, and a loop compiled end to end.

A run is ``lax.while_loop`` over chunks of ``eval_every`` steps; each chunk is a ``lax.scan`` of optimizer
steps, followed by an evaluation. The loop stops inside the compiled program when the monitored metric reaches
the criterion, when the loss or the parameters become non-finite (the run is then marked ``diverged``), or
when the step budget is spent. :func:`train_many` ``vmap``s whole runs over a leading batch axis (seeds,
learning rates, problem sizes), so a batch of runs is one program; runs that stop early simply stop changing.

Searches that train many short-lived runs use the same chunks (:func:`train_chunk`) through a resumable
API instead, :mod:`factrecall.core.runs`.

What is trained is a :class:`Problem`: a loss over (params, data, key) — the key lets the loss sample a fresh
batch inside the step — and an evaluation returning named scalars. Every experiment of the project trains
through here; an experiment with a different loop writes a small function of its own, not a flag here.

Paper: §3.2 and Appendix B (training recipes); SPEC §1.2, §3.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from factrecall.core.base import Array, Float, Int, Key, Params
from factrecall.core.errors import check

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")

_COMPILE_SECONDS = [0.0]


def _count_compile(event: str, duration: float, **kwargs: Any) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILE_SECONDS[0] += duration


jax.monitoring.register_event_duration_secs_listener(_count_compile)


def compile_seconds() -> float:
    """Seconds XLA has spent compiling in this process (callers take differences to time a step)."""
    return _COMPILE_SECONDS[0]


SCHEDULES: tuple[str, ...] = ("constant", "cosine")


class Problem(NamedTuple):
    """What the engine trains; both functions must be pure and jit-compatible.

    Attributes:
        loss: ``loss(params, data, key) -> scalar`` mean training loss (``key`` may sample a batch).
        evaluate: ``evaluate(params, data) -> dict[str, scalar]``; must hold the monitored metric.
        monitor: name of the metric the criterion is checked against (e.g. ``"accuracy"``).
    """

    loss: Callable[[Params, Any, Key], Float[Array, ""]]
    evaluate: Callable[[Params, Any], dict[str, Float[Array, ""]]]
    monitor: str = "accuracy"


class Settings(NamedTuple):
    """Static settings of a run (hashable: one compiled program per distinct value).

    Attributes:
        n_steps: step budget.
        eval_every: steps between evaluations (the criterion is checked after each).
        criterion: stop once ``monitor ≥ criterion``; ``None`` never stops early.
        optimizer: ``adam`` (default), ``adamw`` or ``sgd``.
        schedule: ``constant`` or ``cosine`` (linear warm-up, then cosine decay to 0 at ``n_steps``).
        warmup: warm-up steps of the cosine schedule.
        clip: clip gradients to this global norm; ``None`` for no clipping.
        patience: stop when no run of a problem improved its best metric for this many steps
            (``None``: never; a plateaued run is then only stopped by the budget).
    """

    n_steps: int
    eval_every: int = 64
    criterion: float | None = None
    optimizer: str = "adam"
    schedule: str = "constant"
    warmup: int = 0
    clip: float | None = None
    patience: int | None = None


class RunResult(NamedTuple):
    """The outcome of runs, with leading axes (B, L): problems × learning rates (see :func:`train_many`).

    ``best_params`` are the parameters at the best evaluation of ``monitor``; a run's result is its best
    metric (the paper's convention). Curves hold one entry per evaluation and NaN after the run stopped.
    """

    params: Params
    best_params: Params
    best_metric: Float[Array, "*B L"]
    final_loss: Float[Array, "*B L"]
    steps: Int[Array, "*B L"]
    reached: Array
    diverged: Array
    loss_curve: Float[Array, "*B L n_evals"]
    curves: dict[str, Float[Array, "*B L n_evals"]]


def best_rate(best_metric: Any, diverged: Any) -> int | None:
    """The learning rate a search keeps, as an index into its grid: the run with the largest best metric.

    The one rule every experiment uses: runs that diverged, and runs never evaluated (NaN metric), are not
    results and are never kept; among the others the largest best metric wins, and a tie goes to the first
    rate in grid order (the order the rates were given). ``None`` when no run qualifies.

    Args:
        best_metric: (L,) each run's best monitored metric.
        diverged: (L,) whether each run stopped on a non-finite loss or weights.

    >>> best_rate([0.5, 0.9, 0.9], [False, False, False])
    1
    >>> best_rate([0.5, 1.0], [False, True]), best_rate([float("nan")], [False])
    (0, None)
    """
    metric = np.asarray(best_metric, dtype=np.float64)
    ok = np.isfinite(metric) & ~np.asarray(diverged, dtype=bool)
    if not ok.any():
        return None
    return int(np.argmax(np.where(ok, metric, -np.inf)))


def cross_entropy(
    logits: Float[Array, "N M"], labels: Int[Array, " N"], weights: Float[Array, " N"] | None = None
) -> Float[Array, ""]:
    """Weighted mean of −log softmax(logits)[label], computed with a stable log-softmax.

    The authors' notebook takes ``-log(softmax(z))``, which overflows to inf/NaN for the large logits a
    memory reaches at high learning rates; ``log_softmax`` subtracts the max first.

    >>> float(cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([1]))) == float(jnp.log(2.0))
    True
    >>> bool(jnp.isfinite(cross_entropy(jnp.array([[1e6, -1e6]]), jnp.array([1]))))
    True
    """
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), labels[:, None], axis=-1)[:, 0]
    if weights is None:
        return jnp.mean(nll)
    return jnp.sum(weights * nll) / jnp.sum(weights)


def make_optimizer(settings: Settings, lr: Float[Array, ""] | float) -> optax.GradientTransformation:
    """The optax optimizer of ``settings`` at learning rate ``lr`` (``lr`` may be traced, for vmap)."""
    if settings.schedule == "cosine":
        # the schedule's shape is built with peak 1 and scaled: optax's schedules reject a traced peak
        unit = optax.warmup_cosine_decay_schedule(
            0.0, 1.0, max(settings.warmup, 1), max(settings.n_steps, settings.warmup + 1), 0.0
        )
        peak = lr
        lr = lambda count: peak * unit(count)  # noqa: E731
    opt = {"adam": optax.adam, "adamw": optax.adamw, "sgd": optax.sgd}[settings.optimizer](lr)
    if settings.clip is not None:
        opt = optax.chain(optax.clip_by_global_norm(settings.clip), opt)
    return opt


def validate(settings: Settings) -> None:
    """Check ``settings`` and raise :class:`ConfigError` naming the bad field."""
    check(settings.n_steps >= 1, f"n_steps must be ≥ 1, got {settings.n_steps}")
    check(settings.eval_every >= 1, f"eval_every must be ≥ 1, got {settings.eval_every}")
    check(
        settings.optimizer in OPTIMIZERS,
        f"unknown optimizer {settings.optimizer!r}; expected one of {', '.join(OPTIMIZERS)}",
    )
    check(
        settings.schedule in SCHEDULES,
        f"unknown schedule {settings.schedule!r}; expected one of {', '.join(SCHEDULES)}",
    )
    check(
        settings.patience is None or settings.patience >= 1, f"patience must be ≥ 1, got {settings.patience}"
    )
    c = settings.criterion
    check(c is None or 0.0 < c <= 1.0, f"criterion must be in (0, 1], got {c}")


def _all_finite(tree: Any) -> Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def select(cond: Array, new: Any, old: Any) -> Any:
    """Select ``new`` where ``cond`` (broadcast over each leaf's trailing axes), else ``old``."""
    return jax.tree_util.tree_map(
        lambda a, b: jnp.where(cond.reshape(cond.shape + (1,) * (a.ndim - cond.ndim)), a, b), new, old
    )


def train_chunk(
    problem: Problem, settings: Settings, p: Params, s: Any, lr: Any, data: Any, key: Key, first_step: Any
) -> tuple[Params, Any, Float[Array, ""], dict[str, Array], Array]:
    """``eval_every`` optimizer steps of one run from step ``first_step``, then an evaluation.

    The one step of every training loop: :func:`train` and the resumable runs of
    :mod:`factrecall.core.runs` both advance by it.

    Returns the new params and optimizer state, the mean loss of the chunk, the metrics, and whether the
    losses, the parameters and the monitored metric all stayed finite. Steps at or past the budget are
    frozen (a last chunk may run past it).
    """
    opt = make_optimizer(settings, lr)

    def step(carry, t):
        p, s = carry
        loss, grads = jax.value_and_grad(problem.loss)(p, data, jax.random.fold_in(key, t))
        updates, s_new = opt.update(grads, s, p)
        live = t < settings.n_steps
        new = (optax.apply_updates(p, updates), s_new)
        return select(live, new, (p, s)), jnp.where(live, loss, jnp.nan)

    ts = first_step + jnp.arange(settings.eval_every)
    (p, s), losses = jax.lax.scan(step, (p, s), ts)
    metrics = problem.evaluate(p, data)
    finite = jnp.all(jnp.isfinite(losses) | (ts >= settings.n_steps)) & _all_finite(p)
    return p, s, jnp.nanmean(losses), metrics, finite & jnp.isfinite(metrics[problem.monitor])


def train(
    problem: Problem, settings: Settings, params: Params, data: Any, lrs: Float[Array, " L"], key: Key
) -> RunResult:
    """Train one problem at L learning rates from the same ``params``; pure and jit/vmap-compatible.

    The L runs share ``data`` and the batch keys, and advance together in chunks of ``eval_every`` steps.
    They all stop as soon as one reaches the criterion (the problem is then stored: the best over the
    learning-rate grid is all a capacity needs), when every run has diverged, when no run improved its
    best metric for ``patience`` steps, or at the budget. A run whose loss or parameters turn non-finite is
    frozen and marked ``diverged``; its best metric is from before.

    Args:
        problem: loss and evaluation.
        settings: static settings (budget, evaluation period, criterion, optimizer).
        params: initial parameters (one copy, shared by the L runs).
        data: the problem's data pytree (passed to ``loss`` and ``evaluate`` unchanged).
        lrs: learning rates, shape (L,).
        key: PRNG key; step t uses ``fold_in(key, t)`` for its batch.

    Returns:
        A :class:`RunResult` with a leading axis of size L.
    """
    n_chunks = math.ceil(settings.n_steps / settings.eval_every)
    criterion = jnp.inf if settings.criterion is None else settings.criterion
    patience = n_chunks if settings.patience is None else max(1, settings.patience // settings.eval_every)
    metric_names = sorted(jax.eval_shape(problem.evaluate, params, data))
    L = lrs.shape[0]

    chunk = functools.partial(train_chunk, problem, settings)

    def cond(c):
        running = ~jnp.any(c["best"] >= criterion) & ~jnp.all(c["diverged"])
        return (c["chunk"] < n_chunks) & running & (c["chunk"] - c["last_gain"] <= patience)

    def body(c):
        p, s, loss, metrics, finite = jax.vmap(chunk, in_axes=(0, 0, 0, None, None, None))(
            c["params"], c["opt_state"], lrs, data, key, c["chunk"] * settings.eval_every
        )
        live = ~c["diverged"] & finite
        value = metrics[problem.monitor]
        better = live & (value > c["best"])
        return {
            "chunk": c["chunk"] + 1,
            "last_gain": jnp.where(jnp.any(better), c["chunk"] + 1, c["last_gain"]),
            "params": select(live, p, c["params"]),
            "opt_state": select(live, s, c["opt_state"]),
            "best": jnp.where(better, value, c["best"]),
            "best_params": select(better, p, c["best_params"]),
            "diverged": c["diverged"] | ~finite,
            "steps": jnp.where(
                live, jnp.minimum((c["chunk"] + 1) * settings.eval_every, settings.n_steps), c["steps"]
            ),
            "final_loss": jnp.where(live, loss, c["final_loss"]),
            "loss_curve": c["loss_curve"].at[:, c["chunk"]].set(jnp.where(live, loss, jnp.nan)),
            "curves": {
                k: c["curves"][k].at[:, c["chunk"]].set(jnp.where(live, metrics[k], jnp.nan))
                for k in metric_names
            },
        }

    stacked = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (L, *x.shape)), params)
    nan_curve = jnp.full((L, n_chunks), jnp.nan)
    init = {
        "chunk": jnp.asarray(0),
        "last_gain": jnp.asarray(0),
        "params": stacked,
        "opt_state": jax.vmap(lambda p, lr: make_optimizer(settings, lr).init(p))(stacked, lrs),
        "best": jnp.full((L,), -jnp.inf),
        "best_params": stacked,
        "diverged": jnp.zeros((L,), bool),
        "steps": jnp.zeros((L,), jnp.int32),
        "final_loss": jnp.full((L,), jnp.nan),
        "loss_curve": nan_curve,
        "curves": {k: nan_curve for k in metric_names},
    }
    out = jax.lax.while_loop(cond, body, init)
    return RunResult(
        params=out["params"],
        best_params=out["best_params"],
        best_metric=out["best"],
        final_loss=out["final_loss"],
        steps=out["steps"],
        reached=out["best"] >= criterion,
        diverged=out["diverged"],
        loss_curve=out["loss_curve"],
        curves=out["curves"],
    )


@functools.lru_cache(maxsize=64)
def _compiled(problem: Problem, settings: Settings) -> Callable[..., RunResult]:
    return jax.jit(jax.vmap(functools.partial(train, problem, settings)))


def shard(tree: Any, n_dev: int) -> Any:
    """Pad the leading axis to a multiple of the local devices and split it across them (CPU cores)."""
    B = jax.tree_util.tree_leaves(tree)[0].shape[0]
    pad = -B % n_dev
    if pad:
        tree = jax.tree_util.tree_map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), tree)
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("batch",))
    return jax.device_put(tree, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch")))


def train_many(
    problem: Problem, settings: Settings, params: Params, data: Any, lrs: Float[Array, "B L"], key: Key
) -> RunResult:
    """Train B problems, each at L learning rates, as one compiled program (see :func:`train`).

    ``params``, ``data`` and ``key`` carry a leading axis of size B; ``lrs`` has shape (B, L) or (L,)
    (the same grid for every problem). The batch is split across the local devices when there are several
    (e.g. CPU cores exposed by :func:`factrecall.use_cpu_cores`). ``problem`` and ``settings`` are static:
    build them once (module-level functions or cached factories) so that repeated calls reuse the program.

    Returns:
        A :class:`RunResult` with leading axes (B, L).

    Raises:
        ConfigError: invalid settings.
    """
    validate(settings)
    B = key.shape[0]
    lrs = jnp.asarray(lrs, dtype=jnp.float32)
    lrs = jnp.broadcast_to(lrs, (B, lrs.shape[-1])) if lrs.ndim == 1 else lrs
    args = (params, data, lrs, key)
    n_dev = jax.device_count()
    if n_dev > 1 and B > 1:
        args = shard(args, n_dev)
    out = _compiled(problem, settings)(*args)
    return jax.tree_util.tree_map(lambda x: x[:B], out) if n_dev > 1 and B > 1 else out
