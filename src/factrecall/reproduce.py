"""``factrecall reproduce``: the paper's figures as named targets, each a list of points, a plot and a
comparison with the paper's constants.

A figure's points run one after the other; after each, all rows so far are written atomically to
``<out>/<figure>.json`` (full records) and ``<out>/<figure>.csv``, so an interrupted run resumes where it
stopped (points already there, at the same scale, are not rerun). Then the figure is drawn (PNG + PDF) and
``<out>/report.md`` is rewritten from every figure found in ``<out>``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from factrecall import bounds, fits, plots
from factrecall.errors import ConfigError, check
from factrecall.progress import Update, bar

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
    from factrecall.capacity import MLP_STEPS

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
    from factrecall.capacity import capacity, recipe

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
        "quick: ≈ 4 min on 2 CPU cores; d²/(N log N) ≈ 1.0–1.1 (paper's guide 1.3), MLP exponent ≈ 0.9–1",
    ),
    "fig6": Figure(
        "fig6",
        "Figure 6: capacity of MLP memories with M = 32 fixed outputs vs m·d",
        lambda scale: _memory_points(scale, fixed_outputs=True),
        _run_memory,
        plots.fig6,
        _compare_fig6,
        "quick: ≈ 2 min on 2 CPU cores; m·d / N near the paper's 1.2",
    ),
}


# ------------------------------------------------------------------------- issue 7: planner and attribution

PLANNER_DS = {"quick": (8, 12, 16, 24, 32, 48), "paper": (8, 12, 16, 24, 32, 48, 64, 96)}
# attribution across the Figure 4-right grid; quick shrinks d, S = R and the grid to fit minutes on 2 cores
TRADEOFF = {
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
    from factrecall.scaling import FAMILIES

    return [{"family": f, "d": d} for f in FAMILIES for d in PLANNER_DS[scale]]


def _run_planner(point: Point, update: Update) -> Row:
    from factrecall.planner import measure_point
    from factrecall.scaling import FAMILIES

    return measure_point(FAMILIES[point["family"]], point["d"], on_round=update)


def _compare_planner(rows: list[Row]) -> list[Row]:
    stored = [r for r in rows if r["facts"] > 0]
    ratio = (
        fits.guide_constant([r["facts"] for r in stored], [r["params"] for r in stored]) if stored else 0.0
    )
    return [_cmp("facts / param (criterion 1.0, all families)", ratio, "transformer_facts_per_param")]


def _tradeoff_points(scale: str) -> list[Point]:
    g = TRADEOFF[scale]
    return [{"H": H, "m": m, "d": g["d"], "scale": scale} for H in g["H"] for m in g["m"]]


def _run_tradeoff(point: Point, update: Update) -> Row:
    import time as _time

    import jax

    from factrecall.attribution import attribute
    from factrecall.planner import Recipe, config_for, train_seeds
    from factrecall.task import facts_random, recall_task

    scale = point["scale"]
    g = TRADEOFF[scale]
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
    _tradeoff_points,
    _run_tradeoff,
    plots.attribution_grid,
    lambda rows: [],
    "quick: ≈ 6 min on 2 CPU cores; MLP share high at H = 1, large m; attention share ≈ 1 at m = 1",
)


# ------------------------------------------------------------------------------------------------ output


def _point_id(point: Point) -> str:
    return json.dumps(point, sort_keys=True)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _csv_text(rows: list[Row]) -> str:
    skip = {"run", "spec"}
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in skip and k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()})
    return buf.getvalue()


def load_rows(out: Path, name: str) -> list[Row]:
    """Rows already computed for figure ``name`` in ``out`` (empty when none)."""
    path = out / f"{name}.json"
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())["rows"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise ConfigError(
            f"{path} is not a factrecall results file ({exc}); move it away or pick another --out"
        ) from exc


def save_rows(out: Path, name: str, scale: str, rows: list[Row]) -> None:
    """Write ``<name>.json`` (full records) and ``<name>.csv`` (one line per point), atomically."""
    _atomic_write(
        out / f"{name}.json",
        json.dumps({"figure": name, "scale": scale, "rows": rows}, indent=1, default=str),
    )
    _atomic_write(out / f"{name}.csv", _csv_text(rows))


def run_figure(figure: Figure, scale: str, out: Path, *, quiet: bool = False) -> list[Row]:
    """Run the points of ``figure`` missing from ``out``, saving after each; return all rows."""
    from factrecall.provenance import run_info

    points = figure.points(scale)
    done = {_point_id(r["point"]): r for r in load_rows(out, figure.name) if r.get("scale") == scale}
    rows = [done[_point_id(p)] for p in points if _point_id(p) in done]
    todo = [p for p in points if _point_id(p) not in done]
    start = time.perf_counter()
    with bar(f"{figure.name} ({scale})", len(points), quiet=quiet) as update:
        update(len(rows), len(points), f"{len(rows)} points already in {out}")
        for point in todo:
            label = ", ".join(f"{k}={v}" for k, v in point.items() if k in ("panel", "d", "m", "H", "S"))

            def inner(done_rounds: int, total_rounds: int, status: str, label: str = label) -> None:
                frac = min(done_rounds / max(total_rounds, 1), 0.99)
                update(len(rows) + frac, len(points), f"{label}: round {done_rounds}/~{total_rounds}")

            row = figure.run(point, inner)
            rows.append({**row, "point": point, "scale": scale, "run": run_info()})
            save_rows(out, figure.name, scale, rows)
            update(len(rows), len(points), f"{label} done ({time.perf_counter() - start:.0f} s)")
    return rows


def draw_figure(figure: Figure, rows: list[Row], out: Path) -> list[Path]:
    """Draw ``figure`` from ``rows`` into ``out`` (PNG + PDF) and write its comparison table as CSV."""
    paths = figure.draw(rows, out / figure.name)
    comparison = figure.compare(rows)
    _atomic_write(out / f"{figure.name}_vs_paper.csv", _csv_text(comparison))
    return paths


def write_report(out: Path) -> Path:
    """``report.md``: every figure found in ``out`` with its constants next to the paper's."""
    lines = ["# factrecall: reproduction report", ""]
    lines.append("Numbers under *ours* are measured by this run; *paper* are the paper's guide constants, ")
    lines.append("quoted for comparison (never used as results). Deviation = (ours − paper) / paper.")
    lines.append("")
    for name, figure in FIGURES.items():
        rows = load_rows(out, name)
        if not rows:
            continue
        scale = rows[0].get("scale", "?")
        lines += [
            f"## {figure.title}",
            "",
            f"Scale: `{scale}`; points: {len(rows)}; expected: {figure.expected}.",
            "",
        ]
        lines += [
            f"![{name}]({name}.png)",
            "",
            "| quantity | ours | paper | deviation | paper's source |",
            "|---|---|---|---|---|",
        ]
        for c in figure.compare(rows):
            dev = "n/a" if math.isnan(c["deviation"]) else f"{c['deviation']:+.0%}"
            lines.append(
                f"| {c['quantity']} | {c['ours']:.3g} | {c['paper']:g} | {dev} | {c['paper_source']} |"
            )
        lines += [
            "",
            f"Data: [`{name}.csv`]({name}.csv); full records (versions, device, command): "
            f"[`{name}.json`]({name}.json).",
            "",
        ]
        seconds = sum(r.get("seconds", 0.0) for r in rows)
        lines += [f"Compute time of the points: {seconds:.0f} s.", ""]
    path = out / "report.md"
    _atomic_write(path, "\n".join(lines))
    return path


def run(
    target: str,
    *,
    scale: str = "quick",
    out: Path = Path("results"),
    plot_only: bool = False,
    quiet: bool = False,
) -> Path:
    """Reproduce ``target`` (a figure name or ``all``) at ``scale`` into ``out``; return the report path.

    Raises:
        ConfigError: unknown target or scale, or no data to plot with ``plot_only``.
    """
    names = list(FIGURES) if target == "all" else [target]
    check(
        all(n in FIGURES for n in names),
        f"unknown figure {target!r}; expected 'all' or one of {', '.join(FIGURES)}",
    )
    check(scale in SCALES, f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    for name in names:
        figure = FIGURES[name]
        if plot_only:
            rows = load_rows(out, name)
            check(bool(rows), f"--plot-only: no results for {name} in {out}; run without --plot-only first")
        else:
            rows = run_figure(figure, scale, out, quiet=quiet)
        draw_figure(figure, rows, out)
    return write_report(out)
