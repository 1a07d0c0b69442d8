"""``factrecall edit``: change facts of a saved model in place and score the edit (beyond the paper).

Reads the model and the edits file, validates every argument before computing anything, applies the edits
(:func:`factrecall.api.edit`: closed-form rank-one or least-squares updates of the MLP or attention output
matrix, or fine-tuning) and prints the scores: efficacy, specificity, paraphrase, seconds, the norm of the
change, then one row per edit. ``--save`` writes the edited model atomically (the format ``eval`` and
``query`` read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from factrecall.cli.common import JsonFlag, emit_json, stdout
from factrecall.core.errors import check

SUMMARY = (
    "efficacy",
    "edits_stored",
    "specificity",
    "retained_accuracy",
    "paraphrase",
    "seconds",
    "delta_norm",
)


def _edit_text(record: dict[str, Any]) -> None:
    title = f"edit: {record['n_edits']} fact(s), {record['method']} at {record['where']}" + (
        " (sequential)" if record["sequential"] else ""
    )
    stdout.print(title)  # above the table: a table title wraps at the table's narrow width
    table = Table(show_header=True, header_style="bold")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key in SUMMARY:
        table.add_row(key, f"{record[key]:.4g}")
    stdout.print(table)
    rows = Table(show_header=True, header_style="bold")
    for column in ("line", "fact", "old", "new", "efficacy", "paraphrase", "stored"):
        rows.add_column(column)
    for e in record["per_edit"]:
        rows.add_row(
            str(e["line"]),
            e["fact"],
            e["old"],
            e["new"],
            f"{e['efficacy']:.3f}",
            f"{e['paraphrase']:.3f}",
            "yes" if e["stored"] else "no",
        )
    stdout.print(rows)
    if "saved" in record:
        stdout.print(f"saved: {record['saved']}")


def edit_cmd(
    model_file: Annotated[Path, typer.Argument(help="A saved model (.npz: train --save, plan --save).")],
    edits: Annotated[
        Path,
        typer.Option("--edits", help="Edits: .csv or .jsonl of subject, relation, answer (the new one)."),
    ],
    method: Annotated[
        str,
        typer.Option("--method", help="rank-one (closed form per edit), batch (least squares) or finetune."),
    ] = "rank-one",
    where: Annotated[
        str, typer.Option("--where", help="mlp (W2), values (attention output O) or both.")
    ] = "mlp",
    sequential: Annotated[
        bool, typer.Option("--sequential", help="Apply the edits one after another (default: all at once).")
    ] = False,
    replay: Annotated[
        bool, typer.Option("--replay", help="finetune: also train on every fact with its current answer.")
    ] = False,
    contexts: Annotated[int, typer.Option("--contexts", help="Fresh contexts per fact for the scores.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the edit's and the scores' contexts.")] = 0,
    save: Annotated[Path | None, typer.Option("--save", help="Write the edited model (.npz) here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Edit facts of a saved model (closed-form rank-one or batch updates, or fine-tuning) and score it."""
    from factrecall import api
    from factrecall.recall import models

    check(
        save is None or save.parent.is_dir(),
        f"--save: folder {str(save.parent) if save else ''!r} does not exist",
    )
    result = api.edit(
        model_file,
        edits,
        method=method,
        where=where,
        sequential=sequential,
        replay=replay,
        n_contexts=contexts,
        seed=seed,
    )
    record = {**result.to_dict(), "model": str(model_file)}
    if save is not None:
        models.save(save, result.model)  # atomic
        record["saved"] = str(save)
    if as_json:
        emit_json(record)
    else:
        _edit_text(record)
