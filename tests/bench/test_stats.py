"""Summaries and the exact Mann-Whitney U test, checked against published exact values."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mlx_console.core.bench import stats


def test_summary_block_shape_and_values() -> None:
    s = stats.summary([10.0, 20.0, 30.0, 40.0, None])
    assert s["samples"] == [10.0, 20.0, 30.0, 40.0]
    assert s["median"] == 25.0 and s["p25"] == 17.5 and s["p75"] == 32.5
    assert math.isclose(s["cv"], 12.909944487358056 / 25.0)
    assert stats.summary([]) == {"median": None, "p25": None, "p75": None, "cv": None, "samples": []}
    assert stats.summary([5.0])["cv"] is None


def test_smallest_p_by_sample_size_matches_the_methodology_doc() -> None:
    # backends.md §4: 3 vs 3 cannot reach p < 0.05 (min 0.10); 4 vs 4 → 0.029; 5 vs 5 → 0.008.
    assert math.isclose(stats.mann_whitney([1, 2, 3], [4, 5, 6]).p, 0.1)
    assert math.isclose(stats.mann_whitney([1, 2, 3], [4, 5, 6]).min_p, 0.1)
    assert math.isclose(stats.mann_whitney([1, 2, 3, 4], [5, 6, 7, 8]).p, 2 / 70)
    assert math.isclose(stats.mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p, 2 / 252)


def test_exact_p_known_value_and_ties() -> None:
    # U = 3 for n1 = n2 = 5: exact two-sided p = 2 * P(U <= 3) = 2 * 7/252 (scipy method="exact": 0.0556).
    r = stats.mann_whitney([1, 2, 3, 5, 7], [4, 6, 8, 9, 10])
    assert r.u == 3.0
    assert math.isclose(r.p, 14 / 252)
    # All values equal: no evidence at all.
    assert stats.mann_whitney([5, 5, 5], [5, 5, 5]).p == 1.0
    # Ties across groups are ranked by midrank and enumerated exactly.
    tied = stats.mann_whitney([1, 2, 2, 3], [2, 3, 4, 5])
    assert 0.0 < tied.p <= 1.0 and tied.u == 2.5


@given(st.lists(st.integers(0, 20), min_size=1, max_size=6), st.lists(st.integers(0, 20), min_size=1, max_size=6))
def test_p_is_symmetric_and_bounded(a: list[int], b: list[int]) -> None:
    ab, ba = stats.mann_whitney(a, b), stats.mann_whitney(b, a)
    assert math.isclose(ab.p, ba.p)
    assert 0.0 < ab.p <= 1.0
    assert ab.min_p <= ab.p + 1e-12
    assert math.isclose(ab.u + ba.u, len(a) * len(b))


def test_a_sample_over_ten_times_the_median_is_set_apart() -> None:
    from mlx_console.core.bench.stats import split_outliers

    kept, out = split_outliers([1600.0, 1650.0, 2_520_641.0, 1700.0, None])
    assert kept == [1600.0, 1650.0, 1700.0] and out == [2_520_641.0]
    assert split_outliers([1.0, 9.0, 10.0]) == ([1.0, 9.0, 10.0], [])
    assert split_outliers([1.0, 1000.0]) == ([1.0, 1000.0], [])  # two samples: no median to judge by
