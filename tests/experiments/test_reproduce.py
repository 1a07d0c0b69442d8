import json
import shutil
import sqlite3

import pyarrow.parquet as pq
import pytest

from factrecall.cli import main
from factrecall.experiments import reproduce
from factrecall.experiments.store import Store

# fig1 with three cheap points instead of the quick grid: two trained linear memories and a trained MLP, the
# searches of `capacity linear --d 8 --seeds 2` (tests/cli) and of tests/memories/test_capacity.py (their
# compiled programs)
TINY_FIG1 = [
    {"panel": "linear", "model": "linear", "d": 8, "seeds": [0, 1]},
    {"panel": "linear", "model": "linear", "d": 16, "seeds": [0, 1, 2]},
    {
        "panel": "mlp",
        "model": "mlp",
        "d": 4,
        "m": 4,
        "alpha": 1,
        "M": None,
        "seeds": [0, 1, 2],
        "n_steps": 2048,
    },
]


def _tiny_fig1():
    return reproduce.FIGURES["fig1"]._replace(points=lambda scale: TINY_FIG1)


@pytest.fixture
def tiny_fig1(monkeypatch):
    """fig1 reduced to :data:`TINY_FIG1` for the test."""
    monkeypatch.setitem(reproduce.FIGURES, "fig1", _tiny_fig1())
    return TINY_FIG1


@pytest.fixture(scope="module")
def fig1_once(tmp_path_factory):
    """The tiny fig1 reproduced once for the module: (its folder, its report); tests that change the folder
    work on a copy (:func:`fig1_done`)."""
    out = tmp_path_factory.mktemp("fig1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(reproduce.FIGURES, "fig1", _tiny_fig1())
        report = reproduce.run("fig1", out=out, quiet=True)
    return out, report


@pytest.fixture
def fig1_done(fig1_once, tmp_path, tiny_fig1):
    """A copy, in this test's folder, of what ``reproduce fig1`` wrote (store, data, figures, report)."""
    shutil.copytree(fig1_once[0], tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_reproduce_writes_store_data_figures_and_report(fig1_once, tiny_fig1):
    tmp_path, report = fig1_once
    for name in ("fig1.csv", "fig1.json", "fig1.png", "fig1.pdf", "fig1_vs_paper.csv", "report.html"):
        assert (tmp_path / name).stat().st_size > 0, name
    with Store(tmp_path / "results.db") as store:
        rows = store.rows(sweep="fig1", scale="quick")
    assert [r["point"] for r in rows] == tiny_fig1 and {r["status"] for r in rows} == {"done"}
    assert all(r["versions"]["jax"] and r["device"].startswith("cpu") for r in rows)
    assert all(r["seeds"] == p["seeds"] for r, p in zip(rows, tiny_fig1))
    text = report.read_text()
    assert "d² / (N log N)" in text and "| 1.3 |" in text
    glance, _, sections = text.partition("## Figure 1")
    assert "## The paper's constants at a glance" in glance and "| linear: d² / (N log N) |" in sections
    lines = {r.split(" | ")[0][2:]: r for r in glance.splitlines() if r.startswith("| ")}
    assert "| fig1 (quick) |" in lines["linear memory: d² / (N log N) at capacity"]
    assert "| 1.3 |" in lines["linear memory: d² / (N log N) at capacity"]
    assert "| not measured | — | fig4 |" in lines["trained transformer: facts stored per parameter"]
    assert len((tmp_path / "fig1.csv").read_text().strip().splitlines()) == 4
    assert "d² / (N log N)" in (tmp_path / "report.html").read_text()


def test_reproduce_resumes_without_rerunning_points(fig1_done, tiny_fig1, monkeypatch):
    tmp_path = fig1_done  # reproduced, as `reproduce fig1` left it
    with Store(tmp_path / "results.db") as store:
        first = store.rows()
    # lose the last point, as an interruption would, then rerun
    with sqlite3.connect(tmp_path / "results.db") as db:
        db.execute("DELETE FROM results WHERE id = ?", (first[-1]["id"],))
    calls = []
    original = reproduce.FIGURES["fig1"].run
    fig = reproduce.FIGURES["fig1"]._replace(run=lambda p, u: calls.append(p) or original(p, u))
    monkeypatch.setitem(reproduce.FIGURES, "fig1", fig)
    reproduce.run("fig1", out=tmp_path, quiet=True)
    with Store(tmp_path / "results.db") as store:
        rows = store.rows()
    assert calls == [tiny_fig1[2]]
    assert [r["point"] for r in rows] == tiny_fig1
    assert [r["metrics"] for r in rows[:2]] == [r["metrics"] for r in first[:2]]


def test_plot_only_redraws_from_the_store(fig1_done, tiny_fig1):
    tmp_path = fig1_done
    (tmp_path / "fig1.png").unlink()
    reproduce.run("fig1", out=tmp_path, quiet=True, plot_only=True)
    assert (tmp_path / "fig1.png").exists()


def _toy_draw(rows, stem):
    stem.with_suffix(".png").write_bytes(b"png")
    return [stem.with_suffix(".png")]


def _toy_compare(rows):
    ours = sum(r["y"] for r in rows) / len(rows)
    return [
        {"quantity": "mean y", "ours": ours, "paper": 2.0, "deviation": ours / 2 - 1, "paper_source": "toy"}
    ]


def _toy_run(point, update):
    if point["x"] == 3:
        raise FloatingPointError("loss became NaN")
    return {**point, "y": 2 * point["x"]}


def test_a_new_figure_needs_only_its_figures_entry(tmp_path, monkeypatch):
    """A figure added to FIGURES (here with a lambda, as other experiments may) runs through the store,
    is in the report with its comparison, and its failed point is listed with the reason."""
    toy = reproduce.Figure(
        "toy",
        "Toy figure",
        lambda scale: [{"x": x, "seeds": [0]} for x in (1, 2, 3)],
        lambda point, update: _toy_run(point, update),
        _toy_draw,
        _toy_compare,
        "instant; mean y = 3",
    )
    monkeypatch.setitem(reproduce.FIGURES, "toy", toy)
    report = reproduce.run("toy", out=tmp_path, quiet=True).read_text()
    assert "## Toy figure" in report and "| mean y | 3 | 2 | +50% | toy |" in report
    assert "failed `{'x': 3, 'seeds': [0]}`: FloatingPointError: loss became NaN" in report
    assert "toy.png" in (tmp_path / "report.html").read_text()
    assert 'figure = "toy"' in reproduce.config_text(toy, "quick")


def test_report_and_export_commands(fig1_done, tmp_path, capsys):
    db = str(fig1_done / "results.db")
    with pytest.raises(SystemExit) as code:
        main(["report", "--store", db, "--out", str(tmp_path / "rep")])
    assert code.value.code == 0
    for name in ("report.md", "report.html", "fig1.png", "fig1.pdf", "fig1.csv"):
        assert (tmp_path / "rep" / name).stat().st_size > 0, name
    for suffix in ("csv", "parquet"):
        with pytest.raises(SystemExit) as code:
            main(["export", "--store", db, "--out", str(tmp_path / f"all.{suffix}")])
        assert code.value.code == 0
    table = pq.read_table(tmp_path / "all.parquet").to_pylist()
    assert [r["point.d"] for r in table] == [8, 16, 4]
    assert len((tmp_path / "all.csv").read_text().strip().splitlines()) == 4
    with pytest.raises(SystemExit) as code:
        main(["report", "--store", str(tmp_path / "nope.db"), "--out", str(tmp_path / "x")])
    assert code.value.code == 2 and not (tmp_path / "x").exists()
    assert "does not exist" in capsys.readouterr().err


def test_figure_json_holds_rows_with_provenance(fig1_once):
    tmp_path, _ = fig1_once
    rows = json.loads((tmp_path / "fig1.json").read_text())["rows"]
    assert len(rows) == 3 and all(r["run"]["versions"]["jax"] for r in rows)


def test_quick_grids_are_what_the_readme_promises():
    points = reproduce.FIGURES["fig1"].points("quick")
    assert [p["d"] for p in points if p["panel"] == "linear"] == [8, 11, 16, 22, 32]
    assert {p["alpha"] for p in points if p["panel"] == "mlp"} == {1, 2, 4, 8}
    assert all(p["M"] == 32 for p in reproduce.FIGURES["fig6"].points("quick"))


# ------------------------------------------------------------------------------------------- dynamics


def test_fig5_and_plateau_write_data_figures_and_comparisons(tmp_path, monkeypatch):
    tiny = {"S": 4, "R": 2, "D": 2, "lr": 0.5, "B": 256, "n_steps": 320}  # `dynamics` of tests/cli
    monkeypatch.setitem(
        reproduce.FIGURES, "fig5", reproduce.FIGURES["fig5"]._replace(points=lambda s: [tiny])
    )
    points = [{**tiny, "S": S} for S in (4, 8)] + [{**tiny, "alpha_S": 1.0}]
    monkeypatch.setitem(
        reproduce.FIGURES, "plateau", reproduce.FIGURES["plateau"]._replace(points=lambda s: points)
    )
    reproduce.run("fig5", out=tmp_path, quiet=True)
    report = reproduce.run("plateau", out=tmp_path, quiet=True).read_text()
    for name in ("fig5.png", "fig5.pdf", "fig5_curves.csv", "plateau.png", "plateau.pdf", "plateau.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "hallucination plateau loss" in report and "log-log slope in S" in report
    rows = json.loads((tmp_path / "plateau.json").read_text())["rows"]
    assert [r["S"] for r in rows] == [4, 8, 4] and all(r["predicted_subject"] > 0 for r in rows)
    assert rows[1]["predicted_subject"] == pytest.approx(2 * rows[0]["predicted_subject"])


def test_plateau_grid_is_the_papers_sizes():
    points = reproduce.FIGURES["plateau"].points("paper")
    assert sorted({p["S"] for p in points if p["alpha_S"] == 0}) == [8, 16, 32, 64]
    assert all(p["lr"] == 0.1 and p["n_steps"] % 64 == 0 for p in points)
    assert reproduce.FIGURES["fig5"].points("quick") == reproduce.FIGURES["fig5"].points("paper")


def test_reproduce_command_exits_1_when_points_failed_and_retries_them(tmp_path, monkeypatch, capsys):
    calls = []

    def run(point, update):
        calls.append(point["x"])
        if point["x"] == 3 and len(calls) <= 3:  # fails the first time only
            raise FloatingPointError("loss became NaN")
        return {**point, "y": 2 * point["x"]}

    points = lambda scale: [{"x": x, "seeds": [0]} for x in (1, 2, 3)]  # noqa: E731
    toy = reproduce.Figure("toy", "Toy figure", points, run, _toy_draw, _toy_compare, "instant")
    monkeypatch.setitem(reproduce.FIGURES, "toy", toy)
    with pytest.raises(SystemExit) as code:
        main(["reproduce", "toy", "--out", str(tmp_path), "--quiet"])
    assert code.value.code == 1 and "error: 1 points failed" in capsys.readouterr().err
    assert (tmp_path / "report.md").stat().st_size > 0 and calls == [1, 2, 3]
    with pytest.raises(SystemExit) as code:  # failed points are kept until asked for
        main(["reproduce", "toy", "--out", str(tmp_path), "--quiet"])
    assert code.value.code == 1 and calls == [1, 2, 3]
    with pytest.raises(SystemExit) as code:
        main(["reproduce", "toy", "--out", str(tmp_path), "--quiet", "--retry-failed"])
    assert code.value.code == 0 and calls == [1, 2, 3, 3]
