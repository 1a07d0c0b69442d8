import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factrecall import bounds


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
