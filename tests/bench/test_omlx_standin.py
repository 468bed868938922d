"""Bench against the oMLX 0.5.0 stand-in: keepalive chunks, oMLX's identity, and bisect through settings."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "standins"))
from omlx_harness import API_KEY, Standin, StandinFactory  # noqa: E402

from mlx_console.cli import main  # noqa: E402
from mlx_console.core.bench import suites  # noqa: E402
from mlx_console.core.bench.runner import run_suite  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def omlx(tmp_path: Path) -> Iterator[Standin]:
    factory = StandinFactory(tmp_path)
    # Replies run to max_tokens (as the real tiny model's do): streams of many tokens in few chunks.
    yield factory(env={"OMLX_STANDIN_REPLY_MAX": "1"})
    factory.stop_all()


def test_quick_cells_against_omlx(omlx: Standin) -> None:
    rec = run_suite(omlx.base_url + "/v1", "tiny-llama", suites.load("quick").select("throughput.short,tool.weather"),
                    api_key=API_KEY, runs=2, save=False)
    s = rec.summary
    assert s["backend"]["kind"] == "omlx" and s["backend"]["version"] == "0.5.0"
    tp = s["cells"]["throughput.short"]
    assert tp["status"] == "ok", tp
    assert tp["token_count_source"] == "usage" and tp["decode_tps"]["median"] > 0
    # Coarse chunks (many tokens each), yet the client's rate agrees with oMLX's own timing.
    rows = [r for r in rec.requests if r["cell"] == "throughput.short" and r["phase"] == "trial"]
    for row in rows:
        assert row["content_chunks"] < row["completion_tokens"] / 4
        server = row["server_timing"]["generation_tokens_per_second"]
        assert row["decode_tps"] is not None and 0.5 < row["decode_tps"] / server < 2, row
    # oMLX's first event is a keepalive chunk: it was skipped, not taken as the first token.
    assert tp["ttft_ms"]["median"] > 0
    assert s["cells"]["tool.weather"]["status"] in ("pass", "fail")
    # oMLX's own timings are kept per request, beside the client's.
    row = next(r for r in rec.requests if r["cell"] == "throughput.short" and r["phase"] == "trial")
    assert row["server_timing"] and "time_to_first_token" in row["server_timing"]


def test_bisect_applies_settings_and_restores_the_file(omlx: Standin, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    Path(os.environ["MLX_CONSOLE_CONFIG"]).write_text(
        f'[[backend]]\nname = "o"\nkind = "omlx"\nmodel = "tiny-llama"\nport = {omlx.port}\n'
        f'base_path = "{omlx.base}"\napi_key = "{API_KEY}"\n')
    (tmp_path / "base.json").write_text(json.dumps({"max_context_window": 8192}))
    (tmp_path / "cand.json").write_text(json.dumps({"max_context_window": 8192, "top_k": 20}))
    rc = main(["bench", "bisect", "--backend", "o", "--baseline", str(tmp_path / "base.json"),
               "--candidate", str(tmp_path / "cand.json"), "--cells", "throughput.short", "--runs", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads(out)
    assert res["changes"] == ["top_k: (unset) → 20"] and res["restored"]
    settings = json.loads((omlx.base / "model_settings.json").read_text())["models"]["tiny-llama"]
    assert settings.get("max_context_window") == 8192 and "top_k" not in settings
    with open(os.path.join(os.environ["MLX_CONSOLE_STATE_DIR"], "bench",
                           res["runs"]["candidate"] + ".json")) as f:
        cand = json.load(f)
    assert cand["config"]["model_settings"] == {"max_context_window": 8192, "top_k": 20}


def test_bench_run_by_url_with_an_api_key(omlx: Standin, capsys: pytest.CaptureFixture[str]) -> None:
    """`bench run --url … --api-key KEY` used to crash: run_suite got api_key twice."""
    rc = main(["bench", "run", "--url", omlx.base_url, "--model", "tiny-llama", "--api-key", API_KEY,
               "--cells", "throughput.short", "--runs", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    cell = json.loads(out)["cells"]["throughput.short"]
    assert cell["status"] == "ok" and cell["decode_tps"]["median"] > 0, cell
    assert API_KEY not in out
    rc = main(["bench", "run", "--url", omlx.base_url, "--model", "tiny-llama", "--api-key", "wrong",
               "--cells", "throughput.short", "--runs", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 1 and out == "" and "Traceback" not in err and "wrong" not in err, err
