"""The bench pane's history: a cell's median with its p25–p75 band across stored runs, run dates on the x
axis, configuration changes marked; `c` plots the next cell. Runs are real stored records (core/bench/store)."""

from __future__ import annotations

import json

from mlx_console.core.bench.store import bench_dir
from mlx_console.core.bench.trend import trend

from .conftest import wait_for

MODEL = "/models/Qwen3-8B-4bit"


def record(i: int, tps: float, config: str, cells: tuple[str, ...] = ("throughput.short", "chat.capital")) -> dict:
    return {"schema": 1, "run_id": f"20261201T10{i:02d}00Z-abcd{i}", "ts": f"2026-12-0{1 + i}T10:{i:02d}:00Z",
            "suite": "quick", "label": f"run {i}", "model": MODEL, "config_hash": config,
            "cells": {c: {"status": "pass", "decode_tps": {"median": tps + k, "p25": tps + k - 3,
                                                           "p75": tps + k + 4, "cv": 0.02, "samples": []}}
                      for k, c in enumerate(cells)}}


def store(runs: list[dict]) -> None:
    for r in runs:
        (bench_dir() / f"{r['run_id']}.json").write_text(json.dumps(r))


RUNS = [record(0, 50, "a"), record(1, 52, "a"), record(2, 40, "b"), record(3, 41, "b", ("throughput.short",))]


def test_trend_points_bands_and_config_changes() -> None:
    t = trend(RUNS)
    assert t.cell == "throughput.short" and t.cells == ["throughput.short", "chat.capital"]
    assert [p.median for p in t.points] == [50, 52, 40, 41] and [p.p25 for p in t.points] == [47, 49, 37, 38]
    assert t.changes == [2] and t.points[0].short == "12-01 10:00"
    other = trend(RUNS, "chat.capital")
    assert [p.median for p in other.points] == [51, 53, 41] and other.changes == [2]
    assert trend([]).cell is None and trend([]).points == []


async def test_bench_pane_plots_the_history_of_each_cell(make_app) -> None:
    store(RUNS)
    app = make_app(polls=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("b")
        pane = app.bench_pane
        await wait_for(pilot, lambda: pane.trend is not None and len(pane.trend.points) == 4, what="history")
        label = str(pane.query_one("#bench-trend-label").render())
        assert "throughput.short: decode tok/s, 4 runs of Qwen3-8B-4bit" in label and "last 41 (p25–p75 38–45)" in label
        assert "c: next cell (1/2)" in label
        await pilot.press("c")
        await wait_for(pilot, lambda: pane.trend.cell == "chat.capital", what="next cell")
        assert len(pane.trend.points) == 3
        text = app.export_screenshot().replace("&#160;", " ")
        assert "config changed" in text and "12-01 10:00" in text
