"""Fits of measured capacities to the paper's scaling laws (NumPy only).

Two kinds of fit: a power law y = a·x^b (free slope, least squares in log–log), and a guide constant c in
x = c·g(N) with the slope fixed to 1 (least squares of log x − log g(N)), which is how the paper's guide
lines (d² = 1.3·N log N, m·d = 0.35·N log N, m·d = 1.2·N, facts = 0.15·params) are stated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class PowerFit(NamedTuple):
    """y ≈ prefactor · x^slope, with the standard error of the slope (NaN with fewer than 3 points)."""

    slope: float
    prefactor: float
    slope_stderr: float
    n_points: int


def power_law(x: Sequence[float], y: Sequence[float]) -> PowerFit:
    """Least-squares fit of log y = log a + b·log x.

    >>> fit = power_law([1, 2, 4, 8], [3, 6, 12, 24])
    >>> round(fit.slope, 6), round(fit.prefactor, 6)
    (1.0, 3.0)
    """
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if len(lx) < 2 or np.ptp(lx) == 0:
        return PowerFit(float("nan"), float("nan"), float("nan"), len(lx))
    (b, a), cov = np.polyfit(lx, ly, 1, cov=True) if len(lx) > 2 else (np.polyfit(lx, ly, 1), None)
    err = float(np.sqrt(cov[0, 0])) if cov is not None else float("nan")
    return PowerFit(float(b), float(np.exp(a)), err, len(lx))


def guide_constant(x: Sequence[float], g: Sequence[float]) -> float:
    """The c of x = c·g fitted with slope 1: exp(mean(log x − log g)) (a geometric mean of ratios).

    >>> round(guide_constant([2.6, 5.2], [2.0, 4.0]), 6)
    1.3
    """
    lx, lg = np.log(np.asarray(x, float)), np.log(np.asarray(g, float))
    return float(np.exp(np.mean(lx - lg)))


def deviation(measured: float, paper: float) -> float:
    """Relative deviation (measured − paper) / paper."""
    return (measured - paper) / paper if paper else math.nan
