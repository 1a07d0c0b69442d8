"""Figure 4 (§4–§5): one-layer transformers on the factual-recall task. Left (``fig4``): the largest fact set
S·R stored at 99% vs parameters 4·H·d_h·d + 2·m·d over width ratios; right (``fig4-tradeoff``): accuracy over
heads H × MLP width m. Their grids, points, run, draw and comparison with the paper's 0.15 facts/param,
0.45 bits/param and the bands of Figure 4 right.
"""

from __future__ import annotations

import math
from pathlib import Path

from factrecall.core import fits
from factrecall.core.paper import PAPER
from factrecall.core.progress import Update
from factrecall.experiments import plots
from factrecall.experiments.figures.base import Figure, Point, Row, compared

FIG4_D = {"quick": (8, 16, 24), "paper": (8, 11, 16, 23, 32, 45, 64, 90, 128, 181)}
FIG4_RATIOS = {
    "quick": ((1.0, 1.0), (0.5, 1.0), (1.0, 0.5), (2.0, 1.0)),
    "paper": tuple((a, m) for a in (4, 2, 1, 0.5, 0.25) for m in (4, 2, 1, 0.5, 0.25)),
}
# quick scale: a smaller batch and budget than the paper's (batch 1024, 2^14 steps, lrs 1e-3…1e-2)
FIG4_RECIPE = {"quick": (256, 4096, (1e-2, 3e-2)), "paper": (1024, 16384, (1e-3, 3e-3, 1e-2))}

TRADEOFF_GRID = {
    # quick: a 16 × 16 fact table (the paper's 32 × 32 needs ≈ 4× the steps) on a coarser grid, with heads
    # narrowed from d_h = 8 to 2 so that one head stays the bottleneck it is in the paper: an 8-dim head
    # carries enough for 256 facts (H = 1, m = 64 reached 0.994 with d_h = 8; 0.61 with d_h = 4; 0.27 with 2).
    "quick": {
        "S": 16,
        "d_h": 2,
        "Hs": [1, 2, 4, 6, 8, 12],
        "ms": [1, 16, 48, 64],
        "batch": 256,
        "n_steps": 4096,
        "lrs": [3e-2],
    },
    "paper": {
        "S": 32,
        "d_h": 8,
        "Hs": [1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32],
        "ms": [1, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128],
        "batch": 1024,
        "n_steps": 16384,
        "lrs": [1e-3, 3e-3, 1e-2],
    },
}


def fig4_points(scale: str) -> list[Point]:
    """H = 8 transformers over d and the width ratios (H·d_h/d, m/d); quick: every ratio at d = 16 and the
    diagonal ratio over d."""
    batch, n_steps, lrs = FIG4_RECIPE[scale]
    points = []
    for d in FIG4_D[scale]:
        for ra, rm in FIG4_RATIOS[scale]:
            if scale == "quick" and d != 16 and (ra, rm) != (1.0, 1.0):
                continue
            d_h, m = max(1, round(ra * d / 8)), max(1, round(rm * d))
            points.append(
                {"panel": "fig4", "d": d, "H": 8, "d_h": d_h, "m": m, "attention_ratio": ra, "mlp_ratio": rm}
                | {"batch": batch, "n_steps": n_steps, "lrs": list(lrs), "seeds": [0], "scaling": "linear"}
            )
    return points


def run_fig4(point: Point, update: Update) -> Row:
    """The trained capacity (largest S·R stored at 99%, best over the learning rates) of one shape."""
    from factrecall.experiments.specs import TransformerCapacityPoint

    keys = ("d", "H", "d_h", "m", "scaling", "lrs", "n_steps", "batch", "seeds")
    spec = TransformerCapacityPoint(**{k: point[k] for k in keys}, D=8)
    return {**point, **spec.run(update)}


def _draw_fig4(rows: list[Row], stem: Path) -> list[Path]:
    return plots.fig4(rows, stem, PAPER["transformer_facts_per_param"].value)


def compare_fig4(rows: list[Row]) -> list[Row]:
    """Facts/param (slope fixed to 1), the free log-log slope and the bits/param of each width ratio."""
    stored = [r for r in rows if r["facts"] > 0]
    ratio = fits.guide_constant([r["facts"] for r in stored], [r["params"] for r in stored])
    out = [compared("transformer_facts_per_param", "facts / param (fit with slope 1)", ratio)]
    if len(stored) >= 2:
        fit = fits.power_law([r["params"] for r in stored], [r["facts"] for r in stored])
        out.append(compared("transformer_facts_slope", "log-log slope of facts vs params", fit.slope))
    for ra, rm in sorted({(r["attention_ratio"], r["mlp_ratio"]) for r in stored}):
        group = [r for r in stored if (r["attention_ratio"], r["mlp_ratio"]) == (ra, rm)]
        bits = sum(r["bits_per_param"] for r in group) / len(group)
        out.append(compared("transformer_bits_per_param", f"bits/param, H·d_h/d={ra:g}, m/d={rm:g}", bits))
    return out


def _tradeoff_points(scale: str) -> list[Point]:
    return [{"panel": "tradeoff", "d": 32, "D": 8, "seeds": [0], **TRADEOFF_GRID[scale]}]


def run_tradeoff(point: Point, update: Update) -> Row:
    """Accuracy over every fact of each (H, m) cell, every cell trained as one program."""
    from factrecall.recall.capacity import trial_recipe
    from factrecall.recall.task import recall_task
    from factrecall.recall.tradeoff import tradeoff

    update(0, 1, f"{len(point['Hs']) * len(point['ms'])} cells as one program")
    task = recall_task(point["S"], point["S"], point["D"])
    recipe = trial_recipe(point["n_steps"], point["batch"], 0.99)
    grid = tradeoff(
        task, point["d"], point["d_h"], point["Hs"], point["ms"], recipe, point["lrs"], point["seeds"]
    )
    return {**point, "R": point["S"], "cells": grid.rows(point["d"], point["d_h"]), "seconds": grid.seconds}


def compare_tradeoff(rows: list[Row]) -> list[Row]:
    """The bands of Figure 4 right: one head's best accuracy, many heads' worst, heads needed without MLP."""
    acc = {(c["H"], c["m"]): c["accuracy"] for r in rows for c in r["cells"]}
    single = max(a for (h, _), a in acc.items() if h == 1)
    out = [compared("tradeoff_single_head_accuracy", "best accuracy with H = 1", single)]
    big = [a for (h, m), a in acc.items() if h >= 6 and m >= 48]
    if big:
        out.append(compared("tradeoff_many_heads_accuracy", "min accuracy over H ≥ 6, m ≥ 48", min(big)))
    m_min = min(m for _, m in acc)
    ok = [h for (h, m), a in acc.items() if m == m_min and a >= 0.99]
    quantity = f"fewest heads reaching 0.99 at m = {m_min} (no MLP)"
    out.append(compared("tradeoff_heads_without_mlp", quantity, min(ok) if ok else math.nan))
    return out


FIG4 = Figure(
    "fig4",
    "Figure 4 left: facts stored by a one-layer transformer vs parameters (H = 8, D = 8, S = R)",
    fig4_points,
    run_fig4,
    _draw_fig4,
    compare_fig4,
    "quick: ≈ 3.5 min on 2 idle CPU cores; slope ≈ 0.84, facts/param ≈ 0.11 (paper's 0.15) at the "
    "quick budget",
)
FIG4_TRADEOFF = Figure(
    "fig4-tradeoff",
    "Figure 4 right: accuracy over heads H × MLP width m (d = 32, D = 8; d_h = 8 paper, 2 quick)",
    _tradeoff_points,
    run_tradeoff,
    plots.fig4_tradeoff,
    compare_tradeoff,
    "quick (S = R = 16, d_h = 2): ≈ 2 min on 2 CPU cores; H = 1 below 0.3, H ≥ 6 with m ≥ 48 ≥ 0.99, "
    "no MLP needs ≈ 12 heads vs 4",
)
