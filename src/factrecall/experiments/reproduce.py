"""``factrecall reproduce``: the paper's figures as named targets, each a list of points, a plot and a
comparison with the paper's constants.

A figure is a :class:`Figure` in :data:`FIGURES`; adding an entry is all it takes for ``reproduce``, the
results store, ``configs/`` and the report to know it. Every figure's points run through the results store
(:func:`factrecall.experiments.sweeps.run_points`), keyed by (figure, scale, the point's canonical JSON),
so an
interrupted run resumes where it stopped and never duplicates a point; a point that fails is recorded with
its reason and the others go on. Then the figure is drawn (PNG + PDF, with its data as CSV and JSON) and
the report (:mod:`factrecall.experiments.report`) is rewritten from every figure in the store.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from factrecall.core import bounds, fits
from factrecall.core.errors import check
from factrecall.core.progress import Update
from factrecall.experiments import plots
from factrecall.experiments.config import SweepConfig, check_like, toml_value
from factrecall.experiments.report import atomic_write, draw_figure, figure_rows, write_report
from factrecall.experiments.store import Store, point_key

if TYPE_CHECKING:
    from factrecall.experiments.sweeps import SweepSummary

Point = dict[str, Any]
Row = dict[str, Any]
SCALES = ("quick", "paper")


class Figure(NamedTuple):
    """A reproducible figure: its points at each scale, how to run one, how to draw and compare."""

    name: str
    title: str
    points: Callable[[str], list[Point]]
    run: Callable[[Point, Update], Row]
    draw: Callable[[list[Row], Path], list[Path]]
    compare: Callable[[list[Row]], list[Row]]
    expected: str


# ---------------------------------------------------------------------------------------------- memories


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


def _memory_points(scale: str, fixed_outputs: bool = False) -> list[Point]:
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


def _run_memory(point: Point, update: Update) -> Row:
    from factrecall.memories.capacity import capacity, recipe

    spec = recipe(point["model"], point["d"], point.get("m"), M=point.get("M"), n_steps=point.get("n_steps"))
    result = capacity(
        spec, tuple(point["seeds"]), rel_precision=point.get("precision", 0.01), on_round=update
    )
    return {**point, **result.summary()}


def _compare_fig1(rows: list[Row]) -> list[Row]:
    out = []
    lin = [r for r in rows if r["panel"] == "linear"]
    if lin:
        c = fits.guide_constant([r["d"] ** 2 for r in lin], [bounds.n_log_n(r["capacity"]) for r in lin])
        out.append(_cmp("linear: d² / (N log N)", c, "linear_d2_over_NlogN"))
    mlp = [r for r in rows if r["panel"] == "mlp"]
    if mlp:
        c = fits.guide_constant([r["m"] * r["d"] for r in mlp], [bounds.n_log_n(r["capacity"]) for r in mlp])
        out.append(_cmp("MLP: m·d / (N log N)", c, "mlp_md_over_NlogN"))
        fit = fits.power_law([r["m"] * r["d"] for r in mlp], [r["capacity"] for r in mlp])
        out.append(_cmp("MLP: exponent of N* in m·d", fit.slope, "mlp_exponent"))
    return out


def _compare_fig6(rows: list[Row]) -> list[Row]:
    c = fits.guide_constant([r["m"] * r["d"] for r in rows], [r["capacity"] for r in rows])
    return [_cmp("MLP, M = 32: m·d / N", c, "mlp_fixed_M_md_over_N")]


def _cmp(quantity: str, ours: float, paper_key: str) -> Row:
    guide = bounds.PAPER[paper_key]
    return {
        "quantity": quantity,
        "ours": ours,
        "paper": guide.value,
        "deviation": fits.deviation(ours, guide.value),
        "paper_source": guide.source,
    }


FIGURES: dict[str, Figure] = {
    "fig1": Figure(
        "fig1",
        "Figure 1: capacity of linear (vs d²) and MLP (vs m·d) associative memories, M = N",
        lambda scale: _memory_points(scale),
        _run_memory,
        lambda rows, stem: plots.fig1(
            [r for r in rows if r["panel"] == "linear"], [r for r in rows if r["panel"] == "mlp"], stem
        ),
        _compare_fig1,
        "quick: ≈ 1.5 min on 2 idle CPU cores; d²/(N log N) ≈ 0.93 (paper's guide 1.3), "
        "MLP m·d/(N log N) ≈ 0.31 (0.35), MLP exponent ≈ 0.9",
    ),
    "fig6": Figure(
        "fig6",
        "Figure 6: capacity of MLP memories with M = 32 fixed outputs vs m·d",
        lambda scale: _memory_points(scale, fixed_outputs=True),
        _run_memory,
        plots.fig6,
        _compare_fig6,
        "quick: ≈ 1.3 min on 2 idle CPU cores; m·d / N ≈ 1.04 (paper's 1.2)",
    ),
}


# -------------------------------------------------------------------- issue 3: transformer (Figure 4)

FIG4_D = {"quick": (8, 16, 24), "paper": (8, 11, 16, 23, 32, 45, 64, 90, 128, 181)}
FIG4_RATIOS = {
    "quick": ((1.0, 1.0), (0.5, 1.0), (1.0, 0.5), (2.0, 1.0)),
    "paper": tuple((a, m) for a in (4, 2, 1, 0.5, 0.25) for m in (4, 2, 1, 0.5, 0.25)),
}
FIG4_GUIDE = 0.15  # Figure 4 left: facts stored ≈ 0.15·params (≈ 0.45 bits/param at D = 8)
# quick scale: a smaller batch and budget than the paper's (batch 1024, 2^14 steps, lrs 1e-3…1e-2)
FIG4_RECIPE = {"quick": (256, 4096, (1e-2, 3e-2)), "paper": (1024, 16384, (1e-3, 3e-3, 1e-2))}


# ------------------------------------------------------------------------- issue 7: planner and attribution

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


def _planner_points(scale: str) -> list[Point]:
    from factrecall.facts.scaling import FAMILIES

    return [{"family": f, "d": d} for f in FAMILIES for d in PLANNER_DS[scale]]


def _run_planner(point: Point, update: Update) -> Row:
    from factrecall.facts.planner import measure_point
    from factrecall.facts.scaling import FAMILIES

    return measure_point(FAMILIES[point["family"]], point["d"], on_round=update)


def _compare_planner(rows: list[Row]) -> list[Row]:
    stored = [r for r in rows if r["facts"] > 0]
    ratio = (
        fits.guide_constant([r["facts"] for r in stored], [r["params"] for r in stored]) if stored else 0.0
    )
    return [_cmp("facts / param (criterion 1.0, all families)", ratio, "transformer_facts_per_param")]


def _attribution_points(scale: str) -> list[Point]:
    g = ATTRIBUTION_GRID[scale]
    return [{"H": H, "m": m, "d": g["d"], "scale": scale} for H in g["H"] for m in g["m"]]


def _run_attribution(point: Point, update: Update) -> Row:
    import time as _time

    import jax

    from factrecall.facts.planner import Recipe, config_for, train_seeds
    from factrecall.recall.attribution import attribute
    from factrecall.recall.task import facts_random, recall_task

    scale = point["scale"]
    g = ATTRIBUTION_GRID[scale]
    recipe = Recipe() if scale == "quick" else Recipe(n_steps=16384, batch=1024, eval_every=128)
    task = recall_task(g["S"], g["S"], g["D"], T=recipe.T)
    facts = facts_random(task, key=jax.random.key(7))
    shape = (g["d"], point["H"], g["d_h"], point["m"])
    start = _time.perf_counter()
    update(0, 1, f"H={point['H']}, m={point['m']}: training")
    run = train_seeds(config_for(shape, task), task, facts[None], (0,), recipe, criterion=1.0)[0]
    summary = attribute(
        run["params"], config_for(shape, task), task, facts, 8, key=jax.random.key(8)
    ).summary()
    update(1, 1, "done")
    return {
        "d": g["d"],
        "d_h": g["d_h"],
        "H": point["H"],
        "m": point["m"],
        "attention_params": 4 * point["H"] * g["d_h"] * g["d"],
        "mlp_params": 2 * point["m"] * g["d"],
        "facts_total": task.n_facts,
        "train_accuracy": run["accuracy"],
        "lr": run["lr"],
        "steps": run["steps"],
        **{k: v for k, v in summary.items() if k != "facts"},
        "seconds": _time.perf_counter() - start,
    }


FIGURES["planner-scaling"] = Figure(
    "planner-scaling",
    "Planner data (beyond the paper): capacity in bits of one-layer transformers per shape family",
    _planner_points,
    _run_planner,
    plots.planner_scaling,
    _compare_planner,
    "quick: ≈ 15 min on 2 CPU cores; rows feed src/factrecall/data/scaling.json (copy the JSON there)",
)
FIGURES["attribution-tradeoff"] = Figure(
    "attribution-tradeoff",
    "Where the facts live (beyond the paper): share of stored facts in attention vs MLP over (H, m)",
    _attribution_points,
    _run_attribution,
    plots.attribution_grid,
    lambda rows: [],
    "quick: ≈ 6 min on 2 CPU cores; MLP share high at H = 1, large m; attention share ≈ 1 at m = 1",
)


def _fig4_points(scale: str) -> list[Point]:
    batch, n_steps, lrs = FIG4_RECIPE[scale]
    points = []
    for d in FIG4_D[scale]:
        for ra, rm in FIG4_RATIOS[scale]:
            if scale == "quick" and d != 16 and (ra, rm) != (1.0, 1.0):
                continue  # quick: every ratio at d = 16, the diagonal ratio over d
            d_h, m = max(1, round(ra * d / 8)), max(1, round(rm * d))
            points.append(
                {"panel": "fig4", "d": d, "H": 8, "d_h": d_h, "m": m, "attention_ratio": ra, "mlp_ratio": rm}
                | {"batch": batch, "n_steps": n_steps, "lrs": list(lrs), "seeds": [0], "scaling": "linear"}
            )
    return points


# Figure 4 capacities measured in this process, by shape and recipe (the point without its panel): the
# constructions figure draws Figure 4's diagonal shapes too, and within one ``reproduce all`` it reuses them
# (marked ``reused_from``) instead of training the same models twice.
_FIG4_DONE: dict[str, Row] = {}


def _run_fig4(point: Point, update: Update) -> Row:
    from factrecall.recall import capacity as tc

    key = point_key({k: v for k, v in point.items() if k != "panel"})
    if key in _FIG4_DONE:
        update(1, 1, "measured earlier in this run (Figure 4)")
        return {**point, **_FIG4_DONE[key], "reused_from": "fig4"}
    recipe = tc.CAPACITY_RECIPE._replace(n_steps=point["n_steps"], batch=point["batch"])
    spec = tc.Spec(
        point["d"], point["H"], point["d_h"], point["m"], 8, point["scaling"], recipe, tuple(point["lrs"])
    )
    result = tc.capacity(spec, tuple(point["seeds"]), on_round=update)
    _FIG4_DONE[key] = summary = result.summary()
    return {**point, **summary}


def _compare_fig4(rows: list[Row]) -> list[Row]:
    stored = [r for r in rows if r["facts"] > 0]
    out = [
        _row_vs(
            "facts / param (fit with slope 1)",
            fits.guide_constant([r["facts"] for r in stored], [r["params"] for r in stored]),
            FIG4_GUIDE,
            "Fig. 4 left: facts = 0.15·params",
        )
    ]
    if len(stored) >= 2:
        fit = fits.power_law([r["params"] for r in stored], [r["facts"] for r in stored])
        out.append(_row_vs("log-log slope of facts vs params", fit.slope, 1.0, "Fig. 4 left: linear scaling"))
    for ra, rm in sorted({(r["attention_ratio"], r["mlp_ratio"]) for r in stored}):
        group = [r for r in stored if (r["attention_ratio"], r["mlp_ratio"]) == (ra, rm)]
        bits = sum(r["bits_per_param"] for r in group) / len(group)
        out.append(
            _row_vs(f"bits/param, H·d_h/d={ra:g}, m/d={rm:g}", bits, 0.45, "Fig. 4: ≈ 0.45 bits/param")
        )
    return out


def _row_vs(quantity: str, ours: float, paper: float, source: str) -> Row:
    return {
        "quantity": quantity,
        "ours": ours,
        "paper": paper,
        "deviation": fits.deviation(ours, paper),
        "paper_source": source,
    }


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


def _tradeoff_points(scale: str) -> list[Point]:
    return [{"panel": "tradeoff", "d": 32, "D": 8, "seeds": [0], **TRADEOFF_GRID[scale]}]


def _run_tradeoff(point: Point, update: Update) -> Row:
    from factrecall.recall import capacity as tc
    from factrecall.recall.task import recall_task
    from factrecall.recall.training import Recipe

    update(0, 1, f"{len(point['Hs']) * len(point['ms'])} cells as one program")
    task = recall_task(point["S"], point["S"], point["D"])
    recipe = Recipe(point["n_steps"], point["batch"], 128, 0.99, 2, "constant")
    grid = tc.tradeoff(
        task, point["d"], point["d_h"], point["Hs"], point["ms"], recipe, point["lrs"], point["seeds"]
    )
    return {**point, "R": point["S"], "cells": grid.rows(point["d"], point["d_h"]), "seconds": grid.seconds}


def _compare_tradeoff(rows: list[Row]) -> list[Row]:
    cells = [c for r in rows for c in r["cells"]]
    acc = {(c["H"], c["m"]): c["accuracy"] for c in cells}
    out = [
        _row_vs(
            "best accuracy with H = 1",
            max(a for (h, _), a in acc.items() if h == 1),
            0.35,
            "Fig. 4 right: H = 1 stays at 0.2–0.35",
        )
    ]
    big = [a for (h, m), a in acc.items() if h >= 6 and m >= 48]
    if big:
        out.append(_row_vs("min accuracy over H ≥ 6, m ≥ 48", min(big), 1.0, "Fig. 4 right: reaches 1.0"))
    m_min = min(m for _, m in acc)
    ok = [h for (h, m), a in acc.items() if m == m_min and a >= 0.99]
    out.append(
        _row_vs(
            f"fewest heads reaching 0.99 at m = {m_min} (no MLP)",
            min(ok) if ok else math.nan,
            19.0,
            "Fig. 4 right: ≈ 18–20 heads without MLP (S = R = 32)",
        )
    )
    return out


FIGURES.update(
    {
        "fig4": Figure(
            "fig4",
            "Figure 4 left: facts stored by a one-layer transformer vs parameters (H = 8, D = 8, S = R)",
            _fig4_points,
            _run_fig4,
            lambda rows, stem: plots.fig4(rows, stem, FIG4_GUIDE),
            _compare_fig4,
            "quick: ≈ 3.5 min on 2 idle CPU cores; slope ≈ 0.84, facts/param ≈ 0.11 (paper's 0.15) at the "
            "quick budget",
        ),
        "fig4-tradeoff": Figure(
            "fig4-tradeoff",
            "Figure 4 right: accuracy over heads H × MLP width m (d = 32, D = 8; d_h = 8 paper, 2 quick)",
            _tradeoff_points,
            _run_tradeoff,
            plots.fig4_tradeoff,
            _compare_tradeoff,
            "quick (S = R = 16, d_h = 2): ≈ 2 min on 2 CPU cores; H = 1 below 0.3, H ≥ 6 with m ≥ 48 ≥ 0.99, "
            "no MLP needs ≈ 12 heads vs 4",
        ),
    }
)


# ------------------------------------------------------------------ constructions (issue 4: §4–§5, SPEC §4)

CONSTRUCTION_S = {"quick": (8, 16, 32, 64), "paper": (8, 11, 16, 22, 32, 45, 64)}  # S = R, D = 8
HYBRID_SHARES = {
    "quick": (0.0, 0.25, 0.5, 0.75, 1.0),
    "paper": (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0),
}


def _construction_points(scale: str) -> list[Point]:
    """Minimal constructed size per S·R for both mechanisms; the hybrid frontier at S = R = 32, D = 8."""
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
    return points + _trained_points(scale)


def _trained_points(scale: str) -> list[Point]:
    """Trained capacity beside the constructions: Figure 4's H·d_h/d = m/d = 1 shapes (quick: d ≤ 16, to keep
    ``make reproduce`` near 15 minutes)."""
    diagonal = [p for p in _fig4_points(scale) if p["attention_ratio"] == p["mlp_ratio"] == 1]
    return [{**p, "panel": "trained"} for p in diagonal if scale == "paper" or p["d"] <= 16]


def _run_construction(point: Point, update: Update) -> Row:
    from factrecall.recall.construction_search import construction_spec, find_min

    if point["panel"] == "trained":  # a trained transformer's capacity (largest S·R stored at 99%)
        return _run_fig4(point, update)

    start = time.perf_counter()
    overrides = {"mlp_ratio": point.get("mlp_ratio")}
    if point["mechanism"] == "hybrid":
        overrides["attention_share"] = point["attention_share"]
    spec = construction_spec(point["mechanism"], point["S"], point["R"], point["D"], **overrides)
    result = find_min(spec, tuple(point["seeds"]), rel_precision=point["precision"], on_round=update)
    row = {**point, **result.summary(), "seconds": time.perf_counter() - start}
    row["facts"] = point["S"] * point["R"]
    row["heatmap_attention"] = row["d"] * row["d_h"] * row["H"]  # Fig. 4 right's axes: d·d_h·H and d·m
    row["heatmap_mlp"] = row["d"] * row["m"]
    return row


def _compare_constructions(rows: list[Row]) -> list[Row]:
    out = []
    for mechanism in ("attention", "mlp"):
        sub = [r for r in rows if r["panel"] == "scaling" and r["mechanism"] == mechanism]
        if len(sub) >= 2:
            fit = fits.power_law(
                [r["facts"] for r in sub], [r["params_per_fact_median"] * r["facts"] for r in sub]
            )
            out.append(
                _cmp(f"{mechanism}: slope of min params in S·R", fit.slope, "construction_params_slope")
            )
        at_1024 = [r for r in sub if r["facts"] == 1024]
        if at_1024:
            ratio = 1.0 / at_1024[0]["params_per_fact_median"]
            out.append(
                _cmp(f"{mechanism}: facts/param at S=R=32 (vs trained)", ratio, "transformer_facts_per_param")
            )
    trained = [r for r in rows if r["panel"] == "trained" and r["facts"] > 0]
    if trained:
        ratio = fits.guide_constant([r["facts"] for r in trained], [r["params"] for r in trained])
        out.append(_cmp("trained (same figure): facts/param", ratio, "transformer_facts_per_param"))
    return out


FIGURES["constructions"] = Figure(
    "constructions",
    "Constructions (§4): minimal transformer storing every fact vs S·R; the hybrid's attention/MLP frontier",
    _construction_points,
    _run_construction,
    lambda rows, stem: plots.constructions(rows, stem),
    _compare_constructions,
    "quick: ≈ 3 min on 2 idle CPU cores (+ Figure 4's diagonal shapes unless fig4 ran first in the same "
    "process); slopes ≈ 1.0 (attention) and 1.2 (MLP), target [0.9, 1.3]; ≈ 52 and ≈ 159 params per fact at "
    "S=R=32, D=8: 8–24× more than trained models",
)


# --------------------------------------------------------------------------- core: store, configs (issue 6)


# Figures of our own (not the paper's) run by name only; ``all`` (and so ``make reproduce``) is the
# paper's figures, which keeps the quick reproduction within minutes.
BEYOND_PAPER = ("planner-scaling", "attribution-tradeoff")


def _figure(name: str) -> Figure:
    check(name in FIGURES, f"unknown figure {name!r}; expected 'all' or one of {', '.join(FIGURES)}")
    return FIGURES[name]


def run_figure(
    figure: Figure,
    scale: str,
    store: Store | Path,
    *,
    points: list[Point] | None = None,
    quiet: bool = False,
    **backend: Any,
) -> list[Row]:
    """Run the points of ``figure`` (default: its points at ``scale``) missing from ``store`` (a
    :class:`Store`, or a folder holding ``results.db``); return the done rows of those points.
    ``backend`` goes to :func:`factrecall.experiments.sweeps.run_points`."""
    from factrecall.experiments.sweeps import run_points

    if not isinstance(store, Store):
        with Store(Path(store) / "results.db") as db:
            return run_figure(figure, scale, db, points=points, quiet=quiet, **backend)
    points = figure.points(scale) if points is None else points
    run_points(store, figure.name, scale, f"figure:{figure.name}", points, figure.run, quiet=quiet, **backend)
    return figure_rows(store, figure, scale, points)


def run(
    target: str,
    *,
    scale: str = "quick",
    out: Path = Path("results"),
    plot_only: bool = False,
    quiet: bool = False,
    store: Path | None = None,
    **backend: Any,
) -> Path:
    """Reproduce ``target`` (a figure name or ``all``) at ``scale``: points through the store (default
    ``<out>/results.db``), figures and data into ``out``, then ``report.md``/``report.html``; returns the
    path of ``report.md``.

    Raises:
        ConfigError: unknown target or scale, or no data to plot with ``plot_only``.
    """
    names = [n for n in FIGURES if n not in BEYOND_PAPER] if target == "all" else [_figure(target).name]
    check(scale in SCALES, f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    with Store(store or Path(out) / "results.db") as db:
        for name in names:
            figure = FIGURES[name]
            if plot_only:
                rows = figure_rows(db, figure, scale)
                check(bool(rows), f"--plot-only: no results for {name} at scale {scale} in {db.path}")
            else:
                rows = run_figure(figure, scale, db, quiet=quiet, **backend)
            if rows:
                draw_figure(figure, rows, Path(out))
        return write_report(db, Path(out), FIGURES, prefer=scale, draw=False)[0]


def failed_points(target: str, scale: str, store: Path) -> int:
    """How many of the points of ``target`` (a figure or ``all``) at ``scale`` are stored as failed."""
    names = [n for n in FIGURES if n not in BEYOND_PAPER] if target == "all" else [_figure(target).name]
    with Store(store) as db:
        failed = 0
        for name in names:
            statuses = db.statuses(name, scale)
            keys = {point_key(p) for p in FIGURES[name].points(scale)}
            failed += sum(statuses.get(k) == "failed" for k in keys)
        return failed


# ------------------------------------------------------------------------------ dynamics (issue 5, Figure 5)

PLATEAU_S = (8, 16, 32, 64)
PLATEAU_ZIPF = (0.5, 1.0, 1.5)
# quick runs the same ODE 4× faster: escape times scale as 1/lr, so the slope in S is unchanged
PLATEAU_LR = {"quick": 0.4, "paper": 0.1}


def _dynamics_spec(point: Point) -> Any:
    from factrecall.dynamics.trajectory import DynamicsSpec

    return DynamicsSpec(**{k: v for k, v in point.items() if k in DynamicsSpec._fields})


def _run_fig5(point: Point, update: Update) -> Row:
    from factrecall.dynamics.trajectory import record, trajectory

    spec = _dynamics_spec(point)
    return record(spec, trajectory(spec, on_chunk=update))


def _draw_fig5(rows: list[Row], stem: Path) -> list[Path]:
    row = rows[0]
    lines = ["step," + ",".join(row["curves"])]
    for i, step in enumerate(row["steps"]):
        lines.append(f"{step}," + ",".join(f"{v[i]:.6g}" for v in row["curves"].values()))
    atomic_write(stem.with_name(f"{stem.name}_curves.csv"), "\n".join(lines) + "\n")
    return plots.dynamics(row, stem)


def _compare_fig5(rows: list[Row]) -> list[Row]:
    row = rows[0]
    halluc = [s["loss"] for s in row["stages"] if s["name"] == "hallucination"]
    out = [_cmp("hallucination plateau loss (nats)", halluc[0] if halluc else math.nan, "fig5_plateau_loss")]
    for name in ("relation", "subject"):
        step = row["measured"][name]
        out.append(
            _cmp(f"{name} transition (step)", step if step is not None else math.nan, f"fig5_{name}_step")
        )
        ratio = step / row["predicted"][name] if step is not None else math.nan
        out.append(
            _cmp(f"{name} transition: measured / predicted", ratio, "dynamics_measured_over_predicted")
        )
    out.append(_cmp("final loss (step 8192)", row["final_loss"], "fig5_final_loss"))
    return out


def _plateau_points(scale: str) -> list[Point]:
    from factrecall.dynamics.stages import predicted_steps

    lr = PLATEAU_LR[scale]
    grid = [(S, 0.0) for S in PLATEAU_S] + [(16, a) for a in PLATEAU_ZIPF]
    points = []
    for S, alpha in grid:
        t_sub = predicted_steps(S, 4, 8, lr=lr, alpha_S=alpha)["subject"]
        n_steps = max(1024, 64 * math.ceil(1.6 * t_sub / 64))  # the loss is well past log D / 2 by then
        points.append({"S": S, "R": 4, "D": 8, "alpha_S": alpha, "lr": lr, "n_steps": n_steps})
    return points


def _run_plateau(point: Point, update: Update) -> Row:
    from factrecall.dynamics.trajectory import summarize, trajectory

    spec = _dynamics_spec(point)
    s = summarize(spec, trajectory(spec, on_chunk=update))
    rel, sub = s["measured"]["relation"], s["measured"]["subject"]
    return {
        **point,
        "S": spec.S,
        "alpha_S": spec.alpha_S,
        "measured_relation": rel,
        "measured_subject": sub,
        "predicted_relation": s["predicted"]["relation"],
        "predicted_subject": s["predicted"]["subject"],
        "plateau_length": sub - rel if rel is not None and sub is not None else None,
        "stages": s["stages"],
        "final_loss": s["final_loss"],
        "seconds": s["seconds"],
    }


def _compare_plateau(rows: list[Row]) -> list[Row]:
    by_s = [r for r in rows if r["alpha_S"] == 0 and r["measured_subject"] is not None]
    fit = fits.power_law([r["S"] for r in by_s], [r["measured_subject"] for r in by_s])
    out = [_cmp("subject transition: log-log slope in S", fit.slope, "dynamics_subject_slope_S")]
    rel = [r["measured_relation"] for r in by_s if r["measured_relation"] is not None]
    spread = max(rel) / min(rel) if rel else math.nan
    out.append(_cmp("relation transition: max / min over S", spread, "dynamics_relation_spread_S"))
    # under strong Zipf imbalance the frequent subjects are learned before the relations, so the loss's
    # first drop is no longer the relation transition: only the subject prediction is compared there
    series = [("relation", "uniform subjects", by_s), ("subject", "uniform subjects", by_s)]
    series.append(("subject", "Zipf subjects", [r for r in rows if r["alpha_S"] > 0]))
    for name, label, sub in series:
        ratios = [r[f"measured_{name}"] / r[f"predicted_{name}"] for r in sub if r[f"measured_{name}"]]
        worst = max(ratios, key=lambda x: abs(x - 1)) if ratios else math.nan
        quantity = f"{name}: measured / predicted, worst ({label})"
        out.append(_cmp(quantity, worst, "dynamics_measured_over_predicted"))
    return out


FIGURES["fig5"] = Figure(
    "fig5",
    "Figure 5: training dynamics of the simplified model (S=16, R=4, D=8), sequential learning",
    lambda scale: [{"S": 16, "R": 4, "D": 8, "lr": 0.1, "n_steps": 8192}],
    _run_fig5,
    _draw_fig5,
    _compare_fig5,
    "≈ 1 min on 2 CPU cores; plateau ≈ log 8 = 2.08, transitions ≈ 1,700 and ≈ 4,400 steps, loss < 0.01",
)
FIGURES["plateau"] = Figure(
    "plateau",
    "Hallucination plateau vs S (R=4, D=8) and vs Zipf imbalance of subjects (simplified model)",
    _plateau_points,
    _run_plateau,
    plots.plateau,
    _compare_plateau,
    "quick (lr 0.4): ≈ 3 min on 2 CPU cores; subject-transition slope in S ≈ 1, relation transition fixed",
)


def load_rows(out: Path, name: str) -> list[Row]:
    """Rows of figure ``name`` last drawn into ``out`` (its ``<name>.json``; empty when none)."""
    path = Path(out) / f"{name}.json"
    return json.loads(path.read_text())["rows"] if path.exists() else []


def figure_points(cfg: SweepConfig) -> list[Point]:
    """The points of a figure config, checked against the figure's own points (unknown keys, types,
    sizes); keys the figure sets to ``None`` and TOML cannot write are restored.

    Raises:
        ConfigError: unknown figure, or a point that does not fit the figure.
    """
    assert cfg.figure is not None
    figure = _figure(cfg.figure)
    examples = [*figure.points("quick"), *figure.points("paper")]
    nulls = {k for ex in examples for k, v in ex.items() if v is None}
    points = []
    for i, p in enumerate(cfg.points):
        check_like(p, examples, f"points[{i}] of figure {figure.name}")
        points.append({**{k: None for k in nulls if k not in p}, **p})
    check(bool(points), f"figure config for {figure.name} lists no points")
    return points


def run_config(cfg: SweepConfig, store: Store, **kwargs: Any) -> SweepSummary:
    """``factrecall sweep`` of a figure config: its points through the store under the figure's name."""
    from factrecall.experiments.sweeps import run_points

    figure, points = _figure(str(cfg.figure)), figure_points(cfg)
    return run_points(store, figure.name, cfg.scale, f"figure:{figure.name}", points, figure.run, **kwargs)


CONFIGS_COMMAND = "factrecall reproduce all --write-configs configs"


def config_name(name: str, scale: str) -> str:
    """File name of a figure's config in ``configs/``."""
    return f"{name}_{scale}.toml"


def config_text(figure: Figure, scale: str) -> str:
    """The TOML of ``figure`` at ``scale``: a header (figure, command, expected run time and result), then
    the points exactly as :data:`FIGURES` defines them."""
    path = f"configs/{config_name(figure.name, scale)}"
    lines = [
        f"# {figure.title}",
        f"# Command: factrecall sweep {path} --store results.db --resume",
        f"#      or: factrecall reproduce {figure.name} --scale {scale}   (runs, draws, writes the report)",
        f"# Expected run time and result: {figure.expected}",
        f"# Generated from factrecall.experiments.reproduce.FIGURES by `{CONFIGS_COMMAND}`;",
        "# edit FIGURES, not this file.",
        "",
        f"figure = {toml_value(figure.name)}",
        f"scale = {toml_value(scale)}",
    ]
    for point in figure.points(scale):
        lines += ["", "[[points]]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in point.items() if v is not None]
    return "\n".join(lines) + "\n"


def write_configs(folder: Path) -> list[Path]:
    """Write one config per figure and scale into ``folder`` (see :func:`config_text`)."""
    paths = []
    for figure in FIGURES.values():
        for scale in SCALES:
            path = Path(folder) / config_name(figure.name, scale)
            atomic_write(path, config_text(figure, scale))
            paths.append(path)
    return paths
