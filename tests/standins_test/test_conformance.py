"""Replay the requests of a recorded real oMLX 0.5.0 run against the stand-in and compare the replies.

The recordings (tests/fixtures/omlx-real/) come from `omlx serve` on the tiny model. Volatile values (ids,
timestamps, timings, generated text, host memory) are masked; the known, intended differences are listed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from omlx_harness import REAL, Standin, make_model
from omlx_harness import StandinFactory as StartStandin

pytestmark = pytest.mark.slow

VOLATILE = {
    "created", "id", "uptime_seconds", "last_access", "final_ceiling", "model_memory_max",
    "model_memory_max_formatted", "total_time", "time_to_first_token", "prompt_eval_duration", "generation_duration",
    "prompt_tokens_per_second", "generation_tokens_per_second", "load_seconds_per_gb_estimate", "logs",
    "model_path", "content", "text", "total_lines", "loading_started_at", "model_load_duration",
    "actual_size", "actual_size_formatted",  # measured memory in oMLX: jitters by a few bytes
}
# Token counts come from the model's tokenizer in oMLX; the stand-in approximates them.
TOKEN_COUNTS = {"prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens"}
# By design the stand-in answers a tools request with a parsed tool call (the tiny model babbles).
INTENDED_DIFFERENT = {"tools"}


def mask(obj: Any, key: str | None = None, tokens: bool = False) -> Any:
    if key in VOLATILE or (tokens and key in TOKEN_COUNTS):
        return "<v>"
    if isinstance(obj, dict):
        return {k: mask(v, k, tokens) for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask(v, None, tokens) for v in obj]
    return obj


def sse_shape(lines: list[str]) -> list[Any]:
    """Masked SSE events; consecutive content deltas collapsed (their split depends on timing)."""
    out: list[Any] = []
    for line in lines:
        if not line:
            continue
        if line.startswith("data: {"):
            ev = mask(json.loads(line[6:]), tokens=True)
            ch = ev.get("choices") or [{}]
            is_content = "content" in ch[0].get("delta", {}) and ev.get("model") != "keepalive"
            if is_content and out and out[-1] == ev:
                continue
            out.append(ev)
        else:
            out.append(line)
    return out


def replay_main(s: Standin) -> list[dict[str, Any]]:
    """The requests of api-replies.json, in order, through one client (cookie jar kept)."""
    recorded = json.loads((REAL / "api-replies.json").read_text())
    c = s.client(timeout=30)
    got: list[dict[str, Any]] = []
    for rec in recorded:
        label = rec.get("label")
        if label == "no key":
            r = httpx.get(f"{s.base_url}/v1/models")
        elif label == "login":
            r = c.post("/admin/api/login", json={"api_key": s.api_key, "remember": False})
        elif label == "wrong key":
            r = c.get("/v1/models", headers={"Authorization": "Bearer wrong"})
        elif rec.get("sse") is not None:
            with c.stream(rec["method"], rec["path"], json=rec["body"]) as resp:
                got.append({"status": resp.status_code, "sse": list(resp.iter_lines())})
            continue
        else:
            r = c.request(rec["method"], rec["path"], json=rec["body"])
        got.append({"status": r.status_code, "json": r.json()})
    return got


def test_replies_match_recorded_real_omlx(start_standin: StartStandin) -> None:
    s = start_standin()
    recorded = json.loads((REAL / "api-replies.json").read_text())
    got = replay_main(s)
    problems = []
    for rec, mine in zip(recorded, got, strict=True):
        label = f"{rec.get('label')} {rec.get('method')} {rec.get('path')}"
        if rec["status"] != mine["status"]:
            problems.append(f"{label}: status {rec['status']} != {mine['status']}")
            continue
        if rec.get("label") in INTENDED_DIFFERENT:
            continue
        if "sse" in rec:
            if sse_shape(rec["sse"]) != sse_shape(mine["sse"]):
                problems.append(f"{label}: SSE\n  real:  {sse_shape(rec['sse'])}\n  stand: {sse_shape(mine['sse'])}")
        elif mask(rec["json"], tokens=True) != mask(mine["json"], tokens=True):
            problems.append(f"{label}:\n  real:  {mask(rec['json'], tokens=True)}\n  stand: {mask(mine['json'], tokens=True)}")
    assert not problems, "\n".join(problems)


def test_model_settings_file_matches_recorded(start_standin: StartStandin) -> None:
    s = start_standin()
    replay_main(s)
    assert (s.base / "model_settings.json").read_text() == (REAL / "model_settings.json").read_text()
    assert not (s.base / "model_settings.tmp").exists()


def test_settings_json_matches_recorded(start_standin: StartStandin) -> None:
    s = start_standin()
    real = json.loads((REAL / "settings.json").read_text())
    mine = json.loads((s.base / "settings.json").read_text())
    for d in (real, mine):
        d["auth"]["secret_key"] = "<v>"
        d["server"]["port"] = 0
        d["server"]["server_aliases"] = "<v>"
        d["model"] = "<v>"
    assert mine == real
    assert json.loads((s.base / "settings.json").read_text())["model"]["model_dirs"] == [str(s.base / "models")]


LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - ([\w.]+) - (TRACE|DEBUG|INFO|WARNING|ERROR|CRITICAL) "
                  r"- \[([^\]]*)\] - (.*)$")


def messages(text: str, base: str) -> list[str]:
    """(logger, level, message) of each record; the base path and numbers that vary between runs masked."""
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        assert m, f"not in oMLX's file format: {line!r}"
        assert m.group(4) == "-"
        msg = re.sub(r"\d+(\.\d+)?", "N", m.group(5).replace(base, "BASE"))
        out.append(f"{m.group(2)} {m.group(3)} {msg}")
    return out


def test_server_log_lines_are_real_lines(start_standin: StartStandin) -> None:
    """Every line the stand-in writes during the replay also appears (numbers masked) in the real log."""
    s = start_standin()
    replay_main(s)
    real = set(messages((REAL / "server.log").read_text(), "/tmp/omlx-base"))
    mine = messages(s.log_text(), str(s.base))
    # Lines about the model differ only by what the real engine logs in between; these the stand-in adds.
    extra = [m for m in mine if m not in real and "tool_calls" not in m and "Completion: N tokens" not in m]
    assert not extra, "\n".join(extra)
    wanted = ["omlx.engine_pool INFO Loading model: tiny-llama",
              "omlx.server WARNING POST /vN/chat/completions → N: Model 'nope' not found. Available models: tiny-llama",
              "omlx.admin.routes INFO Settings changed for loaded model tiny-llama, auto-unloading.",
              "omlx.engine_pool INFO Preloading pinned model: tiny-llama"]
    for w in wanted:
        assert w in mine


def edge_case_scenario(s: Standin) -> list[dict[str, Any]]:
    """The steps behind api-replies-settings-edge-cases.json (V/U keys, hand edit, bad files), in order."""
    c = s.client(timeout=30)
    out: list[dict[str, Any]] = []
    m, msgs = "tiny-llama", [{"role": "user", "content": "Say hello"}]
    path = f"/admin/api/models/{m}/settings"
    settings_file = s.base / "model_settings.json"

    def add(r: httpx.Response) -> None:
        out.append({"status": r.status_code, "json": r.json()})

    def stream(model: str) -> None:
        body = {"model": model, "messages": msgs, "max_tokens": 4, "stream": True,
                "stream_options": {"include_usage": True}}
        if model != m:
            body.pop("stream_options")
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            lines = list(r.iter_lines())
            out.append({"status": r.status_code, "sse": lines if r.status_code == 200 else None,
                        "json": None if r.status_code == 200 else json.loads("".join(lines))})

    def chat() -> None:
        add(c.post("/v1/chat/completions", json={"model": m, "messages": msgs, "max_tokens": 4}))

    stream(m)
    stream("nope")
    add(c.post(f"/v1/models/{m}/unload"))
    chat()
    add(c.post("/admin/api/login", json={"api_key": s.api_key}))
    add(c.put(path, json={"turboquant_kv_enabled": True}))
    chat()
    add(c.put(path, json={"mtp_num_draft_tokens": 5}))
    add(c.put(path, json={"index_cache_freq": 4}))
    add(c.post(f"/v1/models/{m}/load"))
    add(c.put(path, json={"model_type_override": "vlm"}))
    add(c.put(path, json={"model_type_override": None}))
    d = json.loads(settings_file.read_text())
    d["models"][m]["my_unknown_key"] = 1
    d["models"][m]["display_name"] = "Hand edited"
    d["models"]["other-model"] = {"temperature": 0.1}
    settings_file.write_text(json.dumps(d, indent=4))
    out.append({"file": settings_file.read_text()})
    add(c.put(path, json={"top_k": 20}))
    out.append({"file": settings_file.read_text()})
    add(c.put(path, json={"is_default": True}))
    add(c.get("/health"))
    d = json.loads(settings_file.read_text())
    d["models"][m].update(max_tokens=77, mtp_enabled=True, dflash_enabled=True)
    settings_file.write_text(json.dumps(d, indent=2))
    add(c.post("/admin/api/reload"))
    add(c.get("/admin/api/models"))
    settings_file.write_text("{ not json")
    add(c.post("/admin/api/reload"))
    add(c.get("/admin/api/models"))
    out.append({"file": settings_file.read_text()})
    add(c.put(path, json={"temperature": 0.7}))
    out.append({"file": settings_file.read_text()})
    add(c.get("/admin/api/logs", params={"lines": 3, "file": "server.log.2020-01-01"}))
    add(c.get("/admin/api/logs", params={"file": "../x"}))
    add(httpx.post(f"{s.base_url}/admin/api/models/{m}/load", headers={"Authorization": f"Bearer {s.api_key}"}))
    add(httpx.post(f"{s.base_url}/admin/api/models/{m}/unload", headers={"Authorization": f"Bearer {s.api_key}"}))
    return out


def test_settings_edge_cases_match_recorded_real_omlx(start_standin: StartStandin) -> None:
    s = start_standin()
    recorded = [r for r in json.loads((REAL / "api-replies-settings-edge-cases.json").read_text())
                if r.get("label") != "global-settings"]
    got = edge_case_scenario(s)
    problems = []
    for rec, mine in zip(recorded, got, strict=True):
        label = rec.get("label")
        if "file" in rec:
            if rec["file"] != mine["file"]:
                problems.append(f"{label}: file\n  real:  {rec['file']}\n  stand: {mine['file']}")
        elif rec["status"] != mine["status"]:
            problems.append(f"{label}: status {rec['status']} != {mine['status']}")
        elif "sse" in rec and rec["status"] == 200:
            if sse_shape(rec["sse"]) != sse_shape(mine["sse"]):
                problems.append(f"{label}: SSE\n  real:  {sse_shape(rec['sse'])}\n  stand: {sse_shape(mine['sse'])}")
        else:
            want = rec["json"] if "json" in rec else json.loads("".join(rec["sse"]))
            if mask(want, tokens=True) != mask(mine["json"], tokens=True):
                problems.append(f"{label}:\n  real:  {mask(want, tokens=True)}\n  stand: {mask(mine['json'], tokens=True)}")
    assert not problems, "\n".join(problems)
    log = s.log_text()
    assert "Runtime settings variant changed for tiny-llama; unloading before reload." in log
    assert ("Failed to load settings for model 'tiny-llama': mtp_enabled and dflash_enabled cannot both be True; "
            "choose one speculative-decoding path per model") in log
    assert "Invalid JSON in settings file: Expecting property name enclosed in double quotes: line 1 column 3" in log


def test_mtp_alias_default_match_recorded_real_omlx(start_standin: StartStandin, tmp_path) -> None:
    doc = json.loads((REAL / "api-replies-mtp-alias-default.json").read_text())
    base = tmp_path / "b"
    make_model(base / "models", "tiny-llama")
    for name in ("qwen-mtp", "qwen-stripped"):
        make_model(base / "models", name, doc["models"][name]["config"], keys=doc["models"][name]["safetensors_keys"])
    s = start_standin(base=base)
    c = s.client()
    problems = []
    for rec in doc["requests"]:
        r = c.request(rec["method"], rec["path"], json=rec["body"])
        if r.status_code != rec["status"]:
            problems.append(f"{rec['label']}: status {rec['status']} != {r.status_code}")
        elif mask(rec["json"], tokens=True) != mask(r.json(), tokens=True):
            problems.append(f"{rec['label']}:\n  real:  {mask(rec['json'], tokens=True)}\n  stand: {mask(r.json(), tokens=True)}")
    assert not problems, "\n".join(problems)
