"""The oMLX kind through the oMLX stand-in (tests/standins/omlx_standin.py: oMLX is not on PyPI)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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
    # Only what the profile asks for: oMLX saves non-default CLI values into settings.json. The key is
    # never in argv (every user sees it in ps): it reaches oMLX through OMLX_API_KEY, which 0.5.0 reads.
    server = psutil.Process(st.pid)
    assert server.cmdline()[1:] == [
        str(STANDIN), "serve", "--base-path", str(omlx_base), "--host", "127.0.0.1", "--port", str(port)]
    assert server.environ()["OMLX_API_KEY"] == "sekrit"
    assert "sekrit" not in " ".join(psutil.Process(st.supervisor_pid).cmdline())
    d = sup.dir("o")
    for f in ("state.json", "spec.json", "server.log", "supervise.log"):
        assert (d / f).stat().st_mode & 0o777 == 0o600, f
    assert d.stat().st_mode & 0o777 == 0o700 and d.parent.stat().st_mode & 0o777 == 0o700
    assert "sekrit" not in (d / "state.json").read_text() and "sekrit" not in str(st.to_json())
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


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_state_logs_and_records_are_private_under_any_umask(make_sup, omlx_base: Path, port: int,
                                                             umask: int) -> None:
    from mlx_console import paths
    from mlx_console.core.bench import store
    from mlx_console.core.bench.record import RunRecord

    shutil.rmtree(os.environ["MLX_CONSOLE_STATE_DIR"])  # created afresh below, under this umask
    old = os.umask(umask)
    try:
        sup = make_sup(omlx("o", omlx_base, port, api_key="sekrit"))
        st = sup.start("o", wait=30)
        rec = RunRecord({"run_id": "r1", "cells": {}})
        saved = store.save(rec)
    finally:
        os.umask(old)
    try:
        d = sup.dir("o")
        files = [d / f for f in ("state.json", "spec.json", "server.log", "supervise.log")]
        files += [Path(saved["summary"]), Path(saved["requests"])]
        assert {str(f): f.stat().st_mode & 0o777 for f in files} == {str(f): 0o600 for f in files}
        dirs = [paths.state_dir(), d.parent, d, Path(saved["summary"]).parent]
        assert {str(x): x.stat().st_mode & 0o777 for x in dirs} == {str(x): 0o700 for x in dirs}
        assert "sekrit" not in (d / "state.json").read_text() and "sekrit" not in str(st.to_json())
    finally:
        sup.stop("o")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fill(directory: Path) -> Path:
    """Fill the filesystem of `directory` to the last byte (a real ENOSPC, not a simulated one)."""
    filler = directory / "filler"
    # Unbuffered writes: a buffered file would hold back what the last write could not place and raise ENOSPC
    # again when closed, outside the loop that expects it.
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (b"\0" * 65536, b"\0"):  # then the last bytes a partial chunk left
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def small_state_fs(isolated_state: Path) -> Iterator[Path]:
    """The state dir on a 2 MiB tmpfs of its own (root only: skipped elsewhere)."""
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(isolated_state)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield isolated_state
    subprocess.run(["umount", "-l", str(isolated_state)], check=False)


def test_the_supervisor_survives_a_full_disk_and_restarts_the_server(write_config, omlx_base: Path, port: int,
                                                                     small_state_fs: Path) -> None:
    sup = Supervisor(write_config(omlx("o", omlx_base, port, restart="always"),
                                  omlx("p", omlx_base, _free_port())), timings=FAST)
    st = sup.start("o", wait=30)
    try:  # (the backend and its supervisor never outlive the test, whatever fails)
        supervisor = psutil.Process(st.supervisor_pid)
        before = (sup.dir("o") / "state.json").read_bytes()
        settings = small_state_fs / "model_settings.json"
        settings.write_text('{"version": 1, "models": {"m": {"top_k": 1}}}')
        filler = _fill(small_state_fs)
        try:
            os.kill(st.pid, signal.SIGKILL)
            # It restarts the server although it cannot record a thing.
            new = wait_for(lambda: [c.pid for c in supervisor.children() if c.pid != st.pid and c.status() != "zombie"],
                           timeout=20)
            assert supervisor.is_running() and new
            with pytest.raises(OSError) as e:  # the disk is really full
                (small_state_fs / "probe").write_bytes(b"x" * 4096)
            assert e.value.errno == errno.ENOSPC
            assert (sup.dir("o") / "state.json").read_bytes() == before  # the old state, whole
            # The CLI says so in one line instead of a traceback, and leaves the old files whole.
            for args in (["settings", "set", "--file", str(settings), "--offline", "m", "top_k=5"],
                         ["backends", "start", "p"]):
                r = subprocess.run([sys.executable, "-m", "mlx_console", *args], capture_output=True, text=True,
                                   env=os.environ.copy(), timeout=60)
                lines = [ln for ln in r.stderr.splitlines() if ln.startswith("mlx-console")]
                assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
                assert len(lines) == 1 and "No space left on device" in lines[0], r.stderr
            assert settings.read_text() == '{"version": 1, "models": {"m": {"top_k": 1}}}'
            assert not list(small_state_fs.glob("**/*.mlx-console-tmp"))
        finally:
            filler.unlink()
        try:
            ready = wait_for(lambda: (s := sup.status("o")).status == "ready" and s.restarts == 1 and s, timeout=20)
        except AssertionError:
            pytest.fail(f"{sup.status('o')}\n{(sup.dir('o') / 'supervise.log').read_text()}")
        assert ready.pid in new and ready.supervisor_pid == supervisor.pid
        assert any("could not be written" in w and "No space left" in w for w in ready.warnings), ready.warnings
        assert "No space left on device" in (sup.dir("o") / "supervise.log").read_text()
    finally:
        sup.stop("o")


@pytest.mark.parametrize("host", ["192.0.2.7", "203.0.113.9,127.0.0.1"])  # TEST-NET: never this machine's
def test_a_host_that_is_not_this_machine_fails_fast_with_the_bind_error(make_sup, omlx_base: Path, port: int,
                                                                         host: str) -> None:
    sup = make_sup(omlx("o", omlx_base, port, host=host, api_key="k"))
    t0 = time.monotonic()
    with pytest.raises(ConsoleError, match=r"is not an address of this machine: bind: \[Errno 99\]"):
        sup.start("o", wait=30)
    assert time.monotonic() - t0 < 5
    assert sup.status("o").status == "stopped" and sup.status("o").pid is None


def test_this_machines_own_address_still_starts(make_sup, omlx_base: Path, port: int) -> None:
    sup = make_sup(omlx("o", omlx_base, port, host="127.0.0.2"))
    st = sup.start("o", wait=30)
    assert st.status == "ready"
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
