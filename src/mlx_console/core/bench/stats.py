"""Sample summaries (median, p25, p75, CV) and an exact two-sided Mann-Whitney U test (ties allowed)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    """(p25, median, p75), linearly interpolated (numpy's default method, R's type 7)."""
    if not xs:
        raise ValueError("no samples")
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    p25, p50, p75 = statistics.quantiles(xs, n=4, method="inclusive")
    return p25, p50, p75


def cv(xs: Sequence[float]) -> float | None:
    """Coefficient of variation = sample stdev / mean (None with fewer than 2 samples or mean 0)."""
    if len(xs) < 2:
        return None
    m = statistics.fmean(xs)
    if m == 0:
        return None
    return statistics.stdev(xs) / abs(m)


def summary(samples: Sequence[float | None]) -> dict[str, Any]:
    """The per-metric block of a run record: {"median","p25","p75","cv","samples"}."""
    xs = [float(x) for x in samples if x is not None]
    if not xs:
        return {"median": None, "p25": None, "p75": None, "cv": None, "samples": []}
    p25, median, p75 = quartiles(xs)
    return {"median": median, "p25": p25, "p75": p75, "cv": cv(xs), "samples": xs}


def split_outliers(samples: Sequence[float | None], factor: float = 10.0) -> tuple[list[float], list[float]]:
    """(kept, outliers): a sample more than `factor` × the median of the others is not a measurement of the same
    thing (e.g. a decode rate timed over a burst); it is set apart, never silently kept or dropped."""
    xs = [float(x) for x in samples if x is not None]
    if len(xs) < 3:
        return xs, []
    kept: list[float] = []
    out: list[float] = []
    for i, x in enumerate(xs):
        others = xs[:i] + xs[i + 1:]
        m = statistics.median(others)
        (out if m > 0 and x > factor * m else kept).append(x)
    return kept, out


@dataclass(frozen=True)
class MannWhitney:
    u: float  # U of the first sample
    p: float  # exact two-sided p-value
    min_p: float  # the smallest p these sample sizes can reach


def _rank(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mid = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = mid
        i = j + 1
    return ranks


def _rank_sum_distribution(ranks2: Sequence[int], n1: int) -> dict[int, int]:
    """Counts of each (doubled) rank sum over all n1-subsets of the pooled ranks: exact, handles ties."""
    # dp[k] maps a doubled rank sum to the number of k-subsets reaching it.
    dp: list[dict[int, int]] = [{0: 1}] + [{} for _ in range(n1)]
    for r in ranks2:
        for k in range(min(n1, len(dp) - 1), 0, -1):
            prev = dp[k - 1]
            cur = dp[k]
            for s, c in prev.items():
                cur[s + r] = cur.get(s + r, 0) + c
    return dp[n1]


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> MannWhitney:
    """Exact two-sided Mann-Whitney U test by enumerating rank-sum counts (fine for bench-sized samples)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return MannWhitney(u=0.0, p=1.0, min_p=1.0)
    pooled = list(a) + list(b)
    ranks = _rank(pooled)
    doubled = [round(r * 2) for r in ranks]
    dist = _rank_sum_distribution(doubled, n1)
    total = math.comb(n1 + n2, n1)
    mean2 = n1 * (n1 + n2 + 1)  # doubled mean of the rank sum
    observed = sum(doubled[:n1])
    dev = abs(observed - mean2)
    extreme = sum(c for s, c in dist.items() if abs(s - mean2) >= dev)
    p = min(1.0, extreme / total)
    max_dev = max(abs(s - mean2) for s in dist)
    min_p = sum(c for s, c in dist.items() if abs(s - mean2) >= max_dev) / total
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    return MannWhitney(u=u, p=p, min_p=min(1.0, min_p))
