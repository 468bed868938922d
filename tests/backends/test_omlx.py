"""The oMLX kind through the oMLX stand-in (tests/standins/omlx_standin.py: oMLX is not on PyPI)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest

from mlx_console.core.backends.omlx import OmlxClient, serve_flags
from mlx_console.core.errors import ConsoleError
from mlx_console.core.lifecycle.control import Supervisor
from mlx_console.core.lifecycle.state import read_state

sys.path.insert(0, str(Path(__file__).parent))
from backends_helpers import FAST, gone, wait_for  # noqa: E402

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "omlx_standin.py"
pytestmark = pytest.mark.slow


@pytest.fixture
def omlx_base(tmp_path: Path, tiny_model: Path) -> Path:
    base = tmp_path / "omlx"
    shutil.copytree(tiny_model, base / "models" / "tiny-llama")
    return base


def omlx(name: str, base: Path, port: int, **kw: object) -> dict:
    return {"name": name, "kind": "omlx", "base_path": str(base), "port": port,
            "command": [sys.executable, str(STANDIN)], **kw}


def test_start_models_load_unload_stop(make_sup, omlx_base: Path, port: int) -> None:
    sup = make_sup(omlx("o", omlx_base, port, api_key="sekrit"))
    st = sup.start("o", wait=30)
    assert st.status == "ready" and st.kind == "omlx" and st.port == port
    # Only what the profile asks for: oMLX saves non-default CLI values into settings.json.
    assert psutil.Process(st.pid).cmdline()[1:] == [
        str(STANDIN), "serve", "--base-path", str(omlx_base), "--host", "127.0.0.1", "--port", str(port),
        "--api-key", "sekrit"]
    assert sup.log_paths("o") == [sup.log_path("o"), omlx_base / "logs" / "server.log"]
    assert (omlx_base / "logs" / "server.log").exists() and st.to_json()["logs"][1].endswith("logs/server.log")

    client = OmlxClient(st.base_url, "sekrit")
    assert client.health()["status"] == "healthy"
    assert [(m["id"], m["loaded"]) for m in client.models()] == [("tiny-llama", False)]
    sup.swap_model("o", "tiny-llama")  # oMLX: load through the API, no restart
    assert [(m["id"], m["loaded"]) for m in client.models()] == [("tiny-llama", True)]
    assert sup.status("o").pid == st.pid
    # The supervisor keeps the loaded-model list in the state: the status shows it.
    wait_for(lambda: sup.status("o").loaded_models == ["tiny-llama"], timeout=5)
    assert sup.status("o").model == "tiny-llama" and sup.status("o").to_json()["model"] == "tiny-llama"
    client.unload("tiny-llama")
    assert client.models()[0]["loaded"] is False
    with pytest.raises(ConsoleError, match="HTTP 401"):
        OmlxClient(st.base_url, "wrong").models()

    sup.stop("o")
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(st.pid)
    assert gone(st.supervisor_pid)


def test_wedged_omlx_is_degraded_although_health_answers(write_config, omlx_base: Path, port: int) -> None:
    sup = Supervisor(write_config(omlx("o", omlx_base, port, restart="never")),
                     timings=replace(FAST, probe_interval=0.3, probe_timeout=1.0, probe_failures=2))
    st = sup.start("o", wait=30)
    OmlxClient(st.base_url).load("tiny-llama")
    httpx.post(f"{st.base_url}/standin/wedge", json={"on": True}, timeout=5)
    deg = wait_for(lambda: (s := sup.status("o")).status == "degraded" and s, timeout=15)
    # The model failed its probes, not the process: reported, the server keeps running (no restart).
    assert "model 'tiny-llama' failed 2 liveness probes in a row" in deg.reason
    assert deg.pid == st.pid and "probe failed" in deg.liveness["tiny-llama"]
    assert httpx.get(f"{st.base_url}/health", timeout=5).status_code == 200  # /health lies
    httpx.post(f"{st.base_url}/standin/wedge", json={"on": False}, timeout=5)
    back = wait_for(lambda: (s := sup.status("o")).status == "ready" and s, timeout=15)
    assert back.pid == st.pid and back.restarts == 0
    sup.stop("o")


def test_crashed_omlx_is_restarted_with_the_profiles_model_loaded(make_sup, omlx_base: Path, port: int) -> None:
    sup = make_sup(omlx("o", omlx_base, port, model="tiny-llama"))
    st = sup.start("o", wait=30)
    wait_for(lambda: sup.status("o").loaded_models == ["tiny-llama"], timeout=10)
    os.kill(st.pid, signal.SIGKILL)
    again = wait_for(lambda: (s := sup.status("o")).status == "ready" and s.pid != st.pid and s, timeout=30)
    assert again.restarts == 1
    wait_for(lambda: sup.status("o").loaded_models == ["tiny-llama"], timeout=10)
    assert any("SIGKILL" in e["reason"] for e in read_state(sup.dir("o")).events)
    sup.stop("o")


def test_serve_help_is_probed_for_flags() -> None:
    flags = serve_flags((sys.executable, str(STANDIN)))
    assert {"--base-path", "--host", "--port", "--api-key", "--model-dir"} <= flags


def test_missing_omlx_command_is_a_clear_error(make_sup, omlx_base: Path, port: int) -> None:
    sup = make_sup({**omlx("o", omlx_base, port), "command": ["/nonexistent/omlx"]})
    with pytest.raises(ConsoleError, match="oMLX command not found"):
        sup.start("o")


def test_cli_models_load_unload(make_sup, omlx_base: Path, port: int) -> None:
    import json

    sup = make_sup(omlx("o", omlx_base, port))
    r = cli("models", "o")
    assert r.returncode == 1 and "needs a running backend; it is stopped" in r.stderr
    sup.start("o", wait=30)
    r = cli("log", "o", "--paths")
    assert r.stdout.split() == [str(sup.log_path("o")), str(omlx_base / "logs" / "server.log")]
    assert "Application startup complete." in cli("log", "o").stdout
    r = cli("models", "o", "--json")
    assert r.returncode == 0 and [(m["id"], m["loaded"]) for m in json.loads(r.stdout)] == [("tiny-llama", False)]
    assert cli("load", "o", "tiny-llama").returncode == 0
    assert "tiny-llama  loaded" in cli("models", "o").stdout
    r = cli("unload", "o", "tiny-llama")
    assert r.returncode == 0 and "unloaded tiny-llama" in r.stdout
    r = cli("unload", "o", "tiny-llama")  # oMLX: 400 when it is not loaded
    assert r.returncode == 1 and "HTTP 400" in r.stderr
    sup.stop("o")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlx_console", "backends", *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("model, says", [
    ("corrupt", "Model 'corrupt' failed to load: "),
    ("nope", "Model not found: nope"),
])
def test_a_profile_model_that_fails_to_load_is_a_failed_start(make_sup, omlx_base: Path, port: int,
                                                              model: str, says: str) -> None:
    st_file = shutil.copytree(omlx_base / "models" / "tiny-llama", omlx_base / "models" / "corrupt") / "model.safetensors"
    st_file.write_bytes(st_file.read_bytes()[:-4096])  # a download cut short
    sup = make_sup(omlx("o", omlx_base, port, model=model))
    r = cli("start", "o", "--wait", "30")
    assert r.returncode == 1, r.stdout + r.stderr
    assert says in r.stderr and "{'" not in r.stderr and "ready" not in r.stdout
    st = sup.status("o")
    assert st.status == "dead" and says in st.reason and st.pid is None
    if model == "nope":  # where oMLX looks for models, not a download
        assert "model directories" in st.reason and "hf download" not in st.reason
    r = cli("list")  # not listed as served: the row says dead
    assert r.returncode == 0 and r.stdout.splitlines()[1].split()[:3] == ["o", "omlx", "dead"]


def test_no_model_configured_is_ready_with_no_model_loaded(make_sup, omlx_base: Path, port: int) -> None:
    sup = make_sup(omlx("o", omlx_base, port))
    st = sup.start("o", wait=30)
    assert st.status == "ready" and st.reason.startswith("no model loaded")
    sup.stop("o")


def test_swap_unloads_the_replaced_model_keep_keeps_it_restart_brings_it_back(make_sup, omlx_base: Path,
                                                                              port: int) -> None:
    shutil.copytree(omlx_base / "models" / "tiny-llama", omlx_base / "models" / "other")
    sup = make_sup(omlx("o", omlx_base, port, model="tiny-llama"))
    sup.start("o", wait=30)
    r = cli("swap", "o", "other")
    assert r.returncode == 0, r.stderr
    # The status after the load: the new model loaded, the replaced one gone.
    assert "loaded: other\n" in r.stdout + "\n" and "swapped in: other" in r.stdout
    assert "unloading tiny-llama" in r.stderr
    r = cli("restart", "o", "--wait", "30")
    assert r.returncode == 0, r.stderr
    st = wait_for(lambda: (s := sup.status("o")).loaded_models == ["other"] and s, timeout=10)
    assert st.swapped_model == "other"
    r = cli("swap", "o", "tiny-llama", "--keep")
    assert r.returncode == 0 and "loaded: other, tiny-llama" in r.stdout, r.stdout + r.stderr
    r = cli("load", "o", "nope")
    assert r.returncode == 1 and "oMLX could not load 'nope' (HTTP 404): Model not found: nope" in r.stderr
    # A plain start after a stop is the profile's model again.
    sup.stop("o")
    sup.start("o", wait=30)
    wait_for(lambda: sup.status("o").loaded_models == ["tiny-llama"], timeout=10)
    assert sup.status("o").swapped_model is None
    sup.stop("o")


def test_saved_server_settings_are_configuration(make_sup, omlx_base: Path, port: int) -> None:
    from mlx_console.core.bench.record import config_hash
    from mlx_console.core.bench.target import for_profile

    def hash_of(sup: Supervisor) -> str:
        t = for_profile(sup.config, "o", "tiny-llama")
        return config_hash("omlx", "0.5.0", t.model, t.server_flags, t.model_settings)

    sup = make_sup(omlx("o", omlx_base, port))
    fresh = hash_of(sup)  # no settings.json yet
    sup = make_sup(omlx("o", omlx_base, port, args=["--max-concurrent-requests", "1"]))
    st = sup.start("o", wait=30)
    assert st.server_settings["max_concurrent_requests"] == 1
    one = hash_of(sup)
    sup.stop("o")
    # The flag removed: oMLX keeps 1 in force; the console says so, and the hash still differs from 8's.
    sup = make_sup(omlx("o", omlx_base, port))
    st = sup.start("o", wait=30)
    assert any("settings.json keeps scheduler.max_concurrent_requests = 1" in w for w in st.warnings), st.warnings
    assert st.server_settings["max_concurrent_requests"] == 1 and hash_of(sup) not in (fresh, one)
    r = cli("status", "o")
    assert "settings.json: max_concurrent_requests=1" in r.stdout
    sup.stop("o")
    sup = make_sup(omlx("o", omlx_base, port, args=["--max-concurrent-requests", "8"]))
    st = sup.start("o", wait=30)
    assert any("passes --max-concurrent-requests 8 but settings.json has" in w for w in st.warnings)
    assert sup.status("o").server_settings["max_concurrent_requests"] == 8 and hash_of(sup) != one
    sup.stop("o")


def test_start_and_swap_show_the_advisors_warnings(make_sup, omlx_base: Path, port: int,
                                                   tiny_llama4_model: Path) -> None:
    shutil.copytree(tiny_llama4_model, omlx_base / "models" / "l4")
    sup = make_sup(omlx("o", omlx_base, port, model="l4"))
    r = cli("start", "o", "--wait", "30")
    assert r.returncode == 0, r.stderr
    assert "warning: advisor: error: llama4 uses chunked attention" in r.stderr
    assert "fix: pin concurrency 1: pass --max-concurrent-requests 1" in r.stderr
    assert any(w.startswith("advisor: error: llama4") for w in sup.status("o").warnings)
    r = cli("swap", "o", "tiny-llama")
    assert r.returncode == 0 and "advisor" not in r.stderr, r.stderr
    r = cli("swap", "o", "l4")
    assert "warning: advisor: error: llama4 uses chunked attention" in r.stderr
    cli("stop", "o")
