import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factrecall.core.errors import ConfigError
from factrecall.core.search import Trial, search_largest, search_smallest


def _threshold_round(thresholds, calls=None):
    """run_round for sizes that store from a per-seed threshold up."""

    def run_round(Ns, seeds):
        if calls is not None:
            calls.append(list(Ns))
        return [
            Trial(s, N, N >= thresholds[s], float(N >= thresholds[s]), None, 0, 0) for N, s in zip(Ns, seeds)
        ]

    return run_round


@settings(max_examples=60)
@given(st.integers(1, 5000), st.integers(1, 5000))
def test_search_smallest_brackets_the_threshold(threshold, guess):
    tested = []
    per_seed, never, trials = search_smallest(
        _threshold_round({0: threshold}, tested), [0], guess, rel_precision=0.05
    )
    (found,) = per_seed
    assert not never
    assert found >= threshold  # the answer is a size that stored
    assert found <= max(threshold * 1.05, threshold + 1)  # and close to the smallest one
    assert any(t.N == found and t.stored for t in trials)  # which was tested
    assert all(1 <= n <= 16 * 5000 * 2 for call in tested for n in call)


def test_search_smallest_is_the_mirror_of_search_largest():
    stores_below = lambda Ns, seeds: [Trial(s, N, N <= 300, 0.0, None, 0, 0) for N, s in zip(Ns, seeds)]  # noqa: E731
    stores_above = _threshold_round({0: 301, 1: 301})
    largest, _, _ = search_largest(stores_below, [0, 1], 50, rel_precision=0.001)
    smallest, _, _ = search_smallest(stores_above, [0, 1], 50, rel_precision=0.001)
    assert largest == (300, 300) and smallest == (301, 301)


def test_search_smallest_reports_sizes_that_never_store():
    per_seed, never, trials = search_smallest(_threshold_round({0: 10, 1: 10**9}), [0, 1], 8, n_max=100)
    assert per_seed[0] == 10 and per_seed[1] == 0 and never
    assert max(t.N for t in trials if t.seed == 1) == 100  # the cap itself was tested


def test_search_smallest_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="rel_precision"):
        search_smallest(_threshold_round({0: 1}), [0], 4, rel_precision=0)
    with pytest.raises(ConfigError, match="seed"):
        search_smallest(_threshold_round({0: 1}), [], 4)
