"""Sweeps: failures are recorded and the sweep goes on; kill -9 then --resume loses and duplicates
nothing; the process and Ray backends give exactly the local backend's numbers."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factrecall.core.errors import ConfigError
from factrecall.experiments import config, sweeps
from factrecall.experiments.store import Store

# subprocess and Ray start processes while JAX's threads run; they exec at once, so fork is safe here
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
SRC = str(Path(sweeps.__file__).parents[2])


def _sweep_file(tmp_path, d_values, method="hebbian", extra=""):
    path = tmp_path / "s.toml"
    path.write_text(
        f'experiment = "memory_capacity"\nname = "t"\n[base]\nmodel = "linear"\nmethod = "{method}"\n'
        f"seeds = [0, 1]\n{extra}[grid]\nd = {list(d_values)}\n"
    )
    return path


def _table(store_path):
    """The sweep's results, without what legitimately differs between runs (timings, dates, host)."""
    with Store(store_path) as store:
        rows = store.rows()
    out = {}
    for r in rows:
        metrics = {k: v for k, v in r["metrics"].items() if k != "seconds"}
        out[r["point_key"]] = (r["status"], r["reason"], metrics)
    return out, len(rows)


def _fails_on_d6(point, update):
    if point["d"] == 6:
        raise RuntimeError("d = 6 is cursed")
    return {"d2": point["d"] ** 2}


def test_a_failed_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    points = [{"d": d} for d in (4, 6, 8, 4)]  # the duplicate counts once
    with Store(tmp_path / "r.db") as store:
        summary = sweeps.run_points(store, "t", "-", "toy", points, _fails_on_d6, quiet=True)
        assert (summary.total, summary.done, summary.failed) == (3, 2, 1)
        rows = store.rows()
        assert [(r["point"]["d"], r["status"]) for r in rows] == [(4, "done"), (6, "failed"), (8, "done")]
        assert rows[1]["reason"] == "RuntimeError: d = 6 is cursed"
        # rerun: nothing to do, unless failed points are retried
        again = sweeps.run_points(store, "t", "-", "toy", points, _fails_on_d6, quiet=True)
        assert (again.skipped, again.done, again.failed) == (3, 0, 0)
        retry = sweeps.run_points(store, "t", "-", "toy", points, _fails_on_d6, quiet=True, retry_failed=True)
        assert (retry.skipped, retry.failed) == (2, 1) and len(store.rows()) == 3
        with pytest.raises(ConfigError, match="resume the sweep"):
            sweeps.run_points(store, "t", "-", "toy", points, _fails_on_d6, quiet=True, resume=False)


def _cli(*args, env=None):
    env = env if env is not None else os.environ
    env = {**env, "PYTHONPATH": SRC + os.pathsep + env.get("PYTHONPATH", "")}
    code = "from factrecall.cli import main; main()"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, stderr=subprocess.PIPE)


def test_a_sweeps_worker_processes_share_the_commands_compilation_cache(tmp_path):
    # no cache directory in the environment: the command's default one, under XDG_CACHE_HOME
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    cfg = _sweep_file(tmp_path, [4, 6], method="trained", extra="n_steps = 64\n")
    argv = ["sweep", str(cfg), "--store", str(tmp_path / "r.db"), "--backend", "processes", "--workers", "2"]
    proc = _cli(*argv, "-q", env=env)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    cache = tmp_path / "xdg" / "factrecall" / "jax"
    # only the workers train: their training programs are in the cache, each with its access time (bounded)
    trained = [p.name for p in cache.glob("jit_train-*-cache")]
    assert trained and all((cache / name.replace("-cache", "-atime")).exists() for name in trained)


def _count(db):
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    d_values = range(4, 10)  # six points: the kill lands after two, with four left
    cfg = _sweep_file(tmp_path, d_values)
    db = tmp_path / "killed.db"
    proc = _cli("sweep", str(cfg), "--store", str(db), "-q")
    deadline = time.time() + 120
    while _count(db) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _count(db)
    assert proc.returncode == -signal.SIGKILL
    assert 2 <= killed_at < len(d_values), "the kill must land in the middle of the sweep"

    resumed = _cli("sweep", str(cfg), "--store", str(db), "--resume", "-q")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()

    with Store(tmp_path / "straight.db") as store:  # the same sweep, uninterrupted, in this process
        sweeps.run_sweep(config.load_sweep(cfg), store, quiet=True)
    table, n_rows = _table(db)
    reference, _ = _table(tmp_path / "straight.db")
    assert n_rows == len(d_values) == len(table), "0 lost, 0 duplicated"
    assert table == reference


@pytest.mark.slow
def test_processes_and_ray_backends_equal_local(tmp_path):
    """Trained memories (the padded-shape planner at work): the same seeds give the same numbers."""
    cfg = config.load_sweep(_sweep_file(tmp_path, [4, 6], method="trained", extra="n_steps = 256\n"))
    tables = {}
    for backend in ("local", "processes", "ray"):
        with Store(tmp_path / f"{backend}.db") as store:
            summary = sweeps.run_sweep(cfg, store, backend=backend, workers=2, quiet=True)
        assert summary.done == 2, backend
        tables[backend] = _table(tmp_path / f"{backend}.db")[0]
    assert all(status == "done" for status, _, _ in tables["local"].values())
    assert tables["processes"] == tables["local"]
    assert tables["ray"] == tables["local"]
