"""The supervisor against a real mlx_lm.server on the tiny model: lifecycle, crashes, ports, re-adoption."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from mlx_console import paths
from mlx_console.core.config import Config, Profile
from mlx_console.core.errors import ConsoleError
from mlx_console.core.lifecycle.control import Supervisor
from mlx_console.core.lifecycle.state import read_state, write_state

sys.path.insert(0, str(Path(__file__).parent))
from backends_helpers import FAST, gone, wait_for  # noqa: E402

pytestmark = pytest.mark.slow


def mlx(name: str, model: Path, port: int, **kw: object) -> dict:
    return {"name": name, "kind": "mlx-lm", "model": str(model), "port": port, **kw}


def test_start_ready_completion_stop_leaves_nothing(make_sup, tiny_model: Path, port: int) -> None:
    sup = make_sup(mlx("a", tiny_model, port))
    st = sup.start("a", wait=60)
    assert st.status == "ready" and st.pid and st.supervisor_pid and st.port == port
    assert st.rss_bytes and st.rss_bytes > 10_000_000 and st.uptime_s is not None
    # Detached: its own session, not ours; the server is the supervisor's child.
    assert os.getsid(st.supervisor_pid) != os.getsid(0) and psutil.Process(st.supervisor_pid).terminal() is None
    assert psutil.Process(st.pid).ppid() == st.supervisor_pid
    # Survives a hang-up (an SSH drop): the supervisor ignores SIGHUP.
    os.kill(st.supervisor_pid, signal.SIGHUP)
    r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                   json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3
    assert sup.status("a").status == "ready" and sup.status("a").supervisor_pid == st.supervisor_pid
    assert "Starting httpd" in sup.log_path("a").read_text()

    out = sup.stop("a")
    assert out.status == "stopped" and out.pid is None
    # The supervisor reaped the server (no zombie anywhere), and exited itself.
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(st.pid)
    assert gone(st.supervisor_pid)
    assert not [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    # Stopping again is fine and changes nothing.
    assert sup.stop("a").status == "stopped"


def test_kill9_is_seen_within_a_second_and_restarted(make_sup, tiny_model: Path, port: int) -> None:
    sup = make_sup(mlx("a", tiny_model, port, restart="on-failure"))
    first = sup.start("a", wait=60)
    killed_at = time.time()
    os.kill(first.pid, signal.SIGKILL)
    st = wait_for(lambda: (s := sup.status("a")).status == "ready" and s.pid != first.pid and s, timeout=60)
    assert st.restarts == 1 and st.supervisor_pid == first.supervisor_pid
    events = read_state(sup.dir("a")).events
    dead = next(e for e in events if e["status"] == "dead")
    assert "SIGKILL" in dead["reason"] and "restarting in" in dead["reason"]
    assert "not by mlx-console" in dead["reason"] and "out of memory" in dead["reason"]  # the usual sender
    assert dead["t"] - killed_at < 1.0, f"crash seen after {dead['t'] - killed_at:.2f}s"
    sup.stop("a")


def test_dead_generation_thread_then_crash_with_restart_never(make_sup, tiny_model: Path, port: int) -> None:
    sup = make_sup(mlx("a", tiny_model, port, restart="never"))
    first = sup.start("a", wait=60)
    with sup.log_path("a").open("a") as f:  # the line 0.32.2 writes when its generation thread dies
        f.write("2026-11-25 13:22:47,639 - ERROR - mlx_lm.server generation thread died: boom\n")
    deg = wait_for(lambda: (s := sup.status("a")).status == "degraded" and s, timeout=2)
    assert "generation thread died: boom" in deg.reason and deg.pid == first.pid  # never: left up, not "ready"

    os.kill(first.pid, signal.SIGKILL)
    st = wait_for(lambda: (s := sup.status("a")).status == "dead" and s.supervisor_pid is None and s, timeout=5)
    assert "SIGKILL" in st.reason and st.pid is None and st.restarts == 0
    assert gone(first.supervisor_pid)  # nothing left to supervise: it exits
    assert sup.stop("a").status == "dead"  # stop of a dead backend: fine, says dead


def test_port_taken_is_refused_naming_the_owner(make_sup, mlx_server, tiny_model: Path) -> None:
    sup = make_sup(mlx("a", tiny_model, mlx_server.port))
    with pytest.raises(ConsoleError) as e:
        sup.start("a", wait=30)
    msg = str(e.value)
    assert f"pid {mlx_server.proc.pid}" in msg and "mlx-lm" in msg and "mlx_lm.server" in msg
    assert sup.status("a").status == "stopped"


def test_port_taken_by_a_plain_socket(make_sup, tiny_model: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        sup = make_sup(mlx("a", tiny_model, s.getsockname()[1]))
        with pytest.raises(ConsoleError, match=rf"pid {os.getpid()} \(.*\), not a known LLM backend"):
            sup.start("a")


def test_model_dir_without_weights_is_dead_with_the_reason(make_sup, tiny_model: Path, tmp_path: Path,
                                                           port: int) -> None:
    broken = tmp_path / "no-weights"
    shutil.copytree(tiny_model, broken, ignore=shutil.ignore_patterns("*.safetensors"))
    sup = make_sup(mlx("a", broken, port))
    with pytest.raises(ConsoleError) as e:
        sup.start("a", wait=60)
    msg = str(e.value)
    assert "No safetensors found" in msg and "generation thread died" in msg
    assert "last lines of" in msg
    st = sup.status("a")
    assert st.status == "dead" and "No safetensors found" in st.reason and st.pid is None
    pid = read_state(sup.dir("a")).pid
    with pytest.raises(psutil.NoSuchProcess):  # the server stayed up on its own: we stopped it
        psutil.Process(pid)


def test_bad_server_args_are_dead_at_start_with_the_servers_words(make_sup, tiny_model: Path, port: int) -> None:
    sup = make_sup(mlx("a", tiny_model, port, args=["--no-such-flag"]))
    with pytest.raises(ConsoleError) as e:
        sup.start("a", wait=30)
    assert "exited with code 2" in str(e.value) and "unrecognized arguments: --no-such-flag" in str(e.value)
    st = sup.status("a")
    assert st.status == "dead" and "unrecognized arguments: --no-such-flag" in st.reason and st.exit_code == 2


def test_missing_model_dir_is_refused_before_start(make_sup, tmp_path: Path, port: int) -> None:
    sup = make_sup(mlx("a", tmp_path / "nope", port))
    with pytest.raises(ConsoleError, match="does not exist"):
        sup.start("a")


def test_a_new_console_re_adopts_and_a_lost_supervisor_is_replaced(make_sup, tiny_model: Path,
                                                                   port: int) -> None:
    sup = make_sup(mlx("a", tiny_model, port), mlx("b", tiny_model, port))
    st = sup.start("a")  # no wait: returns once the supervisor knows the pid
    assert st.status in ("starting", "loading", "ready") and st.pid
    data = json.loads((sup.dir("a") / "state.json").read_text())
    assert data["pid"] == st.pid and abs(data["create_time"] - psutil.Process(st.pid).create_time()) < 0.05
    assert data["cmdline"][:4] == [sys.executable, "-m", "mlx_lm", "server"] and data["port"] == port
    assert data["model"] == str(tiny_model)
    wait_for(lambda: sup.status("a").status == "ready", timeout=60)
    with pytest.raises(ConsoleError, match=rf"pid {st.pid} .*(is|looks like) mlx-lm.* backend 'a' of this console"):
        sup.start("b")

    again = Supervisor(sup.config, timings=FAST)  # a console started later
    assert again.status("a").pid == st.pid and again.status("a").status == "ready"
    # The supervisor dies hard: the server keeps serving, unsupervised, and says so.
    os.kill(st.supervisor_pid, signal.SIGKILL)
    wait_for(lambda: again.status("a").supervisor_pid is None, timeout=5)
    lost = again.status("a")
    assert lost.status == "ready" and lost.pid == st.pid and "unsupervised" in lost.reason
    # start re-adopts it: same server, new supervisor, which then notices the server's death.
    adopted = again.start("a")
    assert adopted.pid == st.pid and adopted.supervisor_pid not in (None, st.supervisor_pid)
    os.kill(st.pid, signal.SIGKILL)
    wait_for(lambda: again.status("a").status == "dead", timeout=3)
    again.stop("a")


def test_starting_until_the_new_supervisor_reports_then_dead_if_it_never_does(make_sup, tiny_model: Path,
                                                                             port: int) -> None:
    from mlx_console.core.lifecycle.state import State

    sup = make_sup(mlx("a", tiny_model, port))
    d = sup.dir("a")
    d.mkdir(parents=True)
    write_state(d, State(name="a", kind="mlx-lm", status="starting", reason="spawning supervisor", port=port))
    assert sup.status("a").status == "starting"
    data = json.loads((d / "state.json").read_text())
    data["updated_at"] -= 60
    (d / "state.json").write_text(json.dumps(data))
    st = sup.status("a")
    assert st.status == "dead" and "supervise.log" in st.reason


def test_recycled_pid_is_not_ours(make_sup, tiny_model: Path, port: int) -> None:
    sup = make_sup(mlx("a", tiny_model, port))
    d = sup.dir("a")
    d.mkdir(parents=True)
    from mlx_console.core.lifecycle.state import State

    me = psutil.Process()
    # A state file naming live pids (ours) but other create times: a recycled pid, not our backend.
    write_state(d, State(name="a", kind="mlx-lm", status="ready", pid=me.pid, create_time=me.create_time() - 50,
                         supervisor_pid=me.pid, supervisor_create_time=me.create_time() - 50, port=port))
    st = sup.status("a")
    assert st.status == "dead" and st.pid is None and st.supervisor_pid is None
    assert sup.stop("a").status in ("dead", "stopped")
    assert psutil.pid_exists(me.pid)  # and it did not signal us


def test_address_in_use_in_the_log_kills_the_server(tiny_model: Path, tmp_path: Path, isolated_state: Path) -> None:
    """The pre-start check cannot close every race: when the log says the port is taken, stop it, dead."""
    from mlx_console.core.backends.mlx_lm import MlxLmKind
    from mlx_console.core.lifecycle.state import Spec, write_spec

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        p = s.getsockname()[1]
        prof = Profile(name="a", kind="mlx-lm", model=str(tiny_model), port=p)
        d = paths.backends_dir() / "a"
        d.mkdir()
        write_spec(d, Spec(run_id="r", name="a", kind="mlx-lm", command=MlxLmKind().command(prof, None), env={},
                           host=prof.host, port=p, model=prof.model, base_url=prof.base_url, api_key=None,
                           restart="always", log=str(d / "server.log"), timings=FAST))
        subprocess.run([sys.executable, "-m", "mlx_console.core.lifecycle.daemon", str(d), "--foreground"],
                       timeout=60, check=True, capture_output=True)
    st = read_state(d)
    assert st.status == "dead" and "port is already in use" in st.reason
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(st.pid)


def test_demo_profile_builds_its_model_first(tmp_path: Path, port: int) -> None:
    model_dir = paths.demo_model_dir()
    cfg = Config(path=tmp_path / "none.toml", exists=False,
                 backends=[Profile(name="demo", kind="mlx-lm", model=str(model_dir), port=port, demo=True)])
    seen: list[str] = []
    sup = Supervisor(cfg, timings=FAST)
    st = sup.start("demo", wait=60, progress=seen.append)
    assert st.status == "ready" and (model_dir / "model.safetensors").exists()
    assert any("building the tiny demo model" in m for m in seen)
    sup.stop("demo")


def test_swap_model_restarts_on_the_other_model_and_restart_keeps_it(
        make_sup, tiny_model: Path, tmp_path: Path, port: int) -> None:
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model, other)
    sup = make_sup(mlx("a", tiny_model, port))
    first = sup.start("a", wait=60)
    with pytest.raises(ConsoleError, match="does not exist"):  # refused before the running server is stopped
        sup.swap_model("a", str(tmp_path / "missing-model"), wait=60)
    assert (sup.status("a").status, sup.status("a").pid) == ("ready", first.pid)
    swapped = sup.swap_model("a", str(other), wait=60)
    assert swapped.status == "ready" and swapped.model == str(other) and swapped.pid != first.pid
    assert str(other) in psutil.Process(swapped.pid).cmdline()
    again = sup.restart("a", wait=60)
    assert again.model == str(other) and again.pid != swapped.pid
    sup.stop("a")


def test_repeated_crashes_give_up_after_the_retry_cap(write_config, tiny_model: Path, port: int) -> None:
    from dataclasses import replace

    sup = Supervisor(write_config(mlx("a", tiny_model, port, restart="always")),
                     timings=replace(FAST, retry_cap=2, backoff_initial=0.1))
    pids = []
    for _ in range(3):
        st = wait_for(lambda: (s := sup.status("a")).status == "ready" and s.pid not in pids and s, timeout=60) \
            if pids else sup.start("a", wait=60)
        pids.append(st.pid)
        os.kill(st.pid, signal.SIGKILL)
    final = wait_for(lambda: (s := sup.status("a")).status == "dead" and s.supervisor_pid is None and s, timeout=10)
    assert "gave up after 2 restarts" in final.reason and final.restarts == 2
    events = [e["reason"] for e in read_state(sup.dir("a")).events if e["status"] == "dead"]
    assert "restarting in 0.1s (restart 1/2)" in events[0] and "restarting in 0.2s (restart 2/2)" in events[1]


def test_a_hung_server_is_degraded_by_the_probe_and_recovers(write_config, tiny_model: Path, port: int) -> None:
    """/health cannot see a hang; the 1-token completion can. SIGSTOP is a real hang."""
    from dataclasses import replace

    sup = Supervisor(write_config(mlx("a", tiny_model, port, restart="never")),
                     timings=replace(FAST, probe_interval=0.3, probe_timeout=0.7, probe_failures=2))
    st = sup.start("a", wait=60)
    os.kill(st.pid, signal.SIGSTOP)
    try:
        deg = wait_for(lambda: (s := sup.status("a")).status == "degraded" and s, timeout=10)
        assert "liveness probe failed" in deg.reason and deg.pid == st.pid
    finally:
        os.kill(st.pid, signal.SIGCONT)
    wait_for(lambda: sup.status("a").status == "ready", timeout=10)
    # A server that does not act on SIGTERM (stopped: the signal stays pending) gets SIGKILL after the grace.
    os.kill(st.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    assert sup.stop("a").status == "stopped"
    assert time.monotonic() - t0 >= FAST.grace
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(st.pid)


def test_two_consoles_starting_at_once_start_one_server(make_sup, tiny_model: Path, port: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sup = make_sup(mlx("a", tiny_model, port))
    with ThreadPoolExecutor(2) as ex:
        a, b = ex.map(lambda _: Supervisor(sup.config, timings=FAST).start("a", wait=60), range(2))
    assert a.pid == b.pid and a.supervisor_pid == b.supervisor_pid
    servers = [p for p in psutil.process_iter(["cmdline"]) if str(port) in " ".join(p.info["cmdline"] or [])]
    assert [p.pid for p in servers] == [a.pid]
    sup.stop("a")


def test_a_busy_server_is_not_taken_for_a_hung_one(write_config, tiny_llama4_model: Path, port: int) -> None:
    """Llama 4 cannot batch: the probe waits behind a long request. Busy CPU → not counted as a failure."""
    import threading
    from dataclasses import replace

    sup = Supervisor(write_config(mlx("a", tiny_llama4_model, port, restart="never")),
                     timings=replace(FAST, probe_interval=1.0, probe_timeout=1.0, probe_failures=2,
                                     busy_timeouts=100))
    st = sup.start("a", wait=60)
    # A generation long enough for any machine's speed: it streams until the probe has timed out behind it
    # (the condition this test waits for), then the client hangs up.
    body = {"messages": [{"role": "user", "content": "go"}], "max_tokens": 100_000, "temperature": 0, "stream": True}
    done = threading.Event()

    def generate() -> None:
        with httpx.stream("POST", f"{st.base_url}/v1/chat/completions", json=body, timeout=120) as r:
            for _ in r.iter_lines():
                if done.is_set():
                    return

    long = threading.Thread(target=generate)
    long.start()
    seen = set()
    log_path = sup.dir("a") / "supervise.log"
    deadline = time.monotonic() + 90
    while long.is_alive() and time.monotonic() < deadline and "timed out while busy" not in log_path.read_text():
        seen.add(sup.status("a").status)
        time.sleep(0.1)
    seen.add(sup.status("a").status)
    done.set()
    long.join(timeout=30)
    log = log_path.read_text()
    assert "timed out while busy" in log, log
    assert seen == {"ready"}, f"{seen}\n{log}"
    sup.stop("a")


def test_the_first_state_written_after_a_write_failure_already_carries_its_note(tmp_path: Path, capsys,
                                                                                  monkeypatch) -> None:
    """state.json unwritable for a while (here its directory is a file, as on a broken disk): the first write that
    works must hold the "could not be written" note itself. Written by a second write after it, a reader in
    between saw the new state without the note (a flaky full-disk test under load)."""
    from types import SimpleNamespace

    from mlx_console.core.lifecycle.daemon import Supervise
    from mlx_console.core.lifecycle.state import State

    d = tmp_path / "o"
    d.write_text("not a directory")
    sup = object.__new__(Supervise)  # only the state-writing part of a supervisor: no spec, no server
    sup.dir, sup.state = d, State(name="o", kind="omlx", status="ready", warnings=["an earlier warning"])
    sup.spec = SimpleNamespace(name="o")  # what say() prints its lines under
    sup.write_error, sup.write_since, sup.write_failed_at = "", 0.0, 0.0
    sup.write()
    assert sup.write_error and sup.state.warnings == ["an earlier warning"]
    d.unlink()
    d.mkdir()
    sup.state.restarts = 1
    writes: list[list[str]] = []
    real = write_state

    def recording(dir: Path, state: State) -> None:  # the real write, and what each one wrote
        real(dir, state)
        writes.append(list(read_state(dir).warnings))

    import mlx_console.core.lifecycle.daemon as daemon

    monkeypatch.setattr(daemon, "write_state", recording)
    sup.write()
    assert len(writes) == 1 and writes[0][0] == "an earlier warning"
    assert "state.json could not be written" in writes[0][1] and "Not a directory" in writes[0][1]
    assert read_state(d).restarts == 1 and not sup.write_error
    said = capsys.readouterr().out
    assert "supervise[o]: cannot write" in said and "supervise[o]: state.json could not be written" in said
