"""``factrecall reproduce``: the paper's figures as named targets, each a list of points, a plot and a
comparison with the paper's constants.

A figure is a :class:`Figure` in :data:`FIGURES`; adding an entry is all it takes for ``reproduce``, the
results store, ``configs/`` and the report to know it. Every figure's points run through the results store
(:func:`factrecall.sweeps.run_points`), keyed by (figure, scale, the point's canonical JSON), so an
interrupted run resumes where it stopped and never duplicates a point; a point that fails is recorded with
its reason and the others go on. Then the figure is drawn (PNG + PDF, with its data as CSV and JSON) and
the report (:mod:`factrecall.report`) is rewritten from every figure in the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from factrecall import bounds, fits, plots
from factrecall.config import SweepConfig, check_like, toml_value
from factrecall.errors import check
from factrecall.progress import Update
from factrecall.report import atomic_write, draw_figure, figure_rows, write_report
from factrecall.store import Store

if TYPE_CHECKING:
    from factrecall.sweeps import SweepSummary

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


# --------------------------------------------------------------------------- core: store, configs (issue 6)


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
    ``backend`` goes to :func:`factrecall.sweeps.run_points`."""
    from factrecall.sweeps import run_points

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
    names = list(FIGURES) if target == "all" else [_figure(target).name]
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
    from factrecall.sweeps import run_points

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
        f"# Generated from factrecall.reproduce.FIGURES by `{CONFIGS_COMMAND}`; edit FIGURES, not this file.",
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
