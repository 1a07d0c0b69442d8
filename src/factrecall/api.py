"""The Python API: the calls a researcher makes from a notebook, computing exactly what the commands compute.

Each call builds the experiment's point model (:mod:`factrecall.experiments.specs`: the same fields, defaults
and validation as the command's flags and a sweep file's keys), runs it, and returns a :class:`Result` whose
:meth:`Result.to_dict` is the record the matching command prints with ``--json``: the same numbers for the
same arguments and seeds on the same device. Bad arguments raise :class:`~factrecall.core.errors.ConfigError`
naming the field, the value and what is allowed. Nothing is printed unless ``progress=True``.

>>> import factrecall
>>> r = factrecall.memory_capacity("linear", d=8, seeds=[0], method="hebbian", criterion=1.0)
>>> r["capacity"], r["params"]
(4.0, 64)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas

    from factrecall.editing.edits import Edit
    from factrecall.experiments.specs import Point
    from factrecall.facts.table import FactTable
    from factrecall.recall.models import Trained


class Result(Mapping[str, Any]):
    """What a call returns: its JSON record (read it like a dict), the point that produced it, and the trained
    model when there is one.

    Attributes:
        kind: which call made it (``memory_capacity``, ``train_transformer``, ...).
        point: the experiment's point model (its fields are the resolved settings), or ``None``.
        model: the trained :class:`~factrecall.recall.models.Trained` (``train_transformer``, ``plan`` with
            ``train=True``), or ``None``.
    """

    def __init__(self, kind: str, record: dict[str, Any], point: Point | None = None, model: Any = None):
        self.kind, self.point, self.model = kind, point, model
        self._record = json.loads(json.dumps(record, default=str))  # exactly what ``--json`` prints

    def to_dict(self) -> dict[str, Any]:
        """The record, as the matching command prints it with ``--json`` (a copy)."""
        return json.loads(json.dumps(self._record))

    def __getitem__(self, key: str) -> Any:
        return self._record[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._record)

    def __len__(self) -> int:
        return len(self._record)

    def __repr__(self) -> str:
        keys = [k for k in ("capacity", "fact_accuracy", "facts_stored", "final_loss", "params") if k in self]
        shown = ", ".join(f"{k}={self[k]!r}" for k in keys)
        return f"Result({self.kind}{': ' if shown else ''}{shown})"

    def save(self, path: str | Path) -> Path:
        """Write the trained model (``.npz``, the format ``factrecall eval`` and :func:`load` read)."""
        from factrecall.core.errors import check
        from factrecall.recall import models

        check(self.model is not None, f"{self.kind} produced no trained model to save")
        models.save(Path(path), self.model)
        return Path(path)


def _progress(label: str, progress: bool) -> Any:
    from factrecall.core.progress import bar

    return bar(label) if progress else nullcontext(None)


def _run(kind: str, point: Point, progress: bool, *, spec: bool = True) -> Result:
    from factrecall.core.provenance import run_info

    with _progress(kind, progress) as update:
        record = point.run(update)
    if spec:
        record["spec"] = point.spec._asdict()
    record["run"] = run_info()
    return Result(kind, record, point)


def _build(model: type[Point], fields: dict[str, Any]) -> Point:
    from factrecall.experiments.specs import build

    return build(model, fields)


def memory_capacity(model: str = "linear", *, progress: bool = False, **fields: Any) -> Result:
    """The storage capacity N* of a linear or MLP associative memory (paper §3), as ``factrecall capacity
    linear|mlp --json``.

    Args:
        model: ``linear`` or ``mlp``.
        progress: show a progress bar on stderr.
        **fields: any field of :class:`~factrecall.experiments.specs.MemoryCapacityPoint` (``d``, ``m``,
            ``M``, ``rank``, ``method``, ``criterion``, ``seeds`` (a list), ``lrs``, ``n_steps``, ...).
    """
    from factrecall.experiments.specs import MemoryCapacityPoint

    return _run("memory_capacity", _build(MemoryCapacityPoint, {"model": model, **fields}), progress)


def train_transformer(*, progress: bool = False, **fields: Any) -> Result:
    """Train a one-layer transformer on the factual-recall task and report it, as ``factrecall train
    transformer --json``; the trained model is ``result.model`` (``result.save(path)`` writes it).

    Args:
        **fields: any field of :class:`~factrecall.experiments.specs.TransformerTrainPoint` (``d``, ``H``,
            ``d_h``, ``m``, ``S``, ``R``, ``D``, ``T``, ``lrs``, ``n_steps``, ``batch``, ``seed``, ...).
    """
    from factrecall.core.provenance import run_info
    from factrecall.experiments.specs import TransformerTrainPoint

    point = _build(TransformerTrainPoint, fields)
    with _progress("train transformer", progress) as update:
        model = point.train(update)
    record = {**point.report(model), "run": run_info()}
    return Result("train_transformer", record, point, model)


def load(path: str | Path) -> Trained:
    """A model saved by ``train_transformer(...).save``, ``factrecall train --save`` or ``plan --save``."""
    from factrecall.recall import models

    return models.load(Path(path))


def evaluate(model: Trained | str | Path, n_contexts: int = 8, seed: int = 0) -> Result:
    """Re-evaluate a trained model over every fact in fresh contexts, as ``factrecall eval --json``."""
    import jax

    from factrecall.core.errors import check
    from factrecall.recall import models

    check(n_contexts >= 1, f"n_contexts must be ≥ 1, got {n_contexts}")
    trained = load(model) if isinstance(model, str | Path) else model
    record = models.report(trained, n_contexts, key=jax.random.key(seed + 1_000_003))
    return Result("evaluate", record, model=trained)


def transformer_capacity(*, progress: bool = False, **fields: Any) -> Result:
    """The largest fact set S·R a transformer shape stores (Figure 4), as ``factrecall capacity transformer
    --json``. ``**fields``: any field of :class:`~factrecall.experiments.specs.TransformerCapacityPoint`."""
    from factrecall.experiments.specs import TransformerCapacityPoint

    point = _build(TransformerCapacityPoint, fields)
    return _run("transformer_capacity", point, progress, spec=False)


def construct(*, find_min: bool = False, progress: bool = False, **fields: Any) -> Result:
    """A transformer written down by hand that stores every fact (paper §4), scored like a trained one, as
    ``factrecall construct transformer [--find-min] --json``.

    Args:
        find_min: search the smallest d (at fixed ratios) whose construction stores every fact.
        **fields: fields of :class:`~factrecall.experiments.specs.ConstructionPoint` (with ``find_min``) or
            :class:`~factrecall.experiments.specs.ConstructedPoint` (``mechanism``, ``S``, ``R``, ``D``,
            ``d``, ``H``, ``m``, ...).
    """
    from factrecall.experiments.specs import ConstructedPoint, ConstructionPoint

    point = _build(ConstructionPoint if find_min else ConstructedPoint, fields)
    return _run("construct", point, progress)


def editing_study(*, progress: bool = False, **fields: Any) -> Result:
    """One point of the editing study (beyond the paper), as one point of ``factrecall reproduce editing``: a
    shape filled to f·N* facts (N* measured), edited k = 1, 2, 4, … times until it breaks; per seed its edit
    curve and edit capacity. ``**fields``: any field of
    :class:`~factrecall.experiments.specs.EditingPoint`."""
    from factrecall.experiments.specs import EditingPoint

    return _run("editing_study", _build(EditingPoint, fields), progress, spec=False)


def training_dynamics(*, progress: bool = False, **fields: Any) -> Result:
    """One training trajectory (paper §5, Figure 5): the loss split by relation and subject, its stages and
    transitions. The record is what ``factrecall dynamics`` writes to ``dynamics.json`` (curves included).
    ``**fields``: any field of :class:`~factrecall.experiments.specs.DynamicsPoint`."""
    from factrecall.core.provenance import run_info
    from factrecall.experiments.specs import DynamicsPoint

    point = _build(DynamicsPoint, fields)
    with _progress("dynamics", progress) as update:
        record = {**point.run(update), "run": run_info()}
    return Result("dynamics", record, point)


def plan(
    facts: FactTable | str | Path,
    *,
    criterion: float = 1.0,
    budget_params: int | None = None,
    train: bool = False,
    search_smallest: bool = False,
    max_tries: int = 4,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Predict the smallest transformer that stores a fact table (a CSV/JSONL file or a loaded table), and
    with ``train=True`` train it (``result.model``), as ``factrecall plan --json``."""
    from factrecall.core.provenance import run_info
    from factrecall.facts import planner
    from factrecall.facts.queries import as_trained
    from factrecall.facts.table import load_table

    table = load_table(Path(facts)) if isinstance(facts, str | Path) else facts
    with _progress(
        f"plan {Path(facts).name if isinstance(facts, str | Path) else 'table'}", progress
    ) as update:
        record, trained = planner.plan(
            table,
            criterion=criterion,
            budget_params=budget_params,
            train=train,
            search_smallest=search_smallest,
            max_tries=max_tries,
            seed=seed,
            on_progress=update,
        )
    model = as_trained(table, *trained, record, T=planner.DEFAULT_RECIPE.T) if trained is not None else None
    return Result("plan", {**record, "run": run_info()}, model=model)


def query(
    model: Trained | str | Path, subject: str, relation: str, n_contexts: int = 8, seed: int = 0
) -> Result:
    """The answer a trained model gives to ``relation(subject)`` and its probability (averaged over random
    contexts), as ``factrecall query --subject ... --relation ... --json``."""
    import jax

    from factrecall.core.errors import check
    from factrecall.facts.queries import answer_queries, table_of

    check(n_contexts >= 1, f"n_contexts must be ≥ 1, got {n_contexts}")
    trained = load(model) if isinstance(model, str | Path) else model
    (answer,) = answer_queries(
        trained, table_of(trained), [(subject, relation)], n_contexts, key=jax.random.key(seed)
    )
    return Result("query", answer, model=trained)


def attribute(model: Trained | str | Path, n_contexts: int = 8, seed: int = 0) -> Result:
    """Where a trained model's facts live (attention values, MLP, both), as ``factrecall attribute --json``
    (without its ``model`` path)."""
    import jax

    from factrecall.core.errors import check
    from factrecall.facts.queries import table_of
    from factrecall.recall.attribution import attribute as attribute_facts

    check(n_contexts >= 1, f"n_contexts must be ≥ 1, got {n_contexts}")
    m = load(model) if isinstance(model, str | Path) else model
    a = attribute_facts(m.params, m.cfg, m.task, m.facts, n_contexts, key=jax.random.key(seed))
    record = {**a.summary(), "facts_by_path": a.facts_by_path(table_of(m).fact_name)}
    return Result("attribute", record, model=m)


def edit(
    model: Trained | str | Path,
    edits: str | Path | Sequence[Edit],
    *,
    method: str = "rank-one",
    where: str = "mlp",
    sequential: bool = False,
    replay: bool = False,
    n_contexts: int = 8,
    seed: int = 0,
) -> Result:
    """Change facts of a trained model and score the edit, as ``factrecall edit --json`` (without its
    ``model`` path); the edited model is ``result.model`` (``result.save(path)`` writes it).

    Args:
        model: a trained model or the path of a saved one.
        edits: an edits file (.csv/.jsonl of subject, relation, new answer) or
            :class:`~factrecall.editing.edits.Edit` s.
        method: ``rank-one``, ``batch`` or ``finetune`` (:mod:`factrecall.editing.methods`).
        where: ``mlp``, ``values`` or ``both``.
        sequential: apply the edits one after another.
        replay: fine-tuning also trains on every fact with its current answer.
        n_contexts: fresh contexts per fact for the scores.
        seed: seed of the edit's and the scores' contexts.
    """
    from factrecall.core.errors import check
    from factrecall.core.provenance import run_info
    from factrecall.editing.edits import read_edits
    from factrecall.editing.methods import EditSettings
    from factrecall.editing.run import edit_record
    from factrecall.facts.queries import table_of

    check(not replay or method == "finetune", f"replay applies to method 'finetune' only, got {method!r}")
    trained = load(model) if isinstance(model, str | Path) else model
    todo = read_edits(Path(edits), table_of(trained)) if isinstance(edits, str | Path) else list(edits)
    record, edited = edit_record(
        trained,
        todo,
        method,
        where,
        sequential=sequential,
        n_contexts=n_contexts,
        seed=seed,
        settings=EditSettings(replay=replay),
    )
    return Result("edit", {**record, "run": run_info()}, model=edited.model)


def sweep(
    config: str | Path,
    store: str | Path = "results.db",
    *,
    backend: str = "local",
    workers: int | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: bool = False,
) -> Result:
    """Run a sweep file (an experiment grid or a paper figure's points) into the results store, as
    ``factrecall sweep CONFIG --json``; finished points are skipped with ``resume=True``."""
    from factrecall.core.errors import check
    from factrecall.experiments import config as config_mod
    from factrecall.experiments import reproduce, sweeps

    check(backend in sweeps.BACKENDS, f"backend must be one of {', '.join(sweeps.BACKENDS)}, got {backend!r}")
    check(workers is None or workers >= 1, f"workers must be ≥ 1, got {workers}")
    cfg = config_mod.load_sweep(Path(config))
    kwargs = {"backend": backend, "workers": workers, "resume": resume, "retry_failed": retry_failed}
    summary = reproduce.run_sweep_file(cfg, Path(store), quiet=not progress, **kwargs)
    return Result("sweep", {"sweep": cfg.name, "store": str(store), **summary._asdict()})


def results(store: str | Path = "results/results.db", sweep: str | None = None) -> pandas.DataFrame:
    """The results store as a pandas DataFrame: one row per stored point, its columns (sweep, scale,
    experiment, status, reason, device, seconds, ...) then ``point.<key>`` and ``metrics.<key>`` (lists and
    tables kept as Python objects)."""
    import pandas

    from factrecall.core.errors import check
    from factrecall.experiments.store import Store

    check(Path(store).is_file(), f"store {str(store)!r} does not exist")
    with Store(Path(store)) as db:
        rows = db.rows(sweep=sweep)
    flat = []
    for row in rows:
        out = {k: v for k, v in row.items() if k not in ("point", "metrics")}
        out.update({f"point.{k}": v for k, v in row["point"].items()})
        out.update({f"metrics.{k}": v for k, v in row["metrics"].items()})
        flat.append(out)
    return pandas.DataFrame(flat)
