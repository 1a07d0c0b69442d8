"""Figures 1 and 6 (§3): the capacity N* of trained associative memories, linear (vs d²) and MLP (vs m·d),
with M = N outputs (Figure 1) or M = 32 (Figure 6): their grids, points, run, draw and comparison with the
paper's guide constants 1.3, 0.35, the exponent 0.9 and 1.2.
"""

from __future__ import annotations

from pathlib import Path

from factrecall.core import bounds, fits
from factrecall.core.progress import Update
from factrecall.experiments import plots
from factrecall.experiments.figures.base import Figure, Point, Row, compared

LINEAR_D = {"quick": (8, 11, 16, 22, 32), "paper": (8, 11, 16, 22, 32, 45, 64, 90, 128, 181, 256)}
MLP_GRID = {
    # (α, d): quick keeps m·d ≤ 256 so that the whole figure fits in minutes on two cores.
    "quick": ((1, 8), (1, 11), (1, 16), (2, 6), (2, 8), (2, 11), (4, 4), (4, 6), (4, 8), (8, 4), (8, 6)),
    # the paper's d ∈ {8, …, 90} per α, up to m·d = 16384 (beyond that one run needs > 10^15 flops)
    "paper": tuple(
        (a, d) for a in (1, 2, 4, 8) for d in (8, 11, 16, 22, 32, 45, 64, 90) if a * d * d <= 16384
    ),
}


def _seeds(scale: str) -> list[int]:
    return [0, 1] if scale == "quick" else [0, 1, 2, 3, 4]


def memory_points(scale: str, fixed_outputs: bool = False) -> list[Point]:
    """Figure 1's points (linear over d, MLP over (α, d) with M = N), or Figure 6's (MLP only, M = 32)."""
    from factrecall.memories.capacity import MLP_STEPS

    points = []
    if not fixed_outputs:
        for d in LINEAR_D[scale]:
            points.append({"panel": "linear", "model": "linear", "d": d, "seeds": _seeds(scale)})
    for alpha, d in MLP_GRID[scale]:
        points.append(
            {
                "panel": "mlp_fixed_M" if fixed_outputs else "mlp",
                "model": "mlp",
                "d": d,
                "m": alpha * d,
                "alpha": alpha,
                "M": 32 if fixed_outputs else None,
                "seeds": _seeds(scale),
                "n_steps": MLP_STEPS if scale == "paper" else MLP_STEPS // 2,
                "precision": 0.01 if scale == "paper" else 0.03,
            }
        )
    return points


def run_memory(point: Point, update: Update) -> Row:
    """The capacity N* of one memory over its seeds (the project's recipe for the model and d)."""
    from factrecall.experiments.specs import MemoryCapacityPoint

    keys = ("model", "d", "m", "M", "n_steps", "seeds", "precision")
    spec = MemoryCapacityPoint(**{k: point[k] for k in keys if point.get(k) is not None})
    return {**point, **spec.run(update)}


def _draw_fig1(rows: list[Row], stem: Path) -> list[Path]:
    linear = [r for r in rows if r["panel"] == "linear"]
    return plots.fig1(linear, [r for r in rows if r["panel"] == "mlp"], stem)


def compare_fig1(rows: list[Row]) -> list[Row]:
    """d²/(N log N) of the linear memories; m·d/(N log N) and the exponent of N* in m·d of the MLPs."""
    out = []
    lin = [r for r in rows if r["panel"] == "linear"]
    if lin:
        c = fits.guide_constant([r["d"] ** 2 for r in lin], [bounds.n_log_n(r["capacity"]) for r in lin])
        out.append(compared("linear_d2_over_NlogN", "linear: d² / (N log N)", c))
    mlp = [r for r in rows if r["panel"] == "mlp"]
    if mlp:
        c = fits.guide_constant([r["m"] * r["d"] for r in mlp], [bounds.n_log_n(r["capacity"]) for r in mlp])
        out.append(compared("mlp_md_over_NlogN", "MLP: m·d / (N log N)", c))
        fit = fits.power_law([r["m"] * r["d"] for r in mlp], [r["capacity"] for r in mlp])
        out.append(compared("mlp_exponent", "MLP: exponent of N* in m·d", fit.slope))
    return out


def compare_fig6(rows: list[Row]) -> list[Row]:
    """m·d / N of MLP memories with M = 32 outputs."""
    c = fits.guide_constant([r["m"] * r["d"] for r in rows], [r["capacity"] for r in rows])
    return [compared("mlp_fixed_M_md_over_N", "MLP, M = 32: m·d / N", c)]


def _fig1_points(scale: str) -> list[Point]:
    return memory_points(scale)


def _fig6_points(scale: str) -> list[Point]:
    return memory_points(scale, fixed_outputs=True)


FIG1 = Figure(
    "fig1",
    "Figure 1: capacity of linear (vs d²) and MLP (vs m·d) associative memories, M = N",
    _fig1_points,
    run_memory,
    _draw_fig1,
    compare_fig1,
    "quick: ≈ 1.5 min on 2 idle CPU cores; d²/(N log N) ≈ 0.93 (paper's guide 1.3), "
    "MLP m·d/(N log N) ≈ 0.31 (0.35), MLP exponent ≈ 0.9",
)
FIG6 = Figure(
    "fig6",
    "Figure 6: capacity of MLP memories with M = 32 fixed outputs vs m·d",
    _fig6_points,
    run_memory,
    plots.fig6,
    compare_fig6,
    "quick: ≈ 1.3 min on 2 idle CPU cores; m·d / N ≈ 1.04 (paper's 1.2)",
)
