"""Running points through the results store: serially, in local processes, or on Ray.

This module owns the running machinery: :func:`run_points` (any ``task(point, update) -> dict`` over a list
of points, skipping those already stored), :func:`execute` (one point in one process), the backends
(:data:`BACKENDS`), :class:`SweepSummary`, and the experiment sweeps of sweep files (:func:`checked_points`,
:func:`run_sweep`: each point is a model of :data:`factrecall.experiments.specs.EXPERIMENTS`, validated once
before anything runs). Every paper figure of :data:`factrecall.experiments.reproduce.FIGURES` goes through
the same :func:`run_points`.

A failed point (one that raises) is recorded as ``failed`` with its error and the sweep goes on; stored
points are skipped (failed ones too, unless ``retry_failed``). Only the coordinating process writes to the
store, one transaction per finished point. Only this module imports ``ray``, and only when the Ray backend is
asked for.

Paper: SPEC §8 (the same sweep definition runs in-process, across local processes, or on a Ray cluster).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import pickle
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import factrecall
from factrecall.core.devices import cpu_count
from factrecall.core.errors import ConfigError, check
from factrecall.core.progress import Update, bar
from factrecall.experiments import config, specs
from factrecall.experiments.store import Record, Store, point_key

Task = Callable[[dict[str, Any], Update], dict[str, Any]]
Head = tuple[str, str, str]  # a store row's (sweep, scale, experiment)
BACKENDS = ("local", "processes", "ray")
NO_SCALE = "-"  # the store's scale column for experiment sweeps (figures use quick/paper)


# ------------------------------------------------------------------------------------------- experiments


def checked_points(cfg: config.SweepConfig) -> list[dict[str, Any]]:
    """An experiment sweep's points, each validated by its experiment's model and resolved (defaults filled
    in): a :class:`ConfigError` names the point and the key before anything runs or is written."""
    assert cfg.experiment is not None, "checked_points() is for experiment sweeps"
    check(
        cfg.experiment in specs.EXPERIMENTS,
        f"experiment: unknown experiment {cfg.experiment!r}; allowed: {', '.join(specs.EXPERIMENTS)}",
    )
    model = specs.EXPERIMENTS[cfg.experiment]
    return [
        specs.build(model, p, f"point {i} {config.point_label(p)}").model_dump()
        for i, p in enumerate(config.expand(cfg))
    ]


def run_experiment(experiment: str, point: dict[str, Any], update: Update) -> dict[str, Any]:
    """Run one resolved point of ``experiment`` (from :func:`checked_points`: trusted, not checked again)."""
    return specs.EXPERIMENTS[experiment].model_construct(**point).run(update)


# --------------------------------------------------------------------------------------------- one point


def _utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _quiet_update(done: int, total: int, status: str) -> None:
    del done, total, status


def execute(
    task: Task, point: dict[str, Any], update: Update | None = None, head: Head = ("", "", "")
) -> Record:
    """Run one point in this process and return its store row (what a worker sends back to the
    coordinator, which writes it); an exception becomes a ``failed`` row.

    Workers expose every CPU core as a JAX device, exactly as the CLI does, so that a point is computed
    with the same device count (and the same numbers) on every backend.

    Args:
        task, point: ``task(point, update) -> metrics``.
        update: progress of the point (default: none shown).
        head: the row's (sweep, scale, experiment).
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
    return Record(
        *head,
        point,
        status,
        reason,
        metrics,
        versions(),
        device(),
        socket.gethostname(),
        started,
        _utc(),
        seconds,
    )


# ---------------------------------------------------------------------------------------------- backends


def _local(
    task: Task, todo: list[dict[str, Any]], head: Head, update: Update, base: int, total: int
) -> Iterator[Record]:
    for i, point in enumerate(todo):
        label = ", ".join(f"{k}={v}" for k, v in point.items() if k in ("panel", "model", "d", "m", "H", "S"))

        def inner(r: int, n: int, status: str, i: int = i, label: str = label) -> None:
            update(base + i + min(r / max(n, 1), 0.99), total, f"{label}: round {r}/~{n}")

        yield execute(task, point, inner, head)


def _processes(task: Task, todo: list[dict[str, Any]], head: Head, workers: int) -> Iterator[Record]:
    import concurrent.futures as cf
    import multiprocessing

    try:
        pickle.dumps(task)
    except Exception as exc:
        raise ConfigError(
            f"backend 'processes' needs a module-level run function, got {task!r} ({exc}); "
            "use the local or ray backend"
        ) from exc
    ctx = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(execute, task, p, None, head) for p in todo]
        try:
            for future in cf.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _ray(
    task: Task, todo: list[dict[str, Any]], head: Head, workers: int, address: str | None
) -> Iterator[Record]:
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
        pending = [remote.remote(task, p, None, head) for p in todo]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                yield ray.get(ref)
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
        backend: ``local`` (this process), ``processes`` (spawned local processes) or ``ray`` (one of
            :data:`BACKENDS`; the caller checked it, as the CLI does).
        workers: parallel workers (≥ 1) of ``processes``/``ray`` (default: CPU cores).
        ray_address: a Ray cluster to join (default: start a local one).
        resume: without it, a sweep already in the store is an error rather than continued.
        retry_failed: rerun points stored as failed.
        quiet: no progress bar.

    Raises:
        ConfigError: points not JSON-able, or the sweep exists and ``resume`` is unset.
    """
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
        "resume the sweep, or choose another store or sweep name",
    )
    keep = {"done"} if retry_failed else {"done", "failed"}
    todo = [p for k, p in unique.items() if stored.get(k) not in keep]
    total, skipped = len(unique), len(unique) - len(todo)
    workers = workers or cpu_count()
    done = failed = 0
    t0 = time.perf_counter()
    with bar(f"{sweep} ({scale})" if scale != NO_SCALE else sweep, total, quiet=quiet) as update:
        update(skipped, total, f"{skipped} points already in {store.path.name}")
        head = (sweep, scale, experiment)
        if backend == "local" or not todo:  # nothing to run: no pool, no Ray cluster
            rows = _local(task, todo, head, update, skipped, total)
        elif backend == "processes":
            rows = _processes(task, todo, head, workers)
        else:
            rows = _ray(task, todo, head, workers, ray_address)
        for row in rows:
            store.record(row)
            done, failed = done + (row.status == "done"), failed + (row.status == "failed")
            note = "" if row.status == "done" else f" (failed: {row.reason})"[:60]
            update(skipped + done + failed, total, f"{done + failed}/{len(todo)} run{note}")
    return SweepSummary(total, skipped, done, failed, time.perf_counter() - t0)


def run_sweep(
    cfg: config.SweepConfig, store: Store, points: list[dict[str, Any]] | None = None, **kwargs: Any
) -> SweepSummary:
    """Run an experiment sweep (a :class:`~factrecall.experiments.config.SweepConfig` with ``experiment``).

    Args:
        cfg: the sweep.
        store: where its rows go.
        points: its points from :func:`checked_points` when the caller has them already (else checked here).
        **kwargs: for :func:`run_points` (backend, workers, ray_address, resume, retry_failed, quiet).
    """
    assert cfg.experiment is not None and cfg.name is not None
    points = checked_points(cfg) if points is None else points
    task = functools.partial(run_experiment, cfg.experiment)
    return run_points(store, cfg.name, NO_SCALE, cfg.experiment, points, task, **kwargs)
