"""``factrecall dynamics``: one training trajectory, its stages and transition steps (paper §5, Figure 5).

The command builds :class:`~factrecall.experiments.specs.DynamicsPoint` from its flags (named after the
model's fields, defaulting to its defaults), runs it, writes ``dynamics.{csv,json,png,pdf}`` into ``--out``
(the CSV and JSON atomically) and prints the summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from factrecall.cli.common import JsonFlag, QuietFlag, build, defaults, emit_json, stdout
from factrecall.core.io import atomic_write, curves_csv
from factrecall.core.progress import bar
from factrecall.core.provenance import run_info
from factrecall.experiments.specs import DynamicsPoint

DYNAMICS = defaults(DynamicsPoint)
SUMMARY_KEYS = (
    "stages",
    "final_loss",
    "final_accuracy",
    "predicted",
    "measured",
    "relation_accuracy_in_hallucination",
)


def dynamics_cmd(
    S: Annotated[int, typer.Option("--subjects", "-S", help="Subjects S.")] = DYNAMICS.S,
    R: Annotated[int, typer.Option("--relations", "-R", help="Relations R.")] = DYNAMICS.R,
    D: Annotated[
        int, typer.Option("--answers-per-relation", "-D", help="Answers per relation D.")
    ] = DYNAMICS.D,
    attention: Annotated[
        str, typer.Option("--attention", help="linear (the paper's) or softmax.")
    ] = DYNAMICS.attention,
    embeddings: Annotated[
        str, typer.Option("--embeddings", help="onehot (the paper's, d = vocab) or random (Gaussian).")
    ] = DYNAMICS.embeddings,
    model: Annotated[
        str, typer.Option("--model", help="simplified (the paper's Eq. 15) or transformer (one layer).")
    ] = DYNAMICS.model,
    alpha_S: Annotated[
        float, typer.Option("--zipf-subjects", help="Zipf exponent α of subject frequencies p(s) ∝ (s+1)^-α.")
    ] = DYNAMICS.alpha_S,
    n_steps: Annotated[
        int, typer.Option("--steps", help="Gradient-descent steps (a multiple of 64).")
    ] = DYNAMICS.n_steps,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate of plain gradient descent.")] = DYNAMICS.lr,
    B: Annotated[int, typer.Option("--batch", help="Fresh sequences per step.")] = DYNAMICS.B,
    substeps: Annotated[
        int,
        typer.Option("--gradient-flow", help="Integrate gradient flow: K substeps of lr/K per step (1: GD)."),
    ] = DYNAMICS.substeps,
    seed: Annotated[int, typer.Option("--seed", help="Seed of facts, test set and batches.")] = DYNAMICS.seed,
    out: Annotated[Path, typer.Option("--out", help="Output folder for CSV, JSON, PNG and PDF.")] = Path(
        "results"
    ),
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Training dynamics (paper §5, Figure 5): loss split by relation/subject, stages, transition steps."""
    from factrecall.experiments import plots

    point = build(DynamicsPoint, locals())
    with bar(f"dynamics {model} S={S} R={R} D={D}", n_steps, quiet=quiet) as update:
        record = {**point.run(update), "run": run_info()}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "dynamics.csv", curves_csv(record["steps"], record["curves"]))
    atomic_write(out / "dynamics.json", json.dumps(record, default=str))
    paths = plots.dynamics(record, out / "dynamics")
    summary = {k: record[k] for k in SUMMARY_KEYS} | {"seconds": record["seconds"]}
    summary["files"] = [str(p) for p in paths]
    if as_json:
        emit_json(summary | {"spec": record["spec"], "run": record["run"]})
    else:
        _print(record, out)


def _print(record: dict[str, Any], out: Path) -> None:
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
