"""Models (discovery, load states, sizes, pinning) and completions (stream modes, tools, usage) of the stand-in."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from omlx_harness import TINY_LLAMA_CONFIG, make_model
from omlx_harness import StandinFactory as StartStandin

pytestmark = pytest.mark.slow

MSGS = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]


def events(lines: list[str]) -> list[dict]:
    return [json.loads(ln[6:]) for ln in lines if ln.startswith("data: {")]


def test_discovery_ids_sizes_and_skipped_dirs(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "tiny-llama")
    make_model(base / "models", "qwen-big", {"model_type": "qwen3", "omlx_standin": {"size_bytes": 8 * 1024**3}})
    (base / "models" / "no-config").mkdir()
    s = start_standin(base=base)
    c = s.client()
    ids = [m["id"] for m in c.get("/v1/models").json()["data"]]
    assert ids == ["qwen-big", "tiny-llama"]
    status = {m["id"]: m for m in c.get("/v1/models/status").json()["models"]}
    assert status["tiny-llama"]["estimated_size"] == 450773
    assert status["qwen-big"]["estimated_size"] == int(8 * 1024**3 * 1.05)
    assert status["qwen-big"]["config_model_type"] == "qwen3"
    assert c.get("/health").json()["engine_pool"]["model_count"] == 2


def test_load_delay_shows_loading_and_loads_are_serialized(start_standin: StartStandin) -> None:
    s = start_standin("--standin-load-seconds", "1.0")
    c, a = s.client(), s.admin()
    t = threading.Thread(target=lambda: s.client().post("/v1/models/tiny-llama/load"))
    t.start()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        m = c.get("/v1/models/status").json()["models"][0]
        if m["is_loading"]:
            break
        time.sleep(0.02)
    assert m["is_loading"] and m["loading_started_at"] and not m["loaded"]
    r = a.post("/admin/api/models/tiny-llama/load")
    assert (r.status_code, r.json()) == (409, {"detail": "Model is already loading: tiny-llama"})
    # /v1 waits on the pool lock for the running load, then answers like a fresh load (as 0.5.0).
    r = c.post("/v1/models/tiny-llama/load")
    assert r.json() == {"status": "ok", "model_id": "tiny-llama", "message": "Loaded tiny-llama"}
    t.join()
    assert c.get("/v1/models/status").json()["models"][0]["loaded"] is True
    assert s.log_text().count("Loaded model: tiny-llama") == 1


def test_too_large_model_is_507(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "huge", {**TINY_LLAMA_CONFIG, "omlx_standin": {"size_bytes": 10**15}})
    s = start_standin(base=base)
    r = s.client().post("/v1/models/huge/load")
    assert r.status_code == 507
    assert "does not fit under the memory ceiling" in r.json()["error"]["message"]
    assert "POST /v1/models/huge/load → 507: Model 'huge' (" in s.log_text()


def test_load_error_then_cached_failure(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "broken", {**TINY_LLAMA_CONFIG, "omlx_standin": {"load_error": "No safetensors found"}})
    s = start_standin(base=base)
    c = s.client()
    r = c.post("/v1/models/broken/load")
    assert r.status_code == 409
    assert r.json()["error"]["message"] == ("Model 'broken' failed to load: No safetensors found. Reload models "
                                            "after fixing the files to retry.")
    r = c.post("/v1/chat/completions", json={"model": "broken", "messages": MSGS})
    assert r.status_code == 409
    assert "is unavailable after a previous load failure: No safetensors found" in r.json()["error"]["message"]
    log = s.log_text()
    assert "Model load failed for 'broken'; caching failure until next discovery refresh" in log
    assert "Skipping load retry for 'broken' after cached failure: No safetensors found" in log
    r = c.post("/v1/models/nope/load")
    assert (r.status_code, r.json()["error"]["message"]) == (404, "Model not found: nope")


def test_truncated_weights_fail_to_load_and_weightless_dirs_are_skipped(start_standin: StartStandin,
                                                                       tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "tiny-llama")
    corrupt = make_model(base / "models", "corrupt")
    st = corrupt / "model.safetensors"
    st.write_bytes(st.read_bytes()[:-1000])  # a download cut short
    (base / "models" / "empty").mkdir(parents=True)
    (base / "models" / "empty" / "config.json").write_text(json.dumps(TINY_LLAMA_CONFIG))
    s = start_standin(base=base)
    c = s.client()
    assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["corrupt", "tiny-llama"]
    assert f"Failed to discover model empty: No model weights found in {base / 'models' / 'empty'}" in s.log_text()
    r = c.post("/v1/models/corrupt/load")
    assert r.status_code == 409 and "Model 'corrupt' failed to load: " in r.json()["error"]["message"]
    assert "truncated" in r.json()["error"]["message"]
    assert c.post("/v1/models/tiny-llama/load").status_code == 200


def test_cli_values_persist_in_settings_json(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "tiny-llama")
    s = start_standin("--max-concurrent-requests", "1", base=base)
    assert "Saved CLI arguments to settings.json" in s.stdout_path.read_text()
    saved = json.loads((base / "settings.json").read_text())
    assert saved["scheduler"]["max_concurrent_requests"] == 1
    s.stop()
    s = start_standin(base=base)  # the flag removed: the saved value stays in force
    assert json.loads((base / "settings.json").read_text())["scheduler"]["max_concurrent_requests"] == 1
    assert s.client().get("/api/status").status_code == 200


def test_stream_chunks_carry_many_tokens_and_server_timing(start_standin: StartStandin) -> None:
    s = start_standin(env={"OMLX_STANDIN_REPLY_MAX": "1"})
    body = {"model": "tiny-llama", "messages": MSGS, "max_tokens": 128, "stream": True,
            "stream_options": {"include_usage": True}}
    with s.client().stream("POST", "/v1/chat/completions", json=body) as r:
        evs = events(list(r.iter_lines()))
    chunks = [e for e in evs if e["model"] != "keepalive" and e["choices"] and e["choices"][0]["delta"].get("content")]
    usage = evs[-1]["usage"]
    assert usage["completion_tokens"] == 128 and evs[-2]["choices"][0]["finish_reason"] == "length"
    assert 2 <= len(chunks) <= 6, len(chunks)  # 128 tokens at 400 tok/s, one delta per 0.1 s
    assert usage["generation_tokens_per_second"] > 0 and usage["generation_duration"] > 0


def test_pinned_model_is_preloaded_at_start(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "tiny-llama")
    (base / "model_settings.json").write_text(json.dumps({"version": 1, "models": {"tiny-llama": {"is_pinned": True}}}))
    s = start_standin(base=base)
    m = s.client().get("/v1/models/status").json()["models"][0]
    assert m["loaded"] and m["pinned"]
    log = s.log_text()
    assert log.index("Preloading pinned model: tiny-llama") < log.index("Loaded model: tiny-llama")


def test_chat_stream_shape_and_usage_extras(start_standin: StartStandin) -> None:
    s = start_standin()
    body = {"model": "tiny-llama", "messages": MSGS, "max_tokens": 50, "stream": True,
            "stream_options": {"include_usage": True}}
    with s.client().stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = list(r.iter_lines())
    evs = events(lines)
    assert evs[0]["model"] == "keepalive" and evs[0]["created"] == 0
    assert evs[1]["choices"][0]["delta"] == {"role": "assistant"}
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in evs[2:-2])
    assert content and evs[-2]["choices"][0]["finish_reason"] == "stop"
    usage = evs[-1]["usage"]
    assert evs[-1]["choices"] == []
    for k in ("time_to_first_token", "prompt_tokens_per_second", "generation_tokens_per_second"):
        assert k in usage
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"
    assert len({e["id"] for e in evs}) == 1
    # Deterministic: the same prompt gives the same text.
    again = s.client().post("/v1/chat/completions", json={**body, "stream": False}).json()
    assert again["choices"][0]["message"]["content"] == content


@pytest.mark.parametrize(("mode", "first"), [("comment", ": keep-alive"), ("off", None)])
def test_keepalive_modes(start_standin: StartStandin, mode: str, first: str | None) -> None:
    s = start_standin("--sse-keepalive-mode", mode)
    body = {"model": "tiny-llama", "messages": MSGS, "max_tokens": 3, "stream": True}
    with s.client().stream("POST", "/v1/chat/completions", json=body) as r:
        lines = [ln for ln in r.iter_lines() if ln]
    if first:
        assert lines[0] == first
    else:
        assert json.loads(lines[0][6:])["choices"][0]["delta"] == {"role": "assistant"}


def test_max_tokens_and_standin_reply(start_standin: StartStandin) -> None:
    s = start_standin()
    c = s.client()
    r = c.post("/v1/chat/completions", json={"model": "tiny-llama", "max_tokens": 3, "messages": MSGS}).json()
    assert r["choices"][0]["finish_reason"] == "length" and r["usage"]["completion_tokens"] == 3
    r = c.post("/v1/chat/completions", json={"model": "tiny-llama", "messages": [
        {"role": "user", "content": "Answer.\nSTANDIN-REPLY: The capital is Paris."}]}).json()
    assert r["choices"][0]["message"]["content"] == "The capital is Paris."
    assert "Chat completion: 4 tokens in" in s.log_text()


def test_tool_calls_parsed_and_as_plain_text(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "good-tools")
    make_model(base / "models", "bad-tools", {**TINY_LLAMA_CONFIG, "omlx_standin": {"tool_calls": "text"}})
    s = start_standin(base=base)
    c = s.client()
    good = c.post("/v1/chat/completions", json={"model": "good-tools", "messages": MSGS, "tools": TOOLS}).json()
    choice = good["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert set(json.loads(call["function"]["arguments"])) == {"city"}
    bad = c.post("/v1/chat/completions", json={"model": "bad-tools", "messages": MSGS, "tools": TOOLS}).json()
    choice = bad["choices"][0]
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]
    assert json.loads(choice["message"]["content"])["name"] == "get_weather"
    # Streaming a parsed call: no content deltas, one tool_calls delta.
    with c.stream("POST", "/v1/chat/completions", json={"model": "good-tools", "messages": MSGS, "tools": TOOLS,
                                                        "stream": True}) as r:
        evs = events(list(r.iter_lines()))
    deltas = [e["choices"][0]["delta"] for e in evs[1:] if e["choices"]]
    assert not any(d.get("content") for d in deltas)
    assert [d for d in deltas if "tool_calls" in d][0]["tool_calls"][0]["index"] == 0


def test_text_completions_and_alias(start_standin: StartStandin) -> None:
    s = start_standin()
    a = s.admin()
    assert a.put("/admin/api/models/tiny-llama/settings", json={"model_alias": "tiny"}).status_code == 200
    assert [m["id"] for m in a.get("/v1/models").json()["data"]] == ["tiny"]
    r = a.post("/v1/completions", json={"model": "tiny", "prompt": "Once upon", "max_tokens": 4}).json()
    assert r["object"] == "text_completion" and r["model"] == "tiny"
    assert "Completion: 4 tokens in" in s.log_text()


def test_auth_errors(start_standin: StartStandin) -> None:
    s = start_standin()
    assert httpx.get(f"{s.base_url}/health").status_code == 200  # open
    r = httpx.get(f"{s.base_url}/api/status")
    assert (r.status_code, r.json()) == (401, {"detail": "API key required"})  # not a /v1 route: no OpenAI body
    r = httpx.post(f"{s.base_url}/admin/api/reload")
    assert (r.status_code, r.json()) == (401, {"detail": "Admin authentication required"})
    assert s.client().get("/api/status").json()["version"] == "0.5.0"


def test_no_api_key_means_open_api_and_no_admin_login(start_standin: StartStandin) -> None:
    s = start_standin(api_key=None)
    assert httpx.get(f"{s.base_url}/v1/models").status_code == 200
    r = httpx.post(f"{s.base_url}/admin/api/login", json={"api_key": "x"})
    assert (r.status_code, r.json()["detail"]) == (400, "No API key configured. Please set up an API key first.")


def test_ttl_unloads_idle_model(start_standin: StartStandin) -> None:
    s = start_standin()
    a = s.admin()
    assert a.put("/admin/api/models/tiny-llama/settings", json={"ttl_seconds": 1}).status_code == 200
    a.post("/v1/models/tiny-llama/load")
    s.wait_log("TTL expired for model 'tiny-llama' (idle ", timeout=6)
    assert a.get("/v1/models/status").json()["models"][0]["loaded"] is False


def test_llama4_model_logs_serialized_batching(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "tiny-llama4", {"model_type": "llama4", "text_config": {"model_type": "llama4_text"}})
    s = start_standin(base=base)
    s.client().post("/v1/models/tiny-llama4/load")
    assert ("omlx.scheduler - INFO - [-] - Llama 4 detected; serializing requests because ChunkedKVCache does not "
            "support multi-row batching yet") in s.log_text()


def test_parallel_streams_and_queueing(start_standin: StartStandin) -> None:
    s = start_standin("--max-concurrent-requests", "1", "--standin-tokens-per-second", "50")
    c = s.client()
    c.post("/v1/models/tiny-llama/load")
    body = {"model": "tiny-llama", "messages": MSGS, "max_tokens": 10, "stream": True,
            "stream_options": {"include_usage": True}}
    results: list[int] = []

    def one() -> None:
        with s.client(timeout=30).stream("POST", "/v1/chat/completions", json=body) as r:
            results.append(events(list(r.iter_lines()))[-1]["usage"]["completion_tokens"])

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    seen_waiting = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(t.is_alive() for t in threads):
        st = c.get("/api/status").json()
        seen_waiting = max(seen_waiting, st["waiting_requests"])
        assert st["active_requests"] <= 1
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert results == [10, 10, 10, 10] and seen_waiting >= 1
    assert c.get("/api/status").json()["total_requests"] == 4


def test_text_completion_stream_wire_format(start_standin: StartStandin) -> None:
    s = start_standin()
    body = {"model": "tiny-llama", "prompt": "hi", "max_tokens": 3, "stream": True,
            "stream_options": {"include_usage": True}}
    with s.client().stream("POST", "/v1/completions", json=body) as r:
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[0].startswith('data: {"id":"cmpl-keepalive","object":"text_completion","created":0,')
    assert lines[1].startswith('data: {"id": "cmpl-')  # json.dumps spacing, as 0.5.0 sends it
    evs = events(lines)
    assert evs[-1]["usage"]["completion_tokens"] == 3 and evs[-1]["id"] != evs[-2]["id"]
    assert lines[-1] == "data: [DONE]"
