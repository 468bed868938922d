"""`mlx-console bench …` in process against the scripted stand-in: contracts, errors, history, compare."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from openai_scripted import Script, ScriptedServer

from mlx_console.cli import main

pytestmark = pytest.mark.slow


def bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["bench", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_run_json_history_compare(scripted: Callable[..., ScriptedServer],
                                  capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    srv = scripted(preset="good", default=Script(ttft_ms=10, gap_ms=2))
    rc, out, err = bench(capsys, "run", "--url", srv.base_url, "--model", "m", "--cells",
                         "throughput.short,chat.capital", "--runs", "5", "--label", "base", "--json",
                         "--out", str(tmp_path / "o"))
    assert rc == 0, err
    base = json.loads(out)
    assert list(base["cells"]) == ["chat.capital", "throughput.short"]
    assert "[1/2] chat.capital (chat)" in err and "trial 5/5" in err
    assert (tmp_path / "o" / f"{base['run_id']}.json").is_file()

    srv.state.default = Script(ttft_ms=10, gap_ms=6)  # three times slower decode
    rc, out, err = bench(capsys, "run", "--url", srv.base_url + "/v1", "--model", "m", "--cells",
                         "throughput.short,chat.capital", "--runs", "5", "--label", "slow")
    assert rc == 0 and "ok    throughput.short" in out and "tok/s" in out

    rc, out, _ = bench(capsys, "history", "--json")
    runs = json.loads(out)["runs"]
    assert [r["label"] for r in runs] == ["base", "slow"]
    assert runs[0]["cells"]["chat.capital"] == {"kind": "chat", "status": "pass"}
    rc, out, _ = bench(capsys, "history", "--model", "other")
    assert out.strip() == "no stored runs for model other"

    rc, out, _ = bench(capsys, "compare", base["run_id"], "latest", "--json")
    doc = json.loads(out)
    assert doc["cells"]["throughput.short"]["metrics"]["decode_tps"]["verdict"] == "regression"
    assert doc["overall"]["verdict"] == "worse" and doc["overall"]["cause"] == "perf_regression"
    rc, out, _ = bench(capsys, "compare", base["run_id"][:17], runs[1]["run_id"])
    assert "overall: worse (perf_regression)" in out


def test_run_compare_previous(scripted: Callable[..., ScriptedServer], capsys: pytest.CaptureFixture[str]) -> None:
    """The console's bench pane call (run, then compare with the model's previous run) from the CLI."""
    srv = scripted(preset="good", default=Script(ttft_ms=10, gap_ms=2))
    args = ("run", "--url", srv.base_url, "--model", "cmp", "--cells", "throughput.short", "--runs", "5",
            "--compare-previous")
    rc, out, err = bench(capsys, *args, "--json")
    assert rc == 0, err
    first = json.loads(out)
    assert first["compare_previous"] == {"previous_run_id": None, "comparison": None,
                                         "not_compared": "first run of this model: the next run is compared with it"}
    assert "throughput.short" in first["cells"]  # the summary's shape is kept

    srv.state.default = Script(ttft_ms=10, gap_ms=6)
    rc, out, err = bench(capsys, *args, "--json")
    assert rc == 0, err
    second = json.loads(out)["compare_previous"]
    assert second["previous_run_id"] == first["run_id"] and second["not_compared"] is None
    assert second["comparison"]["overall"]["verdict"] == "worse"

    rc, out, err = bench(capsys, *args)
    assert rc == 0, err
    assert "vs the previous run of cmp:" in out and "overall:" in out


def test_backend_profile_gives_url_model_and_flags(scripted: Callable[..., ScriptedServer],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    srv = scripted(preset="good")
    Path(os.environ["MLX_CONSOLE_CONFIG"]).write_text(
        f'[[backend]]\nname = "s"\nkind = "mlx-lm"\nmodel = "org/tiny"\nport = {srv.port}\nargs = ["--decode-concurrency", "2"]\n')
    rc, out, err = bench(capsys, "run", "--backend", "s", "--cells", "chat.capital", "--json")
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["model"] == "org/tiny" and srv.requests[-1]["model"] == "org/tiny"
    assert rec["config"]["server_flags"] == ["--decode-concurrency", "2"]
    assert rec["backend"]["kind"] == "mlx-lm"


def test_clear_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = bench(capsys, "run", "--url", "http://127.0.0.1:9", "--cells", "chat")
    assert rc == 1 and "--url needs --model" in err
    rc, _, err = bench(capsys, "run", "--url", "http://127.0.0.1:9", "--model", "m", "--suite", "nope")
    assert rc == 1 and "no suite named 'nope'; available: quick" in err
    rc, _, err = bench(capsys, "run", "--url", "http://127.0.0.1:9", "--model", "m", "--cells", "zzz")
    assert rc == 1 and "unknown cell or kind 'zzz'" in err
    bad = tmp_path / "s.toml"
    bad.write_text('name = "x"\n[[cell]]\nid = "a"\nkind = "chat"\nprompt = "hi"\nexpect = "Paris"\n')
    rc, _, err = bench(capsys, "run", "--url", "http://127.0.0.1:9", "--model", "m", "--suite", str(bad))
    assert rc == 1 and f"{bad}:6: key 'expect' = 'Paris': expected a list of substrings" in err
    rc, _, err = bench(capsys, "compare", "nope", "latest")
    assert rc == 1 and "no run 'nope'" in err
    rc, _, err = bench(capsys, "run", "--backend", "ghost", "--cells", "chat")
    assert rc == 1 and "no backend named 'ghost'" in err


def test_suites_listing(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = bench(capsys, "suites", "--json")
    doc = json.loads(out)
    quick = doc["suites"][0]
    assert quick["name"] == "quick" and {c["kind"] for c in quick["cells"]} == {
        "chat", "coding", "tool_call", "throughput", "concurrency", "cache_consistency"}


def test_a_record_masks_secret_flags(scripted: Callable[..., ScriptedServer], isolated_state: Path) -> None:
    from mlx_console.core.bench import suites
    from mlx_console.core.bench.runner import run_suite

    srv = scripted(preset="good")
    rec = run_suite(srv.base_url, "m", suites.load("quick").select("chat.capital"),
                    server_flags=["--hf-token", "hf_abc", "--api-key=sk-1", "--port", "8080"])
    assert rec.summary["config"]["server_flags"] == ["--hf-token", "***", "--api-key=***", "--port", "8080"]
    assert "hf_abc" not in Path(rec.paths["summary"]).read_text()
