"""``factrecall reproduce``: the paper's figures as named targets. Owns :data:`FIGURES` (the one list of
them), running a figure's points through the results store, drawing them and writing the report, and the
figure configs of ``configs/``.

A figure is a :class:`~factrecall.experiments.figures.base.Figure` of a module of
:mod:`factrecall.experiments.figures`; listing it in :data:`FIGURES` is all it takes for ``reproduce``, the
results store, ``configs/`` and the report to know it. Every figure's points run through the results
store (:func:`factrecall.experiments.sweeps.run_points`), keyed by (figure, scale, the point's canonical
JSON), so an interrupted run resumes where it stopped and never duplicates a point; a point that fails is
recorded with its reason and the others go on. A figure that declares a
:class:`~factrecall.experiments.figures.base.Reuse` copies the other figure's stored rows for the points
they measure instead of computing them again. Then the figure is drawn (PNG + PDF, with its data as CSV
and JSON) and the report (:mod:`factrecall.experiments.report`) is rewritten from every figure in the
store.

A figure offers the scales of its ``scales`` (every figure ``quick`` and ``paper``; Figure 4 ``medium`` too):
asking a figure for another scale is a :class:`~factrecall.core.errors.ConfigError` before anything runs
or is written, and ``all`` runs the paper's figures that offer the scale asked for.

Paper: SPEC §7 (each figure at a quick and at the paper's scale).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factrecall.core.errors import check
from factrecall.core.io import atomic_write
from factrecall.core.progress import Update
from factrecall.experiments.config import SCALES, SweepConfig, check_like, toml_value
from factrecall.experiments.figures import constructions, dynamics, editing, memories, planner, transformer
from factrecall.experiments.figures.base import Figure, Point, Row
from factrecall.experiments.report import draw_figure, figure_rows, write_report
from factrecall.experiments.store import Store, point_key

if TYPE_CHECKING:
    from factrecall.experiments.sweeps import SweepSummary

Task = Callable[[Point, Update], Row]

FIGURES: dict[str, Figure] = {
    "fig1": memories.FIG1,
    "fig6": memories.FIG6,
    "planner-scaling": planner.PLANNER_SCALING,
    "attribution-tradeoff": planner.ATTRIBUTION_TRADEOFF,
    "fig4": transformer.FIG4,
    "fig4-tradeoff": transformer.FIG4_TRADEOFF,
    "constructions": constructions.CONSTRUCTIONS,
    "fig5": dynamics.FIG5,
    "plateau": dynamics.PLATEAU,
    "editing": editing.EDITING,
}
# Figures of our own (not the paper's) run by name only; ``all`` (and so ``make reproduce``) is the
# paper's figures, which keeps the quick reproduction within minutes.
BEYOND_PAPER = ("planner-scaling", "attribution-tradeoff", "editing")


def _figure(name: str) -> Figure:
    check(name in FIGURES, f"unknown figure {name!r}; expected 'all' or one of {', '.join(FIGURES)}")
    return FIGURES[name]


def _check_scale(figure: Figure, scale: str) -> None:
    check(
        scale in figure.scales,
        f"figure {figure.name} has no scale {scale!r}; its scales: {', '.join(figure.scales)}",
    )


def _targets(target: str, scale: str) -> list[str]:
    """The figures ``target`` names at ``scale``: one figure (which must offer the scale), or for ``all``
    the paper's figures that offer it."""
    check(scale in SCALES, f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    if target != "all":
        figure = _figure(target)
        _check_scale(figure, scale)
        return [figure.name]
    return [n for n, f in FIGURES.items() if n not in BEYOND_PAPER and scale in f.scales]


def _copy_or_run(copies: dict[str, Row], run: Task, point: Point, update: Update) -> Row:
    row = copies.get(point_key(point))
    if row is None:
        return run(point, update)
    update(1, 1, f"stored by {row['reused_from']}")
    return row


def _task(figure: Figure, store: Store, scale: str, points: list[Point]) -> Task:
    """``figure.run``, except that a point whose measurement ``figure.reuse`` finds stored (the other
    figure's row of the same point at ``scale``) is copied from there, marked ``reused_from``."""
    if figure.reuse is None:
        return figure.run
    source = figure.reuse.figure
    stored = {r["point_key"]: r["metrics"] for r in store.rows(sweep=source, scale=scale, status="done")}
    copies = {}
    for point in points:
        theirs = figure.reuse.point(point)
        if theirs is not None and point_key(theirs) in stored:
            measured = {k: v for k, v in stored[point_key(theirs)].items() if k not in theirs}
            copies[point_key(point)] = {**point, **measured, "reused_from": source}
    return functools.partial(_copy_or_run, copies, figure.run) if copies else figure.run


def _sweep(figure: Figure, scale: str, store: Store, points: list[Point], **backend: Any) -> SweepSummary:
    from factrecall.experiments.sweeps import run_points

    task = _task(figure, store, scale, points)
    return run_points(store, figure.name, scale, f"figure:{figure.name}", points, task, **backend)


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
    if not isinstance(store, Store):
        with Store(Path(store) / "results.db") as db:
            return run_figure(figure, scale, db, points=points, quiet=quiet, **backend)
    points = figure.points(scale) if points is None else points
    _sweep(figure, scale, store, points, quiet=quiet, **backend)
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
    """Reproduce ``target`` (a figure name, or ``all``: the paper's figures offering ``scale``) at ``scale``:
    points through the store (default ``<out>/results.db``), figures and data into ``out``, then
    ``report.md``/``report.html``; returns the path of ``report.md``.

    Raises:
        ConfigError: unknown target or scale, a figure without that scale, or no data to plot with
            ``plot_only``; raised before anything is written.
    """
    names = _targets(target, scale)
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
    with Store(store) as db:
        failed = 0
        for name in _targets(target, scale):
            statuses = db.statuses(name, scale)
            keys = {point_key(p) for p in FIGURES[name].points(scale)}
            failed += sum(statuses.get(k) == "failed" for k in keys)
        return failed


def load_rows(out: Path, name: str) -> list[Row]:
    """Rows of figure ``name`` last drawn into ``out`` (its ``<name>.json``; empty when none)."""
    path = Path(out) / f"{name}.json"
    return json.loads(path.read_text())["rows"] if path.exists() else []


def figure_points(cfg: SweepConfig) -> list[Point]:
    """The points of a figure config, checked against the figure's own points at every scale (unknown keys,
    types, sizes); keys the figure sets to ``None`` and TOML cannot write are restored.

    Raises:
        ConfigError: unknown figure, a scale the figure does not offer, or a point that does not fit it.
    """
    assert cfg.figure is not None
    figure = _figure(cfg.figure)
    _check_scale(figure, cfg.scale)
    examples = [p for scale in figure.scales for p in figure.points(scale)]
    nulls = {k for ex in examples for k, v in ex.items() if v is None}
    points = []
    for i, p in enumerate(cfg.points):
        check_like(p, examples, f"points[{i}] of figure {figure.name}")
        points.append({**{k: None for k in nulls if k not in p}, **p})
    check(bool(points), f"figure config for {figure.name} lists no points")
    return points


def run_sweep_file(cfg: SweepConfig, store: Path, **kwargs: Any) -> SweepSummary:
    """Run a sweep file (an experiment grid or a paper figure's points) into the store at ``store``:
    ``factrecall sweep`` and :func:`factrecall.sweep`. Every point is checked before the store is opened.

    Args:
        cfg: the sweep (:func:`factrecall.experiments.config.load_sweep`).
        store: the results store's path (created when missing).
        **kwargs: for :func:`factrecall.experiments.sweeps.run_points` (backend, workers, ray_address,
            resume, retry_failed, quiet).
    """
    from factrecall.experiments import sweeps

    if cfg.experiment is not None:
        points = sweeps.checked_points(cfg)
        with Store(store) as db:
            return sweeps.run_sweep(cfg, db, points, **kwargs)
    figure, points = _figure(str(cfg.figure)), figure_points(cfg)
    with Store(store) as db:
        return _sweep(figure, cfg.scale, db, points, **kwargs)


# ---------------------------------------------------------------------------------------------- configs/

CONFIGS_COMMAND = "factrecall reproduce all --write-configs configs"


def config_name(name: str, scale: str) -> str:
    """File name of a figure's config in ``configs/``."""
    return f"{name}_{scale}.toml"


def config_text(figure: Figure, scale: str) -> str:
    """The TOML of ``figure`` at ``scale``: a header (figure, command, expected run time and result), then
    the points exactly as the figure's module defines them."""
    path = f"configs/{config_name(figure.name, scale)}"
    lines = [
        f"# {figure.title}",
        f"# Command: factrecall sweep {path} --store results.db --resume",
        f"#      or: factrecall reproduce {figure.name} --scale {scale}   (runs, draws, writes the report)",
        f"# Expected run time and result: {figure.expected}",
        f"# Generated from factrecall.experiments.reproduce.FIGURES by `{CONFIGS_COMMAND}`;",
        "# edit the figure's module in src/factrecall/experiments/figures/, not this file.",
        "",
        f"figure = {toml_value(figure.name)}",
        f"scale = {toml_value(scale)}",
    ]
    for point in figure.points(scale):
        lines += ["", "[[points]]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in point.items() if v is not None]
    return "\n".join(lines) + "\n"


def write_configs(folder: Path) -> list[Path]:
    """Write one config per figure and scale it offers into ``folder`` (see :func:`config_text`)."""
    paths = []
    for figure in FIGURES.values():
        for scale in figure.scales:
            path = Path(folder) / config_name(figure.name, scale)
            atomic_write(path, config_text(figure, scale))
            paths.append(path)
    return paths
