"""Sweep definitions: validation errors name the key, exit 2 through the CLI, and write nothing."""

import pytest
from pydantic import ValidationError

from factrecall.cli import main
from factrecall.experiments import config

GOOD = """
experiment = "memory_capacity"
name = "tiny"
[base]
model = "linear"
method = "hebbian"
seeds = [0]
[grid]
d = [4, 6]
"""


def _cli_error(tmp_path, capsys, text, *extra):
    path = tmp_path / "sweep.toml"
    if text is not None:
        path.write_text(text)
    store = tmp_path / "results.db"
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(path), "--store", str(store), *extra])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ")
    assert not store.exists(), "nothing may be written on bad input"
    return err


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('experiment = "memory_capacity"\n[grid\nd = [4]', "not valid TOML"),
        ('colour = "red"\n' + GOOD, "colour: unknown key"),
        (GOOD + "colour = [1]\n", "point 0 {"),
        (GOOD.replace("d = [4, 6]", "d = [4, -6]"), "d: Input should be greater than or equal to 1 (got -6)"),
        (GOOD.replace("seeds = [0]", 'seeds = "zero"'), "seeds: Input should be a valid list"),
        (GOOD.replace('method = "hebbian"', 'method = "hebbian"\nwidth = 3'), "width: unknown key"),
        (GOOD.replace('"memory_capacity"', '"nope"'), "unknown experiment 'nope'; allowed: memory_capacity"),
        (GOOD.replace('"hebbian"', '"construction"'), "method for linear must be one of trained, hebbian"),
        ('figure = "fig99"\nscale = "quick"\n[[points]]\nd = 4\n', "unknown figure 'fig99'"),
        ('figure = "fig1"\nscale = "huge"\n', "scale: Input should be 'quick', 'medium' or 'paper'"),
        (
            'figure = "fig1"\nscale = "medium"\n',
            "figure fig1 has no scale 'medium'; its scales: quick, paper",
        ),
    ],
)
def test_bad_sweep_files_exit_2_naming_the_key(tmp_path, capsys, text, needle):
    assert needle in _cli_error(tmp_path, capsys, text)


def test_missing_file_exits_2(tmp_path, capsys):
    assert "does not exist" in _cli_error(tmp_path, capsys, None)


def test_bad_backend_exits_2(tmp_path, capsys):
    assert "--backend must be one of local, processes, ray" in _cli_error(
        tmp_path, capsys, GOOD, "--backend", "slurm"
    )


@pytest.mark.parametrize(
    ("point", "needle"),
    [
        ({"panel": "linear", "model": "linear", "d": 8, "seeds": [0], "colour": 1}, "unknown key 'colour'"),
        ({"panel": "linear", "model": "linear", "d": "eight", "seeds": [0]}, "d must be int"),
        ({"panel": "linear", "model": "linear", "d": -8, "seeds": [0]}, "d must be ≥ 1, got -8"),
        ({"panel": "linear", "model": "linear", "seeds": [0]}, "missing key(s) d"),
    ],
)
def test_figure_points_are_checked_against_the_figures_own(tmp_path, capsys, point, needle):
    lines = ['figure = "fig1"', 'scale = "quick"', "", "[[points]]"]
    lines += [f"{k} = {config.toml_value(v)}" for k, v in point.items()]
    err = _cli_error(tmp_path, capsys, "\n".join(lines) + "\n")
    assert "points[0] of figure fig1" in err and needle in err


def test_expand_is_the_grid_product_in_order_then_points(tmp_path):
    from factrecall.experiments import sweeps

    path = tmp_path / "s.toml"
    path.write_text(GOOD.replace("d = [4, 6]", "d = [4, 6]\ntop_k = [1, 2]") + "[[points]]\nd = 9\n")
    cfg = config.load_sweep(path)
    assert [(p["d"], p.get("top_k")) for p in config.expand(cfg)] == [
        (4, 1),
        (4, 2),
        (6, 1),
        (6, 2),
        (9, None),
    ]
    points = sweeps.checked_points(cfg)
    assert [(p["d"], p["top_k"]) for p in points] == [(4, 1), (4, 2), (6, 1), (6, 2), (9, 1)]
    assert all(p["criterion"] == 0.99 and p["method"] == "hebbian" for p in points)  # defaults resolved
    assert cfg.name == "tiny"
    with pytest.raises(ValidationError, match="frozen"):
        cfg.__setattr__("name", "other")


def test_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my_sweep.toml"
    path.write_text(GOOD.replace('name = "tiny"\n', ""))
    assert config.load_sweep(path).name == "my_sweep"


def test_a_sweep_with_a_failed_point_finishes_the_others_and_exits_1(tmp_path, capsys, monkeypatch):
    """A point that raises is recorded as failed with its reason; the sweep goes on, then exits 1."""
    from factrecall.experiments.specs import MemoryCapacityPoint
    from factrecall.experiments.store import Store

    real = MemoryCapacityPoint.run

    def fails_at_d6(point, update=None):
        if point.d == 6:
            raise FloatingPointError("loss became NaN")
        return real(point, update)

    monkeypatch.setattr(MemoryCapacityPoint, "run", fails_at_d6)
    path = tmp_path / "sweep.toml"
    path.write_text(GOOD)
    store = tmp_path / "results.db"
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(path), "--store", str(store), "--quiet", "--json"])
    assert exit_info.value.code == 1
    assert "error: 1 of 2 points failed" in capsys.readouterr().err
    with Store(store) as db:
        rows = sorted((r["point"]["d"], r["status"]) for r in db.rows())
    assert rows == [(4, "done"), (6, "failed")]
