"""The trials of a trained MLP memory's capacity search as a :class:`~factrecall.core.queue.Family` of the
work queue (:mod:`factrecall.core.queue`): failing trials cost the whole step budget, so runs share slots
refilled as runs stop.

The pad is the tightest padded row count of the largest N running (:func:`~factrecall.memories.trials.
padded_size`), with hysteresis: it changes when it must grow, or when it could shrink by more than 15%
(a shape change recompiles). Patience stops only runs stuck below :func:`stall_below`.

Paper: §3 (Figure 1, MLP memories); SPEC §1.4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from factrecall.core import queue
from factrecall.core.base import Key, Params
from factrecall.core.engine import Problem
from factrecall.core.search import Trial
from factrecall.memories.spec import MLP_FIRST_STEP, MemorySpec, memory_model, settings
from factrecall.memories.trials import (
    memory_problem,
    padded_size,
    row_limit,
    trial_data,
    trial_key,
    trial_params,
)


def stall_below(spec: MemorySpec, N: int) -> float:
    """Patience stops a run only below this accuracy: more than the margin and two facts short.

    >>> from factrecall.memories.spec import recipe
    >>> round(stall_below(recipe("mlp", 8, 8), 100), 4), round(stall_below(recipe("mlp", 8, 8), 1000), 4)
    (0.97, 0.98)
    """
    if spec.patience_margin is None:
        return math.inf
    return spec.criterion - max(spec.patience_margin, 2.0 / N)


class MemoryFamily:
    """The queue's view of ``spec``'s trials (see :class:`factrecall.core.queue.Family`)."""

    first_step = MLP_FIRST_STEP

    def __init__(self, spec: MemorySpec):
        self.spec, self.lrs, self.criterion = spec, spec.lrs, spec.criterion
        self.model = memory_model(spec)
        self.settings = settings(spec)

    def problem(self, pad: int) -> Problem:
        return memory_problem(self.model, self.spec.top_k)  # the rows are padded in the data

    def repad(self, N: int, pad: int) -> int:
        top = row_limit(self.spec, padded_size(N))
        return top if top > pad or top < 0.85 * pad else pad

    def data(self, seed: int, N: int, pad: int) -> Any:
        return trial_data(self.spec, pad, seed, N)

    def params(self, seed: int, N: int) -> Params:
        return trial_params(self.model, seed, N)

    def key(self, seed: int, N: int) -> Key:
        return trial_key(seed, N)

    def stall_below(self, N: int) -> float:
        return stall_below(self.spec, N)


def search_queued(
    spec: MemorySpec,
    seeds: Sequence[int],
    guess: int,
    *,
    n_max: int,
    rel_precision: float,
    on_round: Callable[[int, int, str], None] | None,
    n_slots: int | None = None,
) -> tuple[tuple[int, ...], bool, tuple[Trial, ...]]:
    """:func:`factrecall.core.queue.search_queued` over ``spec``'s trials."""
    family = MemoryFamily(spec)
    options = {"n_max": n_max, "rel_precision": rel_precision, "on_round": on_round, "n_slots": n_slots}
    return queue.search_queued(family, seeds, guess, **options)
