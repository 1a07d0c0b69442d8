"""The constructions figure (§4, Theorems 3–4): the smallest hand-built transformer storing every fact vs S·R
for each mechanism (facts in the attention values or in the MLP), the hybrid's attention/MLP frontier at
S = R = 32, D = 8, and beside them trained capacity at Figure 4's diagonal shapes. Its grids, points, run,
draw and comparison with the paper's slope 1 and 0.15 facts/param.

The trained points are Figure 4's (same shapes and recipe): the figure declares it (:class:`Reuse`), so
:func:`factrecall.experiments.reproduce.run_figure` copies fig4's stored rows instead of training again.
"""

from __future__ import annotations

import time

from factrecall.core import fits
from factrecall.core.progress import Update
from factrecall.experiments import plots
from factrecall.experiments.figures.base import Figure, Point, Reuse, Row, compared
from factrecall.experiments.figures.transformer import fig4_points, run_fig4

CONSTRUCTION_S = {"quick": (8, 16, 32, 64), "paper": (8, 11, 16, 22, 32, 45, 64)}  # S = R, D = 8
HYBRID_SHARES = {
    "quick": (0.0, 0.25, 0.5, 0.75, 1.0),
    "paper": (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0),
}


def construction_points(scale: str) -> list[Point]:
    """Minimal constructed size per S·R for both mechanisms; the hybrid frontier at S = R = 32, D = 8; then
    the trained shapes (:func:`trained_points`)."""
    seeds = [0] if scale == "quick" else [0, 1, 2]
    precision = 0.05 if scale == "quick" else 0.02
    points: list[Point] = []
    for mechanism in ("attention", "mlp"):
        for S in CONSTRUCTION_S[scale]:
            points.append(
                {
                    "panel": "scaling",
                    "mechanism": mechanism,
                    "S": S,
                    "R": S,
                    "D": 8,
                    "seeds": seeds,
                    "precision": precision,
                }
            )
    for share in HYBRID_SHARES[scale]:
        # the frontier's ends are the pure mechanisms; in between, the gated hybrid with its MLP shrinking
        mechanism = "mlp" if share == 0 else "attention" if share == 1 else "hybrid"
        point = {
            "panel": "hybrid",
            "mechanism": mechanism,
            "S": 32,
            "R": 32,
            "D": 8,
            "attention_share": share,
        }
        if mechanism == "hybrid":
            point["mlp_ratio"] = 4.0 * (1.0 - share)
        points.append({**point, "seeds": [0], "precision": precision})
    return points + trained_points(scale)


def trained_points(scale: str) -> list[Point]:
    """Trained capacity beside the constructions: Figure 4's H·d_h/d = m/d = 1 shapes (quick: d ≤ 16, to keep
    ``make reproduce`` near 15 minutes)."""
    diagonal = [p for p in fig4_points(scale) if p["attention_ratio"] == p["mlp_ratio"] == 1]
    return [{**p, "panel": "trained"} for p in diagonal if scale == "paper" or p["d"] <= 16]


def fig4_point(point: Point) -> Point | None:
    """Figure 4's point measuring a trained point (the same point in Figure 4's panel); ``None`` otherwise."""
    return {**point, "panel": "fig4"} if point["panel"] == "trained" else None


def run_construction(point: Point, update: Update) -> Row:
    """The smallest construction storing every fact (over its seeds); a trained point's trained capacity."""
    from factrecall.experiments.specs import ConstructionPoint

    if point["panel"] == "trained":  # a trained transformer's capacity (largest S·R stored at 99%)
        return run_fig4(point, update)

    start = time.perf_counter()
    keys = ("mechanism", "S", "R", "D", "mlp_ratio", "seeds", "precision")
    values = {k: point.get(k) for k in keys}
    if point["mechanism"] == "hybrid":
        values["attention_share"] = point["attention_share"]
    row = {**point, **ConstructionPoint(**values).run(update), "seconds": time.perf_counter() - start}
    row["facts"] = point["S"] * point["R"]
    row["heatmap_attention"] = row["d"] * row["d_h"] * row["H"]  # Fig. 4 right's axes: d·d_h·H and d·m
    row["heatmap_mlp"] = row["d"] * row["m"]
    return row


def compare_constructions(rows: list[Row]) -> list[Row]:
    """Slopes of the smallest size in S·R, facts/param at S = R = 32 per mechanism, trained facts/param."""
    out = []
    for mechanism in ("attention", "mlp"):
        sub = [r for r in rows if r["panel"] == "scaling" and r["mechanism"] == mechanism]
        if len(sub) >= 2:
            fit = fits.power_law(
                [r["facts"] for r in sub], [r["params_per_fact_median"] * r["facts"] for r in sub]
            )
            quantity = f"{mechanism}: slope of min params in S·R"
            out.append(compared("construction_params_slope", quantity, fit.slope))
        at_1024 = [r for r in sub if r["facts"] == 1024]
        if at_1024:
            ratio = 1.0 / at_1024[0]["params_per_fact_median"]
            quantity = f"{mechanism}: facts/param at S=R=32 (vs trained)"
            out.append(compared("transformer_facts_per_param", quantity, ratio))
    trained = [r for r in rows if r["panel"] == "trained" and plots.median_facts(r) > 0]
    if trained:
        ratio = fits.guide_constant([plots.median_facts(r) for r in trained], [r["params"] for r in trained])
        out.append(compared("transformer_facts_per_param", "trained (same figure): facts/param", ratio))
    return out


CONSTRUCTIONS = Figure(
    "constructions",
    "Constructions (§4): minimal transformer storing every fact vs S·R; the hybrid's attention/MLP frontier",
    construction_points,
    run_construction,
    plots.constructions,
    compare_constructions,
    "quick: ≈ 3 min on 2 idle CPU cores (+ Figure 4's diagonal shapes unless fig4's rows are in the store); "
    "slopes ≈ 1.0 (attention) and 1.2 (MLP), target [0.9, 1.3]; ≈ 52 and ≈ 159 params per fact at "
    "S=R=32, D=8: 8–24× more than trained models",
    Reuse("fig4", fig4_point),
)
