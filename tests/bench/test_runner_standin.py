"""Whole suites against the scripted stand-in: scoring and timing checked against known truth."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from openai_scripted import Script, ScriptedServer

from mlx_console.core.bench import store, suites
from mlx_console.core.bench.runner import ProgressEvent, run_suite

pytestmark = pytest.mark.slow

TOP_KEYS = {"schema", "run_id", "ts", "suite", "label", "backend", "model", "config", "config_hash", "env", "cells"}
METRIC = {"median", "p25", "p75", "cv", "samples"}


def quick(cells: str | None = None) -> suites.Suite:
    return suites.load("quick").select(cells)


def test_good_answers_pass_every_cell_and_the_record_has_the_contract_shape(
        scripted: Callable[..., ScriptedServer], isolated_state: Path) -> None:
    srv = scripted(preset="good", default=Script(ttft_ms=30, gap_ms=2))
    events: list[ProgressEvent] = []
    rec = run_suite(srv.base_url + "/v1", "m", quick(), runs=4, label="good", server_flags=["--x"],
                    progress=events.append)
    s = rec.summary
    assert set(s) == TOP_KEYS and s["schema"] == 1 and s["label"] == "good"
    assert s["backend"] == {"base_url": srv.base_url + "/v1", "kind": "mlx-lm", "version": "0.32.2"}
    assert s["config"] == {"server_flags": ["--x"], "model_settings": None}
    statuses = {cid: c["status"] for cid, c in s["cells"].items()}
    assert statuses == {"chat.capital": "pass", "chat.recall": "pass", "coding.fizzbuzz": "pass",
                        "tool.weather": "pass", "tool.irrelevant": "pass", "throughput.short": "ok",
                        "throughput.long": "ok", "concurrency.4": "ok", "cache.prefix": "pass"}, s["cells"]
    assert s["cells"]["coding.fizzbuzz"]["result"] == "passed"
    assert s["cells"]["tool.weather"]["layer"] is None
    tp = s["cells"]["throughput.short"]
    assert tp["n"] == 4 and tp["token_count_source"] == "usage"
    for m in ("decode_tps", "ttft_ms", "prefill_tps", "e2e_s", "completion_tokens"):
        assert set(tp[m]) == METRIC and len(tp[m]["samples"]) == 4
    # Truth: 2 ms between tokens → 500 tok/s; first token at 30 ms; 128 tokens each.
    assert tp["decode_tps"]["median"] == pytest.approx(500, rel=0.1)
    assert 30 <= tp["ttft_ms"]["median"] < 60
    assert tp["completion_tokens"]["samples"] == [128.0] * 4 and tp["early_stops"] == 0
    # Cache busting worked: a nonce opens every prompt, so nothing was cached.
    assert tp["cached_tokens_max"] == 0
    assert abs(tp["prompt_tokens"] - 128) <= 8 and abs(s["cells"]["throughput.long"]["prompt_tokens"] - 1024) <= 30
    conc = s["cells"]["concurrency.4"]
    assert conc["streams"] == 4 and conc["n"] == 16 and conc["mismatches"] == 0
    assert conc["aggregate_tps"]["median"] > 2 * conc["decode_tps"]["median"]
    assert s["cells"]["cache.prefix"]["cached_tokens"] > 0
    # Never a seed; always include_usage.
    assert all("seed" not in b and b["stream_options"] == {"include_usage": True} for b in srv.requests)
    # Stored: summary + per-request rows.
    assert Path(rec.paths["summary"]).parent == isolated_state / "bench"
    assert json.loads(Path(rec.paths["summary"]).read_text()) == s
    rows = store.load_requests(rec.run_id)
    assert {r["cell"] for r in rows} == set(s["cells"]) and all("ttft_ms" in r for r in rows)
    # Structured progress: one start and one finish per cell, in order, samples in between.
    kinds = [e.event for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    started = [e.cell for e in events if e.event == "cell_started"]
    finished = [e for e in events if e.event == "cell_finished"]
    assert started == [f.cell for f in finished] == list(s["cells"])
    assert finished[5].result == s["cells"]["throughput.short"] and finished[5].index == 6 and finished[5].total == 9
    assert sum(1 for e in events if e.event == "sample_done" and e.cell == "throughput.short"
               and e.phase == "trial") == 4


def test_bad_answers_fail_with_the_right_reasons(scripted: Callable[..., ScriptedServer]) -> None:
    srv = scripted(preset="bad")
    rec = run_suite(srv.base_url, "m", quick("chat,coding,tool_call,concurrency,cache_consistency"), runs=2,
                    save=False)
    c = rec.cells
    assert c["chat.capital"]["status"] == "fail" and "'Paris' not in answer" in c["chat.capital"]["reason"]
    assert c["chat.recall"]["status"] == "fail" and c["chat.recall"]["reason"].startswith("turn 2 (recall)")
    assert c["coding.fizzbuzz"]["result"] == "failed:AssertionError"
    assert c["tool.weather"]["layer"] == "transport" and "pattern B" in c["tool.weather"]["reason"]
    assert c["tool.irrelevant"]["layer"] == "arguments" and "irrelevance" in c["tool.irrelevant"]["reason"]
    assert c["concurrency.4"]["status"] == "fail" and c["concurrency.4"]["mismatches"] >= 1
    assert c["cache.prefix"]["status"] == "fail" and "prompt-cache bug" in c["cache.prefix"]["reason"]
    assert rec.paths == {}


def test_repetition_loop_early_stop_cache_hits_and_errors(scripted: Callable[..., ScriptedServer]) -> None:
    srv = scripted([Script(match="capital", content="la " * 20, finish_reason="length")],
                   default=Script(content="short answer", cached_tokens=100, gap_ms=1))
    rec = run_suite(srv.base_url, "m", quick("chat.capital,throughput.short"), runs=2, save=False)
    assert "repetition loop" in rec.cells["chat.capital"]["reason"]
    tp = rec.cells["throughput.short"]
    assert tp["status"] == "ok" and tp["early_stops"] == 2 and tp["cached_tokens_max"] == 100
    assert "stopped early" in tp["reason"] and "prefix cache hit" in tp["reason"]

    broken = scripted(default=Script(cut_after=3))
    rec = run_suite(broken.base_url, "m", quick("throughput.short"), runs=2, save=False)
    tp = rec.cells["throughput.short"]
    assert tp["status"] == "error" and "truncated" in tp["reason"] and tp["n"] == 0


def test_prefix_cache_cell_fails_when_the_cache_was_never_hit(scripted: Callable[..., ScriptedServer]) -> None:
    srv = scripted(default=Script(prefix_cache=False))
    cell = run_suite(srv.base_url, "m", quick("cache_consistency"), runs=1, save=False).cells["cache.prefix"]
    assert cell["status"] == "fail" and cell["exercised"] is False
    assert cell["reason"].startswith("not exercised: the server's prefix cache was never hit (cached_tokens 0")


def test_unreachable_server_is_one_clear_error() -> None:
    from mlx_console.core.errors import ConsoleError
    with pytest.raises(ConsoleError, match="does not answer a 1-token chat completion"):
        run_suite("http://127.0.0.1:9", "m", quick("chat.capital"), save=False)


def test_run_profile_for_the_ui_worker(scripted: Callable[..., ScriptedServer], tmp_path: Path) -> None:
    from mlx_console.core import config as config_mod
    from mlx_console.core.bench.target import run_profile

    srv = scripted(preset="good")
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(f'[[backend]]\nname = "s"\nkind = "mlx-lm"\nmodel = "org/m"\nport = {srv.port}\n'
                        'args = ["--decode-concurrency", "2"]\n')
    lines: list[str] = []
    rec = run_profile(config_mod.load(cfg_path), "s", quick("chat.capital"), progress=lambda e: lines.append(str(e)))
    assert rec.cells["chat.capital"]["status"] == "pass"
    assert rec.summary["config"]["server_flags"] == ["--decode-concurrency", "2"] and rec.summary["model"] == "org/m"
    assert "[1/1] chat.capital (chat) …" in lines and "[1/1] chat.capital pass" in lines


@pytest.mark.parametrize("content, fmt", [
    ('{"name": "get_weather", "parameters": {"city": "Paris"}}', "JSON {name, parameters|arguments}"),
    ('[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}]', "mistral [TOOL_CALLS]"),
    ('<function=get_weather>{"city": "Paris"}</function>', "<function> tag"),
])
def test_tool_call_left_in_content_points_at_the_parser(scripted: Callable[..., ScriptedServer], content: str,
                                                        fmt: str) -> None:
    srv = scripted([Script(match="weather in Paris", content=[content])])
    cell = run_suite(srv.base_url, "m", quick("tool.weather"), save=False).cells["tool.weather"]
    assert cell["status"] == "fail" and cell["layer"] == "transport" and cell["content_format"] == fmt
    assert cell["tool_calls"] == [] and cell["finish_reason"] == "stop"
    # A proper call with a wrong argument fails the arguments layer instead.
    srv.state.scripts = [Script(match="weather in Paris", tool_calls=[{"name": "get_weather",
                                                                       "arguments": {"city": "Lyon"}}])]
    cell = run_suite(srv.base_url, "m", quick("tool.weather"), save=False).cells["tool.weather"]
    assert cell["layer"] == "arguments" and "'Lyon'" in cell["reason"]


def test_thinking_model_reports_time_to_visible_content(scripted: Callable[..., ScriptedServer]) -> None:
    srv = scripted(default=Script(ttft_ms=20, gap_ms=5, reasoning=["think "] * 10, content="answer " * 20))
    tp = run_suite(srv.base_url, "m", quick("throughput.short"), runs=2, save=False).cells["throughput.short"]
    # Truth: reasoning starts at 20 ms, the visible answer 10 chunks (50 ms) later.
    assert 20 <= tp["ttft_ms"]["median"] < 45
    assert tp["first_content_ms"]["median"] - tp["ttft_ms"]["median"] == pytest.approx(50, abs=10)


def test_cancel_stops_between_requests(scripted: Callable[..., ScriptedServer]) -> None:
    import threading

    srv = scripted(preset="good")
    stop = threading.Event()

    def progress(e: ProgressEvent) -> None:
        if e.event == "cell_finished":
            stop.set()

    rec = run_suite(srv.base_url, "m", quick("chat.capital,throughput.short"), progress=progress, cancel=stop,
                    save=False)
    assert rec.cells["chat.capital"]["status"] == "pass"
    assert rec.cells["throughput.short"] == {**rec.cells["throughput.short"], "status": "error", "reason": "cancelled"}
