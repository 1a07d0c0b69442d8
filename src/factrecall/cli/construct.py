"""``factrecall construct transformer``: weights written down by hand that store every fact (paper §4).

Without ``--find-min`` it builds :class:`~factrecall.experiments.specs.ConstructedPoint` (one shape, given
or near the minimum); with it, :class:`~factrecall.experiments.specs.ConstructionPoint` (the smallest d at
the mechanism's ratios). The flags are named after the models' fields and default to their defaults.
"""

from __future__ import annotations

from typing import Annotated

import typer

from factrecall.cli.common import (
    AnswersOpt,
    HeadDimOpt,
    JsonFlag,
    PrecisionOpt,
    QuietFlag,
    RelationsOpt,
    SubjectsOpt,
    build,
    defaults,
    emit,
)
from factrecall.core.errors import check
from factrecall.core.progress import bar
from factrecall.core.provenance import run_info
from factrecall.experiments.specs import ConstructedPoint, ConstructionPoint

app = typer.Typer(
    help="Weights written down by hand that store every fact (paper §4), scored like trained ones.",
    no_args_is_help=True,
)
SHAPE = defaults(ConstructedPoint)
SEARCH = defaults(ConstructionPoint)


@app.command("transformer")
def construct_transformer(
    mechanism: Annotated[
        str, typer.Option("--mechanism", help="attention (facts in the values), mlp, or hybrid (split).")
    ] = SHAPE.mechanism,
    S: SubjectsOpt = SHAPE.S,
    R: RelationsOpt = SHAPE.R,
    D: AnswersOpt = SHAPE.D,
    d: Annotated[
        int | None, typer.Option("--d", help="Embedding dimension d (default: near the minimum).")
    ] = SHAPE.d,
    H: Annotated[int | None, typer.Option("--heads", help="Heads H (default: from H·d_h/d).")] = SHAPE.H,
    d_h: HeadDimOpt = SHAPE.d_h,
    m: Annotated[
        int | None, typer.Option("--width", "-m", help="MLP width m (default: from m/d).")
    ] = SHAPE.m,
    attention_share: Annotated[
        float | None,
        typer.Option("--attention-share", help="hybrid: fraction of relations stored by attention."),
    ] = SHAPE.attention_share,
    memory: Annotated[str, typer.Option("--memory", help="pinv (least squares) or hebbian.")] = SHAPE.memory,
    n_contexts: Annotated[
        int, typer.Option("--contexts", help="Evaluation contexts per fact.")
    ] = SHAPE.n_contexts,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the facts, embeddings and contexts.")
    ] = SHAPE.seed,
    find_min: Annotated[
        bool, typer.Option("--find-min", help="Search the smallest d (at fixed ratios) storing every fact.")
    ] = False,
    precision: PrecisionOpt = SEARCH.precision,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Construct a one-layer transformer storing all S·R facts; report accuracy, parameters and bits."""
    label = f"construct {mechanism} S={S} R={R} D={D}"
    if find_min:
        check(
            d is None and H is None and m is None, "--find-min searches d, H and m: drop --d/--heads/--width"
        )
        point = build(ConstructionPoint, locals(), seeds=[seed])
        with bar(label + " (find-min)", quiet=quiet) as update:
            record = point.run(update)
    else:
        point = build(ConstructedPoint, locals())
        record = point.run()
    record["spec"] = point.spec._asdict()
    record["run"] = run_info()
    emit(record, as_json, label)
