"""Run a list of points through the results store: serially, in local processes, or on Ray.

Any ``run(point, update) -> dict`` callable can be swept: the registered experiments of :data:`EXPERIMENTS`
(``factrecall sweep CONFIG.toml``) and every paper figure of :data:`factrecall.reproduce.FIGURES` go through
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
from factrecall import config
from factrecall.errors import ConfigError, check
from factrecall.progress import Update, bar
from factrecall.store import Record, Store, point_key

Task = Callable[[dict[str, Any], Update], dict[str, Any]]
BACKENDS = ("local", "processes", "ray")
NO_SCALE = "-"  # the store's scale column for experiment sweeps (figures use quick/paper)


# ------------------------------------------------------------------------------------------- experiments


def run_memory_capacity(point: dict[str, Any], update: Update) -> dict[str, Any]:
    """One :class:`~factrecall.config.MemoryCapacityPoint`: N* per seed of a linear or MLP memory."""
    from factrecall.capacity import capacity, recipe

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


class Experiment(NamedTuple):
    """A sweepable experiment: its point model lives in :data:`factrecall.config.POINT_MODELS` under
    ``name``; ``run`` is a module-level function (so that process and Ray workers can import it)."""

    name: str
    run: Task
    description: str


EXPERIMENTS: dict[str, Experiment] = {
    "memory_capacity": Experiment(
        "memory_capacity", run_memory_capacity, "capacity N* of a linear or MLP memory (paper §3)"
    ),
}


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
    from factrecall.provenance import device, versions

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
    """Run an experiment sweep (a :class:`~factrecall.config.SweepConfig` with ``experiment``)."""
    assert cfg.experiment is not None and cfg.name is not None
    check(
        cfg.experiment in EXPERIMENTS,
        f"experiment {cfg.experiment!r} has a point model but no runner; allowed: {', '.join(EXPERIMENTS)}",
    )
    points = config.expand(cfg)
    return run_points(
        store, cfg.name, NO_SCALE, cfg.experiment, points, EXPERIMENTS[cfg.experiment].run, **kwargs
    )
