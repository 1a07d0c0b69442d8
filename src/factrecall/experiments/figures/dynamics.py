"""Figure 5 and the hallucination plateau (§5): training dynamics of the simplified model. ``fig5`` is the
paper's run (S=16, R=4, D=8) with its stages; ``plateau`` measures the relation and subject transitions over
S and over a Zipf imbalance of subjects. Their grids, points, run, draw and comparison with the paper's
plateau loss, transition steps and the §5 predictions.
"""

from __future__ import annotations

import math
from pathlib import Path

from factrecall.core import fits
from factrecall.core.io import atomic_write, curves_csv
from factrecall.core.progress import Update
from factrecall.experiments import plots
from factrecall.experiments.figures.base import Figure, Point, Row, compared

PLATEAU_S = (8, 16, 32, 64)
PLATEAU_ZIPF = (0.5, 1.0, 1.5)
# quick runs the same ODE 4× faster: escape times scale as 1/lr, so the slope in S is unchanged
PLATEAU_LR = {"quick": 0.4, "paper": 0.1}


def _trajectory(point: Point, update: Update) -> Row:
    """The record of the point's trajectory (:meth:`factrecall.experiments.specs.DynamicsPoint.run`)."""
    from factrecall.experiments.specs import DynamicsPoint

    return DynamicsPoint(**{k: v for k, v in point.items() if k in DynamicsPoint.model_fields}).run(update)


def _fig5_points(scale: str) -> list[Point]:
    return [{"S": 16, "R": 4, "D": 8, "lr": 0.1, "n_steps": 8192}]


def run_fig5(point: Point, update: Update) -> Row:
    """One trajectory of the simplified model: curves, stages, measured and predicted transitions."""
    return _trajectory(point, update)


def _draw_fig5(rows: list[Row], stem: Path) -> list[Path]:
    row = rows[0]
    atomic_write(stem.with_name(f"{stem.name}_curves.csv"), curves_csv(row["steps"], row["curves"]))
    return plots.dynamics(row, stem)


def compare_fig5(rows: list[Row]) -> list[Row]:
    """The plateau's loss, both transitions' steps (and measured / predicted) and the final loss."""
    row = rows[0]
    halluc = [s["loss"] for s in row["stages"] if s["name"] == "hallucination"]
    plateau = halluc[0] if halluc else math.nan
    out = [compared("fig5_plateau_loss", "hallucination plateau loss (nats)", plateau)]
    for name in ("relation", "subject"):
        step = row["measured"][name]
        out.append(
            compared(f"fig5_{name}_step", f"{name} transition (step)", step if step is not None else math.nan)
        )
        ratio = step / row["predicted"][name] if step is not None else math.nan
        quantity = f"{name} transition: measured / predicted"
        out.append(compared("dynamics_measured_over_predicted", quantity, ratio))
    out.append(compared("fig5_final_loss", "final loss (step 8192)", row["final_loss"]))
    return out


def plateau_points(scale: str) -> list[Point]:
    """S ∈ PLATEAU_S with uniform subjects, then Zipf exponents at S = 16; each runs to 1.6× the predicted
    subject transition (at least 1024 steps)."""
    from factrecall.dynamics.stages import predicted_steps

    lr = PLATEAU_LR[scale]
    grid = [(S, 0.0) for S in PLATEAU_S] + [(16, a) for a in PLATEAU_ZIPF]
    points = []
    for S, alpha in grid:
        t_sub = predicted_steps(S, 4, 8, lr=lr, alpha_S=alpha)["subject"]
        n_steps = max(1024, 64 * math.ceil(1.6 * t_sub / 64))  # the loss is well past log D / 2 by then
        points.append({"S": S, "R": 4, "D": 8, "alpha_S": alpha, "lr": lr, "n_steps": n_steps})
    return points


def run_plateau(point: Point, update: Update) -> Row:
    """One trajectory's transitions, measured and predicted, and the plateau between them."""
    s = _trajectory(point, update)
    rel, sub = s["measured"]["relation"], s["measured"]["subject"]
    return {
        **point,
        "S": s["spec"]["S"],
        "alpha_S": s["spec"]["alpha_S"],
        "measured_relation": rel,
        "measured_subject": sub,
        "predicted_relation": s["predicted"]["relation"],
        "predicted_subject": s["predicted"]["subject"],
        "plateau_length": sub - rel if rel is not None and sub is not None else None,
        "stages": s["stages"],
        "final_loss": s["final_loss"],
        "seconds": s["seconds"],
    }


def compare_plateau(rows: list[Row]) -> list[Row]:
    """The subject transition's slope in S, the relation transition's spread over S, and the worst
    measured / predicted ratio of each series."""
    by_s = [r for r in rows if r["alpha_S"] == 0 and r["measured_subject"] is not None]
    fit = fits.power_law([r["S"] for r in by_s], [r["measured_subject"] for r in by_s])
    out = [compared("dynamics_subject_slope_S", "subject transition: log-log slope in S", fit.slope)]
    rel = [r["measured_relation"] for r in by_s if r["measured_relation"] is not None]
    spread = max(rel) / min(rel) if rel else math.nan
    out.append(compared("dynamics_relation_spread_S", "relation transition: max / min over S", spread))
    # under strong Zipf imbalance the frequent subjects are learned before the relations, so the loss's
    # first drop is no longer the relation transition: only the subject prediction is compared there
    series = [("relation", "uniform subjects", by_s), ("subject", "uniform subjects", by_s)]
    series.append(("subject", "Zipf subjects", [r for r in rows if r["alpha_S"] > 0]))
    for name, label, sub in series:
        ratios = [r[f"measured_{name}"] / r[f"predicted_{name}"] for r in sub if r[f"measured_{name}"]]
        worst = max(ratios, key=lambda x: abs(x - 1)) if ratios else math.nan
        quantity = f"{name}: measured / predicted, worst ({label})"
        out.append(compared("dynamics_measured_over_predicted", quantity, worst))
    return out


FIG5 = Figure(
    "fig5",
    "Figure 5: training dynamics of the simplified model (S=16, R=4, D=8), sequential learning",
    _fig5_points,
    run_fig5,
    _draw_fig5,
    compare_fig5,
    "≈ 1 min on 2 CPU cores; plateau ≈ log 8 = 2.08, transitions ≈ 1,700 and ≈ 4,400 steps, loss < 0.01",
)
PLATEAU = Figure(
    "plateau",
    "Hallucination plateau vs S (R=4, D=8) and vs Zipf imbalance of subjects (simplified model)",
    plateau_points,
    run_plateau,
    plots.plateau,
    compare_plateau,
    "quick (lr 0.4): ≈ 3 min on 2 CPU cores; subject-transition slope in S ≈ 1, relation transition fixed",
)
