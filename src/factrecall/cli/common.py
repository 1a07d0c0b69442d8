"""What every ``factrecall`` command shares: option types, printing, experiment models built from flags.

This module owns the options that several commands take (each written once: ``--json``, ``--quiet``,
``--seeds``, ``--lr``, the transformer's shape, the sweep backends, …), :func:`emit` and :func:`emit_json`
(the one place results are printed), :func:`defaults` (an experiment option's default is its model field's),
:func:`build` (flags → a validated :mod:`factrecall.experiments.specs` model, errors naming the flags),
:func:`seed_list` and :func:`backend_options`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from factrecall.core.errors import check

try:  # typer ≥ 0.24 vendors click; older releases use click itself
    from typer._click import exceptions as click_exceptions
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions  # type: ignore[no-redef]
    from click import get_current_context  # type: ignore[no-redef]

__all__ = ["click_exceptions"]

stdout = Console()
M = TypeVar("M", bound=BaseModel)

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
PrecisionOpt = Annotated[float, typer.Option("--precision", help="Bisection stops at hi/lo ≤ 1 + precision.")]
GeometryOpt = Annotated[
    str, typer.Option("--geometry", help="Embeddings: sphere, orthogonal, onehot or spiked.")
]
ZipfOpt = Annotated[
    float, typer.Option("--zipf", help="Zipf exponent α of the input weights p(x) ∝ (x+1)^-α.")
]
DimOpt = Annotated[int, typer.Option("--d", help="Embedding dimension d.")]
HeadsOpt = Annotated[int, typer.Option("--heads", help="Attention heads H.")]
HeadDimOpt = Annotated[int, typer.Option("--head-dim", help="Head dimension d_h.")]
MlpWidthOpt = Annotated[int, typer.Option("--width", "-m", help="MLP width m (0: no MLP).")]
SubjectsOpt = Annotated[int, typer.Option("--subjects", help="Subjects S.")]
RelationsOpt = Annotated[int, typer.Option("--relations", help="Relations R.")]
AnswersOpt = Annotated[int, typer.Option("--answers-per-relation", help="Answers per relation D.")]
BatchOpt = Annotated[int, typer.Option("--batch", help="Sequences per step.")]
BackendOpt = Annotated[
    str, typer.Option("--backend", help="local (this process), processes (local processes) or ray.")
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", help="Parallel workers of processes/ray (default: CPU cores).")
]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster to join (default: start one locally).")
]


def emit_json(record: Any) -> None:
    """Print ``record`` as exactly one JSON line on stdout."""
    sys.stdout.write(json.dumps(record, default=str) + "\n")


def emit(record: dict[str, Any], as_json: bool, title: str) -> None:
    """Print a command's record: one JSON line (``--json``) or a table of its quantities titled ``title``."""
    if as_json:
        emit_json(record)
        return
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in record.items():
        if key in ("run", "spec"):
            continue
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    stdout.print(table)


def defaults(model: type[BaseModel]) -> SimpleNamespace:
    """The field defaults of ``model`` as attributes: an experiment command's options take them, so the
    command, the sweep files and the model cannot disagree. ``n_seeds`` is the number of default ``seeds``
    (they are 0, 1, …: the default of ``--seeds K``).

    >>> from factrecall.experiments.specs import TransformerCapacityPoint
    >>> d = defaults(TransformerCapacityPoint)
    >>> d.H, d.lrs, d.n_seeds
    (8, [0.001, 0.003, 0.01], 1)
    """
    values = {name: f.get_default(call_default_factory=True) for name, f in model.model_fields.items()}
    if isinstance(values.get("seeds"), list):
        values["n_seeds"] = len(values["seeds"])
    return SimpleNamespace(**values)


def _flag_names() -> dict[str, str]:
    """Parameter name → its long flag, for the command being run (``H`` → ``--heads``)."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return {}
    return {p.name: next((o for o in p.opts if o.startswith("--")), p.opts[0]) for p in ctx.command.params}


def build(model: type[M], params: Mapping[str, Any], /, **values: Any) -> M:
    """The experiment's model from a command's parameters (``locals()``: they are named after the model's
    fields; the others, such as ``as_json``, are not the model's) and ``values`` (fields the command
    computes). A :class:`~factrecall.core.errors.ConfigError` names the flag, the value and what is allowed.
    """
    from factrecall.experiments.specs import build as build_spec

    fields = {k: v for k, v in {**params, **values}.items() if k in model.model_fields}
    return build_spec(model, fields, names=_flag_names())


def seed_list(seeds: int) -> list[int]:
    """``--seeds K`` → the seeds [0, …, K−1]."""
    check(seeds >= 1, f"--seeds must be ≥ 1, got {seeds}")
    return list(range(seeds))


def backend_options(backend: str, workers: int | None, ray_address: str | None) -> dict[str, Any]:
    """The sweep backend flags, checked, as keyword arguments of the runners."""
    from factrecall.experiments.sweeps import BACKENDS

    check(backend in BACKENDS, f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    check(workers is None or workers >= 1, f"--workers must be ≥ 1, got {workers}")
    check(ray_address is None or backend == "ray", "--ray-address needs --backend ray")
    return {"backend": backend, "workers": workers, "ray_address": ray_address}
