"""Run model-written code with a cell's asserts in a sandboxed subprocess.

Isolated interpreter (`python -I`), a fresh temp working dir, a wall-clock timeout, RLIMIT_CPU and
RLIMIT_AS, an environment scrubbed to a few safe variables, and no network where the OS allows it:
Linux `unshare -n` (or `-rn` unprivileged), macOS `sandbox-exec` with network denied.
"""

from __future__ import annotations

import ast
import functools
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

_RUNNER = """\
import sys, traceback
src = open("solution.py", encoding="utf-8").read() + "\\n\\n" + open("asserts.py", encoding="utf-8").read()
open("check.py", "w", encoding="utf-8").write(src)
try:
    exec(compile(src, "check.py", "exec"), {"__name__": "__main__"})
except BaseException as e:  # the exception, its message or the failing line, on a marker line
    sys.stderr.write(traceback.format_exc())
    frames = traceback.extract_tb(e.__traceback__)
    where = (frames[-1].line or "") if frames else ""
    sys.stderr.write("\\n@@EXC@@" + type(e).__name__ + ": " + (str(e) or where)[:200] + "\\n")
    sys.exit(1)
"""

MACOS_NO_NET = "(version 1)(allow default)(deny network*)"


@dataclass
class SandboxResult:
    result: str  # "passed" | "failed:<Exception>" | "timeout" | "no code"
    detail: str = ""
    network_isolation: str = ""  # how the network was cut, or why it was not


@functools.lru_cache(maxsize=1)
def network_prefix() -> tuple[tuple[str, ...], str]:
    """The command prefix that cuts the network here, and a description (says so when none works)."""
    system = platform.system()
    if system == "Linux":
        unshare = shutil.which("unshare")
        if unshare:
            for flags in (("-n",), ("-r", "-n")):
                try:
                    ok = subprocess.run([unshare, *flags, "true"], capture_output=True, timeout=5).returncode == 0
                except (OSError, subprocess.SubprocessError):
                    ok = False
                if ok:
                    return (unshare, *flags), f"unshare {' '.join(flags)}"
        return (), "none: unshare -n is not permitted here (no network namespace); network not isolated"
    if system == "Darwin":
        sb = shutil.which("sandbox-exec")
        if sb:
            return (sb, "-p", MACOS_NO_NET), "sandbox-exec (deny network*)"
        return (), "none: sandbox-exec not found; network not isolated"
    return (), f"none on {system}; network not isolated"


def _limits(cpu_s: int, mem_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    if platform.system() != "Darwin":  # RLIMIT_AS is not enforced (and can break exec) on macOS
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    os.setsid()


def run_code(code: str | None, asserts: str, timeout_s: float = 10.0, cpu_s: int = 10,
             mem_bytes: int = 512 * 1024 * 1024) -> SandboxResult:
    """passed / failed:<exception> / timeout / no code."""
    prefix, how = network_prefix()
    if not code or not code.strip():
        return SandboxResult("no code", "no code block in the answer", how)
    try:
        ast.parse(code)
    except SyntaxError as e:
        return SandboxResult("failed:SyntaxError", f"line {e.lineno}: {e.msg}", how)
    with tempfile.TemporaryDirectory(prefix="mlx-console-sandbox-") as tmp:
        for name, text in (("solution.py", code), ("asserts.py", asserts), ("runner.py", _RUNNER)):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tmp, "TMPDIR": tmp,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
        cmd = [*prefix, sys.executable, "-I", "runner.py"]
        try:
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, preexec_fn=lambda: _limits(cpu_s, mem_bytes))
        except OSError as e:
            return SandboxResult("failed:OSError", f"could not start the sandbox: {e}", how)
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return SandboxResult("timeout", f"no result after {timeout_s:g} s (wall clock)", how)
        stderr = err.decode("utf-8", "replace")
        if proc.returncode == 0:
            return SandboxResult("passed", "", how)
        marker = [ln for ln in stderr.splitlines() if ln.startswith("@@EXC@@")]
        if marker:
            name, _, msg = marker[-1][len("@@EXC@@"):].partition(": ")
            return SandboxResult(f"failed:{name}", msg, how)
        if proc.returncode < 0:
            sig = -proc.returncode
            # SIGXCPU (24 on Linux/macOS) = the CPU limit; SIGKILL after it too.
            if sig in (24, 9):
                return SandboxResult("timeout", f"killed by signal {sig} (CPU limit {cpu_s} s)", how)
            return SandboxResult(f"failed:signal{sig}", stderr[-300:], how)
        return SandboxResult("failed:Exit", f"exit status {proc.returncode}: {stderr[-300:]}", how)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, 9)
    except OSError:
        proc.kill()
    proc.wait()
