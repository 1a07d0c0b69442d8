"""Every experiment can be swept from TOML (a grid or points): transformer training and capacity,
constructions and dynamics, besides the memory capacities; bad points fail before anything is written."""

import json

import pytest

from factrecall.cli import main
from factrecall.experiments import config, sweeps
from factrecall.experiments.store import Store


def _sweep(tmp_path, experiment, base, grid=""):
    path = tmp_path / "s.toml"
    path.write_text(f'experiment = "{experiment}"\nname = "t"\n[base]\n{base}' + (grid and f"[grid]\n{grid}"))
    return config.load_sweep(path)


def _run(tmp_path, cfg):
    with Store(tmp_path / "r.db") as store:
        summary = sweeps.run_sweep(cfg, store, quiet=True)
        rows = store.rows()
    assert summary.failed == 0, [r["reason"] for r in rows]
    return rows


def test_transformer_train_points_match_the_train_command(tmp_path, capsys, tiny):
    fields, flags, params = tiny  # the suite's tiny transformer (tests/conftest.py)
    base = "".join(f"{k} = {config.toml_value(v)}\n" for k, v in fields.items())
    rows = _run(tmp_path, _sweep(tmp_path, "transformer_train", base, "seed = [0, 1]\n"))
    assert [r["point"]["seed"] for r in rows] == [0, 1] and all(r["status"] == "done" for r in rows)
    first = rows[0]["metrics"]
    assert first["fact_accuracy"] >= 0.99 and first["params"] == params == 4 * 2 * 4 * 16 + 2 * 16 * 16
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "transformer", *flags, "--seed", "0", "--json"])
    assert exit_info.value.code == 0
    cli = json.loads(capsys.readouterr().out)
    assert (cli["fact_accuracy"], cli["steps"], cli["lr"]) == (
        first["fact_accuracy"],
        first["steps"],
        first["lr"],
    )


def test_construction_and_dynamics_points(tmp_path):
    # the points of Figure "constructions" in tests/recall/test_constructed.py (so the same programs); the
    # dynamics point is trajectory's example (its doctest)
    base = "S = 4\nR = 4\nD = 2\nprecision = 0.2\n"
    points = '[[points]]\nmechanism = "attention"\n'
    points += '[[points]]\nmechanism = "hybrid"\nattention_share = 0.5\nmlp_ratio = 1.0\n'
    rows = _run(tmp_path, _sweep(tmp_path, "construction", base + points))
    assert [r["point"]["mechanism"] for r in rows] == ["attention", "hybrid"]
    assert all(r["metrics"]["facts_stored"] == 1.0 and r["metrics"]["params"] > 0 for r in rows)
    assert rows[1]["point"]["attention_share"] == 0.5 and rows[0]["point"]["n_contexts"] == 8  # defaults
    (tmp_path / "r.db").unlink()
    base = "S = 4\nR = 2\nD = 2\nB = 64\nn_steps = 128\nn_test = 256\n"
    (row,) = _run(tmp_path, _sweep(tmp_path, "dynamics", base))
    assert row["metrics"]["steps"] == [0, 64, 128] and "stages" in row["metrics"]
    assert row["point"]["model"] == "simplified" and row["point"]["d_h"] == 16  # defaults resolved


def test_transformer_capacity_point(tmp_path, tiny_capacity):
    fields, params = tiny_capacity.fields, tiny_capacity.params  # the suite's (tests/conftest.py)
    base = "".join(f"{k} = {config.toml_value(v)}\n" for k, v in fields.items())
    (row,) = _run(tmp_path, _sweep(tmp_path, "transformer_capacity", base))
    metrics = row["metrics"]
    assert metrics["facts"] == metrics["S"] * metrics["R"] >= 2 and metrics["trials"] >= 2
    assert metrics["params"] == params == 4 * 1 * 1 * 4 + 2 * 2 * 4


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
