"""Stages of a training curve: plateaus and transitions found from the curve itself, and the saddle-escape
prediction of when the transitions happen (NumPy only).

A *plateau* is a maximal run of evaluations where the loss changes slowly compared with the whole run: the
local slope |dL/dt|, in units of (loss range)/(run length), stays below ``flat_rate``. Plateaus are named
by the nearest reference level (``uniform`` ≈ log(R·D), ``hallucination`` ≈ log D), and the last one,
below every level, ``learned``. A *transition* is the step where the loss crosses half-way between two
consecutive levels (the measured plateau losses when found, the reference levels otherwise).

Paper: §5 (Figure 5, sequential learning and the hallucination stage); SPEC §6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from factrecall.core.errors import check


class Stage(NamedTuple):
    """A plateau of the loss curve: its name, first and last step, and median loss over it."""

    name: str
    start: int
    end: int
    loss: float


def _slope_rate(steps: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """|dL/dt| (central differences), in units of (loss range) / (run length).

    No smoothing: the curves are measured on a fixed test set, so they are smooth already, and smoothing
    would eat into short plateaus.
    """
    span = float(steps[-1] - steps[0])
    scale = max(float(np.max(loss) - np.min(loss)), 1e-12)
    return np.abs(np.gradient(loss, steps)) * span / scale


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges [i, j] (inclusive) of the maximal runs of True in ``mask``."""
    runs, start = [], None
    for i, flat in enumerate(mask):
        if flat and start is None:
            start = i
        if not flat and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs


def _name(loss: float, levels: dict[str, float], last: bool, tol: float) -> str:
    near = [(abs(loss - v) / v, n) for n, v in levels.items() if v > 0 and abs(loss - v) <= tol * v]
    if near:
        return min(near)[1]
    if last and levels and loss < min(levels.values()) * (1 - tol):
        return "learned"
    return "plateau"


def find_stages(
    steps: Sequence[float],
    loss: Sequence[float],
    levels: dict[str, float] | None = None,
    *,
    flat_rate: float = 1.0,
    min_fraction: float = 0.04,
    tol: float = 0.15,
) -> list[Stage]:
    """The plateaus of a loss curve, in order, each named by the nearest reference level.

    Args:
        steps: evaluation steps, increasing, shape (n,).
        loss: the loss at each step, shape (n,).
        levels: reference levels by name, e.g. ``{"uniform": log(R·D), "hallucination": log D}``.
        flat_rate: a point is flat when |dL/dt| < flat_rate · (loss range) / (run length).
        min_fraction: a plateau spans at least this fraction of the run (and at least 3 evaluations).
        tol: relative distance to a level within which a plateau takes its name.

    Returns:
        The plateaus as :class:`Stage` (start/end steps, median loss).

    >>> t = np.arange(0, 1000, 10.0)
    >>> L = 2.0 - 1.0 / (1 + np.exp(-(t - 500) / 10))
    >>> [(s.name, s.start < 500 < s.end) for s in find_stages(t, L, {"high": 2.0, "low": 1.0})]
    [('high', False), ('low', False)]
    """
    t, L = np.asarray(steps, float), np.asarray(loss, float)
    check(
        t.ndim == 1 and t.shape == L.shape,
        f"steps and loss must be 1-D of one length, got {t.shape}, {L.shape}",
    )
    check(len(t) >= 5, f"need at least 5 evaluations to find stages, got {len(t)}")
    check(bool(np.all(np.isfinite(L))), "the loss curve holds non-finite values; the run diverged")
    min_len = max(3, math.ceil(min_fraction * len(t)))
    runs = [(i, j) for i, j in _runs(_slope_rate(t, L) < flat_rate) if j - i + 1 >= min_len]
    levels = levels or {}
    out = []
    for k, (i, j) in enumerate(runs):
        level = float(np.median(L[i : j + 1]))
        out.append(
            Stage(
                _name(level, levels, k == len(runs) - 1 and j == len(t) - 1, tol), int(t[i]), int(t[j]), level
            )
        )
    return out


def crossing(
    steps: Sequence[float], loss: Sequence[float], level: float, after: float = -math.inf
) -> float | None:
    """The first step > ``after`` where the loss falls below ``level`` (linearly interpolated), or None.

    >>> crossing([0, 10, 20], [3.0, 2.0, 1.0], 1.5)
    15.0
    """
    t, L = np.asarray(steps, float), np.asarray(loss, float)
    for i in range(1, len(t)):
        if t[i] > after and L[i] < level <= L[i - 1]:
            return float(t[i - 1] + (L[i - 1] - level) / (L[i - 1] - L[i]) * (t[i] - t[i - 1]))
    return None


def transitions(
    steps: Sequence[float], loss: Sequence[float], stages: Sequence[Stage], R: int, D: int
) -> dict[str, float | None]:
    """Measured transition steps: ``relation`` (loss crosses half-way from the uniform to the hallucination
    level) and ``subject`` (loss crosses half the hallucination level, i.e. half-way to zero).

    The levels are the measured plateau losses where those plateaus were found, log(R·D) and log D otherwise.

    >>> t = np.arange(0, 100.0)
    >>> transitions(t, np.where(t < 30, np.log(32), np.where(t < 60, np.log(8), 0.0)), [], 4, 8)
    {'relation': 29.5, 'subject': 59.5}
    """
    found = {s.name: s.loss for s in stages}
    high = found.get("uniform", math.log(R * D))
    mid = found.get("hallucination", math.log(D))
    relation = crossing(steps, loss, (high + mid) / 2)
    subject = crossing(steps, loss, mid / 2, after=relation if relation is not None else -math.inf)
    return {"relation": relation, "subject": subject}


def _escape_step(rates: np.ndarray, weights: np.ndarray, lr: float, init: float) -> float:
    """The weighted median over tokens of log(2/ε)/(lr·λ): when tokens holding half the mass have escaped."""
    t = math.log(2.0 / init) / (lr * rates)
    order = np.argsort(t)
    cum = np.cumsum(weights[order])
    return float(t[order][np.searchsorted(cum, 0.5 - 1e-12)])


def _zipf(n: int, alpha: float) -> np.ndarray:
    w = (np.arange(n) + 1.0) ** (-alpha)
    return w / w.sum()


def predicted_steps(
    S: int, R: int, D: int, *, lr: float = 0.1, init: float = 1e-5, alpha_S: float = 0.0, alpha_R: float = 0.0
) -> dict[str, float]:
    """Saddle-escape prediction of the two transitions: t ≈ log(2/ε) / (lr·λ) with
    λ_rel(r) = q_r·sqrt((R−1)/(R·D)) and λ_sub(s) = p_s·sqrt((D−1)/(R·D)) (1/R and 1/S when uniform).

    Under Zipf weights each token escapes at its own time; the prediction is the time at which the tokens
    holding half the probability mass have escaped (the loss is then about half-way down).

    Paper: §5; SPEC §6 (t_sub / t_rel = (S/R)·sqrt((R−1)/(D−1))).

    >>> {k: round(v) for k, v in predicted_steps(16, 4, 8).items()}
    {'relation': 1595, 'subject': 4176}
    """
    check(lr > 0 and init > 0, f"lr and init must be > 0, got lr={lr}, init={init}")
    p, q = _zipf(S, alpha_S), _zipf(R, alpha_R)
    rel = _escape_step(q * math.sqrt((R - 1) / (R * D)), q, lr, init) if R > 1 else math.inf
    sub = _escape_step(p * math.sqrt((D - 1) / (R * D)), p, lr, init) if D > 1 else math.inf
    return {"relation": rel, "subject": sub}
