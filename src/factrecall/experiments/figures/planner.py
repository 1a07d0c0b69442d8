"""Two figures beyond the paper: ``planner-scaling`` (capacity in bits of one-layer transformers per shape
family, the data of ``factrecall plan``) and ``attribution-tradeoff`` (where the stored facts live, attention
or MLP, across Figure 4 right's (H, m) grid). Their grids, points, run, draw and comparison.
"""

from __future__ import annotations

import time

from factrecall.core import bounds, fits
from factrecall.core.progress import Update
from factrecall.experiments import plots
from factrecall.experiments.figures.base import Figure, Point, Row, compared

PLANNER_DS = {"quick": (8, 12, 16, 24, 32, 48), "paper": (8, 12, 16, 24, 32, 48, 64, 96)}
# attribution across the Figure 4-right grid; quick shrinks d, S = R and the grid to fit minutes on 2 cores
ATTRIBUTION_GRID = {
    "quick": {"d": 16, "d_h": 4, "S": 12, "D": 8, "H": (1, 2, 4, 8), "m": (1, 16, 64)},
    "paper": {
        "d": 32,
        "d_h": 8,
        "S": 32,
        "D": 8,
        "H": (1, 2, 4, 6, 8, 12, 16, 20, 24, 32),
        "m": (1, 8, 16, 32, 48, 64, 96, 128),
    },
}


def planner_points(scale: str) -> list[Point]:
    """Every shape family of :data:`factrecall.facts.scaling.FAMILIES` over PLANNER_DS."""
    from factrecall.facts.scaling import FAMILIES

    return [{"family": f, "d": d} for f in FAMILIES for d in PLANNER_DS[scale]]


def run_planner(point: Point, update: Update) -> Row:
    """The planner's measurement of one family at width d."""
    from factrecall.facts.planner import measure_point
    from factrecall.facts.scaling import FAMILIES

    return measure_point(FAMILIES[point["family"]], point["d"], on_round=update)


def compare_planner(rows: list[Row]) -> list[Row]:
    """Facts/param over every family (slope fixed to 1), against the paper's 0.15."""
    stored = [r for r in rows if r["facts"] > 0]
    ratio = (
        fits.guide_constant([r["facts"] for r in stored], [r["params"] for r in stored]) if stored else 0.0
    )
    quantity = "facts / param (criterion 1.0, all families)"
    return [compared("transformer_facts_per_param", quantity, ratio)]


def attribution_points(scale: str) -> list[Point]:
    """Every (H, m) of ATTRIBUTION_GRID at the scale's d."""
    g = ATTRIBUTION_GRID[scale]
    return [{"H": H, "m": m, "d": g["d"], "scale": scale} for H in g["H"] for m in g["m"]]


def run_attribution(point: Point, update: Update) -> Row:
    """Train one (H, m) shape on random facts, then attribute each stored fact to attention or MLP."""
    import jax

    from factrecall.facts.planner import Recipe, config_for
    from factrecall.recall.attribution import attribute
    from factrecall.recall.task import facts_random, recall_task
    from factrecall.recall.training import train_seeds

    scale = point["scale"]
    g = ATTRIBUTION_GRID[scale]
    recipe = Recipe() if scale == "quick" else Recipe(n_steps=16384, batch=1024, eval_every=128)
    task = recall_task(g["S"], g["S"], g["D"], T=recipe.T)
    facts = facts_random(task, key=jax.random.key(7))
    shape = (g["d"], point["H"], g["d_h"], point["m"])
    start = time.perf_counter()
    update(0, 1, f"H={point['H']}, m={point['m']}: training")
    cfg = config_for(shape, task)
    ((run, params),) = train_seeds(cfg, task, recipe.run_recipe(1.0), facts[None], recipe.lrs, (0,))
    summary = attribute(params, cfg, task, facts, 8, key=jax.random.key(8)).summary()
    update(1, 1, "done")
    return {
        "d": g["d"],
        "d_h": g["d_h"],
        "H": point["H"],
        "m": point["m"],
        "attention_params": bounds.attention_params(g["d"], point["H"], g["d_h"]),
        "mlp_params": bounds.mlp_params(g["d"], point["m"]),
        "facts_total": task.n_facts,
        "train_accuracy": run.accuracy,
        "lr": run.lr,
        "steps": run.steps,
        **{k: v for k, v in summary.items() if k != "facts"},
        "seconds": time.perf_counter() - start,
    }


def _no_comparison(rows: list[Row]) -> list[Row]:
    return []


PLANNER_SCALING = Figure(
    "planner-scaling",
    "Planner data (beyond the paper): capacity in bits of one-layer transformers per shape family",
    planner_points,
    run_planner,
    plots.planner_scaling,
    compare_planner,
    "quick: ≈ 15 min on 2 CPU cores; rows feed src/factrecall/data/scaling.json (copy the JSON there)",
)
ATTRIBUTION_TRADEOFF = Figure(
    "attribution-tradeoff",
    "Where the facts live (beyond the paper): share of stored facts in attention vs MLP over (H, m)",
    attribution_points,
    run_attribution,
    plots.attribution_grid,
    _no_comparison,
    "quick: ≈ 6 min on 2 CPU cores; MLP share high at H = 1, large m; attention share ≈ 1 at m = 1",
)
