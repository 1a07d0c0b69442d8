"""Run a list of points through the results store: serially, in local processes, or on Ray.

Any ``run(point, update) -> dict`` callable can be swept: the registered experiments of :data:`EXPERIMENTS`
(``factrecall sweep CONFIG.toml``) and every paper figure of
:data:`factrecall.experiments.reproduce.FIGURES` go through
the same :func:`run_points`. Points already in the store are skipped (a failed point too, unless
``retry_failed``); a point that raises is recorded as ``failed`` with its error and the sweep goes on. Only
the coordinating process writes to the store, one transaction per finished point. Only this module imports
``ray``, and only when the Ray backend is asked for.

Paper: SPEC §8 (the same sweep definition runs in-process, across local processes, or on a Ray cluster).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import pickle
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import factrecall
from factrecall.core.errors import ConfigError, check
from factrecall.core.progress import Update, bar
from factrecall.experiments import config
from factrecall.experiments.store import Record, Store, point_key

Task = Callable[[dict[str, Any], Update], dict[str, Any]]
BACKENDS = ("local", "processes", "ray")
NO_SCALE = "-"  # the store's scale column for experiment sweeps (figures use quick/paper)


# ------------------------------------------------------------------------------------------- experiments


def run_memory_capacity(point: dict[str, Any], update: Update) -> dict[str, Any]:
    """One :class:`~factrecall.experiments.config.MemoryCapacityPoint`: N* per seed of a linear or MLP
    memory."""
    from factrecall.memories.capacity import capacity, recipe

    spec = recipe(
        point["model"],
        point["d"],
        point["m"],
        M=point["M"],
        rank=point["rank"],
        method=point["method"],
        target=point["target"],
        alpha=point["zipf"],
        geometry=point["geometry"],
        criterion=point["criterion"],
        top_k=point["top_k"],
        lrs=tuple(point["lrs"]) if point["lrs"] else None,
        n_steps=point["n_steps"],
    )
    result = capacity(spec, tuple(point["seeds"]), rel_precision=point["precision"], on_round=update)
    return result.summary()


def _transformer_setup(point: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(task, config, recipe) of a ``transformer_train`` point, validated (ConfigError names the field)."""
    from factrecall.recall.training import Recipe, task_and_config, validate_recipe

    keys = ("S", "R", "D", "T", "d", "H", "d_h", "m", "attention", "train_embeddings")
    task, cfg = task_and_config(*(point[k] for k in keys))
    recipe = Recipe(n_steps=point["n_steps"], batch=point["batch"], criterion=point["criterion"])
    validate_recipe(recipe)
    return task, cfg, recipe


def run_transformer_train(point: dict[str, Any], update: Update) -> dict[str, Any]:
    """One :class:`~factrecall.experiments.config.TransformerTrainPoint`: train, then the report of
    ``factrecall train
    transformer`` (same seeding: facts from fold_in(seed, 1), evaluation contexts from fold_in(seed, 2))."""
    import jax

    from factrecall.recall import training as recall
    from factrecall.recall.task import facts_random

    task, cfg, recipe = _transformer_setup(point)
    key = jax.random.key(point["seed"])
    update(0, 1, f"training {point['n_steps']} steps at most")
    facts = facts_random(task, key=jax.random.fold_in(key, 1))
    model = recall.train(cfg, task, facts, recipe, tuple(point["lrs"]), seed=point["seed"])
    record = recall.report(model, key=jax.random.fold_in(key, 2))
    update(1, 1, f"fact_accuracy {record['fact_accuracy']:.3f}")
    return record


def _capacity_spec(point: dict[str, Any]) -> Any:
    from factrecall.recall import capacity as tc

    recipe = tc.CAPACITY_RECIPE._replace(
        n_steps=point["n_steps"], batch=point["batch"], criterion=point["criterion"]
    )
    spec = tc.Spec(
        point["d"],
        point["H"],
        point["d_h"],
        point["m"],
        point["D"],
        point["scaling"],
        recipe,
        tuple(point["lrs"]),
        patience=point["patience"] or None,
    )
    tc.validate_spec(spec)
    return spec


def run_transformer_capacity(point: dict[str, Any], update: Update) -> dict[str, Any]:
    """One :class:`~factrecall.experiments.config.TransformerCapacityPoint`: the largest S·R stored, per
    seed."""
    from factrecall.recall import capacity as tc

    return tc.capacity(_capacity_spec(point), tuple(point["seeds"]), on_round=update).summary()


def _construction_spec(point: dict[str, Any]) -> Any:
    from factrecall.recall.construction_search import construction_spec

    keys = ("d_h", "attention_ratio", "mlp_ratio", "attention_share", "memory", "n_contexts")
    return construction_spec(
        point["mechanism"], point["S"], point["R"], point["D"], **{k: point[k] for k in keys}
    )


def run_construction(point: dict[str, Any], update: Update) -> dict[str, Any]:
    """One :class:`~factrecall.experiments.config.ConstructionPoint`: the smallest construction storing
    every fact."""
    from factrecall.recall.construction_search import find_min

    spec = _construction_spec(point)
    return find_min(spec, tuple(point["seeds"]), rel_precision=point["precision"], on_round=update).summary()


def _dynamics_spec(point: dict[str, Any]) -> Any:
    from factrecall.dynamics.trajectory import DynamicsSpec, validate

    spec = DynamicsSpec(**{k: point[k] for k in DynamicsSpec._fields if k in point})
    validate(spec)
    return spec


def run_dynamics(point: dict[str, Any], update: Update) -> dict[str, Any]:
    """One :class:`~factrecall.experiments.config.DynamicsPoint`: the trajectory's summary, stages and
    curves."""
    from factrecall.dynamics import trajectory as dynamics

    spec = _dynamics_spec(point)
    return dynamics.record(spec, dynamics.trajectory(spec, on_chunk=update))


class Experiment(NamedTuple):
    """A sweepable experiment: its point model lives in :data:`factrecall.experiments.config.POINT_MODELS`
    under
    ``name``; ``run`` is a module-level function (so that process and Ray workers can import it);
    ``check`` (optional) validates a point beyond its types, before anything runs or is written."""

    name: str
    run: Task
    description: str
    check: Callable[[dict[str, Any]], Any] | None = None


EXPERIMENTS: dict[str, Experiment] = {
    "memory_capacity": Experiment(
        "memory_capacity", run_memory_capacity, "capacity N* of a linear or MLP memory (paper §3)"
    ),
    "transformer_train": Experiment(
        "transformer_train",
        run_transformer_train,
        "one trained transformer: accuracy over every fact, bits/param (paper §4)",
        _transformer_setup,
    ),
    "transformer_capacity": Experiment(
        "transformer_capacity",
        run_transformer_capacity,
        "largest fact set S·R a transformer shape stores (paper §4, Figure 4)",
        _capacity_spec,
    ),
    "construction": Experiment(
        "construction",
        run_construction,
        "smallest constructed transformer storing every fact (paper §4, Theorems 3–4)",
        _construction_spec,
    ),
    "dynamics": Experiment(
        "dynamics", run_dynamics, "training trajectory and its stages (paper §5, Figure 5)", _dynamics_spec
    ),
}


def checked_points(cfg: config.SweepConfig) -> list[dict[str, Any]]:
    """An experiment sweep's resolved points (:func:`factrecall.experiments.config.expand`), each also
    checked by its
    experiment's ``check``: a :class:`ConfigError` names the point and the field before anything runs."""
    assert cfg.experiment is not None
    check(
        cfg.experiment in EXPERIMENTS,
        f"experiment {cfg.experiment!r} has a point model but no runner; allowed: {', '.join(EXPERIMENTS)}",
    )
    points = config.expand(cfg)
    validate = EXPERIMENTS[cfg.experiment].check
    for i, point in enumerate(points):
        if validate is not None:
            try:
                validate(point)
            except ConfigError as exc:
                raise ConfigError(f"point {i} {json.dumps(point, sort_keys=True)[:120]}: {exc}") from exc
    return points


# --------------------------------------------------------------------------------------------- one point


class Outcome(NamedTuple):
    """What a worker sends back for one point (the coordinator turns it into a store row)."""

    status: str
    reason: str | None
    metrics: dict[str, Any]
    versions: dict[str, Any]
    device: str
    host: str
    started_utc: str
    finished_utc: str
    seconds: float


def _utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _quiet_update(done: int, total: int, status: str) -> None:
    del done, total, status


def execute(task: Task, point: dict[str, Any], update: Update | None = None) -> Outcome:
    """Run one point in this process and report it; an exception becomes a ``failed`` outcome.

    Workers expose every CPU core as a JAX device, exactly as the CLI does, so that a point is computed
    with the same device count (and the same numbers) on every backend.
    """
    factrecall.use_cpu_cores()
    # several workers may share one GPU: allocate on demand (no effect once JAX runs in this process)
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    from factrecall.core.provenance import device, versions

    started, t0 = _utc(), time.perf_counter()
    try:
        metrics, status, reason = task(dict(point), update or _quiet_update), "done", None
        json.dumps(metrics, default=str)
    except Exception as exc:  # a failed point is recorded and the sweep goes on
        metrics, status, reason = {}, "failed", f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    return Outcome(
        status, reason, metrics, versions(), device(), socket.gethostname(), started, _utc(), seconds
    )


# ---------------------------------------------------------------------------------------------- backends


def _local(task: Task, todo: list[dict[str, Any]], update: Update, base: int, total: int) -> Iterator:
    for i, point in enumerate(todo):
        label = ", ".join(f"{k}={v}" for k, v in point.items() if k in ("panel", "model", "d", "m", "H", "S"))

        def inner(r: int, n: int, status: str, i: int = i, label: str = label) -> None:
            update(base + i + min(r / max(n, 1), 0.99), total, f"{label}: round {r}/~{n}")

        yield point, execute(task, point, inner)


def _processes(task: Task, todo: list[dict[str, Any]], workers: int) -> Iterator:
    import concurrent.futures as cf
    import multiprocessing

    try:
        pickle.dumps(task)
    except Exception as exc:
        raise ConfigError(
            f"backend 'processes' needs a module-level run function, got {task!r} ({exc}); "
            "use --backend local or ray"
        ) from exc
    ctx = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(execute, task, p): p for p in todo}
        try:
            for future in cf.as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()


def _ray(task: Task, todo: list[dict[str, Any]], workers: int, address: str | None) -> Iterator:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("backend 'ray' needs Ray: pip install 'factrecall[ray]'") from exc
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": workers}
        ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
    try:
        gpu = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(num_cpus=1, num_gpus=gpu, max_retries=0)(execute)
        pending = {remote.remote(task, p): p for p in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                yield pending.pop(ref), ray.get(ref)
    finally:
        if started:
            ray.shutdown()


# ------------------------------------------------------------------------------------------------ driver


class SweepSummary(NamedTuple):
    """Counts of one call of :func:`run_points`."""

    total: int
    skipped: int
    done: int
    failed: int
    seconds: float


def run_points(
    store: Store,
    sweep: str,
    scale: str,
    experiment: str,
    points: list[dict[str, Any]],
    task: Task,
    *,
    backend: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    resume: bool = True,
    retry_failed: bool = False,
    quiet: bool = False,
) -> SweepSummary:
    """Run the points of ``sweep`` missing from ``store`` with ``task`` and record each as it finishes.

    Args:
        store: where rows go (written by this process only).
        sweep, scale: the row key's first parts; with the point's canonical JSON they identify a row.
        experiment: recorded with each row (e.g. ``memory_capacity`` or ``figure:fig1``).
        points: JSON-able dicts; duplicates count once.
        task: ``task(point, update) -> metrics``.
        backend: ``local`` (this process), ``processes`` (spawned local processes) or ``ray``.
        workers: parallel workers of ``processes``/``ray`` (default: CPU cores).
        ray_address: a Ray cluster to join (default: start a local one).
        resume: without it, a sweep already in the store is an error rather than continued.
        retry_failed: rerun points stored as failed.
        quiet: no progress bar.

    Raises:
        ConfigError: unknown backend, points not JSON-able, or the sweep exists and ``resume`` is unset.
    """
    check(backend in BACKENDS, f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    check(workers is None or workers >= 1, f"workers must be ≥ 1, got {workers}")
    unique: dict[str, dict[str, Any]] = {}
    for i, p in enumerate(points):
        try:
            unique.setdefault(point_key(p), p)
        except TypeError as exc:
            raise ConfigError(f"point {i} of {sweep!r} is not JSON-able: {exc}") from exc
    stored = store.statuses(sweep, scale)
    check(
        resume or not stored,
        f"store {store.path} already holds {len(stored)} points of sweep {sweep!r}; "
        "pass --resume to continue it, or choose another --store or sweep name",
    )
    keep = {"done"} if retry_failed else {"done", "failed"}
    todo = [p for k, p in unique.items() if stored.get(k) not in keep]
    total, skipped = len(unique), len(unique) - len(todo)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    done = failed = 0
    t0 = time.perf_counter()
    with bar(f"{sweep} ({scale})" if scale != NO_SCALE else sweep, total, quiet=quiet) as update:
        update(skipped, total, f"{skipped} points already in {store.path.name}")
        if backend == "local" or not todo:  # nothing to run: no pool, no Ray cluster
            results = _local(task, todo, update, skipped, total)
        elif backend == "processes":
            results = _processes(task, todo, workers)
        else:
            results = _ray(task, todo, workers, ray_address)
        for point, out in results:
            store.record(Record(sweep, scale, experiment, point, *out))
            done, failed = done + (out.status == "done"), failed + (out.status == "failed")
            note = "" if out.status == "done" else f" (failed: {out.reason})"[:60]
            update(skipped + done + failed, total, f"{done + failed}/{len(todo)} run{note}")
    return SweepSummary(total, skipped, done, failed, time.perf_counter() - t0)


def run_sweep(cfg: config.SweepConfig, store: Store, **kwargs: Any) -> SweepSummary:
    """Run an experiment sweep (a :class:`~factrecall.experiments.config.SweepConfig` with ``experiment``)."""
    assert cfg.experiment is not None and cfg.name is not None
    points = checked_points(cfg)
    return run_points(
        store, cfg.name, NO_SCALE, cfg.experiment, points, EXPERIMENTS[cfg.experiment].run, **kwargs
    )
