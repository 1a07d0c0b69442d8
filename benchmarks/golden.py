"""Golden numbers: a fixed list of small commands whose every metric must stay bit-identical across refactors.

Each command runs the installed ``factrecall`` CLI in its own process (as a user runs it, one CPU device per
core) and its JSON record is reduced to the numbers: wall times, paths, the provenance block and other
machine-dependent keys are dropped (:data:`VOLATILE`). ``--record`` writes ``benchmarks/golden.json``;
without it, the script compares every metric with the recorded values and prints each difference.

The numbers only have to agree on the same machine with the same JAX device count (the recorded file says
which, with the CPU's model; a different CPU may round differently); floats are compared exactly, as their
JSON text. On another machine, record a baseline of the unchanged tree first (``--record --file``) and
compare the change with it.

Usage::

    python benchmarks/golden.py            # compare with benchmarks/golden.json; exit 1 on any difference
    python benchmarks/golden.py --record   # (re)write benchmarks/golden.json
    python benchmarks/golden.py --only capacity-linear   # a subset, by name
    git stash && python benchmarks/golden.py --record --file /tmp/here.json && git stash pop
    python benchmarks/golden.py --file /tmp/here.json   # this machine's baseline
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden.json"
FACTS = HERE.parent / "examples" / "countries.csv"

# keys whose values depend on the machine, the clock or the output folder, not on the computation
VOLATILE = {
    "seconds",
    "run",
    "files",
    "saved",
    "store",
    "model",
    "source",
    "started_utc",
    "finished_utc",
    "host",
    "device",
    "versions",
    "compile_seconds",
    "train_seconds",
}

SWEEP_TOML = """\
experiment = "memory_capacity"
name = "golden"
[base]
model = "linear"
seeds = [0]
[grid]
d = [8, 11]
"""

TABLE_CSV = """\
subject,relation,answer
a,r1,x
a,r2,p
b,r1,y
b,r2,q
c,r1,x
c,r2,p
d,r1,z
d,r2,q
"""


# one small point of every paper figure, run through `factrecall sweep` of a figure config
FIGURE_POINTS = {
    "fig1": [
        '{panel = "linear", model = "linear", d = 8, seeds = [0]}',
        '{panel = "mlp", model = "mlp", d = 6, m = 12, alpha = 2, seeds = [0], n_steps = 4096, '
        "precision = 0.03}",
    ],
    "fig6": [
        '{panel = "mlp_fixed_M", model = "mlp", d = 6, m = 12, alpha = 2, M = 32, seeds = [0], '
        "n_steps = 4096, precision = 0.03}"
    ],
    "fig4": [
        '{panel = "fig4", d = 8, H = 8, d_h = 1, m = 8, attention_ratio = 1.0, mlp_ratio = 1.0, batch = 64, '
        'n_steps = 512, lrs = [0.03], seeds = [0], scaling = "linear"}'
    ],
    "fig4-tradeoff": [
        '{panel = "tradeoff", d = 16, D = 4, seeds = [0], S = 6, d_h = 2, Hs = [1, 2], ms = [1, 8], '
        "batch = 64, n_steps = 256, lrs = [0.03]}"
    ],
    "constructions": [
        '{panel = "scaling", mechanism = "attention", S = 4, R = 4, D = 8, seeds = [0], precision = 0.05}',
        '{panel = "hybrid", mechanism = "hybrid", S = 4, R = 4, D = 8, attention_share = 0.5, '
        "mlp_ratio = 2.0, seeds = [0], precision = 0.05}",
    ],
    "fig5": ["{S = 8, R = 4, D = 8, lr = 0.4, n_steps = 1024}"],
    "plateau": ["{S = 8, R = 4, D = 8, alpha_S = 0.0, lr = 0.4, n_steps = 1024}"],
    "planner-scaling": ['{family = "mlp-heavy", d = 8}'],
    "attribution-tradeoff": ['{H = 2, m = 16, d = 16, scale = "quick"}'],
}


def figure_toml(name: str) -> str:
    points = "\n".join(f"points = [{', '.join(FIGURE_POINTS[name])}]".splitlines())
    return f'figure = "{name}"\nscale = "quick"\n{points}\n'


def commands(tmp: Path) -> dict[str, list[str]]:
    """Name → argv (without the program name). Small sizes: the whole list runs in a few minutes."""
    model = str(tmp / "m.npz")
    return {
        "capacity-linear": ["capacity", "linear", "--d", "8", "--seeds", "2"],
        "capacity-linear-rank": ["capacity", "linear", "--d", "12", "--rank", "4", "--seeds", "1"],
        "capacity-hebbian": ["capacity", "linear", "--d", "16", "--method", "hebbian", "--criterion", "1.0"],
        "capacity-mlp": ["capacity", "mlp", "--d", "8", "--width", "8", "--seeds", "2"],
        "capacity-mlp-outputs": [
            *("capacity", "mlp", "--d", "8", "--width", "8", "--outputs", "8", "--seeds", "1"),
            *("--steps", "4096"),
        ],
        "capacity-mlp-construction": [
            "capacity",
            "mlp",
            "--d",
            "8",
            "--width",
            "32",
            "--method",
            "construction",
        ],
        "train-transformer": [
            *("train", "transformer", "--d", "16", "--heads", "2", "--head-dim", "4", "--width", "16"),
            *("--subjects", "6", "--relations", "5", "--answers-per-relation", "4", "--seq-len", "8"),
            *("--steps", "512", "--batch", "128", "--lr", "0.01", "--lr", "0.03", "--save", model),
        ],
        "eval": ["eval", model, "--contexts", "4"],
        "attribute": ["attribute", model, "--contexts", "4"],
        "query": ["query", model, "--subject", "s1", "--relation", "r2"],
        "capacity-transformer": [
            *("capacity", "transformer", "--d", "8", "--heads", "2", "--head-dim", "4", "--width", "8"),
            *("--answers-per-relation", "4", "--steps", "256", "--batch", "64", "--patience", "128"),
        ],
        "construct": [
            *("construct", "transformer", "--mechanism", "attention"),
            *("--subjects", "6", "--relations", "6", "--d", "48"),
        ],
        "construct-find-min": [
            *("construct", "transformer", "--mechanism", "mlp", "--subjects", "4", "--relations", "4"),
            "--find-min",
        ],
        "dynamics": ["dynamics", "--steps", "1024", "--subjects", "8", "--out", str(tmp / "dyn")],
        "plan": ["plan", str(FACTS)],
        "plan-train": [
            *("plan", str(tmp / "table.csv"), "--train", "--criterion", "0.9", "--max-tries", "1"),
        ],
        "sweep": ["sweep", str(tmp / "golden.toml"), "--store", str(tmp / "golden.db")],
        "export": ["export", "--store", str(tmp / "golden.db"), "--out", str(tmp / "golden.csv")],
        **{
            f"figure-{name}": ["sweep", str(tmp / f"{name}.toml"), "--store", str(tmp / f"{name}.db")]
            for name in FIGURE_POINTS
        },
    }


def _numbers(value: Any) -> Any:
    """``value`` with the volatile keys dropped, recursively."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def run_one(name: str, argv: list[str], tmp: Path) -> dict[str, Any]:
    exe = Path(sys.executable).parent / "factrecall"
    extra = [] if name == "export" else ["--json"]
    quiet = (
        ["--quiet"] if name.startswith(("capacity", "construct", "dynamics", "sweep", "plan-train")) else []
    )
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), *argv, *extra, *quiet], capture_output=True, text=True, cwd=tmp)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    if name == "export":
        return {
            "csv_columns": sorted((tmp / "golden.csv").read_text().splitlines()[0].split(",")),
            "_s": seconds,
        }
    record = json.loads(proc.stdout)
    if name == "sweep" or name.startswith("figure-"):  # the points' metrics live in the store
        import sqlite3

        store = tmp / ("golden.db" if name == "sweep" else f"{name.removeprefix('figure-')}.db")
        with sqlite3.connect(store) as db:
            rows = db.execute("SELECT point_key, status, metrics FROM results ORDER BY point_key").fetchall()
            schema = [
                r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            ]
        record = {
            "summary": {k: record[k] for k in ("total", "done", "failed")},
            "points": [[k, s, _numbers(json.loads(m))] for k, s, m in rows],
            "schema": schema,
        }
    return {**_numbers(record), "_s": seconds}


def _diff(path: str, want: Any, got: Any, out: list[str]) -> None:
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got)):
            if k not in got:
                out.append(f"{path}.{k}: missing (was {json.dumps(want[k])[:80]})")
            elif k not in want:
                out.append(f"{path}.{k}: new key (now {json.dumps(got[k])[:80]})")
            else:
                _diff(f"{path}.{k}", want[k], got[k], out)
    elif isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (a, b) in enumerate(zip(want, got, strict=True)):
            _diff(f"{path}[{i}]", a, b, out)
    elif json.dumps(want) != json.dumps(got):
        out.append(f"{path}: was {json.dumps(want)[:100]}, now {json.dumps(got)[:100]}")


def _cpu_model() -> str:
    """The CPU's model name (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write the golden file")
    parser.add_argument("--only", nargs="*", help="run only these commands (by name)")
    parser.add_argument(
        "--file",
        type=Path,
        default=GOLDEN,
        help="the golden file to compare with or record (default benchmarks/golden.json); on another "
        "machine, record a baseline of the unchanged tree to a file of its own and compare with it",
    )
    args = parser.parse_args()
    golden_file: Path = args.file
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "golden.toml").write_text(SWEEP_TOML)
        (tmp / "table.csv").write_text(TABLE_CSV)
        for figure in FIGURE_POINTS:
            (tmp / f"{figure}.toml").write_text(figure_toml(figure))
        cmds = commands(tmp)
        picked = args.only or list(cmds)
        unknown = [n for n in picked if n not in cmds]
        if unknown:
            parser.error(f"unknown command name(s) {unknown}; allowed: {', '.join(cmds)}")
        results: dict[str, Any] = {}
        for cmd in cmds:  # in order: eval/attribute/query read the trained model, export the sweep's store
            if cmd not in picked and not (
                (cmd == "train-transformer" and {"eval", "attribute", "query"} & set(picked))
                or (cmd == "sweep" and "export" in picked)
            ):
                continue
            results[cmd] = run_one(cmd, cmds[cmd], tmp)
            print(f"{cmd:28s} {results[cmd].pop('_s'):6.1f} s", flush=True)
    machine = {
        "cpu_devices": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
    }
    if args.record:  # with --only, only those entries are (re)recorded
        kept = json.loads(golden_file.read_text())["results"] if args.only and golden_file.exists() else {}
        results = {**kept, **{k: v for k, v in results.items() if k in picked}}
        golden_file.write_text(
            json.dumps({"machine": machine, "results": results}, indent=1, sort_keys=True) + "\n"
        )
        print(f"wrote {golden_file}")
        return 0
    golden = json.loads(golden_file.read_text())
    if golden["machine"] != machine:
        print(
            f"note: recorded on {golden['machine']}, running on {machine}: only the same machine must agree"
        )
    diffs: list[str] = []
    for cmd, got in results.items():
        if cmd in picked:
            _diff(cmd, golden["results"].get(cmd), got, diffs)
    print("\n".join(diffs) if diffs else f"identical: {len([c for c in results if c in picked])} commands")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
