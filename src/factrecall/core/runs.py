"""Resumable training: K independent runs advanced by spans of steps, so that a caller can refill the slot
of a run that stopped (a work queue of runs; :mod:`factrecall.memories.queue` uses it for MLP memories).

The runs take exactly the chunks of the engine (:func:`factrecall.core.engine.train_chunk`): the same
optimizer steps and evaluations as :func:`factrecall.core.engine.train`, run by run. Unlike ``train``,
where the L runs of one problem start and stop together inside one program, each run here has its own
step count and stops on its own. :func:`decide` turns the runs of one trial (one per learning rate) into its
:class:`~factrecall.core.search.Trial`.

Paper: Appendix B (training recipes); SPEC §1.2–1.4.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from factrecall.core.base import Array, Float, Int, Key, Params
from factrecall.core.engine import (
    Problem,
    Settings,
    best_rate,
    make_optimizer,
    select,
    shard,
    train_chunk,
    validate,
)
from factrecall.core.search import Trial


class Runs(NamedTuple):
    """K independent runs that advance in spans (:func:`advance_runs`), with a leading axis K.

    Each run stops on its own: at the criterion, on a non-finite loss or metric (``diverged``), without a
    gain in its best metric for ``patience`` steps, or at the budget. A caller can therefore refill a
    stopped run's slot with a new run between spans — a work queue of runs that keeps the batch full.
    """

    params: Params
    opt_state: Any
    step: Int[Array, " K"]
    best: Float[Array, " K"]
    last_gain: Int[Array, " K"]
    diverged: Array
    active: Array


@functools.lru_cache(maxsize=16)
def _starter(settings: Settings) -> Callable[..., Runs]:
    def start(params: Params, lrs: Float[Array, " K"]) -> Runs:
        K = lrs.shape[0]
        return Runs(
            params=params,
            opt_state=jax.vmap(lambda p, lr: make_optimizer(settings, lr).init(p))(params, lrs),
            step=jnp.zeros((K,), jnp.int32),
            best=jnp.full((K,), -jnp.inf),
            last_gain=jnp.zeros((K,), jnp.int32),
            diverged=jnp.zeros((K,), bool),
            active=jnp.ones((K,), bool),
        )

    return jax.jit(start)


def start_runs(settings: Settings, params: Params, lrs: Float[Array, " K"]) -> Runs:
    """K fresh runs from ``params`` (leading axis K) at learning rates ``lrs`` (shape (K,)).

    Raises:
        ConfigError: invalid settings.
    """
    validate(settings)
    return _starter(settings)(params, jnp.asarray(lrs, jnp.float32))


@functools.lru_cache(maxsize=64)
def _advancer(problem: Problem, settings: Settings) -> Callable[..., Runs]:
    criterion = jnp.inf if settings.criterion is None else settings.criterion
    patience = settings.n_steps if settings.patience is None else settings.patience
    chunk = jax.vmap(functools.partial(train_chunk, problem, settings))

    def advance(runs: Runs, data: Any, lrs: Array, keys: Key, stall_below: Array, span: Array) -> Runs:
        stop_at = runs.step + span

        def cond(r: Runs) -> Array:
            return jnp.any(r.active & (r.step < stop_at))

        def body(r: Runs) -> Runs:
            go = r.active & (r.step < stop_at)
            p, s, _, metrics, finite = chunk(r.params, r.opt_state, lrs, data, keys, r.step)
            live = go & finite
            value = metrics[problem.monitor]
            gain = live & (value > r.best)
            step = jnp.where(live, jnp.minimum(r.step + settings.eval_every, settings.n_steps), r.step)
            best = jnp.where(gain, value, r.best)
            last_gain = jnp.where(gain, step, r.last_gain)
            diverged = r.diverged | (go & ~finite)
            active = (
                r.active
                & ~diverged
                & (best < criterion)
                & (step < settings.n_steps)
                & ~((step - last_gain >= patience) & (best < stall_below))
            )
            params, opt_state = select(live, (p, s), (r.params, r.opt_state))
            return Runs(params, opt_state, step, best, last_gain, diverged, active)

        return jax.lax.while_loop(cond, body, runs)

    return jax.jit(advance)


def advance_runs(
    problem: Problem,
    settings: Settings,
    runs: Runs,
    data: Any,
    lrs: Array,
    keys: Key,
    span: int,
    stall_below: Array | None = None,
) -> Runs:
    """Advance every active run by up to ``span`` steps (rounded up to whole evaluation periods).

    Each run k trains ``problem`` on ``data[k]`` at ``lrs[k]`` with batch keys ``fold_in(keys[k], t)`` —
    exactly the steps :func:`~factrecall.core.engine.train` takes, chunk by chunk, with the same stopping
    rules except that each run stops on its own (see :class:`Runs`). ``stall_below[k]`` (default: +inf)
    limits the patience rule to runs whose best metric is below it: a run a fact or two short of the
    criterion may gain the last ones late in the schedule after a long stall, while a run stuck far below
    it does not. Stopped runs keep their state. One compiled program serves every span; the K runs are
    split across the local devices when K is a multiple of their number.

    Returns:
        The new :class:`Runs` (``active`` false for every run that stopped).
    """
    n_dev = jax.device_count()
    K = runs.step.shape[0]
    below = jnp.full((K,), jnp.inf) if stall_below is None else jnp.asarray(stall_below, jnp.float32)
    args = (runs, data, jnp.asarray(lrs, jnp.float32), keys, below)
    if n_dev > 1 and K % n_dev == 0:
        args = shard(args, n_dev)
    return _advancer(problem, settings)(*args, jnp.asarray(span, jnp.int32))


def decide(
    criterion: float,
    seed: int,
    N: int,
    lrs: Sequence[float | None],
    best: Sequence[float],
    diverged: Sequence[bool],
    steps: Sequence[int],
) -> Trial:
    """The :class:`Trial` of (seed, N) from its finished runs, one per learning rate (in grid order).

    The rate kept is :func:`~factrecall.core.engine.best_rate`'s; the trial stores N when that run's best
    metric reaches ``criterion``. When no run qualifies (all diverged before their first evaluation), the
    trial failed with a NaN accuracy.

    >>> decide(0.99, 0, 3, (0.1, 1.0), (0.5, 1.0), (False, False), (64, 32)).lr
    1.0
    """
    n_diverged = int(sum(bool(x) for x in diverged))
    j = best_rate(best, diverged)
    if j is None:
        return Trial(seed, N, False, float("nan"), None, n_diverged, int(max(steps)))
    accuracy = float(best[j])
    return Trial(seed, N, accuracy >= criterion, accuracy, lrs[j], n_diverged, int(steps[j]))
