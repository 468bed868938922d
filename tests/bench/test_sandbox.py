"""The coding sandbox, with real subprocesses: results, limits, scrubbed env, temp cwd, no network."""

from __future__ import annotations

import os
import socket

import pytest

from mlx_console.core.bench import sandbox

pytestmark = pytest.mark.slow

ASSERT_ADD = "assert add(2, 3) == 5\n"


def test_results() -> None:
    assert sandbox.run_code("def add(a, b):\n    return a + b", ASSERT_ADD).result == "passed"
    wrong = sandbox.run_code("def add(a, b):\n    return a - b", ASSERT_ADD)
    assert wrong.result == "failed:AssertionError" and "add(2, 3) == 5" in wrong.detail
    assert sandbox.run_code("def add(a, b):\n    raise KeyError('k')", ASSERT_ADD).result == "failed:KeyError"
    assert sandbox.run_code(None, ASSERT_ADD).result == "no code"
    assert sandbox.run_code("def add(a, b) return", ASSERT_ADD).result == "failed:SyntaxError"


def test_wall_clock_timeout_kills_it() -> None:
    r = sandbox.run_code("import time\ndef add(a, b):\n    time.sleep(60)", ASSERT_ADD, timeout_s=1.0)
    assert r.result == "timeout" and "1 s" in r.detail


def test_cpu_limit() -> None:
    r = sandbox.run_code("def add(a, b):\n    while True:\n        pass", ASSERT_ADD, timeout_s=20, cpu_s=1)
    assert r.result == "timeout" and "CPU limit" in r.detail


def test_memory_limit() -> None:
    r = sandbox.run_code("x = bytearray(2 * 1024**3)\ndef add(a, b):\n    return a + b", ASSERT_ADD,
                         mem_bytes=256 * 1024 * 1024)
    assert r.result == "failed:MemoryError"


def test_isolated_env_and_temp_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    code = ("import os, sys\n"
            "def add(a, b):\n"
            "    assert 'SECRET_TOKEN' not in os.environ, 'env leaked'\n"
            "    assert 'mlx-console-sandbox-' in os.getcwd(), os.getcwd()\n"
            "    assert sys.flags.isolated == 1\n"
            "    return a + b\n")
    r = sandbox.run_code(code, ASSERT_ADD)
    assert r.result == "passed", r.detail
    assert not os.environ.get("PWD", "").startswith("/tmp/mlx-console-sandbox-")


def test_no_network_where_the_os_allows() -> None:
    prefix, how = sandbox.network_prefix()
    if not prefix:
        pytest.skip(f"no network isolation here: {how}")
    # A listener on the host's loopback must be unreachable from inside the sandbox.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        code = ("import socket\n"
                "def add(a, b):\n"
                f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                "    return a + b\n")
        r = sandbox.run_code(code, ASSERT_ADD)
    assert r.result.startswith("failed:") and "Error" in r.result, r
    assert r.network_isolation == how
