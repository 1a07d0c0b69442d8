"""Constructed transformers: the smallest size storing every fact, and what happens far below it."""

import json

import pytest

from factrecall.core import bounds
from factrecall.core.errors import ConfigError
from factrecall.experiments import reproduce
from factrecall.recall.construction_search import build_and_score, construction_spec, find_min, shape

# the specs of test_reproduce_constructions' points (seed 0, precision 0.2): one set of compiled programs
FIGURE_SPECS = {
    "attention": construction_spec("attention", 4, 4, 2, d_h=8, memory="pinv", n_contexts=8),
    "hybrid": construction_spec(
        "hybrid", 4, 4, 2, d_h=8, memory="pinv", n_contexts=8, attention_share=0.5, mlp_ratio=1.0
    ),
}


@pytest.mark.parametrize("mechanism", list(FIGURE_SPECS))
def test_found_sizes_store_every_fact_in_fresh_contexts(mechanism):
    spec, (S, R, D) = FIGURE_SPECS[mechanism], (4, 4, 2)
    result = find_min(spec, (0,), rel_precision=0.2)
    (d,) = result.d_per_seed
    assert d > 0 and not result.never
    # the search's answer is a size that was tested and stored, and one step below it failed
    assert any(t.N == d and t.stored for t in result.trials)
    assert any(t.N < d and not t.stored for t in result.trials)
    # rebuilt from scratch at that size, it answers every fact in every context, and stores all the bits
    again = build_and_score(spec, shape(spec, d), 0)
    assert again["fact_accuracy"] == 1.0
    assert again["bits_lower_bound"] == pytest.approx(bounds.bits_facts(S, R, D), rel=0.05)
    # in contexts it never saw it stays (almost) perfect: the found size is the edge, where d < vocab lets
    # a rare noise context tip one pair
    fresh = build_and_score(spec._replace(n_contexts=16), shape(spec, d), 0)  # 16 new contexts per fact
    assert fresh["fact_accuracy"] >= 0.9


# S = R = D = 8 at d = 64 in 8 contexts per fact: the shapes of tests/recall/test_constructions.py (one set
# of compiled programs for both modules)
@pytest.mark.parametrize("mechanism", ["attention", "mlp"])
def test_accuracy_falls_far_below_the_found_size(mechanism):
    spec, d = construction_spec(mechanism, 8, 8, 8, d_h=8, memory="pinv", n_contexts=8), 64
    at = build_and_score(spec, shape(spec, d))
    below = build_and_score(spec, shape(spec, d // 4))
    assert at["fact_accuracy"] == 1.0
    assert below["fact_accuracy"] < 0.6
    assert below["bits_lower_bound"] < 0.5 * at["bits_lower_bound"]


@pytest.mark.parametrize("mechanism", ["attention", "mlp", "hybrid"])
def test_records_count_parameters_as_the_bounds_module(mechanism):
    spec = construction_spec(mechanism, 8, 8, 8, d_h=8, memory="pinv", n_contexts=8)
    cfg = shape(spec, 64)  # the sizes above: nothing new to compile
    record = build_and_score(spec, cfg)
    assert record["attention_params"] == bounds.attention_params(cfg.d, cfg.H, cfg.d_h)
    assert record["mlp_params"] == bounds.mlp_params(cfg.d, cfg.m)
    assert record["params"] == bounds.transformer_params(cfg.d, cfg.H, cfg.d_h, cfg.m)
    assert record["bits_needed"] == bounds.bits_facts(8, 8, 8)
    assert record["bits_per_param"] == pytest.approx(record["bits_lower_bound"] / record["params"])
    assert (record["mlp_params"] == 0) == (mechanism == "attention")


def test_specs_reject_bad_input():
    fixed = {"d_h": 8, "memory": "pinv", "n_contexts": 8}
    with pytest.raises(ConfigError, match="unknown mechanism"):
        construction_spec("ffn", 4, 4, 4, **fixed)
    with pytest.raises(ConfigError, match="needs an MLP"):
        construction_spec("mlp", 4, 4, 4, **fixed, mlp_ratio=0.0)
    with pytest.raises(ConfigError, match="attention_share"):
        construction_spec("attention", 4, 4, 4, **fixed, attention_share=0.5)
    with pytest.raises(ConfigError, match="subjects S"):
        construction_spec("attention", 0, 4, 4, **fixed)


def test_reproduce_constructions_writes_rows_figure_and_slopes(tmp_path, monkeypatch):
    points = [
        {"panel": "scaling", "mechanism": "attention", "S": S, "R": S, "D": 2, "seeds": [0], "precision": 0.2}
        for S in (2, 4)
    ] + [
        {"panel": "hybrid", "mechanism": "hybrid", "S": 4, "R": 4, "D": 2, "attention_share": 0.5}
        | {"mlp_ratio": 1.0, "seeds": [0], "precision": 0.2}
    ]
    fig = reproduce.FIGURES["constructions"]._replace(points=lambda scale: points)
    monkeypatch.setitem(reproduce.FIGURES, "constructions", fig)
    reproduce.run("constructions", out=tmp_path, quiet=True)
    for name in ("constructions.csv", "constructions.png", "constructions.pdf", "constructions_vs_paper.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = json.loads((tmp_path / "constructions.json").read_text())["rows"]
    assert [r["facts_stored"] for r in rows] == [1.0, 1.0, 1.0]
    assert all(r["heatmap_attention"] == r["d"] * r["d_h"] * r["H"] for r in rows)
    assert "slope of min params" in (tmp_path / "report.md").read_text()


def test_quick_points_span_64_to_4096_facts_and_every_share():
    points = reproduce.FIGURES["constructions"].points("quick")
    facts = {p["S"] * p["R"] for p in points if p["panel"] == "scaling"}
    assert min(facts) == 64 and max(facts) == 4096
    shares = [p["attention_share"] for p in points if p["panel"] == "hybrid"]
    assert shares[0] == 0.0 and shares[-1] == 1.0 and len(shares) >= 5


def test_trained_capacity_sits_beside_the_constructions(tmp_path):
    points = reproduce.FIGURES["constructions"].points("quick")
    trained = [p for p in points if p["panel"] == "trained"]
    fig4 = [
        p
        for p in reproduce.FIGURES["fig4"].points("quick")
        if p["attention_ratio"] == p["mlp_ratio"] == 1 and p["d"] <= 16 and "procedure" not in p
    ]
    assert [p["d"] for p in trained] == [p["d"] for p in fig4] and len(trained) >= 2
    rows = [
        {"panel": "scaling", "mechanism": "attention", "S": S, "R": S, "facts": S * S}
        | {"params_per_fact_median": 50.0}
        for S in (8, 16)
    ] + [
        {"panel": "trained", "S": 10, "R": 10, "facts": 100, "params": 1000},
        {"panel": "trained", "S": 20, "R": 20, "facts": 400, "params": 4000},
    ]
    compared = {r["quantity"]: r["ours"] for r in reproduce.FIGURES["constructions"].compare(rows)}
    assert compared["trained (same figure): facts/param"] == pytest.approx(0.1)
    paths = reproduce.FIGURES["constructions"].draw(rows, tmp_path / "constructions")
    assert all(p.stat().st_size > 0 for p in paths)
