"""The paper's constants live in one table (core.paper.PAPER); comparison rows and the report read it."""

import math
import subprocess
import sys

from factrecall.core.paper import PAPER
from factrecall.experiments import reproduce
from factrecall.experiments.figures.base import compared
from factrecall.experiments.report import CONSTANTS, Section, constants_table


def test_every_constant_says_where_it_comes_from_and_which_figure_measures_it():
    for key, c in PAPER.items():
        assert isinstance(c.value, int | float) and c.source and c.meaning, key
        assert c.figure is None or c.figure in reproduce.FIGURES, key
    measured = [c.source for c in PAPER.values() if c.figure is not None]
    assert len(set(measured)) == len(measured), "the report finds a constant's rows by its source"
    assert PAPER["transformer_facts_per_param"].value == 0.15
    assert PAPER["transformer_bits_per_param"].value == 0.45
    assert PAPER["fig5_plateau_loss"].value == math.log(8)


def test_comparison_rows_are_built_from_the_table():
    row = compared("tradeoff_heads_without_mlp", "fewest heads", 12)
    assert row == {
        "quantity": "fewest heads",
        "ours": 12,
        "paper": 19.0,
        "deviation": (12 - 19.0) / 19.0,
        "paper_source": PAPER["tradeoff_heads_without_mlp"].source,
    }


def _section(name, comparison):
    return Section(name, name, "quick", 1, [], "", comparison, None, [], 0.0)


def test_the_opening_table_has_every_constant_ours_or_not_measured():
    bits = [
        compared("transformer_bits_per_param", f"bits/param, ratio {i}", v) for i, v in enumerate((0.3, 0.6))
    ]
    facts = compared("transformer_facts_per_param", "facts / param (fit with slope 1)", 0.12)
    other = compared("transformer_facts_per_param", "trained (same figure): facts/param", 0.5)
    table = constants_table([_section("fig4", [facts, *bits]), _section("constructions", [other])])
    by_meaning = {line[0]: dict(zip(CONSTANTS, line, strict=True)) for line in table}
    assert len(table) == len(PAPER)
    one = by_meaning[PAPER["transformer_facts_per_param"].meaning]
    assert (one["paper"], one["ours"], one["deviation"], one["measured by"]) == (
        "0.15",
        "0.12",
        "-20%",
        "fig4 (quick)",
    )
    two = by_meaning[PAPER["transformer_bits_per_param"].meaning]
    assert two["ours"] == "0.3 to 0.6 (2 values)" and two["deviation"] == "-33% to +33% (2 values)"
    missing = by_meaning[PAPER["linear_d2_over_NlogN"].meaning]
    assert (missing["ours"], missing["measured by"]) == ("not measured", "fig1")
    drawn = by_meaning[PAPER["tradeoff_frontier_mlp_at_zero_attention"].meaning]
    assert (drawn["ours"], drawn["measured by"]) == ("not measured", "— (a guide line)")


def test_figures_is_one_list_in_the_listed_order_and_imports_no_jax():
    assert list(reproduce.FIGURES) == [
        "fig1",
        "fig6",
        "planner-scaling",
        "attribution-tradeoff",
        "fig4",
        "fig4-tradeoff",
        "constructions",
        "fig5",
        "plateau",
        "editing",
    ]
    assert all(name == figure.name for name, figure in reproduce.FIGURES.items())
    code = "import sys, factrecall.experiments.reproduce; assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
