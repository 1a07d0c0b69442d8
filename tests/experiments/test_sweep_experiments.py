"""Every experiment can be swept from TOML (a grid or points): transformer training and capacity,
constructions and dynamics, besides the memory capacities; bad points fail before anything is written."""

import json

import pytest

from factrecall.cli import main
from factrecall.experiments import config, sweeps
from factrecall.experiments.store import Store

TINY_TRAIN = "S = 4\nR = 4\nD = 2\nT = 6\nd = 16\nH = 2\nd_h = 4\nm = 16\n"
TINY_TRAIN += "n_steps = 512\nbatch = 128\nlrs = [1e-2, 3e-2]\n"


def _sweep(tmp_path, experiment, base, grid=""):
    path = tmp_path / "s.toml"
    path.write_text(
        f'experiment = "{experiment}"\nname = "t"\n[base]\n{base}' + (f"[grid]\n{grid}" if grid else "")
    )
    return config.load_sweep(path)


def _run(tmp_path, cfg):
    with Store(tmp_path / "r.db") as store:
        summary = sweeps.run_sweep(cfg, store, quiet=True)
        rows = store.rows()
    assert summary.failed == 0, [r["reason"] for r in rows]
    return rows


def test_transformer_train_points_match_the_train_command(tmp_path, capsys):
    rows = _run(tmp_path, _sweep(tmp_path, "transformer_train", TINY_TRAIN, "seed = [0, 1]\n"))
    assert [r["point"]["seed"] for r in rows] == [0, 1] and all(r["status"] == "done" for r in rows)
    first = rows[0]["metrics"]
    assert first["fact_accuracy"] >= 0.99 and first["params"] == 4 * 2 * 4 * 16 + 2 * 16 * 16
    flags = "--subjects 4 --relations 4 --answers-per-relation 2 --seq-len 6 --d 16 --heads 2 --head-dim 4"
    flags += " --width 16 --steps 512 --batch 128 --lr 1e-2 --lr 3e-2 --seed 0 --json"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "transformer", *flags.split()])
    assert exit_info.value.code == 0
    cli = json.loads(capsys.readouterr().out)
    assert (cli["fact_accuracy"], cli["steps"], cli["lr"]) == (
        first["fact_accuracy"],
        first["steps"],
        first["lr"],
    )


def test_construction_and_dynamics_points(tmp_path):
    base = "S = 4\nR = 4\nD = 2\nd_h = 4\nn_contexts = 2\nprecision = 0.2\n"
    rows = _run(tmp_path, _sweep(tmp_path, "construction", base, 'mechanism = ["attention", "mlp"]\n'))
    assert [r["point"]["mechanism"] for r in rows] == ["attention", "mlp"]
    assert all(r["metrics"]["facts_stored"] == 1.0 and r["metrics"]["params"] > 0 for r in rows)
    (tmp_path / "r.db").unlink()
    base = "S = 4\nR = 2\nD = 2\nB = 64\nn_steps = 128\nn_test = 256\nlr = 0.5\n"
    (row,) = _run(tmp_path, _sweep(tmp_path, "dynamics", base))
    assert row["metrics"]["steps"] == [0, 64, 128] and "stages" in row["metrics"]
    assert row["point"]["model"] == "simplified" and row["point"]["d_h"] == 16  # defaults resolved


def test_transformer_capacity_point(tmp_path):
    base = "d = 8\nH = 2\nd_h = 4\nm = 8\nD = 2\nn_steps = 256\nbatch = 64\nlrs = [3e-2]\npatience = 0\n"
    (row,) = _run(tmp_path, _sweep(tmp_path, "transformer_capacity", base))
    metrics = row["metrics"]
    assert metrics["facts"] == metrics["S"] * metrics["R"] >= 4 and metrics["trials"] >= 2
    assert metrics["params"] == 4 * 2 * 4 * 8 + 2 * 8 * 8


@pytest.mark.parametrize(
    ("experiment", "base", "needle"),
    [
        ("construction", 'mechanism = "attention"\nS = 4\nR = 4\nmlp_ratio = 1.0\n', "has no MLP"),
        ("dynamics", "n_steps = 100\n", "must be a multiple of eval_every"),
        ("transformer_train", "batch = 0\n", "batch: Input should be greater than or equal to 1"),
        ("transformer_capacity", 'scaling = "cubic"\n', "scaling: Input should be 'linear', 'square' or"),
        ("dynamics", "colour = 1\n", "colour: unknown key"),
    ],
)
def test_bad_points_exit_2_before_anything_is_written(tmp_path, capsys, experiment, base, needle):
    path = tmp_path / "s.toml"
    path.write_text(f'experiment = "{experiment}"\n[base]\n{base}')
    store = tmp_path / "r.db"
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(path), "--store", str(store)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: ") and needle in err, err
    assert not store.exists()
