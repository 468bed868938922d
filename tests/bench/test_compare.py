"""Compare verdicts on synthetic records whose samples are known."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlx_console.core.bench import stats
from mlx_console.core.bench.compare import compare_runs, metric_verdict
from mlx_console.core.bench.record import environment, new_summary
from mlx_console.core.errors import ConsoleError


def record(decode: list[float], coding: str = "pass", chat: str = "pass", tp_status: str = "ok",
           version: str = "0.32.2") -> dict[str, Any]:
    s = new_summary(suite="quick", label="", base_url="http://x", kind="mlx-lm", version=version, model="m",
                    server_flags=[], model_settings=None)
    s["cells"] = {
        "coding.fizzbuzz": {"kind": "coding", "status": coding, "reason": "", "must_pass": True},
        "chat.extra": {"kind": "chat", "status": chat, "reason": "", "must_pass": False},
        "throughput.short": {"kind": "throughput", "status": tp_status, "reason": "", "must_pass": False,
                             "n": len(decode), "decode_tps": stats.summary(decode)},
    }
    return s


BASE5 = [100.0, 101.0, 99.0, 100.5, 99.5]


def test_three_vs_three_is_inconclusive_even_for_a_big_change() -> None:
    v = metric_verdict("decode_tps", [100, 101, 99], [50, 51, 49])
    assert v["verdict"] == "inconclusive" and "cannot reach p < 0.05" in v["reason"]


def test_regression_improvement_and_noise_with_five_samples() -> None:
    assert metric_verdict("decode_tps", BASE5, [80, 81, 79, 80.5, 79.5])["verdict"] == "regression"
    assert metric_verdict("decode_tps", BASE5, [120, 121, 119, 120.5, 119.5])["verdict"] == "improvement"
    # Lower is better for latency.
    assert metric_verdict("ttft_ms", BASE5, [120, 121, 119, 120.5, 119.5])["verdict"] == "regression"
    # Significant but below the 5 % threshold → noise.
    v = metric_verdict("decode_tps", BASE5, [103, 103.5, 102.5, 103.2, 102.8])
    assert v["verdict"] == "within_noise" and v["p"] < 0.05 and v["threshold_pct"] == 5.0


def test_threshold_is_twice_the_baseline_cv() -> None:
    noisy = [90.0, 110.0, 95.0, 105.0, 100.0]  # CV ≈ 7.9 % → threshold ≈ 15.8 %
    v = metric_verdict("decode_tps", noisy, [88, 89, 87, 88.5, 87.5])  # −12 %
    assert v["verdict"] == "within_noise" and v["threshold_pct"] == pytest.approx(15.81, abs=0.05)


def test_drifting_baseline_is_inconclusive() -> None:
    v = metric_verdict("decode_tps", [90, 95, 100, 105, 110], [70, 71, 69, 70, 70])
    assert v["verdict"] == "inconclusive" and "drifted" in v["reason"]


def test_faster_but_fails_coding_is_worse() -> None:
    doc = compare_runs(record(BASE5), record([150, 151, 149, 150.5, 149.5], coding="fail"))
    assert doc["cells"]["throughput.short"]["metrics"]["decode_tps"]["verdict"] == "improvement"
    assert doc["cells"]["coding.fizzbuzz"]["verdict"] == "flip"
    assert doc["overall"] == {"verdict": "worse", "cause": "must_pass_flip",
                              "reason": "must-pass cells now fail: coding.fizzbuzz"}


def test_precedence() -> None:
    base = record(BASE5)
    err = compare_runs(base, record(BASE5, tp_status="error", coding="fail"))
    assert err["overall"]["cause"] == "error"
    drop = compare_runs(base, record([150, 151, 149, 150.5, 149.5], chat="fail"))
    assert drop["overall"]["verdict"] == "worse" and drop["overall"]["cause"] == "quality_drop"
    slow = compare_runs(base, record([80, 81, 79, 80.5, 79.5]))
    assert slow["overall"]["cause"] == "perf_regression"
    fast = compare_runs(base, record([120, 121, 119, 120.5, 119.5]))
    assert fast["overall"]["verdict"] == "better"
    fixed = compare_runs(record(BASE5, chat="fail"), record(BASE5))
    assert fixed["cells"]["chat.extra"]["verdict"] == "flip" and fixed["overall"]["verdict"] == "better"
    same = compare_runs(base, record([100.2, 100.8, 99.1, 100.4, 99.6]))
    assert same["overall"]["verdict"] == "same"
    few = compare_runs(record(BASE5[:3]), record([50, 51, 49]))
    assert few["overall"]["verdict"] == "inconclusive"


def test_refuses_other_backend_version_or_env_unless_forced() -> None:
    base, cand = record(BASE5), record(BASE5, version="0.32.3")
    with pytest.raises(ConsoleError, match=r"backend.version: '0.32.2' vs '0.32.3'.*--force"):
        compare_runs(base, cand)
    forced = compare_runs(base, cand, force=True)
    assert forced["forced"] and forced["not_comparable"] == ["backend.version: '0.32.2' vs '0.32.3'"]
    other = copy.deepcopy(base)
    other["env"] = {**environment(), "chip": "Apple M3 Ultra"}
    with pytest.raises(ConsoleError, match="env.chip"):
        compare_runs(base, other)


def test_cells_missing_on_one_side() -> None:
    cand = record(BASE5)
    del cand["cells"]["chat.extra"]
    doc = compare_runs(record(BASE5), cand)
    assert doc["cells"]["chat.extra"]["verdict"] == "inconclusive"
    assert doc["cells"]["chat.extra"]["reason"] == "only in the baseline"
