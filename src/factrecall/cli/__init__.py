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

from factrecall.core.errors import ConfigError, FactrecallError, check  # noqa: E402

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
    from factrecall.core.progress import bar
    from factrecall.core.provenance import run_info
    from factrecall.memories.capacity import capacity, recipe, validate_spec

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
    from factrecall.experiments.sweeps import BACKENDS

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
    from factrecall.experiments import config, reproduce, sweeps
    from factrecall.experiments.store import Store

    cfg = config.load_sweep(config_file)
    kwargs = _backend(backend, workers, ray_address)
    if cfg.experiment is not None:
        sweeps.checked_points(cfg)  # every point valid before the store is touched
    else:
        reproduce.figure_points(cfg)
    with Store(store) as db:
        kwargs.update(resume=resume, retry_failed=retry_failed, quiet=quiet)
        if cfg.experiment is not None:
            summary = sweeps.run_sweep(cfg, db, **kwargs)
        else:
            summary = reproduce.run_config(cfg, db, **kwargs)
    _emit({"sweep": cfg.name, "store": str(store), **summary._asdict()}, as_json, f"sweep {cfg.name}")
    if summary.failed:  # recorded with their reasons, the others finished; the exit status tells scripts
        print(
            f"error: {summary.failed} of {summary.total} points failed (reasons in {store}: "
            f"`factrecall export --store {store}`); rerun with --resume --retry-failed",
            file=sys.stderr,
        )
        raise typer.Exit(1)


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
    from factrecall.experiments.report import write_report
    from factrecall.experiments.reproduce import FIGURES, SCALES
    from factrecall.experiments.store import Store

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
    from factrecall.experiments.store import Store, export_csv, export_parquet

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
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Rerun points stored as failed.")
    ] = False,
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
    backend_kwargs = _backend(backend, workers, ray_address)
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


# ------------------------------------------------------------------ issue 3: transformer train / eval

train_app = typer.Typer(help="Train one model and report it (paper §4).", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("transformer")
def train_transformer(
    d: Annotated[int, typer.Option("--d", help="Embedding dimension d.")] = 32,
    heads: Annotated[int, typer.Option("--heads", help="Attention heads H.")] = 4,
    head_dim: Annotated[int, typer.Option("--head-dim", help="Head dimension d_h.")] = 8,
    width: Annotated[int, typer.Option("--width", "-m", help="MLP width m (0: no MLP).")] = 64,
    subjects: Annotated[int, typer.Option("--subjects", help="Subjects S.")] = 16,
    relations: Annotated[int, typer.Option("--relations", help="Relations R.")] = 16,
    answers: Annotated[int, typer.Option("--answers-per-relation", help="Answers per relation D.")] = 8,
    seq_len: Annotated[int, typer.Option("--seq-len", help="Sequence length T.")] = 32,
    lr: LrOpt = None,
    steps: Annotated[int, typer.Option("--steps", help="Step budget.")] = 16384,
    batch: Annotated[int, typer.Option("--batch", help="Sequences per step.")] = 1024,
    criterion: CriterionOpt = 0.99,
    attention: Annotated[str, typer.Option("--attention", help="softmax or linear.")] = "softmax",
    train_embeddings: Annotated[bool, typer.Option("--train-embeddings", help="Train wte, unembed.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the facts, init and batches.")] = 0,
    save: Annotated[Path | None, typer.Option("--save", help="Write the model (.npz) here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train a one-layer transformer on the factual-recall task; report accuracy over every fact."""
    import jax

    from factrecall.core.provenance import run_info
    from factrecall.recall import training as recall
    from factrecall.recall.task import facts_random

    task, cfg = recall.task_and_config(
        subjects, relations, answers, seq_len, d, heads, head_dim, width, attention, train_embeddings
    )
    recipe = recall.Recipe(n_steps=steps, batch=batch, criterion=criterion)
    recall.validate_recipe(recipe)
    check(
        save is None or save.parent.is_dir(),
        f"--save: folder {str(save.parent) if save else ''!r} does not exist",
    )
    facts = facts_random(task, key=jax.random.fold_in(jax.random.key(seed), 1))
    model = recall.train(cfg, task, facts, recipe, tuple(lr) if lr else (1e-2,), seed=seed)
    record = recall.report(model, key=jax.random.fold_in(jax.random.key(seed), 2))
    if save is not None:
        recall.save(save, model)
        record["saved"] = str(save)
    record["run"] = run_info()
    _emit(
        record, as_json, f"transformer d={d} H={heads} d_h={head_dim} m={width}, S={subjects} R={relations}"
    )


@capacity_app.command("transformer")
def capacity_transformer(
    d: Annotated[int, typer.Option("--d", help="Embedding dimension d.")] = 32,
    heads: Annotated[int, typer.Option("--heads", help="Attention heads H.")] = 8,
    head_dim: Annotated[int, typer.Option("--head-dim", help="Head dimension d_h.")] = 8,
    width: Annotated[int, typer.Option("--width", "-m", help="MLP width m (0: no MLP).")] = 32,
    answers: Annotated[int, typer.Option("--answers-per-relation", help="Answers per relation D.")] = 8,
    scaling: Annotated[
        str, typer.Option("--scaling", help="linear (S = R), square (S = R²) or distinct (D = S).")
    ] = "linear",
    seeds: SeedsOpt = 1,
    criterion: CriterionOpt = 0.99,
    lr: LrOpt = None,
    steps: Annotated[int, typer.Option("--steps", help="Step budget per trial.")] = 16384,
    batch: Annotated[int, typer.Option("--batch", help="Sequences per step.")] = 1024,
    patience: Annotated[
        int, typer.Option("--patience", help="Stop a trial after this many steps without gain (0: never).")
    ] = 2048,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Largest fact set S·R a one-layer transformer stores over every fact (best over the lr grid)."""
    from factrecall.core.progress import bar
    from factrecall.core.provenance import run_info
    from factrecall.recall import capacity as tc
    from factrecall.recall.training import PAPER_LRS

    check(seeds >= 1, f"--seeds must be ≥ 1, got {seeds}")
    check(patience >= 0, f"--patience must be ≥ 0, got {patience}")
    recipe = tc.CAPACITY_RECIPE._replace(n_steps=steps, batch=batch, criterion=criterion)
    lrs = tuple(lr) if lr else PAPER_LRS
    spec = tc.Spec(d, heads, head_dim, width, answers, scaling, recipe, lrs, patience=patience or None)
    tc.validate_spec(spec)
    label = f"capacity transformer d={d} H={heads} d_h={head_dim} m={width}"
    with bar(label, quiet=quiet) as update:
        result = tc.capacity(spec, tuple(range(seeds)), on_round=update)
    record = result.summary()
    record["run"] = run_info()
    _emit(record, as_json, label)


@app.command("eval")
def eval_cmd(
    path: Annotated[Path, typer.Argument(help="A model written by `factrecall train transformer --save`.")],
    contexts: Annotated[int, typer.Option("--contexts", help="Fresh contexts per fact.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the evaluation contexts.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Re-evaluate a saved transformer over every fact (fresh contexts) and on a sampled batch."""
    import jax

    from factrecall.recall import training as recall

    check(contexts >= 1, f"--contexts must be ≥ 1, got {contexts}")
    model = recall.load(path)
    record = recall.report(model, contexts, key=jax.random.key(seed + 1_000_003))
    _emit(record, as_json, f"eval {path}")


# ---------------------------------------------------------------------------- construct (issue 4: §4–§5)

construct_app = typer.Typer(
    help="Weights written down by hand that store every fact (paper §4), scored like trained ones.",
    no_args_is_help=True,
)
app.add_typer(construct_app, name="construct")


@construct_app.command("transformer")
def construct_transformer_cmd(
    mechanism: Annotated[
        str, typer.Option("--mechanism", help="attention (facts in the values), mlp, or hybrid (split).")
    ] = "attention",
    subjects: Annotated[int, typer.Option("--subjects", help="Subjects S.")] = 32,
    relations: Annotated[int, typer.Option("--relations", help="Relations R.")] = 32,
    answers: Annotated[int, typer.Option("--answers-per-relation", help="Answers per relation D.")] = 8,
    d: Annotated[
        int | None, typer.Option("--d", help="Embedding dimension d (default: near the minimum).")
    ] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="Heads H (default: from H·d_h/d).")] = None,
    head_dim: Annotated[int, typer.Option("--head-dim", help="Head dimension d_h.")] = 8,
    width: Annotated[
        int | None, typer.Option("--width", "-m", help="MLP width m (default: from m/d).")
    ] = None,
    attention_share: Annotated[
        float | None,
        typer.Option("--attention-share", help="hybrid: fraction of relations stored by attention."),
    ] = None,
    memory: Annotated[str, typer.Option("--memory", help="pinv (least squares) or hebbian.")] = "pinv",
    contexts: Annotated[int, typer.Option("--contexts", help="Evaluation contexts per fact.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the facts, embeddings and contexts.")] = 0,
    find_min: Annotated[
        bool, typer.Option("--find-min", help="Search the smallest d (at fixed ratios) storing every fact.")
    ] = False,
    precision: PrecisionOpt = 0.02,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Construct a one-layer transformer storing all S·R facts; report accuracy, parameters and bits."""
    from factrecall.core.progress import bar
    from factrecall.core.provenance import run_info
    from factrecall.recall import construction_search as constructed

    spec = constructed.construction_spec(
        mechanism,
        subjects,
        relations,
        answers,
        d_h=head_dim,
        attention_share=attention_share,
        memory=memory,
        n_contexts=contexts,
    )
    label = f"construct {mechanism} S={subjects} R={relations} D={answers}"
    if find_min:
        check(
            d is None and heads is None and width is None,
            "--find-min searches d, H and m: drop --d/--heads/--width",
        )
        check(precision > 0, f"--precision must be > 0, got {precision}")
        with bar(label + " (find-min)", quiet=quiet) as update:
            record = constructed.find_min(spec, (seed,), rel_precision=precision, on_round=update).summary()
    else:
        cfg = constructed.shape(spec, d or constructed.default_guess(spec))
        cfg = cfg._replace(H=heads if heads is not None else cfg.H, m=width if width is not None else cfg.m)
        check(cfg.d >= 1 and cfg.H >= 1, f"--d and --heads must be ≥ 1, got d={cfg.d}, H={cfg.H}")
        check(cfg.m >= 0, f"--width must be ≥ 0, got {cfg.m}")
        record = constructed.build_and_score(spec, cfg, seed)
    record["spec"] = spec._asdict()
    record["run"] = run_info()
    _emit(record, as_json, label)


# ------------------------------------------------------------------------------ dynamics (issue 5)


@app.command("dynamics")
def dynamics_cmd(
    subjects: Annotated[int, typer.Option("--subjects", "-S", help="Subjects S.")] = 16,
    relations: Annotated[int, typer.Option("--relations", "-R", help="Relations R.")] = 4,
    answers: Annotated[int, typer.Option("--answers-per-relation", "-D", help="Answers per relation D.")] = 8,
    attention: Annotated[
        str, typer.Option("--attention", help="linear (the paper's) or softmax.")
    ] = "linear",
    embeddings: Annotated[
        str, typer.Option("--embeddings", help="onehot (the paper's, d = vocab) or random (Gaussian).")
    ] = "onehot",
    model: Annotated[
        str, typer.Option("--model", help="simplified (the paper's Eq. 15) or transformer (one layer).")
    ] = "simplified",
    zipf_subjects: Annotated[
        float, typer.Option("--zipf-subjects", help="Zipf exponent α of subject frequencies p(s) ∝ (s+1)^-α.")
    ] = 0.0,
    steps: Annotated[int, typer.Option("--steps", help="Gradient-descent steps (a multiple of 64).")] = 8192,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate of plain gradient descent.")] = 0.1,
    batch: Annotated[int, typer.Option("--batch", help="Fresh sequences per step.")] = 1024,
    gradient_flow: Annotated[
        int,
        typer.Option("--gradient-flow", help="Integrate gradient flow: K substeps of lr/K per step (1: GD)."),
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of facts, test set and batches.")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Output folder for CSV, JSON, PNG and PDF.")] = Path(
        "results"
    ),
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Training dynamics (paper §5, Figure 5): loss split by relation/subject, stages, transition steps."""
    from factrecall.core.progress import bar
    from factrecall.core.provenance import run_info
    from factrecall.dynamics import trajectory as dynamics
    from factrecall.experiments import plots

    spec = dynamics.DynamicsSpec(
        S=subjects,
        R=relations,
        D=answers,
        alpha_S=zipf_subjects,
        model=model,
        attention=attention,
        embeddings=embeddings,
        lr=lr,
        B=batch,
        n_steps=steps,
        substeps=gradient_flow,
        seed=seed,
    )
    dynamics.validate(spec)  # before anything is drawn or written
    with bar(f"dynamics {model} S={subjects} R={relations} D={answers}", steps, quiet=quiet) as update:
        traj = dynamics.trajectory(spec, on_chunk=update)
    record = {**dynamics.record(spec, traj), "run": run_info()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "dynamics.csv").write_text(dynamics.curves_csv(traj))
    (out / "dynamics.json").write_text(json.dumps(record, default=str))
    paths = plots.dynamics(record, out / "dynamics")
    keys = (
        "stages",
        "final_loss",
        "final_accuracy",
        "predicted",
        "measured",
        "relation_accuracy_in_hallucination",
    )
    summary = {k: record[k] for k in keys} | {"seconds": traj.seconds, "files": [str(p) for p in paths]}
    if as_json:
        sys.stdout.write(
            json.dumps(summary | {"spec": record["spec"], "run": record["run"]}, default=str) + "\n"
        )
        return
    table = Table(title=record["title"], show_header=True, header_style="bold")
    for column in ("stage", "start", "end", "loss"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for s in record["stages"]:
        table.add_row(s["name"], str(s["start"]), str(s["end"]), f"{s['loss']:.4f}")
    stdout.print(table)
    for name in ("relation", "subject"):
        got, want = record["measured"][name], (record["predicted"] or {}).get(name)
        stdout.print(f"{name} transition: measured {got and round(got)}, predicted {want and round(want)}")
    stdout.print(f"final loss {record['final_loss']:.4g}; wrote {out}/dynamics.{{csv,json,png,pdf}}")


# ---------------------------------------------------------- issue 7: your own facts (plan, query, attribute)


def _plan_text(record: dict[str, Any]) -> None:
    t, p = record["table"], record["predicted"]
    stdout.print(
        f"[bold]{t['source']}[/bold]: {t['S']} subjects × {t['R']} relations = {t['facts']} facts, "
        f"{t['bits']:.0f} bits (answers per relation: {t['answers_per_relation']})"
    )
    if t["shared_answers"]:
        stdout.print(f"note: answers shared across relations (one token per relation): {t['shared_answers']}")
    s = p["shape"]
    stdout.print(
        f"predicted: d={s['d']}, H={s['H']}, d_h={s['d_h']}, m={s['m']} ({p['family']}): "
        f"{p['params']} params = {p['attention_params']} attention + {p['mlp_params']} MLP; "
        f"band {p['band_params'][0]}–{p['band_params'][1]} params (d {p['band_d'][0]}–{p['band_d'][1]})"
        + (" (extrapolated beyond the measured sizes)" if p["extrapolated"] else "")
    )
    if "verified" in record:
        v = record["verified"]
        vs = v["shape"]
        stdout.print(
            f"trained: d={vs['d']}, H={vs['H']}, d_h={vs['d_h']}, m={vs['m']}: {v['params']} params, "
            f"fact accuracy {v['fact_accuracy']:.4f}, facts stored {v['facts_stored']:.4f}, "
            f"{v['bits_stored']:.0f} of {v['table_bits']:.0f} bits ({v['bits_per_param']:.3f} bits/param)"
        )
        for rel, acc in v["per_relation"].items():
            stdout.print(f"  {rel}: {acc:.4f}")
        if v["missed"]:
            stdout.print(f"  not stored: {', '.join(v['missed'])}")
    if "smallest" in record:
        sm = record["smallest"]
        ratio = sm["predicted_over_smallest"]
        stdout.print(
            f"smallest stored (search): d={sm['d']}, {sm['params']} params; predicted / smallest = "
            + (f"{ratio:.2f}" if ratio is not None else "n/a")
        )
    if "saved" in record:
        stdout.print(f"saved: {record['saved']}")


FactsArg = Annotated[Path, typer.Argument(help="Fact table: .csv or .jsonl of subject, relation, answer.")]
ModelArg = Annotated[Path, typer.Argument(help="A model saved by 'plan --train --save' (.npz).")]
ContextsOpt = Annotated[int, typer.Option("--contexts", help="Random contexts per fact.")]


@app.command("plan")
def plan_cmd(
    facts_file: FactsArg,
    criterion: Annotated[
        float, typer.Option("--criterion", help="Fraction of (fact, context) pairs to answer correctly.")
    ] = 1.0,
    budget_params: Annotated[
        int | None, typer.Option("--budget-params", help="Largest model (paper's parameter count) allowed.")
    ] = None,
    train: Annotated[
        bool, typer.Option("--train", help="Train the predicted model; grow it if short.")
    ] = False,
    search_smallest: Annotated[
        bool, typer.Option("--search-smallest", help="Also search the smallest shape that stores the table.")
    ] = False,
    max_tries: Annotated[int, typer.Option("--max-tries", help="Trainings allowed while growing.")] = 4,
    save: Annotated[
        Path | None, typer.Option("--save", help="Write the trained model (.npz); needs --train.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the training runs.")] = 0,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Predict the smallest one-layer transformer that stores a fact table (and train it with --train)."""
    from factrecall.core.progress import bar
    from factrecall.core.provenance import run_info
    from factrecall.facts.planner import plan
    from factrecall.facts.queries import as_trained
    from factrecall.facts.table import load_table
    from factrecall.recall import training as recall

    check(save is None or train, "--save needs --train (there is no model to save otherwise)")
    if save is not None:
        check(save.parent.is_dir(), f"--save: folder {str(save.parent)!r} does not exist")
    table = load_table(facts_file)
    with bar(f"plan {facts_file.name}", quiet=quiet or not (train or search_smallest)) as update:
        record, model = plan(
            table,
            criterion=criterion,
            budget_params=budget_params,
            train=train,
            search_smallest=search_smallest,
            max_tries=max_tries,
            seed=seed,
            on_progress=update,
        )
    if save is not None and model is not None:
        recall.save(save, as_trained(table, *model, record))
        record["saved"] = str(save)
    record["run"] = run_info()
    if as_json:
        sys.stdout.write(json.dumps(record, default=str) + "\n")
    else:
        _plan_text(record)


@app.command("query")
def query_cmd(
    model_file: ModelArg,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject name, e.g. France.")] = None,
    relation: Annotated[
        str | None, typer.Option("--relation", help="Relation name, e.g. capital_of.")
    ] = None,
    batch: Annotated[
        Path | None, typer.Option("--batch", help="Queries from a .csv/.jsonl file of subject, relation.")
    ] = None,
    contexts: ContextsOpt = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random contexts.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Answer (subject, relation) queries with a saved model: the answer and its probability."""
    import jax

    from factrecall.facts.queries import answer_queries, table_of
    from factrecall.facts.table import read_rows
    from factrecall.recall import training as recall

    single = subject is not None or relation is not None
    check(
        single != (batch is not None),
        "give either --subject and --relation, or --batch FILE (not both, not neither)",
    )
    check(not single or (subject and relation), "--subject and --relation go together")
    check(contexts >= 1, f"--contexts must be ≥ 1, got {contexts}")
    pairs = (
        [(subject, relation)]
        if single
        else [(r.subject, r.relation) for r in read_rows(batch, ("subject", "relation"))]
    )
    check(bool(pairs), f"{batch}: no queries")
    model = recall.load(model_file)
    answers = answer_queries(model, table_of(model), pairs, contexts, key=jax.random.key(seed))
    if as_json:
        out = answers[0] if single else {"queries": answers}
        sys.stdout.write(json.dumps(out) + "\n")
        return
    for a in answers:
        mark = "" if a["correct"] else f"  (stored: {a['stored_answer']})"
        stdout.print(f"{a['fact']} = [bold]{a['answer']}[/bold]  p={a['probability']:.3f}{mark}")


@app.command("attribute")
def attribute_cmd(
    model_file: ModelArg,
    contexts: ContextsOpt = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random contexts.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Where the facts live: facts surviving MLP ablation, attention direct-path ablation, and each head."""
    import jax

    from factrecall.facts.queries import table_of
    from factrecall.recall import training as recall
    from factrecall.recall.attribution import attribute

    check(contexts >= 1, f"--contexts must be ≥ 1, got {contexts}")
    model = recall.load(model_file)
    table = table_of(model)
    a = attribute(model.params, model.cfg, model.task, model.facts, contexts, key=jax.random.key(seed))
    record = a.summary()
    record["facts_by_path"] = a.facts_by_path(table.fact_name)
    record["model"] = str(model_file)
    if as_json:
        sys.stdout.write(json.dumps(record) + "\n")
        return
    split = record["stored_split"]
    stdout.print(
        f"[bold]{model_file}[/bold]: {record['stored']} of {record['facts']} facts stored; "
        f"surviving MLP ablation {record['surviving_mlp_ablation']:.3f}, attention direct-path ablation "
        f"{record['surviving_attention_direct_ablation']:.3f}"
    )
    stdout.print(
        f"stored facts by path: attention {split['attention']}, MLP {split['mlp']}, both {split['both']}, "
        f"joint (needs both) {split['joint']}"
    )
    heads = ", ".join(f"h{h}: {x:.3f}" for h, x in enumerate(record["surviving_head_ablation"]))
    stdout.print(f"surviving each head's ablation: {heads}")


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
