import json

import pytest

from factrecall import reproduce


@pytest.fixture
def tiny_fig1(monkeypatch):
    """fig1 with three cheap points (two linear, one MLP construction) instead of the quick grid."""
    points = [
        {"panel": "linear", "model": "linear", "d": 4, "seeds": [0, 1]},
        {"panel": "linear", "model": "linear", "d": 6, "seeds": [0, 1]},
        {
            "panel": "mlp",
            "model": "mlp",
            "d": 4,
            "m": 4,
            "alpha": 1,
            "M": None,
            "seeds": [0],
            "n_steps": 2048,
        },
    ]
    fig = reproduce.FIGURES["fig1"]._replace(points=lambda scale: points)
    monkeypatch.setitem(reproduce.FIGURES, "fig1", fig)
    return points


def test_reproduce_writes_data_figures_and_report(tmp_path, tiny_fig1):
    report = reproduce.run("fig1", out=tmp_path, quiet=True)
    for name in ("fig1.csv", "fig1.json", "fig1.png", "fig1.pdf", "fig1_vs_paper.csv", "report.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = json.loads((tmp_path / "fig1.json").read_text())["rows"]
    assert len(rows) == 3
    assert all(r["run"]["versions"]["jax"] for r in rows)
    text = report.read_text()
    assert "d² / (N log N)" in text and "1.3" in text
    assert len((tmp_path / "fig1.csv").read_text().strip().splitlines()) == 4


def test_reproduce_resumes_without_rerunning_points(tmp_path, tiny_fig1, monkeypatch):
    reproduce.run("fig1", out=tmp_path, quiet=True)
    first = json.loads((tmp_path / "fig1.json").read_text())["rows"]
    calls = []
    original = reproduce.FIGURES["fig1"].run
    fig = reproduce.FIGURES["fig1"]._replace(run=lambda p, u: calls.append(p) or original(p, u))
    monkeypatch.setitem(reproduce.FIGURES, "fig1", fig)
    # drop the last point as an interruption would, then rerun
    reproduce.save_rows(tmp_path, "fig1", "quick", first[:2])
    reproduce.run("fig1", out=tmp_path, quiet=True)
    rows = json.loads((tmp_path / "fig1.json").read_text())["rows"]
    assert calls == [tiny_fig1[2]]
    assert [r["point"] for r in rows] == tiny_fig1
    assert [r["capacity_per_seed"] for r in rows[:2]] == [r["capacity_per_seed"] for r in first[:2]]


def test_plot_only_redraws_from_saved_rows(tmp_path, tiny_fig1):
    reproduce.run("fig1", out=tmp_path, quiet=True)
    (tmp_path / "fig1.png").unlink()
    reproduce.run("fig1", out=tmp_path, quiet=True, plot_only=True)
    assert (tmp_path / "fig1.png").exists()


def test_quick_grids_are_what_the_readme_promises():
    points = reproduce.FIGURES["fig1"].points("quick")
    assert [p["d"] for p in points if p["panel"] == "linear"] == [8, 11, 16, 22, 32]
    assert {p["alpha"] for p in points if p["panel"] == "mlp"} == {1, 2, 4, 8}
    assert all(p["M"] == 32 for p in reproduce.FIGURES["fig6"].points("quick"))


# ------------------------------------------------------------------------------ dynamics (issue 5)


def test_fig5_and_plateau_write_data_figures_and_comparisons(tmp_path, monkeypatch):
    tiny = {"S": 4, "R": 2, "D": 2, "lr": 0.5, "B": 256, "n_test": 1024, "n_steps": 384}
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


def test_plateau_grid_is_what_the_issue_asks():
    points = reproduce.FIGURES["plateau"].points("paper")
    assert sorted({p["S"] for p in points if p["alpha_S"] == 0}) == [8, 16, 32, 64]
    assert all(p["lr"] == 0.1 and p["n_steps"] % 64 == 0 for p in points)
    assert reproduce.FIGURES["fig5"].points("quick") == reproduce.FIGURES["fig5"].points("paper")
