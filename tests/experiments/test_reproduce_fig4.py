"""Figure 4 entries of reproduce: points, comparison with the paper and drawing, from synthetic rows."""

import math

import pytest

from factrecall.experiments import reproduce
from factrecall.experiments.store import Store


def test_fig4_points_comparison_and_plot(tmp_path):
    points = reproduce.FIGURES["fig4"].points("quick")
    assert all(p["H"] == 8 and p["d_h"] >= 1 for p in points) and len(points) >= 5
    rows = [
        {**p, "params": 4 * 8 * p["d_h"] * p["d"] + 2 * p["m"] * p["d"], "bits_per_param": 0.3}
        | {"facts": round(0.1 * (4 * 8 * p["d_h"] * p["d"] + 2 * p["m"] * p["d"]))}
        for p in points
    ]
    cmp = {c["quantity"]: c for c in reproduce.FIGURES["fig4"].compare(rows)}
    assert abs(cmp["facts / param (fit with slope 1)"]["ours"] - 0.1) < 0.01
    assert abs(cmp["log-log slope of facts vs params"]["ours"] - 1.0) < 0.05
    for i, row in enumerate(rows):  # the search's bracket: a bar up to the smallest size that failed
        row["facts_failed"] = None if i == 0 else row["facts"] + 13  # the first search was capped
    paths = reproduce.FIGURES["fig4"].draw(rows, tmp_path / "fig4")
    assert all(p.stat().st_size > 0 for p in paths)
    # the paper's procedure's rows are drawn as a second series (not joined to ours, not in the fit)
    ours = [r for r in rows if r.get("procedure") != "paper"]
    assert 0 < len(ours) < len(rows)
    alone = reproduce.FIGURES["fig4"].draw(ours, tmp_path / "ours")
    assert alone[0].read_bytes() != paths[0].read_bytes()


def test_fig4_compares_ours_with_the_papers_procedure_run_here():
    """Synthetic rows: ours at 0.10 facts/param, the paper's procedure at 0.08 on the shapes it searched."""
    points = reproduce.FIGURES["fig4"].points("quick")
    ours = [p for p in points if "procedure" not in p]
    theirs = points[len(ours) :]
    resolved = {"procedure": "paper", "criterion_on": "sampled", "patience": 0}  # said in the point
    assert theirs and all(p.items() >= resolved.items() for p in theirs)
    assert all({k: v for k, v in p.items() if k not in resolved} in ours for p in theirs)  # the same shapes
    rows = []
    for p in points:
        params = 4 * 8 * p["d_h"] * p["d"] + 2 * p["m"] * p["d"]
        facts = round((0.08 if "procedure" in p else 0.1) * params)
        rows.append(
            {**p, "params": params, "facts": facts, "facts_failed": facts + 13, "bits_per_param": 0.3}
        )
    rows[len(ours)]["facts_failed"] = None  # the first of the paper's procedure's searches hit its ceiling
    cmp = reproduce.FIGURES["fig4"].compare(rows)
    assert cmp[0]["quantity"] == "facts / param (fit with slope 1)" and abs(cmp[0]["ours"] - 0.1) < 0.01
    assert len(cmp) == 2 + 4 + 4 + len(theirs)  # ours' rows as before, then 4 fits and one row per shape
    where = f"the same {len(theirs)} shapes, batch 256, ≤ 4096 steps, rates 0.01, 0.03"
    by = {c["quantity"]: c for c in cmp}
    assert by[f"facts / param (fit with slope 1), ours ({where}; rates side by side)"]["paper"] == 0.15
    paper = by[f"facts / param, paper's procedure run here ({where}; rates in order)"]
    assert abs(paper["ours"] - 0.08) < 0.005 and paper["paper"] == 0.15
    ratio = by[f"facts / param, ours / paper's procedure run here ({where}; target within 10%)"]
    assert abs(ratio["ours"] - 1.25) < 0.03 and ratio["paper"] == 1.0
    b = rows[len(ours)]
    a = next(r for r in rows[: len(ours)] if (r["d"], r["d_h"], r["m"]) == (b["d"], b["d_h"], b["m"]))
    (shape,) = [
        c
        for c in cmp
        if c["quantity"].startswith(f"facts stored, d = {a['d']}, d_h = {a['d_h']}, m = {a['m']} (")
    ]
    assert (shape["ours"], shape["paper"]) == (a["facts"], b["facts"])
    assert (
        f"ours [{a['facts']}, {a['facts'] + 13}] / paper's procedure [{b['facts']}, —]" in shape["quantity"]
    )


def test_fig4_uses_the_median_over_seeds(tmp_path):
    """Quick points search 3 seeds; the fits, the comparison with the paper's procedure and the plot use each
    shape's median N* (``facts`` is the worst seed's), and the comparison names every seed's N*."""
    points = reproduce.FIGURES["fig4"].points("quick")
    assert all(p["seeds"] == [0, 1, 2] for p in points)
    rows = []
    for p in points:
        params = 4 * 8 * p["d_h"] * p["d"] + 2 * p["m"] * p["d"]
        median = round((0.08 if "procedure" in p else 0.1) * params)
        per_seed = [median - 20, median, median + 7]  # the worst seed (facts) is 20 below the median
        rows.append(
            {**p, "params": params, "facts": per_seed[0], "capacity_per_seed": per_seed, "D": 8}
            | {"facts_failed": per_seed[0] + 13, "bits_per_param": 3 * per_seed[0] / params}
        )
    cmp = reproduce.FIGURES["fig4"].compare(rows)
    by = {c["quantity"]: c for c in cmp}
    assert abs(by["facts / param (fit with slope 1)"]["ours"] - 0.1) < 0.005
    ratio = next(c for c in cmp if c["quantity"].startswith("facts / param, ours / paper's procedure"))
    assert abs(ratio["ours"] - 1.25) < 0.03
    # our N* on the paper's sizes: each seed's N* rounded down to a square, then the median; the ratio of the
    # fits (slope 1) is the geometric mean over shapes of ours / theirs
    squares = next(c for c in cmp if c["quantity"].startswith("facts / param, ours on the paper's sizes"))
    shape = lambda r: (r["d"], r["d_h"], r["m"])  # noqa: E731
    theirs = {shape(r): r["capacity_per_seed"][1] for r in rows if "procedure" in r}
    ratios = [
        sorted(math.isqrt(n) ** 2 for n in r["capacity_per_seed"])[1] / theirs[shape(r)]
        for r in rows
        if "procedure" not in r and shape(r) in theirs
    ]
    assert len(ratios) == len(theirs) == 3
    expected = math.prod(ratios) ** (1 / 3)
    assert squares["ours"] == pytest.approx(expected) and squares["paper"] == 1.0
    ours = next(r for r in rows if "procedure" not in r and r["d"] == 16 and r["d_h"] == 2 and r["m"] == 16)
    shape = next(c for c in cmp if c["quantity"].startswith("facts stored, d = 16, d_h = 2, m = 16 ("))
    assert shape["ours"] == ours["capacity_per_seed"][1]
    expected = ", ".join(map(str, ours["capacity_per_seed"])) + f" (median {ours['capacity_per_seed'][1]})"
    assert f"ours {expected} / paper's procedure " in shape["quantity"] and "N* per seed" in shape["quantity"]
    bits = next(c for c in cmp if c["quantity"] == "bits/param, H·d_h/d=1, m/d=1")
    diagonal = [r for r in rows if "procedure" not in r and r["attention_ratio"] == r["mlp_ratio"] == 1]
    assert bits["ours"] == pytest.approx(
        sum(3 * r["capacity_per_seed"][1] / r["params"] for r in diagonal) / 3
    )
    paths = reproduce.FIGURES["fig4"].draw(rows, tmp_path / "fig4")
    worst = reproduce.FIGURES["fig4"].draw(
        [{**r, "capacity_per_seed": [r["facts"]]} for r in rows], tmp_path / "w"
    )
    assert paths[0].read_bytes() != worst[0].read_bytes()


def test_tradeoff_comparison_and_plot(tmp_path):
    (point,) = reproduce.FIGURES["fig4-tradeoff"].points("quick")
    cells = [
        {
            "H": H,
            "m": m,
            "attention_axis": 256 * H,
            "mlp_axis": 32 * m,
            "accuracy": min(1.0, 0.1 * H + m / 200),
        }
        for H in point["Hs"]
        for m in point["ms"]
    ]
    rows = [{**point, "R": point["S"], "cells": cells}]
    task = "S = R = 16, d_h = 2: scaled-down task"
    cmp = {c["quantity"]: c["ours"] for c in reproduce.FIGURES["fig4-tradeoff"].compare(rows)}
    assert abs(cmp[f"best accuracy with H = 1 ({task})"] - (0.1 + 64 / 200)) < 1e-9
    assert abs(cmp[f"min accuracy over H ≥ 6, m ≥ 48 ({task})"] - (0.6 + 48 / 200)) < 1e-9
    assert cmp[f"fewest heads reaching 0.99 at m = 1 (no MLP; {task})"] == 12
    paths = reproduce.FIGURES["fig4-tradeoff"].draw(rows, tmp_path / "t")
    assert all(p.stat().st_size > 0 for p in paths)


@pytest.fixture
def fake_training(monkeypatch):
    """Trained capacity without training: every call of recall.capacity.capacity is counted."""
    from factrecall.recall import capacity as tc

    calls = []

    class Result:
        def summary(self):
            return {"facts": 64, "params": 640, "lrs": [0.01, 0.03]}

    def fake_capacity(spec, seeds, on_round=None):
        calls.append(spec)
        return Result()

    monkeypatch.setattr(tc, "capacity", fake_capacity)
    return calls


def _trained_points():
    trained = [p for p in reproduce.FIGURES["constructions"].points("quick") if p["panel"] == "trained"]
    fig4 = [
        p for p in reproduce.FIGURES["fig4"].points("quick") if p["attention_ratio"] == p["mlp_ratio"] == 1
    ]
    assert len(trained) >= 2 and all({**p, "panel": "fig4"} in fig4 for p in trained)
    return trained


def test_constructions_compute_trained_points_when_fig4_is_not_in_the_store(tmp_path, fake_training):
    trained = _trained_points()
    constructions, fig4 = reproduce.FIGURES["constructions"], reproduce.FIGURES["fig4"]
    first = fig4.run({**trained[0], "panel": "fig4"}, lambda *a: None)  # earlier in this process: no matter
    with Store(tmp_path / "results.db") as store:
        rows = reproduce.run_figure(constructions, "quick", store, points=trained[:1], quiet=True)
    assert len(fake_training) == 2 and rows[0]["facts"] == first["facts"] == 64
    assert rows[0]["panel"] == "trained" and "reused_from" not in rows[0]


def test_constructions_copy_fig4_rows_from_the_store(tmp_path, fake_training):
    trained = _trained_points()
    constructions, fig4 = reproduce.FIGURES["constructions"], reproduce.FIGURES["fig4"]
    with Store(tmp_path / "computed.db") as store:  # what computing the trained point gives
        (computed,) = reproduce.run_figure(constructions, "quick", store, points=trained[1:2], quiet=True)
    with Store(tmp_path / "results.db") as store:
        reproduce.run_figure(fig4, "quick", store, points=[{**trained[1], "panel": "fig4"}], quiet=True)
        assert len(fake_training) == 2
        rows = reproduce.run_figure(constructions, "quick", store, points=trained[:2], quiet=True)
    assert len(fake_training) == 3  # trained[0] is computed, trained[1] copied from fig4's row
    assert "reused_from" not in rows[0] and rows[1]["reused_from"] == "fig4"
    copied = {k: v for k, v in rows[1].items() if k not in ("reused_from", "run")}
    assert list(copied) == [k for k in computed if k != "run"]
    assert copied == {k: v for k, v in computed.items() if k != "run"}
