import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factrecall.core import bounds


def test_parameter_counts_say_what_they_include():
    assert bounds.linear_params(16) == 256
    assert bounds.linear_params(16, rank=16) == 256
    assert bounds.linear_params(16, rank=4) == 2 * 16 * 4
    assert bounds.mlp_params(22, 22) == 2 * 22 * 22
    assert bounds.mlp_bias_params(22) == 22


@given(st.floats(1.5, 1e6))
def test_solve_n_log_n_inverts(N):
    assert math.isclose(bounds.solve_n_log_n(bounds.n_log_n(N)), N, rel_tol=1e-6)


def test_guides_follow_the_papers_constants():
    d = 64
    N = bounds.guide_linear(d)
    assert math.isclose(d * d, 1.3 * N * math.log(N), rel_tol=1e-6)
    # all correct (N log N = d²/2) is a stricter ask than 99% correct (N log N = d²/1.3)
    assert bounds.ceiling_linear(d) < N
    assert math.isclose(bounds.guide_mlp_fixed_outputs(10, 12), 100.0)
    assert bounds.bits_per_param(100, 32, 500) == pytest.approx(1.0)
    assert bounds.bits_to_store(10, 1) == 0.0


# ----------------------------------------------------------------------------------------- transformers


@given(st.integers(1, 512), st.integers(1, 32), st.integers(1, 64), st.integers(0, 2048))
def test_transformer_counts_match_the_models_own(d, H, d_h, m):
    from factrecall.recall.transformer import TransformerConfig, param_counts

    counts = param_counts(TransformerConfig(d=d, H=H, d_h=d_h, m=m, vocab=10, n_out=10))
    assert bounds.attention_params(d, H, d_h) == counts.attention
    assert bounds.mlp_params(d, m) == counts.mlp
    assert bounds.transformer_params(d, H, d_h, m) == counts.paper
    assert bounds.mlp_bias_params(m) == counts.bias


@given(st.integers(1, 64), st.integers(1, 64), st.integers(2, 64), st.floats(0.0, 10.0))
def test_loss_aware_bound_sits_between_nothing_and_everything(S, R, D, loss):
    bits = bounds.bits_facts_loss_aware(S, R, D, loss)
    assert 0.0 <= bits <= bounds.bits_facts(S, R, D)
    assert bits == pytest.approx(max(0.0, S * R * (math.log2(D) - loss / math.log(2))))
    assert bounds.bits_facts_loss_aware(S, R, D, 0.0) == bounds.bits_facts(S, R, D)
    assert bounds.bits_facts_loss_aware(S, R, D, math.log(D)) == pytest.approx(0.0, abs=1e-9)


def test_guide_lines_read_the_papers_table():
    from factrecall.core.paper import PAPER

    assert bounds.guide_frontier_mlp(0.0) == PAPER["tradeoff_frontier_mlp_at_zero_attention"].value == 2300.0
    assert bounds.guide_frontier_mlp(600.0) == 2300 - 600 / 2
    assert math.isclose(
        bounds.guide_mlp_fixed_outputs(10, 12), 10 * 12 / PAPER["mlp_fixed_M_md_over_N"].value
    )
    N = bounds.guide_mlp(16, 32)
    assert math.isclose(16 * 32, PAPER["mlp_md_over_NlogN"].value * N * math.log(N), rel_tol=1e-9)
    assert not hasattr(bounds, "PAPER") or bounds.PAPER is PAPER  # no second table
