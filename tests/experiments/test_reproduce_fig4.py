"""Figure 4 entries of reproduce: points, comparison with the paper and drawing, from synthetic rows."""

from factrecall.experiments import reproduce


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
    paths = reproduce.FIGURES["fig4"].draw(rows, tmp_path / "fig4")
    assert all(p.stat().st_size > 0 for p in paths)


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
    cmp = {c["quantity"]: c["ours"] for c in reproduce.FIGURES["fig4-tradeoff"].compare(rows)}
    assert abs(cmp["best accuracy with H = 1"] - (0.1 + 64 / 200)) < 1e-9
    assert abs(cmp["min accuracy over H ≥ 6, m ≥ 48"] - (0.6 + 48 / 200)) < 1e-9
    assert cmp["fewest heads reaching 0.99 at m = 1 (no MLP)"] == 12
    paths = reproduce.FIGURES["fig4-tradeoff"].draw(rows, tmp_path / "t")
    assert all(p.stat().st_size > 0 for p in paths)


def test_constructions_reuse_fig4_capacities_measured_in_the_same_run(monkeypatch):
    from factrecall.recall import capacity as tc

    calls = []

    class Result:
        def summary(self):
            return {"facts": 64, "params": 640}

    def fake_capacity(spec, seeds, on_round=None):
        calls.append(spec)
        return Result()

    monkeypatch.setattr(tc, "capacity", fake_capacity)
    monkeypatch.setattr(reproduce, "_FIG4_DONE", {})
    trained = reproduce.FIGURES["constructions"].points("quick")
    trained = [p for p in trained if p["panel"] == "trained"]
    fig4 = reproduce.FIGURES["fig4"].points("quick")
    fig4 = [p for p in fig4 if p["attention_ratio"] == p["mlp_ratio"] == 1]
    assert trained and all({**p, "panel": "fig4"} in fig4 for p in trained)
    first = reproduce.FIGURES["fig4"].run(fig4[0], lambda *a: None)
    again = reproduce.FIGURES["constructions"].run({**fig4[0], "panel": "trained"}, lambda *a: None)
    assert len(calls) == 1 and again["facts"] == first["facts"] == 64
    assert again["reused_from"] == "fig4" and "reused_from" not in first and again["panel"] == "trained"
    other = reproduce.FIGURES["constructions"].run({**fig4[1], "panel": "trained"}, lambda *a: None)
    assert len(calls) == 2 and "reused_from" not in other
