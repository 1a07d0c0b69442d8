"""``factrecall sweep``, ``report``, ``export`` and ``reproduce``: the results store and the paper's figures.

``sweep`` runs a sweep file (an experiment of :data:`factrecall.experiments.specs.EXPERIMENTS` or a paper
figure) into the store, every point checked before the store is touched; ``report`` redraws every figure
in the store; ``export`` writes its rows as CSV or Parquet; ``reproduce`` runs, draws and reports the
paper's figures. A sweep whose points failed exits 1 after recording them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from factrecall.cli.common import (
    BackendOpt,
    JsonFlag,
    QuietFlag,
    RayAddressOpt,
    WorkersOpt,
    backend_options,
    emit,
    stdout,
)
from factrecall.core.errors import check

ResultsStoreOpt = Annotated[Path, typer.Option("--store", help="The results store (SQLite file).")]
StoreOpt = Annotated[Path | None, typer.Option("--store", help="The results store (SQLite file).")]
RetryFailedFlag = Annotated[bool, typer.Option("--retry-failed", help="Rerun points stored as failed.")]


def sweep_cmd(
    config_file: Annotated[
        Path, typer.Argument(help="Sweep definition (TOML), e.g. configs/fig1_quick.toml.")
    ],
    store: ResultsStoreOpt = Path("results.db"),
    backend: BackendOpt = "local",
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue a sweep already in the store (finished points skipped)."),
    ] = False,
    retry_failed: RetryFailedFlag = False,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Run every point of a sweep (an experiment grid or a paper figure) into the results store."""
    from factrecall.experiments import config, reproduce

    cfg = config.load_sweep(config_file)
    kwargs = backend_options(backend, workers, ray_address)
    kwargs.update(resume=resume, retry_failed=retry_failed, quiet=quiet)
    summary = reproduce.run_sweep_file(cfg, store, **kwargs)  # every point checked before the store opens
    emit({"sweep": cfg.name, "store": str(store), **summary._asdict()}, as_json, f"sweep {cfg.name}")
    if summary.failed:  # recorded with their reasons, the others finished; the exit status tells scripts
        print(
            f"error: {summary.failed} of {summary.total} points failed (reasons in {store}: "
            f"`factrecall export --store {store}`); rerun with --resume --retry-failed",
            file=sys.stderr,
        )
        raise typer.Exit(1)


def report_cmd(
    store: ResultsStoreOpt = Path("results/results.db"),
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the figures, report.md and report.html.")
    ] = Path("results"),
    scale: Annotated[str, typer.Option("--scale", help="Scale to show when a figure has several.")] = "paper",
) -> None:
    """Redraw every figure in the store and write report.md and report.html."""
    from factrecall.experiments.config import SCALES
    from factrecall.experiments.report import write_report
    from factrecall.experiments.reproduce import FIGURES
    from factrecall.experiments.store import Store

    check(
        store.is_file(), f"--store {str(store)!r} does not exist; run `factrecall sweep` or `reproduce` first"
    )
    check(scale in SCALES, f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    with Store(store) as db:
        paths = write_report(db, out, FIGURES, prefer=scale)
    for path in paths:
        stdout.print(str(path))


def export_cmd(
    store: ResultsStoreOpt = Path("results/results.db"),
    out: Annotated[Path, typer.Option("--out", help="Output file (.csv or .parquet).")] = Path("results.csv"),
    sweep: Annotated[str | None, typer.Option("--sweep", help="Only this sweep or figure.")] = None,
) -> None:
    """Export the store's rows, one per point, as CSV or Parquet (chosen by the --out suffix)."""
    from factrecall.experiments.store import Store, export_csv, export_parquet

    check(store.is_file(), f"--store {str(store)!r} does not exist")
    check(out.suffix in (".csv", ".parquet"), f"--out must end in .csv or .parquet, got {str(out)!r}")
    with Store(store) as db:
        path = (export_csv if out.suffix == ".csv" else export_parquet)(db, out, sweep)
    stdout.print(str(path))


def reproduce_cmd(
    target: Annotated[str, typer.Argument(help="A figure name (see --list) or 'all'.")] = "all",
    scale: Annotated[
        str,
        typer.Option(
            "--scale",
            help="quick (minutes on a laptop), medium (Figure 4 only: the paper's task on part of its grid) "
            "or paper (the paper's grids).",
        ),
    ] = "quick",
    out: Annotated[Path, typer.Option("--out", help="Output folder for CSV, JSON, PNG and PDF.")] = Path(
        "results"
    ),
    list_figures: Annotated[bool, typer.Option("--list", help="List the figures and exit.")] = False,
    plot_only: Annotated[
        bool, typer.Option("--plot-only", help="Redraw from the results store, running nothing.")
    ] = False,
    store: StoreOpt = None,
    backend: BackendOpt = "local",
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    write_configs: Annotated[
        Path | None,
        typer.Option(
            "--write-configs", help="Write one TOML per figure and scale into this folder and exit."
        ),
    ] = None,
    retry_failed: RetryFailedFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Reproduce the paper's figures through the results store (default OUT/results.db): run the missing
    points, draw PNG/PDF with their CSV/JSON, write report.md and report.html. Exits 1 (after writing
    everything) when points of these figures failed."""
    from factrecall.experiments import reproduce

    if list_figures:
        for name, fig in reproduce.FIGURES.items():
            stdout.print(f"[bold]{name}[/bold]  {fig.title}")
        return
    if write_configs is not None:
        for path in reproduce.write_configs(write_configs):
            stdout.print(str(path))
        return
    backend_kwargs = backend_options(backend, workers, ray_address)
    if not plot_only:
        backend_kwargs["retry_failed"] = retry_failed
    report = reproduce.run(
        target, scale=scale, out=out, plot_only=plot_only, quiet=quiet, store=store, **backend_kwargs
    )
    failed = reproduce.failed_points(target, scale, store or out / "results.db")
    if failed:
        print(
            f"error: {failed} points failed (their reasons are in {report}); rerun with --retry-failed",
            file=sys.stderr,
        )
        raise typer.Exit(1)
