"""``factrecall capacity linear|mlp|transformer``: the capacity of memories (paper §3) and transformers (§4).

Each command builds its experiment's model (:class:`~factrecall.experiments.specs.MemoryCapacityPoint`,
:class:`~factrecall.experiments.specs.TransformerCapacityPoint`) from its flags, runs it under a progress
bar and prints the record. A command's parameters are named after the model's fields (the flag names stay
the documented ones) and default to the model's defaults.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from factrecall.cli.common import (
    AnswersOpt,
    BatchOpt,
    CriterionOpt,
    DimOpt,
    GeometryOpt,
    HeadDimOpt,
    HeadsOpt,
    JsonFlag,
    LrOpt,
    MlpWidthOpt,
    PrecisionOpt,
    QuietFlag,
    SeedsOpt,
    TopKOpt,
    ZipfOpt,
    build,
    defaults,
    emit,
    seed_list,
)
from factrecall.core.progress import bar
from factrecall.core.provenance import run_info
from factrecall.experiments.specs import MemoryCapacityPoint, TransformerCapacityPoint

app = typer.Typer(
    help="Storage capacity of associative memories (paper §3, Figures 1 and 6).", no_args_is_help=True
)
MEMORY = defaults(MemoryCapacityPoint)
TRANSFORMER = defaults(TransformerCapacityPoint)
MemoryStepsOpt = Annotated[int | None, typer.Option("--steps", help="Step budget per training run.")]


def _memory(model: str, params: dict[str, Any]) -> None:
    point = build(MemoryCapacityPoint, params, model=model, seeds=seed_list(params["seeds"]))
    label = f"capacity {point.model} d={point.d}" + (f" m={point.m}" if point.m else "")
    with bar(label, quiet=params["quiet"]) as update:
        record = point.run(update)
    record["spec"] = point.spec._asdict()
    record["run"] = run_info()
    emit(record, params["as_json"], label)


@app.command("linear")
def capacity_linear(
    d: DimOpt = MEMORY.d,
    rank: Annotated[
        int | None, typer.Option("--rank", help="Rank r of W = A B (default: full).")
    ] = MEMORY.rank,
    seeds: SeedsOpt = MEMORY.n_seeds,
    criterion: CriterionOpt = MEMORY.criterion,
    top_k: TopKOpt = MEMORY.top_k,
    method: Annotated[
        str, typer.Option("--method", help="trained (Adam) or hebbian (Theorem 1 construction).")
    ] = MEMORY.method,
    lrs: LrOpt = MEMORY.lrs,
    n_steps: MemoryStepsOpt = MEMORY.n_steps,
    geometry: GeometryOpt = MEMORY.geometry,
    zipf: ZipfOpt = MEMORY.zipf,
    precision: PrecisionOpt = MEMORY.precision,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Largest N a linear memory W ∈ R^{d×d} stores (M = N outputs, a bijection)."""
    _memory("linear", locals())


@app.command("mlp")
def capacity_mlp(
    d: DimOpt = MEMORY.d,
    m: Annotated[int, typer.Option("--width", "-m", help="MLP width m.")] = MemoryCapacityPoint.MLP_WIDTH,
    M: Annotated[
        int | None, typer.Option("--outputs", help="Fixed number of outputs M (default: M = N).")
    ] = MEMORY.M,
    seeds: SeedsOpt = MEMORY.n_seeds,
    criterion: CriterionOpt = MEMORY.criterion,
    top_k: TopKOpt = MEMORY.top_k,
    method: Annotated[
        str, typer.Option("--method", help="trained (Adam) or construction (random features, Theorem 2).")
    ] = MEMORY.method,
    lrs: LrOpt = MEMORY.lrs,
    n_steps: MemoryStepsOpt = MEMORY.n_steps,
    geometry: GeometryOpt = MEMORY.geometry,
    zipf: ZipfOpt = MEMORY.zipf,
    precision: PrecisionOpt = MEMORY.precision,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Largest N an MLP memory Vᵀ relu(W e + b) of width m stores (M = N, or M fixed with --outputs)."""
    _memory("mlp", locals())


def _given(ctx: typer.Context, params: dict[str, Any], *names: str) -> dict[str, Any]:
    """``params`` without those of ``names`` left at their defaults (the model then resolves them: e.g.
    ``--procedure paper`` measures on ``sampled``, and only an explicit ``--criterion-on every-fact`` is an
    error)."""
    left = {n for n in names if getattr(ctx.get_parameter_source(n), "name", None) == "DEFAULT"}
    return {k: v for k, v in params.items() if k not in left}


@app.command("transformer")
def capacity_transformer(
    ctx: typer.Context,
    d: DimOpt = TRANSFORMER.d,
    H: HeadsOpt = TRANSFORMER.H,
    d_h: HeadDimOpt = TRANSFORMER.d_h,
    m: MlpWidthOpt = TRANSFORMER.m,
    D: AnswersOpt = TRANSFORMER.D,
    scaling: Annotated[
        str, typer.Option("--scaling", help="linear (S = R), square (S = R²) or distinct (D = S).")
    ] = TRANSFORMER.scaling,
    seeds: SeedsOpt = TRANSFORMER.n_seeds,
    criterion: CriterionOpt = TRANSFORMER.criterion,
    criterion_on: Annotated[
        str,
        typer.Option(
            "--criterion-on",
            help="What the criterion is measured on: every-fact (every fact in 2 fixed fresh contexts; the "
            "default) or sampled (1,024 sampled test sequences, the paper's).",
        ),
    ] = TRANSFORMER.criterion_on,
    lrs: LrOpt = TRANSFORMER.lrs,
    n_steps: Annotated[int, typer.Option("--steps", help="Step budget per trial.")] = TRANSFORMER.n_steps,
    batch: BatchOpt = TRANSFORMER.batch,
    patience: Annotated[
        int, typer.Option("--patience", help="Stop a trial after this many steps without gain (0: never).")
    ] = TRANSFORMER.patience,
    early_stops: Annotated[
        bool,
        typer.Option(
            "--early-stops/--no-early-stops",
            help="Stop runs that cannot store: the stall rule (at twice its recent pace a run would miss the "
            "criterion by the budget) and the race (from a quarter of a budget > 4,096 steps, a run 0.1 "
            "below another rate of its trial). --no-early-stops: a run stops only at the criterion, "
            "--patience or its budget (slower; for audits). The JSON's early_stops says which ran.",
        ),
    ] = TRANSFORMER.early_stops,
    procedure: Annotated[
        str,
        typer.Option(
            "--procedure",
            help="How the size is searched: ours (the default; the rates run side by side, patience) or "
            "paper (the authors' search: S = R = k bisected on [1, hi], hi ≥ 2·√(0.15·params), with lo "
            "assumed stored and hi assumed failing; the rates tried in the order given, the first that "
            "stores accepted; criterion on 1,024 sampled sequences; no patience, no early stops). With "
            "paper, --criterion-on other than sampled, --patience > 0 or --early-stops is an error. The "
            "JSON's procedure says which ran.",
        ),
    ] = TRANSFORMER.procedure,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Largest fact set S·R a one-layer transformer stores over every fact (best over the lr grid)."""
    given = _given(ctx, locals(), "criterion_on", "patience", "early_stops")
    point = build(TransformerCapacityPoint, given, seeds=seed_list(seeds))
    label = f"capacity transformer d={d} H={H} d_h={d_h} m={m}"
    label += " (the paper's procedure)" if procedure == "paper" else ""
    with bar(label, quiet=quiet) as update:
        record = point.run(update)
    record["run"] = run_info()
    emit(record, as_json, label)
