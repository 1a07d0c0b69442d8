"""Figure 4 at the medium scale (its grids, the scale checks) and Figure 4 right as a filled heatmap with the
measured frontier, from synthetic rows (nothing trained at medium scale here); the cell-list trade-off
gives the full product's numbers."""

import math

import pytest

from factrecall.core.errors import ConfigError
from factrecall.experiments import plots_transformer, report, reproduce
from factrecall.experiments.config import SCALES, SweepConfig
from factrecall.experiments.figures import transformer

TRADEOFF = reproduce.FIGURES["fig4-tradeoff"]


def test_medium_is_a_scale_of_figure_4_only():
    assert SCALES == ("quick", "medium", "paper")
    assert {n for n, f in reproduce.FIGURES.items() if "medium" in f.scales} == {"fig4", "fig4-tradeoff"}
    assert all(f.scales[0] == "quick" and f.scales[-1] == "paper" for f in reproduce.FIGURES.values())


def test_fig4_medium_points_are_the_papers_recipe_on_the_diagonal_and_the_corners():
    points = reproduce.FIGURES["fig4"].points("medium")
    assert all(
        (p["batch"], p["n_steps"], p["lrs"], p["H"], p["seeds"]) == (1024, 16384, [1e-3, 3e-3, 1e-2], 8, [0])
        for p in points
    )
    diagonal = [p["d"] for p in points if (p["attention_ratio"], p["mlp_ratio"]) == (1.0, 1.0)]
    corners = {(p["attention_ratio"], p["mlp_ratio"]): (p["d"], p["d_h"], p["m"]) for p in points}
    assert diagonal == [8, 11, 16, 23, 32] and len(points) == 9 and max(p["d"] for p in points) <= 32
    assert corners[(4.0, 4.0)] == (16, 8, 64) and corners[(0.25, 0.25)] == (16, 1, 4)
    assert corners[(4.0, 0.25)] == (16, 8, 4) and corners[(0.25, 4.0)] == (16, 1, 64)


def test_tradeoff_medium_is_the_papers_task_on_a_cross_of_its_axes():
    (point,) = TRADEOFF.points("medium")
    (paper,) = TRADEOFF.points("paper")
    assert (point["d"], point["d_h"], point["S"], point["D"]) == (32, 8, 32, 8) and "Hs" not in point
    cells = {tuple(c) for c in point["shapes"]}
    Hs, ms = (1, 2, 4, 6, 8, 12, 16, 20, 24), (1, 8, 16, 32, 48, 64, 128)
    rows_and_columns = {(H, m) for H in Hs for m in (1, 64)} | {(H, m) for H in (1, 8) for m in ms}
    assert cells == rows_and_columns and len(point["shapes"]) == len(cells) == 28
    assert all(H in paper["Hs"] and m in paper["ms"] for H, m in cells)
    assert 1 <= point["programs"] <= 8 and point["n_steps"] <= 16384 and point["batch"] <= 1024


def test_a_figure_without_medium_fails_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="figure fig1 has no scale 'medium'; its scales: quick, paper"):
        reproduce.run("fig1", scale="medium", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    config = SweepConfig(figure="fig5", scale="medium", points=[{"S": 16}])
    with pytest.raises(ConfigError, match="figure fig5 has no scale 'medium'"):
        reproduce.run_sweep_file(config, tmp_path / "results.db")
    assert not (tmp_path / "results.db").exists()


def test_all_at_medium_runs_the_figures_that_have_it():
    assert reproduce._targets("all", "medium") == ["fig4", "fig4-tradeoff"]
    assert "fig1" in reproduce._targets("all", "quick") and reproduce._targets("fig4", "medium") == ["fig4"]
    with pytest.raises(ConfigError, match="unknown scale 'huge'"):
        reproduce._targets("all", "huge")


def _cells(Hs, ms, d=32, d_h=8, a=2300.0, b=0.5):
    """Cells that store every fact exactly above the line d·m = a − b·d·d_h·H (0.3 below it)."""
    return [
        {
            "H": H,
            "m": m,
            "attention_axis": d * d_h * H,
            "mlp_axis": d * m,
            "accuracy": 1.0 if d * m >= a - b * d * d_h * H else 0.3,
        }
        for H in Hs
        for m in ms
    ]


def _rows(cells, S=32, d_h=8):
    return [{"panel": "tradeoff", "d": 32, "D": 8, "S": S, "R": S, "d_h": d_h, "seeds": [0], "cells": cells}]


def test_measured_frontier_recovers_the_line_of_synthetic_accuracies():
    (paper,) = TRADEOFF.points("paper")
    frontier = plots_transformer.measured_frontier(_cells(paper["Hs"], paper["ms"]))
    assert len(frontier.points) >= 10
    assert frontier.mlp_at_zero_attention == pytest.approx(2300, rel=0.05)
    assert frontier.slope == pytest.approx(0.5, rel=0.1)
    other = plots_transformer.measured_frontier(_cells(paper["Hs"], paper["ms"], a=1500.0, b=0.25))
    assert other.mlp_at_zero_attention == pytest.approx(1500, rel=0.05) and other.slope < 0.35
    nothing = plots_transformer.measured_frontier(_cells([1, 2], [1, 8], a=1e9))
    assert nothing.points == [] and math.isnan(nothing.slope)


def test_paper_task_heatmap_comparison_and_report(tmp_path):
    (paper,) = TRADEOFF.points("paper")
    rows = _rows(_cells(paper["Hs"], paper["ms"]))
    paths = TRADEOFF.draw(rows, tmp_path / "full")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 10_000 for p in paths)
    cmp = {c["quantity"].split(":")[-1].strip(): c for c in TRADEOFF.compare(rows)}
    assert cmp["a"]["ours"] == pytest.approx(2300, rel=0.05) and cmp["a"]["paper"] == 2300
    assert cmp["b"]["ours"] == pytest.approx(0.5, rel=0.1) and abs(cmp["b"]["deviation"]) < 0.1
    assert any("S = R = 32, d_h = 8: the paper's task" in c["quantity"] for c in TRADEOFF.compare(rows))
    section = report.Section("fig4-tradeoff", "", "medium", 1, [], "", TRADEOFF.compare(rows), None, [], 0.0)
    table = {line[0]: line for line in report.constants_table([section])}
    line = table["trained frontier: MLP parameters d·m needed without attention (drawn)"]
    assert line[2].startswith("2.") and line[4] == "fig4-tradeoff (medium)"


def test_medium_cross_is_drawn_with_unmeasured_cells_left_blank(tmp_path):
    (point,) = TRADEOFF.points("medium")
    full = {(c["H"], c["m"]): c for c in _cells(range(1, 25), [1, 8, 16, 32, 48, 64, 128])}
    rows = _rows([full[tuple(c)] for c in point["shapes"]])
    paths = TRADEOFF.draw(rows, tmp_path / "cross")
    assert all(p.stat().st_size > 10_000 for p in paths)
    frontier = plots_transformer.measured_frontier(rows[0]["cells"])
    # rows m = 1 and 64, columns H = 1 and 8 (a column measured at m = 1 and 64 only locates nothing)
    assert len(frontier.points) == 4 and 0.3 < frontier.slope < 0.7


def test_quick_map_names_its_scaled_down_task_and_fits_no_paper_frontier(tmp_path):
    (point,) = TRADEOFF.points("quick")
    rows = _rows(_cells(point["Hs"], point["ms"], d_h=2, a=1000.0), S=16, d_h=2)
    quantities = [c["quantity"] for c in TRADEOFF.compare(rows)]
    assert len(quantities) == 3 and all("S = R = 16, d_h = 2: scaled-down task" in q for q in quantities)
    assert all(p.stat().st_size > 0 for p in TRADEOFF.draw(rows, tmp_path / "quick"))


def test_cell_list_gives_the_full_products_numbers():
    tiny = {"panel": "tradeoff", "d": 8, "D": 2, "S": 4, "d_h": 4, "seeds": [0, 1]}
    tiny |= {"batch": 64, "n_steps": 256, "lrs": [0.03]}
    # the product H = 3 × m ∈ {0, 16} is one program padded to (3, 16): the listed cells' second program
    full = TRADEOFF.run({**tiny, "Hs": [3], "ms": [0, 16]}, lambda *a: None)
    # two programs (H = 1 cells padded to (1, 16), H = 3 cells to (3, 16)), cells in another order
    listed = TRADEOFF.run({**tiny, "shapes": [[3, 16], [1, 0], [3, 0], [1, 16]], "programs": 2}, print)
    assert listed["padded_programs"] == [[1, 16, 2], [3, 16, 2]] and "padded_programs" not in full
    by_cell = {(c["H"], c["m"]): c for c in listed["cells"]}
    assert [by_cell[c["H"], c["m"]] for c in full["cells"]] == full["cells"]
    assert [(c["H"], c["m"]) for c in listed["cells"]] == [(3, 16), (1, 0), (3, 0), (1, 16)]  # as listed
    assert by_cell[1, 16]["accuracy"] > by_cell[1, 0]["accuracy"]  # the H = 1 program trained too
    with pytest.raises(ConfigError, match="give either 'shapes'"):
        TRADEOFF.run({**tiny, "Hs": [1], "ms": [0], "shapes": [[1, 0]]}, print)


def test_medium_budget_is_stated_in_the_notes():
    assert "medium" in reproduce.FIGURES["fig4"].expected and "MEDIUM" not in transformer.FIG4.expected
    assert "medium" in TRADEOFF.expected and "MEDIUM" not in TRADEOFF.expected
