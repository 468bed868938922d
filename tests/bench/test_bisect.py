"""Bisect planning and attribution: real benches against the stand-in, whose behaviour the flags set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openai_scripted import PRESETS, Script, ScriptedServer

from mlx_console.core.bench import bisect, suites
from mlx_console.core.bench.runner import run_suite
from mlx_console.core.errors import ConsoleError

SUITE = """
name = "mini"
[[cell]]
id = "coding.fizzbuzz"
kind = "coding"
must_pass = true
prompt = "Write fizzbuzz"
asserts = "assert fizzbuzz(3) == 'Fizz'"
[[cell]]
id = "tp"
kind = "throughput"
prompt_tokens = 32
max_tokens = 12
trials = 5
warmup = 0
"""


def test_args_flags_round_trip_and_differences() -> None:
    flags = bisect.args_to_flags(["--max-tokens", "512", "--trust-remote-code", "--kv-bits=4"])
    assert flags == {"--max-tokens": "512", "--trust-remote-code": True, "--kv-bits": "4"}
    assert bisect.flags_to_args(flags) == ["--max-tokens", "512", "--trust-remote-code", "--kv-bits", "4"]
    changes = bisect.differences({"--a": "1", "--b": True}, {"--a": "2", "--c": "x"})
    assert [c.label() for c in changes] == ['--a: "1" → "2"', "--b: true → (unset)", '--c: (unset) → "x"']
    steps = bisect.plan({"--a": "1", "--b": True}, {"--a": "2", "--c": "x"})
    assert [s[0] for s in steps][:2] == ["baseline", "candidate"]
    assert steps[3][1] == {"--a": "1"}  # baseline with --b removed alone


def test_config_files(tmp_path: Path) -> None:
    txt = tmp_path / "base.args"
    txt.write_text("--decode-concurrency 4  # batch\n--prompt-cache-size 10\n")
    assert bisect.load_config_file(txt, "mlx-lm") == {"--decode-concurrency": "4", "--prompt-cache-size": "10"}
    toml = tmp_path / "cand.toml"
    toml.write_text('args = ["--kv-bits", "4"]\n')
    assert bisect.load_config_file(toml, "mlx-lm") == {"--kv-bits": "4"}
    js = tmp_path / "s.json"
    js.write_text('{"turboquant_kv_enabled": true, "turboquant_kv_bits": 4}')
    assert bisect.load_config_file(js, "omlx") == {"turboquant_kv_enabled": True, "turboquant_kv_bits": 4}
    js.write_text("[1,")
    with pytest.raises(ConsoleError, match=r"s.json: not valid JSON"):
        bisect.load_config_file(js, "omlx")
    with pytest.raises(ConsoleError, match="not a flag"):
        bisect.load_config_file(txt.with_name("x.args"), "mlx-lm") if False else bisect.args_to_flags(["oops"])


class StandinApplier:
    """Flags decide how the stand-in behaves: the truth the attribution must find."""

    def __init__(self, srv: ScriptedServer) -> None:
        self.srv = srv
        self.applied: list[dict[str, Any]] = []

    def describe(self) -> str:
        return "stand-in"

    def apply(self, config: dict[str, Any]) -> None:
        self.applied.append(dict(config))
        slow = config.get("--slow") or (config.get("--a") and config.get("--b"))
        self.srv.state.default = Script(gap_ms=12.0 if slow else 4.0, ttft_ms=60)
        good = PRESETS["good"] if not config.get("--break-coding") else PRESETS["bad"]
        self.srv.state.scripts = [s for s in good if "fizzbuzz" in s.match]


@pytest.fixture
def mini(tmp_path: Path) -> suites.Suite:
    p = tmp_path / "mini.toml"
    p.write_text(SUITE)
    return suites.load(p)


def bench_with(srv: ScriptedServer, suite: suites.Suite) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    return lambda label, cfg: run_suite(srv.base_url, "m", suite, label=label,
                                        server_flags=bisect.flags_to_args(cfg)).summary


@pytest.mark.slow
def test_single_flag_explains_a_regression_and_the_baseline_is_restored(
        scripted: Callable[..., ScriptedServer], mini: suites.Suite) -> None:
    srv = scripted()
    ap = StandinApplier(srv)
    base = {"--harmless": "1"}
    cand = {"--harmless": "2", "--slow": True}
    res = bisect.bisect(ap, base, cand, bench_with(srv, mini))
    assert res["target"]["verdict"] == "worse" and res["target"]["cause"] == "perf_regression"
    assert res["explained_by"] == ["--slow: (unset) → true"]
    # A harmless flag may wobble by noise, but it never reproduces a 3x slowdown.
    assert '--harmless: "1" → "2"' in res["singles"]
    assert res["restored"] and ap.applied[-1] == base
    assert len(res["runs"]) == 4 and "explains" not in res["conclusion"] and "--slow" in res["conclusion"]


@pytest.mark.slow
def test_quality_beats_speed_and_pairs_found_when_no_single_flag_explains(
        scripted: Callable[..., ScriptedServer], mini: suites.Suite) -> None:
    srv = scripted()
    ap = StandinApplier(srv)
    res = bisect.bisect(ap, {}, {"--break-coding": True, "--harmless": "x"}, bench_with(srv, mini))
    assert res["target"]["cause"] == "must_pass_flip" and res["explained_by"] == ["--break-coding: (unset) → true"]

    res = bisect.bisect(ap, {}, {"--a": True, "--b": True, "--harmless": "x"}, bench_with(srv, mini))
    assert res["explained_by"] == [], res["singles"]
    assert res["interacting_pairs"] == ["--a: (unset) → true + --b: (unset) → true"]
    assert "interact" in res["conclusion"] and res["restored"] and ap.applied[-1] == {}


def test_restores_the_baseline_even_when_a_bench_fails() -> None:
    applied: list[dict[str, Any]] = []

    class Rec:
        def describe(self) -> str:
            return "rec"

        def apply(self, config: dict[str, Any]) -> None:
            applied.append(config)

    def bench(label: str, cfg: dict[str, Any]) -> dict[str, Any]:
        raise ConsoleError("server died")

    with pytest.raises(ConsoleError, match="server died"):
        bisect.bisect(Rec(), {"--a": "1"}, {"--a": "2"}, bench)
    assert applied == [{"--a": "1"}, {"--a": "1"}]
    with pytest.raises(ConsoleError, match="identical"):
        bisect.bisect(Rec(), {"--a": "1"}, {"--a": "1"}, bench)
