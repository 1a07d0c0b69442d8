"""The ``factrecall`` command line: thin wrappers that parse flags, call the library, print results.

Errors caused by input print ``error: <message>`` on stderr and exit with status 2; a run that fails at run
time (e.g. every learning rate diverged) exits with status 1.
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()  # before JAX is imported: one CPU device per core

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from factrecall.errors import ConfigError, FactrecallError, check  # noqa: E402

try:  # typer ≥ 0.24 vendors click; older releases use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

app = typer.Typer(
    name="factrecall",
    help="Measure how neural networks store facts (Nichani, Lee & Bietti, ICLR 2025).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
capacity_app = typer.Typer(
    help="Storage capacity of associative memories (paper §3, Figures 1 and 6).", no_args_is_help=True
)
app.add_typer(capacity_app, name="capacity")

stdout = Console()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
QuietFlag = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
SeedsOpt = Annotated[int, typer.Option("--seeds", help="Number of seeds (0, 1, …); one N* per seed.")]
CriterionOpt = Annotated[
    float, typer.Option("--criterion", help="Fraction of inputs that must be decoded correctly.")
]
TopKOpt = Annotated[
    int, typer.Option("--top-k", help="Count an input as correct when its output is among the k best.")
]
LrOpt = Annotated[
    list[float] | None, typer.Option("--lr", help="Learning-rate grid (repeat the flag); the best is kept.")
]
StepsOpt = Annotated[int | None, typer.Option("--steps", help="Step budget per training run.")]
PrecisionOpt = Annotated[float, typer.Option("--precision", help="Bisection stops at hi/lo ≤ 1 + precision.")]
GeometryOpt = Annotated[
    str, typer.Option("--geometry", help="Embeddings: sphere, orthogonal, onehot or spiked.")
]
ZipfOpt = Annotated[
    float, typer.Option("--zipf", help="Zipf exponent α of the input weights p(x) ∝ (x+1)^-α.")
]


def _emit(record: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        return
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in record.items():
        if key in ("run", "spec"):
            continue
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    stdout.print(table)


def _capacity(spec_kwargs: dict[str, Any], seeds: int, precision: float, as_json: bool, quiet: bool) -> None:
    from factrecall.capacity import capacity, recipe, validate_spec
    from factrecall.progress import bar
    from factrecall.provenance import run_info

    check(seeds >= 1, f"--seeds must be ≥ 1, got {seeds}")
    check(precision > 0, f"--precision must be > 0, got {precision}")
    spec = recipe(**spec_kwargs)
    validate_spec(spec)  # before the progress bar draws anything
    label = f"capacity {spec.model} d={spec.d}" + (f" m={spec.m}" if spec.m else "")
    with bar(label, quiet=quiet) as update:
        result = capacity(spec, tuple(range(seeds)), rel_precision=precision, on_round=update)
    record = result.summary()
    record["spec"] = spec._asdict()
    record["run"] = run_info()
    _emit(record, as_json, label)


@capacity_app.command("linear")
def capacity_linear(
    d: Annotated[int, typer.Option("--d", help="Embedding dimension d.")] = 16,
    rank: Annotated[int | None, typer.Option("--rank", help="Rank r of W = A B (default: full).")] = None,
    seeds: SeedsOpt = 3,
    criterion: CriterionOpt = 0.99,
    top_k: TopKOpt = 1,
    method: Annotated[
        str, typer.Option("--method", help="trained (Adam) or hebbian (Theorem 1 construction).")
    ] = "trained",
    lr: LrOpt = None,
    steps: StepsOpt = None,
    geometry: GeometryOpt = "sphere",
    zipf: ZipfOpt = 0.0,
    precision: PrecisionOpt = 0.01,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Largest N a linear memory W ∈ R^{d×d} stores (M = N outputs, a bijection)."""
    _capacity(
        {
            "model": "linear",
            "d": d,
            "rank": rank,
            "criterion": criterion,
            "top_k": top_k,
            "method": method,
            "lrs": tuple(lr) if lr else None,
            "n_steps": steps,
            "geometry": geometry,
            "alpha": zipf,
        },
        seeds,
        precision,
        as_json,
        quiet,
    )


@capacity_app.command("mlp")
def capacity_mlp(
    d: Annotated[int, typer.Option("--d", help="Embedding dimension d.")] = 16,
    width: Annotated[int, typer.Option("--width", "-m", help="MLP width m.")] = 16,
    outputs: Annotated[
        int | None, typer.Option("--outputs", help="Fixed number of outputs M (default: M = N).")
    ] = None,
    seeds: SeedsOpt = 3,
    criterion: CriterionOpt = 0.99,
    top_k: TopKOpt = 1,
    method: Annotated[
        str, typer.Option("--method", help="trained (Adam) or construction (random features, Theorem 2).")
    ] = "trained",
    lr: LrOpt = None,
    steps: StepsOpt = None,
    geometry: GeometryOpt = "sphere",
    zipf: ZipfOpt = 0.0,
    precision: PrecisionOpt = 0.01,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Largest N an MLP memory Vᵀ relu(W e + b) of width m stores (M = N, or M fixed with --outputs)."""
    _capacity(
        {
            "model": "mlp",
            "d": d,
            "m": width,
            "M": outputs,
            "criterion": criterion,
            "top_k": top_k,
            "method": method,
            "lrs": tuple(lr) if lr else None,
            "n_steps": steps,
            "geometry": geometry,
            "alpha": zipf,
        },
        seeds,
        precision,
        as_json,
        quiet,
    )


# ------------------------------------------------------------------ sweeps, store, report (issue 6)

StoreOpt = Annotated[Path | None, typer.Option("--store", help="The results store (SQLite file).")]
BackendOpt = Annotated[
    str, typer.Option("--backend", help="local (this process), processes (local processes) or ray.")
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", help="Parallel workers of processes/ray (default: CPU cores).")
]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster to join (default: start one locally).")
]


def _backend(backend: str, workers: int | None, ray_address: str | None) -> dict[str, Any]:
    from factrecall.sweeps import BACKENDS

    check(backend in BACKENDS, f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    check(workers is None or workers >= 1, f"--workers must be ≥ 1, got {workers}")
    check(ray_address is None or backend == "ray", "--ray-address needs --backend ray")
    return {"backend": backend, "workers": workers, "ray_address": ray_address}


@app.command("sweep")
def sweep_cmd(
    config_file: Annotated[
        Path, typer.Argument(help="Sweep definition (TOML), e.g. configs/fig1_quick.toml.")
    ],
    store: Annotated[Path, typer.Option("--store", help="The results store (SQLite file).")] = Path(
        "results.db"
    ),
    backend: BackendOpt = "local",
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue a sweep already in the store (finished points skipped)."),
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Rerun points stored as failed.")
    ] = False,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Run every point of a sweep (an experiment grid or a paper figure) into the results store."""
    from factrecall import config, reproduce, sweeps
    from factrecall.store import Store

    cfg = config.load_sweep(config_file)
    kwargs = _backend(backend, workers, ray_address)
    if cfg.experiment is not None:
        config.expand(cfg)  # every point valid before the store is touched
    else:
        reproduce.figure_points(cfg)
    with Store(store) as db:
        kwargs.update(resume=resume, retry_failed=retry_failed, quiet=quiet)
        if cfg.experiment is not None:
            summary = sweeps.run_sweep(cfg, db, **kwargs)
        else:
            summary = reproduce.run_config(cfg, db, **kwargs)
    _emit({"sweep": cfg.name, "store": str(store), **summary._asdict()}, as_json, f"sweep {cfg.name}")


@app.command("report")
def report_cmd(
    store: Annotated[Path, typer.Option("--store", help="The results store (SQLite file).")] = Path(
        "results/results.db"
    ),
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the figures, report.md and report.html.")
    ] = Path("results"),
    scale: Annotated[str, typer.Option("--scale", help="Scale to show when a figure has both.")] = "paper",
) -> None:
    """Redraw every figure in the store and write report.md and report.html."""
    from factrecall.report import write_report
    from factrecall.reproduce import FIGURES, SCALES
    from factrecall.store import Store

    check(
        store.is_file(), f"--store {str(store)!r} does not exist; run `factrecall sweep` or `reproduce` first"
    )
    check(scale in SCALES, f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    with Store(store) as db:
        paths = write_report(db, out, FIGURES, prefer=scale)
    for path in paths:
        stdout.print(str(path))


@app.command("export")
def export_cmd(
    store: Annotated[Path, typer.Option("--store", help="The results store (SQLite file).")] = Path(
        "results/results.db"
    ),
    out: Annotated[Path, typer.Option("--out", help="Output file (.csv or .parquet).")] = Path("results.csv"),
    sweep: Annotated[str | None, typer.Option("--sweep", help="Only this sweep or figure.")] = None,
) -> None:
    """Export the store's rows, one per point, as CSV or Parquet (chosen by the --out suffix)."""
    from factrecall.store import Store, export_csv, export_parquet

    check(store.is_file(), f"--store {str(store)!r} does not exist")
    check(out.suffix in (".csv", ".parquet"), f"--out must end in .csv or .parquet, got {str(out)!r}")
    with Store(store) as db:
        path = (export_csv if out.suffix == ".csv" else export_parquet)(db, out, sweep)
    stdout.print(str(path))


@app.command("reproduce")
def reproduce_cmd(
    target: Annotated[str, typer.Argument(help="A figure name (see --list) or 'all'.")] = "all",
    scale: Annotated[
        str, typer.Option("--scale", help="quick (minutes on a laptop) or paper (the paper's grids).")
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
    quiet: QuietFlag = False,
) -> None:
    """Reproduce the paper's figures through the results store (default OUT/results.db): run the missing
    points, draw PNG/PDF with their CSV/JSON, write report.md and report.html."""
    from factrecall import reproduce

    if list_figures:
        for name, fig in reproduce.FIGURES.items():
            stdout.print(f"[bold]{name}[/bold]  {fig.title}")
        return
    if write_configs is not None:
        for path in reproduce.write_configs(write_configs):
            stdout.print(str(path))
        return
    reproduce.run(
        target,
        scale=scale,
        out=out,
        plot_only=plot_only,
        quiet=quiet,
        store=store,
        **_backend(backend, workers, ray_address),
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn input errors into ``error: ...`` with exit status 2."""
    help_shown = getattr(click_exceptions, "NoArgsIsHelpError", ())
    try:
        code = app(args=argv, prog_name="factrecall", standalone_mode=False)
    except help_shown:  # a group called without a command: its help was printed
        sys.exit(0)
    except click_exceptions.UsageError as exc:  # bad flag, bad value, missing argument
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except FactrecallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["ConfigError", "app", "main"]
