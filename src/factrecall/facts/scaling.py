"""Scaling laws of one-layer transformers fitted to this project's own measurements, and the predictions the
capacity planner makes from them (NumPy only: the training lives in :mod:`factrecall.facts.planner`).

Owns the shape families, the fit and the prediction. A **family** fixes how a transformer's shape grows
with d: H heads of size d_h = round(ρ_att·d/H) and an MLP of width m = round(ρ_mlp·d), so its parameter
count P(d) = 4·H·d_h·d + 2·m·d grows like d² and its attention/MLP split is fixed. For each family,
:func:`factrecall.facts.planner.measure_point` found the largest synthetic table S = R = n, D = 8 (random
facts) that a trained model stores at the criterion, i.e. a capacity of b = n²·log2 8 bits, at a few d.
The rows ship in ``factrecall/data/scaling.json`` with their provenance; ``factrecall reproduce
planner-scaling`` regenerates them.

The fit b = c·P^β (least squares in log–log) is inverted for a table of B bits: P* = (B/c)^{1/β}. The
smallest d of the family with P(d) ≥ P* is the prediction, and the log residuals of the fit (2σ/β, at
least ×:data:`MIN_BAND`) give its band. The family with the fewest predicted parameters wins, which
decides the attention-vs-MLP split.

Paper: §4 and Figure 4 left (facts ∝ parameters), §5 (bits); SPEC §8 (capacity planner).
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any, NamedTuple

import numpy as np

from factrecall.core.bounds import attention_params, mlp_params, transformer_params
from factrecall.core.errors import ConfigError, check
from factrecall.core.fits import power_law

SCALING_FILE = "scaling.json"
MIN_BAND = 1.25  # the band is never narrower than ×1.25: a handful of points cannot promise more


class Family(NamedTuple):
    """How a transformer's shape grows with d (hashable).

    Attributes:
        name: short name used in the data file and reports.
        H: heads (fixed).
        att_ratio: ρ_att = H·d_h / d.
        mlp_ratio: ρ_mlp = m / d.
    """

    name: str
    H: int
    att_ratio: float
    mlp_ratio: float

    def shape(self, d: int) -> tuple[int, int, int, int]:
        """(d, H, d_h, m) of this family at embedding dimension d.

        >>> Family("mlp", 2, 0.5, 2.0).shape(16)
        (16, 2, 4, 32)
        """
        return d, self.H, max(1, round(self.att_ratio * d / self.H)), max(1, round(self.mlp_ratio * d))

    def params(self, d: int) -> int:
        """The paper's count 4·H·d_h·d + 2·m·d at d."""
        return transformer_params(*self.shape(d))


def shape_record(shape: tuple[int, int, int, int]) -> dict[str, int]:
    """A shape (d, H, d_h, m) as the records write it.

    >>> shape_record((16, 2, 4, 32))
    {'d': 16, 'H': 2, 'd_h': 4, 'm': 32}
    """
    d, H, d_h, m = shape
    return {"d": d, "H": H, "d_h": d_h, "m": m}


FAMILIES: dict[str, Family] = {
    f.name: f for f in (Family("mlp-heavy", 2, 0.5, 2.0), Family("balanced", 4, 1.0, 1.0))
}


# ------------------------------------------------------------------------------------------------ the fit


class FamilyFit(NamedTuple):
    """bits ≈ c·P^β for one family, with the spread σ of log residuals (natural log)."""

    family: Family
    c: float
    beta: float
    sigma: float
    n_points: int
    params_range: tuple[int, int]

    def params_for(self, bits: float) -> float:
        """P* = (bits / c)^{1/β}: parameters the fit says store ``bits``."""
        return (bits / self.c) ** (1.0 / self.beta)

    def band(self, bits: float) -> tuple[float, float]:
        """(low, high) parameter band: P*·exp(∓2σ/β), at least ×/÷ :data:`MIN_BAND`."""
        width = max(math.exp(2.0 * self.sigma / self.beta), MIN_BAND)
        p = self.params_for(bits)
        return p / width, p * width

    def record(self) -> dict[str, Any]:
        """JSON-ready fields (the family is the record's key)."""
        return {
            "c": self.c,
            "beta": self.beta,
            "sigma": self.sigma,
            "points": self.n_points,
            "params_range": self.params_range,
        }


def load_scaling(path: str | None = None) -> dict[str, Any]:
    """The scaling data shipped with the package (or read from ``path``).

    Raises:
        ConfigError: the file is missing or malformed.
    """
    try:
        if path is None:
            text = resources.files("factrecall").joinpath("data", SCALING_FILE).read_text()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        data = json.loads(text)
        check(isinstance(data.get("rows"), list) and data["rows"], "no rows")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"scaling data {path or SCALING_FILE!r} is unreadable ({exc})") from exc
    return data


def fit(rows: list[dict[str, Any]]) -> dict[str, FamilyFit]:
    """Fit bits = c·P^β per family over measured rows with a nonzero capacity (at least 2 points each).

    Each row names its family (``family``, ``H``, ``att_ratio``, ``mlp_ratio``), its ``params`` and ``bits``.

    >>> spec = {"family": "mlp-heavy", "H": 2, "att_ratio": 0.5, "mlp_ratio": 2.0}
    >>> f = fit([{**spec, "params": p, "bits": 0.2 * p} for p in (100, 400, 1600)])["mlp-heavy"]
    >>> round(f.beta, 6), round(f.c, 6), f.family == FAMILIES["mlp-heavy"]
    (1.0, 0.2, True)
    """
    fits = {}
    for name in dict.fromkeys(r["family"] for r in rows):
        mine = [r for r in rows if r["family"] == name and r["bits"] > 0]
        if len(mine) < 2:
            continue
        P = np.array([r["params"] for r in mine], float)
        b = np.array([r["bits"] for r in mine], float)
        pf = power_law(P, b)
        resid = np.log(b) - np.log(pf.prefactor * P**pf.slope)
        sigma = float(np.sqrt(np.sum(resid**2) / max(len(mine) - 2, 1)))
        fam = Family(name, int(mine[0]["H"]), float(mine[0]["att_ratio"]), float(mine[0]["mlp_ratio"]))
        fits[name] = FamilyFit(fam, pf.prefactor, pf.slope, sigma, len(mine), (int(P.min()), int(P.max())))
    check(bool(fits), "the scaling data has no family with ≥ 2 measured points; rerun the measurement")
    return fits


# ------------------------------------------------------------------------------------------- prediction


class Prediction(NamedTuple):
    """The smallest shape of one family the fit says stores ``bits``, with its band."""

    family: str
    shape: tuple[int, int, int, int]  # (d, H, d_h, m)
    params: int  # the paper's count of ``shape``
    attention_params: int
    mlp_params: int
    params_needed: float  # P* = (bits / c)^{1/β}, before rounding to a shape
    band_params: tuple[float, float]
    band_d: tuple[int, int]
    extrapolated: bool  # P* outside the measured range of the family

    def record(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "family": self.family,
            "shape": shape_record(self.shape),
            "params": self.params,
            "attention_params": self.attention_params,
            "mlp_params": self.mlp_params,
            "params_needed": round(self.params_needed),
            "band_params": [round(x) for x in self.band_params],
            "band_d": list(self.band_d),
            "extrapolated": self.extrapolated,
        }


def smallest_d(family: Family, params: float, d_min: int = 4, d_max: int = 4096) -> int:
    """The smallest d ≥ ``d_min`` of ``family`` with P(d) ≥ ``params`` (``d_max`` if none below it).

    >>> f = FAMILIES["mlp-heavy"]
    >>> d = smallest_d(f, 1500); f.params(d) >= 1500 > f.params(d - 1)
    True
    """
    d = d_min
    while d < d_max and family.params(d) < params:
        d += 1
    return d


def predict_family(ff: FamilyFit, bits: float) -> Prediction:
    """The prediction of one fitted family for a table of ``bits`` bits."""
    check(bits > 0, f"the table holds {bits} bits; it needs at least one relation with 2 answers")
    fam = ff.family
    need = ff.params_for(bits)
    lo, hi = ff.band(bits)
    d = smallest_d(fam, need)
    _, H, d_h, m = fam.shape(d)
    return Prediction(
        family=fam.name,
        shape=fam.shape(d),
        params=fam.params(d),
        attention_params=attention_params(d, H, d_h),
        mlp_params=mlp_params(d, m),
        params_needed=need,
        band_params=(lo, hi),
        band_d=(smallest_d(fam, lo), smallest_d(fam, hi)),
        extrapolated=not ff.params_range[0] <= need <= ff.params_range[1],
    )


def predict(
    bits: float, fits: dict[str, FamilyFit], budget_params: int | None = None
) -> tuple[Prediction, list[Prediction]]:
    """The family (and shape) with the fewest predicted parameters for ``bits``, and every family's.

    Raises:
        ConfigError: with ``budget_params``, when no family's prediction fits the budget.
    """
    candidates = sorted((predict_family(ff, bits) for ff in fits.values()), key=lambda p: p.params)
    best = candidates[0]
    if budget_params is not None:
        check(budget_params >= 1, f"budget_params must be ≥ 1, got {budget_params}")
        check(
            best.params <= budget_params,
            f"storing {bits:.0f} bits needs ≈ {best.params} parameters ({best.family}, band "
            f"{best.band_params[0]:.0f}–{best.band_params[1]:.0f}), over the budget of {budget_params}; "
            "raise budget_params or split the table",
        )
    return best, candidates
