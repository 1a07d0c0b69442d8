"""``factrecall train transformer`` and ``factrecall eval``: one trained one-layer transformer (paper §4).

``train transformer`` builds :class:`~factrecall.experiments.specs.TransformerTrainPoint` from its flags
(named after the model's fields, defaulting to its defaults), trains it, reports it and optionally saves
it; ``eval`` re-scores a saved model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factrecall.cli.common import (
    AnswersOpt,
    BatchOpt,
    CriterionOpt,
    DimOpt,
    HeadDimOpt,
    HeadsOpt,
    JsonFlag,
    LrOpt,
    MlpWidthOpt,
    QuietFlag,
    RelationsOpt,
    SubjectsOpt,
    build,
    defaults,
    emit,
)
from factrecall.core.errors import check
from factrecall.core.provenance import run_info
from factrecall.experiments.specs import TransformerTrainPoint

train_app = typer.Typer(help="Train one model and report it (paper §4).", no_args_is_help=True)
TRAIN = defaults(TransformerTrainPoint)


@train_app.command("transformer")
def train_transformer(
    d: DimOpt = TRAIN.d,
    H: HeadsOpt = TRAIN.H,
    d_h: HeadDimOpt = TRAIN.d_h,
    m: MlpWidthOpt = TRAIN.m,
    S: SubjectsOpt = TRAIN.S,
    R: RelationsOpt = TRAIN.R,
    D: AnswersOpt = TRAIN.D,
    T: Annotated[int, typer.Option("--seq-len", help="Sequence length T.")] = TRAIN.T,
    lrs: LrOpt = TRAIN.lrs,
    n_steps: Annotated[int, typer.Option("--steps", help="Step budget.")] = TRAIN.n_steps,
    batch: BatchOpt = TRAIN.batch,
    criterion: CriterionOpt = TRAIN.criterion,
    attention: Annotated[str, typer.Option("--attention", help="softmax or linear.")] = TRAIN.attention,
    train_embeddings: Annotated[
        bool, typer.Option("--train-embeddings", help="Train wte, unembed.")
    ] = TRAIN.train_embeddings,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the facts, init and batches.")] = TRAIN.seed,
    save: Annotated[Path | None, typer.Option("--save", help="Write the model (.npz) here.")] = None,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Train a one-layer transformer on the factual-recall task; report accuracy over every fact."""
    from factrecall.core.progress import bar
    from factrecall.recall import models

    point = build(TransformerTrainPoint, locals())
    check(
        save is None or save.parent.is_dir(),
        f"--save: folder {str(save.parent) if save else ''!r} does not exist",
    )
    with bar(f"train transformer d={d} H={H} d_h={d_h} m={m}", quiet=quiet) as update:
        model = point.train(update)
    record = point.report(model)
    if save is not None:
        models.save(save, model)
        record["saved"] = str(save)
    record["run"] = run_info()
    emit(record, as_json, f"transformer d={d} H={H} d_h={d_h} m={m}, S={S} R={R}")


def eval_cmd(
    path: Annotated[Path, typer.Argument(help="A model written by `factrecall train transformer --save`.")],
    contexts: Annotated[int, typer.Option("--contexts", help="Fresh contexts per fact.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the evaluation contexts.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Re-evaluate a saved transformer over every fact (fresh contexts) and on a sampled batch."""
    import jax

    from factrecall.recall import models

    check(contexts >= 1, f"--contexts must be ≥ 1, got {contexts}")
    model = models.load(path)
    record = models.report(model, contexts, key=jax.random.key(seed + 1_000_003))
    emit(record, as_json, f"eval {path}")
