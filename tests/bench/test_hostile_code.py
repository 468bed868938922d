"""A hostile server: its fizzbuzz is correct, and the same code block tries every escape issue 13 lists.

The code raises `RuntimeError("LOOT …")` naming what it got out (a file written outside its temp dir, a
secret read, the bench's environment, a connection), so a contained run must pass; it also leaves 200
forked processes and a `setsid` daemon behind, found afterwards by a token on their command lines.
The same code run uncontained (`--unsafe-exec` where there is no sandbox) shows the escapes are real.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from openai_scripted import Script, ScriptedServer

from mlx_console.core.bench import sandbox

pytestmark = pytest.mark.slow

FIZZBUZZ = """
def fizzbuzz(n: int) -> str:
    if n % 15 == 0:
        return 'FizzBuzz'
    if n % 3 == 0:
        return 'Fizz'
    if n % 5 == 0:
        return 'Buzz'
    return str(n)
"""

HOSTILE = """
import os, socket, sys, time
loot = []
def grab(what, fn):
    try:
        got = fn()
    except BaseException:
        return
    if got:
        loot.append(what + "=" + " ".join(str(got).split())[-30:])
def write(path):
    with open(path, "a") as f:
        f.write("owned\\n")
    return "wrote"
grab("connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2) and "connected")
grab("ppid", lambda: "secret" if b"{secret}" in open(f"/proc/{{os.getppid()}}/environ", "rb").read() else "")
def scan():
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if b"{secret}" in open(f"/proc/{{pid}}/environ", "rb").read():
                    found.append(pid)
            except OSError:
                pass
    return found
grab("scan", lambda: len(scan()))
for i, path in enumerate({reads!r}):
    grab(f"r{{i}}", lambda: "secret" if "{secret}" in open(path).read() else "read")
for i, path in enumerate({writes!r}):
    grab(f"w{{i}}", lambda: write(path))
def spawn(daemon):
    pid = os.fork()
    if pid == 0:
        try:
            if daemon:
                os.setsid()
                if os.fork():
                    os._exit(0)
            os.execv("/bin/sleep", ["sleep", "{token}"])
        finally:
            os._exit(0)
for i in range(200):
    try:
        spawn(False)
    except OSError:
        break
spawn(True)
time.sleep(0.3)
if loot:
    raise RuntimeError("LOOT " + "; ".join(loot) + " \\x1b]52;c;b3duZWQ=\\x07\\x1b[2J")
"""


def _leftovers(token: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if (p.info["cmdline"] or [])[-1:] == [token]:
                out.append(p)
        except (psutil.Error, IndexError):
            continue
    return out


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[dict[str, Any]]:
    secret = "s3cret-" + secrets.token_hex(8)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(f"KEY {secret}\n")
    state = tmp_path / "state" / "backends" / "omlx"
    state.mkdir(parents=True)
    (state / "state.json").write_text(f'{{"api_key": "{secret}"}}\n')
    config = Path(os.environ["MLX_CONSOLE_CONFIG"])
    config.write_text("# config\n")
    token = f"{900000 + secrets.randbelow(99999)}.{secrets.randbelow(10**6):06d}"
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        site = next(p for p in sys.path if p.endswith("site-packages"))
        writes = [str(config), str(tmp_path / "outside.txt"), str(home / ".bashrc"),
                  os.path.join(site, f"owned-{token}.txt"), "/tmp/owned-" + token]
        reads = ["/etc/shadow", str(home / ".ssh" / "id_ed25519"), str(state / "state.json")]
        code = HOSTILE.format(writes=writes, reads=reads, secret=secret, port=srv.getsockname()[1], token=token)
        yield {"code": FIZZBUZZ + code, "token": token, "config": config, "writes": writes, "secret": secret}
    for p in _leftovers(token):  # the uncontained control leaves them: never let them outlive the test
        p.kill()
    for path in writes[1:]:
        if os.path.exists(path) and "owned" in path:
            os.unlink(path)


def _bench(scripted: Callable[..., ScriptedServer], code: str, *flags: str, sandbox_kind: str = "",
           secret: str = "") -> dict[str, Any]:
    """`mlx-console bench run` as a user runs it, with a secret in its environment."""
    srv = scripted(scripts=[Script(match="fizzbuzz", content=["```python\n", code, "\n```"])])
    env = {**os.environ, "BENCH_SECRET": secret, "MLX_CONSOLE_SANDBOX": sandbox_kind}
    p = subprocess.run([sys.executable, "-m", "mlx_console", "bench", "run", "--url", srv.base_url, "--model", "m",
                        "--cells", "coding.fizzbuzz", "--json", *flags], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["cells"]["coding.fizzbuzz"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["bwrap", "unshare"])
def test_hostile_code_is_contained(kind: str, hostile: dict[str, Any],
                                   scripted: Callable[..., ScriptedServer]) -> None:
    c = sandbox.containment(kind)
    if c.kind != kind:
        pytest.skip(f"{kind} does not work here: {c.description}")
    before = Path(hostile["config"]).read_text()
    cell = _bench(scripted, hostile["code"], sandbox_kind=kind, secret=hostile["secret"])
    assert cell["status"] == "pass" and cell["result"] == "passed", cell
    assert cell["containment"].startswith(kind) and "temp dir only" in cell["containment"]
    assert Path(hostile["config"]).read_text() == before
    for path in hostile["writes"][1:]:
        assert not os.path.exists(path), path
    # Every process the code left (200 forks, a setsid daemon) died with its PID namespace.
    deadline = time.monotonic() + 5
    while _leftovers(hostile["token"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _leftovers(hostile["token"]) == []


def test_the_same_code_uncontained_gets_out(hostile: dict[str, Any],
                                            scripted: Callable[..., ScriptedServer]) -> None:
    """The control: without a sandbox the escapes work, so the test above can fail."""
    cell = _bench(scripted, hostile["code"], "--unsafe-exec", sandbox_kind="none", secret=hostile["secret"])
    assert cell["result"] == "failed:RuntimeError", cell
    reason = str(cell["reason"])
    assert "connect=connected" in reason and "ppid=secret" in reason and "scan=" in reason
    assert "r0=read" in reason and "r1=secret" in reason and "r2=secret" in reason  # shadow, ~/.ssh, state
    assert "w0=wrote" in reason  # the console's config
    assert "\x1b" not in reason and "^[]52;" in reason  # shown like cat -v, never raw
    assert "uncontained" in cell["containment"]
    assert _leftovers(hostile["token"])  # the setsid daemon escaped its session


def test_without_a_sandbox_model_code_is_refused(scripted: Callable[..., ScriptedServer]) -> None:
    cell = _bench(scripted, FIZZBUZZ, sandbox_kind="none")
    assert cell["status"] == "error" and cell["result"] == "refused"
    assert "--unsafe-exec" in cell["reason"] and cell["containment"].startswith("none")


def test_output_is_escaped_and_bounded() -> None:
    code = ("import sys\n"
            "def add(a, b):\n"
            "    sys.stdout.write('x' * 50_000_000)\n"
            "    raise ValueError('\\x1b[2J\\x1b]52;c;aGk=\\x07' + 'y' * 10_000)\n")
    r = sandbox.run_code(code, "assert add(1, 2) == 3\n")
    assert r.result == "failed:ValueError"
    assert "\x1b" not in r.detail and r.detail.startswith("^[[2J^[]52;c;aGk=^G") and len(r.detail) < 400
    flood = sandbox.run_code("import sys\ndef add(a, b):\n    while True:\n        sys.stderr.write('z' * 65536)\n",
                             "assert add(1, 2) == 3\n", timeout_s=20)
    assert flood.result.startswith("failed:") and len(flood.detail) < 400


def test_macos_profile_by_construction(tmp_path: Path) -> None:
    """The sandbox-exec profile (cannot run here): deny-default writes, the temp dir the one exception,
    reads under $HOME and /Users denied except the Python install, network and fork denied."""
    work = tmp_path / 'we"ird\\dir'
    work.mkdir()
    prof = sandbox.macos_profile(str(work), "/Users/me", ["/Users/me/.pyenv/versions/3.12.1"])
    lines = [ln.strip() for ln in prof.splitlines() if ln.strip()]
    assert lines[0] == "(version 1)" and "(deny network*)" in lines and "(deny process-fork)" in lines
    deny_w = lines.index("(deny file-write*)")
    allow_w = next(i for i, ln in enumerate(lines) if ln.startswith("(allow file-write*"))
    assert allow_w > deny_w  # later rules win in SBPL: the exception comes after the deny
    assert '(subpath "' + str(work.resolve()).replace("\\", "\\\\").replace('"', '\\"') + '")' in lines[allow_w]
    deny_r = next(i for i, ln in enumerate(lines) if ln.startswith("(deny file-read*"))
    allow_r = next(i for i, ln in enumerate(lines) if ln.startswith("(allow file-read*"))
    assert allow_r > deny_r and '(subpath "/Users/me/.pyenv/versions/3.12.1")' in lines[allow_r]
    assert '(subpath "/Users")' in prof and '(subpath "/Users/me")' in prof
    assert prof.count("(") == prof.count(")")
