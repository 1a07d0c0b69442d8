"""Stage detection on synthetic curves and the saddle-escape prediction (NumPy only, fast)."""

import math

import numpy as np
import pytest

from factrecall.core.errors import ConfigError
from factrecall.dynamics.stages import crossing, find_stages, predicted_steps, transitions

LEVELS = {"uniform": math.log(32), "hallucination": math.log(8)}


def _three_stage_curve(t_rel, t_sub, width=40.0, n_steps=8192):
    t = np.arange(0, n_steps + 1, 64.0)
    drop1 = (LEVELS["uniform"] - LEVELS["hallucination"]) / (1 + np.exp(-(t - t_rel) / width))
    drop2 = LEVELS["hallucination"] / (1 + np.exp(-(t - t_sub) / (2 * width)))
    return t, LEVELS["uniform"] - drop1 - drop2 + 0.01


@pytest.mark.parametrize(("t_rel", "t_sub"), [(1700, 4300), (1000, 2500), (600, 7000)])
def test_three_plateaus_found_where_they_are(t_rel, t_sub):
    t, L = _three_stage_curve(t_rel, t_sub)
    stages = find_stages(t, L, LEVELS)
    assert [s.name for s in stages] == ["uniform", "hallucination", "learned"]
    assert stages[0].end < t_rel < stages[1].start
    assert stages[1].end < t_sub < stages[2].start
    assert abs(stages[1].loss - math.log(8)) < 0.02
    got = transitions(t, L, stages, R=4, D=8)
    assert abs(got["relation"] - t_rel) < 64 and abs(got["subject"] - t_sub) < 64


def test_a_curve_without_a_middle_plateau_has_no_hallucination_stage():
    t = np.arange(0, 4097, 64.0)
    L = math.log(32) / (1 + np.exp((t - 2000) / 50))  # one drop from log 32 straight to 0
    names = [s.name for s in find_stages(t, L, LEVELS)]
    assert "hallucination" not in names and names[0] == "uniform" and names[-1] == "learned"
    assert transitions(t, L, [], 4, 8)["relation"] < 2000 < transitions(t, L, [], 4, 8)["subject"]


def test_crossing_interpolates_and_reports_none():
    assert crossing([0, 10, 20], [3.0, 2.0, 1.0], 2.5) == pytest.approx(5.0)
    assert crossing([0, 10, 20], [3.0, 2.0, 1.0], 0.5) is None
    assert crossing([0, 10, 20, 30], [3.0, 1.0, 3.0, 1.0], 2.0, after=10) == pytest.approx(25.0)


def test_prediction_matches_the_spec_and_scales_with_S():
    p = predicted_steps(16, 4, 8, lr=0.1, init=1e-5)
    assert p["relation"] == pytest.approx(1600, rel=0.01) and p["subject"] == pytest.approx(4200, rel=0.01)
    assert p["subject"] / p["relation"] == pytest.approx((16 / 4) * math.sqrt(3 / 7))
    for S in (8, 32, 64):
        q = predicted_steps(S, 4, 8)
        assert q["relation"] == pytest.approx(p["relation"])
        assert q["subject"] == pytest.approx(p["subject"] * S / 16)
    assert predicted_steps(16, 4, 8, lr=0.4)["subject"] == pytest.approx(p["subject"] / 4)


def test_zipf_prediction_is_the_escape_of_the_subject_at_half_the_mass():
    p = 1.0 / np.arange(1, 17)
    p /= p.sum()
    k = int(np.searchsorted(np.cumsum(p), 0.5))  # subjects 0..k hold half the mass
    expected = math.log(2 / 1e-5) / (0.1 * p[k] * math.sqrt(7 / 32))
    assert predicted_steps(16, 4, 8, alpha_S=1.0)["subject"] == pytest.approx(expected)
    assert predicted_steps(16, 4, 8, alpha_S=1.0)["relation"] == pytest.approx(
        predicted_steps(16, 4, 8)["relation"]
    )


@pytest.mark.parametrize(
    ("steps", "loss", "match"),
    [
        ([0, 1, 2], [1.0, 1.0], "one length"),
        ([0, 1, 2], [1.0, 1.0, 1.0], "at least 5"),
        ([0, 1, 2, 3, 4], [1.0, np.nan, 1.0, 1.0, 1.0], "non-finite"),
    ],
)
def test_bad_curves_are_rejected(steps, loss, match):
    with pytest.raises(ConfigError, match=match):
        find_stages(steps, loss)
    with pytest.raises(ConfigError, match="lr and init"):
        predicted_steps(16, 4, 8, lr=0.0)
