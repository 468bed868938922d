"""Run model-written code with a cell's asserts, contained. The model under test is untrusted input.

Always: isolated interpreter (`python -I`), a fresh temp working dir, a wall-clock timeout, RLIMIT_CPU,
RLIMIT_AS, RLIMIT_FSIZE, an environment scrubbed to a few safe variables, its own session; what it prints
is read bounded and shown escaped.

Containment, the first that works here (`containment()` says which; every record carries it):
- Linux `bwrap`: new user, mount, PID, network, IPC and UTS namespaces; a root holding only the system
  dirs and the Python install read-only, the temp dir the only writable path, no $HOME, /proc of its own
  PID namespace; when the code ends the namespace's init exits and the kernel kills every process left.
- Linux `unshare`: the same namespaces built by the runner itself (tmpfs root, read-only binds, chroot,
  then every capability dropped for good) under `unshare --user --map-root-user … --fork --kill-child`.
- macOS `sandbox-exec`: a profile denying file writes outside the temp dir, reads under $HOME, /Users and
  other users' data (except the Python install), the network, and fork; the session is killed at the end.
Without any of them the code is refused unless `unsafe_exec=True` (`bench run --unsafe-exec`).
"""

from __future__ import annotations

import ast
import functools
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from mlx_console.core.common.text import shown

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

# Run as PID 1 of the new namespaces by `unshare` (as root of a new user namespace): build a root of
# read-only binds + the writable work dir, chroot into it, drop every capability so that nothing can be
# remounted or regained by exec, then run the code in a child and exit with its status (PID 1 exiting
# kills whatever the code left behind).
_UNSHARE_SETUP = r"""
import ctypes, json, os, sys
root, work, ro_dirs, links = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
def mount(src, dst, fs, flags, data=None):
    if libc.mount(src and src.encode(), dst.encode(), fs and fs.encode(), flags, data and data.encode()) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {src} on {dst}: {os.strerror(e)}")
def bind(src, ro):
    dst = root + src
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    mount(src, dst, None, MS_BIND | MS_REC)
    if ro:
        mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
mount(None, "/", None, MS_REC | MS_PRIVATE)
mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
for d in ro_dirs:
    bind(d, True)
for path, target in links:
    os.symlink(target, root + path)
for dev in ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"):
    if os.path.exists(dev):
        bind(dev, False)
bind(work, False)
os.makedirs(root + "/proc", exist_ok=True)
mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
os.makedirs(root + "/tmp", exist_ok=True)
mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
os.chdir(root)
os.chroot(".")
os.chdir(work)
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 28, 47, 4
libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
for cap in range(64):
    libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
if libc.prctl(PR_SET_SECUREBITS, 0x2F, 0, 0, 0) != 0:  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS off, all locked
    sys.exit("sandbox: cannot lock securebits")
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
if libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()) != 0:
    sys.exit("sandbox: cannot drop capabilities")
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-I", "runner.py"])
while True:
    got, status = os.waitpid(pid, 0)
    if got == pid:
        break
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""

_MACOS_PROFILE = """\
(version 1)
(allow default)
(deny network*)
(deny process-fork)
(deny file-write*)
(allow file-write* (subpath {work}) (literal "/dev/null") (literal "/dev/zero") (literal "/dev/dtracehelper"))
(deny file-read* (subpath "/Users") (subpath "/var/root") (subpath "/Volumes") (subpath "/private/var/root")
    (subpath "/Library/Keychains") (subpath "/private/var/db") (subpath "/private/etc/master.passwd")
    (subpath {home}))
(allow file-read* (subpath {work}){readable})
"""

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")
STDERR_LIMIT = 64 * 1024  # what is kept of the code's stderr (its tail)
FILE_LIMIT = 16 * 1024 * 1024  # RLIMIT_FSIZE: no file it writes (its stderr included) grows past this


@dataclass
class SandboxResult:
    result: str  # "passed" | "failed:<Exception>" | "timeout" | "no code" | "refused"
    detail: str = ""
    network_isolation: str = ""  # how the network was cut, or why it was not
    containment: str = ""  # how the code was contained (bwrap / unshare / sandbox-exec / none …)
    leftover: list[int] = field(default_factory=list)  # pids of the code found alive after it ended (killed)


@dataclass(frozen=True)
class Containment:
    kind: str  # "bwrap" | "unshare" | "sandbox-exec" | "none"
    description: str  # what holds the code, for records and messages
    network: str  # how the network is cut (the older record key), or why it is not
    tool: str = ""

    @property
    def isolated(self) -> bool:
        return self.kind != "none"


def _python_dirs() -> list[str]:
    """What the interpreter needs to run: its prefixes (a venv and its base install) and its binary's dir."""
    dirs = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    dirs.add(os.path.dirname(os.path.realpath(sys.executable)))
    dirs |= {p for p in (sys.prefix, sys.base_prefix) if os.path.isdir(p)}  # unresolved paths too (symlinked)
    keep = sorted(d for d in dirs if d and d != "/")
    return [d for d in keep if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in keep)]


def _layout() -> tuple[list[str], list[tuple[str, str]]]:
    """(read-only dirs/files to bind at the same path, symlinks path → target) for the sandbox's root."""
    ro: list[str] = []
    links: list[tuple[str, str]] = []
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            links.append((d, os.readlink(d)))
        elif os.path.isdir(d):
            ro.append(d)
    ro += [f for f in _ETC_FILES if os.path.exists(f)]
    for d in _python_dirs():
        if not any(d == r or d.startswith(r.rstrip("/") + "/") for r in ro):
            ro.append(d)
    return ro, links


def bwrap_command(bwrap: str, work: str) -> list[str]:
    ro, links = _layout()
    cmd = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--uid", "65534", "--gid", "65534", "--hostname", "sandbox"]
    for d in ro:
        cmd += ["--ro-bind", d, d]
    for path, target in links:
        cmd += ["--symlink", target, path]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--bind", work, work, "--remount-ro", "/dev",
            "--remount-ro", "/", "--chdir", work, "--"]
    return cmd


def unshare_command(unshare: str, base: str, work: str) -> list[str]:
    ro, links = _layout()
    root = os.path.join(base, "root")
    os.makedirs(root, exist_ok=True)
    return [unshare, "--user", "--map-root-user", "--mount", "--pid", "--fork", "--kill-child", "--net",
            "--ipc", "--uts", "--", sys.executable, "-I", "-c", _UNSHARE_SETUP, root, work, json.dumps(ro),
            json.dumps(links)]


def _sbpl(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def macos_profile(work: str, home: str, readable: list[str]) -> str:
    """The sandbox-exec profile: later rules win, so the allows after the denies are the exceptions."""
    extra = "".join(f" (subpath {_sbpl(p)})" for p in readable)
    return _MACOS_PROFILE.format(work=_sbpl(os.path.realpath(work)), home=_sbpl(os.path.realpath(home)),
                                 readable=extra)


def _probe(kind: str, tool: str) -> bool:
    """Does this containment run a trivial program here (namespaces may be forbidden in a container)?"""
    with tempfile.TemporaryDirectory(prefix="mlx-console-sandbox-") as base:
        work = os.path.join(base, "work")
        os.mkdir(work)
        with open(os.path.join(work, "runner.py"), "w", encoding="utf-8") as f:
            f.write("import os\nopen('probe', 'w').write('ok')\n")
        try:
            rc = subprocess.run(_command(kind, tool, base, work), cwd=work, capture_output=True, timeout=30,
                                env=_env(work)).returncode
            return rc == 0 and os.path.exists(os.path.join(work, "probe"))
        except (OSError, subprocess.SubprocessError):
            return False


def containment(prefer: str | None = None) -> Containment:
    """The strongest containment that works here. `prefer` (or $MLX_CONSOLE_SANDBOX) asks for one kind:
    bwrap, unshare, sandbox-exec, or none (then model code is refused unless unsafe_exec)."""
    return _containment(prefer or os.environ.get("MLX_CONSOLE_SANDBOX") or None)


@functools.lru_cache(maxsize=8)
def _containment(prefer: str | None) -> Containment:
    system = platform.system()
    if prefer == "none":
        return Containment("none", "none: MLX_CONSOLE_SANDBOX=none", "none: not asked for; network not isolated")
    if system == "Linux":
        bwrap, unshare = shutil.which("bwrap"), shutil.which("unshare")
        if bwrap and prefer in (None, "bwrap") and _probe("bwrap", bwrap):
            return Containment("bwrap", "bwrap: user+mount+pid+net namespaces, writable: temp dir only",
                               "bwrap --unshare-net", bwrap)
        if unshare and prefer in (None, "unshare") and _probe("unshare", unshare):
            return Containment("unshare", "unshare: user+mount+pid+net namespaces, chroot, no capabilities, "
                               "writable: temp dir only", "unshare --net", unshare)
        why = "bwrap (bubblewrap) and unshare are missing or not permitted here (no user namespaces)"
        return Containment("none", f"none: {why}", f"none: {why}; network not isolated")
    if system == "Darwin":
        sb = shutil.which("sandbox-exec")
        if sb and prefer in (None, "sandbox-exec"):
            return Containment("sandbox-exec", "sandbox-exec: writes only in the temp dir, no reads under "
                               "$HOME or /Users, no network, no fork", "sandbox-exec (deny network*)", sb)
        return Containment("none", "none: sandbox-exec not found", "none: sandbox-exec not found; network "
                           "not isolated")
    return Containment("none", f"none on {system}", f"none on {system}; network not isolated")


def network_prefix() -> tuple[tuple[str, ...], str]:
    """Kept for callers of the older API: (unused prefix, how the network is cut)."""
    c = containment()
    return ((c.tool,) if c.isolated else ()), c.network


def _limits(cpu_s: int, mem_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    if platform.system() != "Darwin":  # RLIMIT_AS is not enforced (and can break exec) on macOS
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setsid()


def _env(work: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work, "TMPDIR": work,
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}


def _command(kind: str, tool: str, base: str, work: str) -> list[str]:
    run = [sys.executable, "-I", "runner.py"]
    if kind == "bwrap":
        return [*bwrap_command(tool, work), *run]
    if kind == "unshare":
        return unshare_command(tool, base, work)
    if kind == "sandbox-exec":
        home = os.path.expanduser("~")
        profile = macos_profile(work, home, [os.path.realpath(d) for d in _python_dirs()])
        return [tool, "-p", profile, *run]
    return run


def run_code(code: str | None, asserts: str | None, timeout_s: float = 10.0, cpu_s: int = 10,
             mem_bytes: int = 512 * 1024 * 1024, *, unsafe_exec: bool = False,
             prefer: str | None = None) -> SandboxResult:
    """passed / failed:<exception> / timeout / no code / refused (no containment and not unsafe_exec)."""
    c = containment(prefer)
    how, net = c.description, c.network
    if not code or not code.strip():
        return SandboxResult("no code", "no code block in the answer", net, how)
    try:
        ast.parse(code)
    except SyntaxError as e:
        return SandboxResult("failed:SyntaxError", shown(f"line {e.lineno}: {e.msg}", 300), net, how)
    if not c.isolated:
        if not unsafe_exec:
            return SandboxResult("refused", f"model code not run: no sandbox here ({how}); pass --unsafe-exec "
                                 "to run it uncontained", net, how)
        how = f"{how} (ran uncontained: --unsafe-exec)"
    with tempfile.TemporaryDirectory(prefix="mlx-console-sandbox-") as base:
        work = os.path.join(base, "work")
        os.mkdir(work, 0o700)
        for name, text in (("solution.py", code), ("asserts.py", asserts or ""), ("runner.py", _RUNNER)):
            with open(os.path.join(work, name), "w", encoding="utf-8") as f:
                f.write(text)
        err_path = os.path.join(base, "stderr")
        with open(err_path, "w+b") as err:
            try:
                proc = subprocess.Popen(_command(c.kind, c.tool, base, work), cwd=work, env=_env(work),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                        preexec_fn=lambda: _limits(cpu_s, mem_bytes))
            except OSError as e:
                return SandboxResult("failed:OSError", f"could not start the sandbox: {e}", net, how)
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            leftover = _kill_session(proc)
            stderr = _tail(err)
    r = _result(proc.returncode, stderr, timed_out, timeout_s, cpu_s)
    return SandboxResult(r[0], r[1], net, how, leftover)


def _tail(f: object) -> str:
    f.seek(0, os.SEEK_END)  # type: ignore[attr-defined]
    size = f.tell()  # type: ignore[attr-defined]
    f.seek(max(0, size - STDERR_LIMIT))  # type: ignore[attr-defined]
    return f.read().decode("utf-8", "replace")  # type: ignore[attr-defined,no-any-return]


def _result(rc: int | None, stderr: str, timed_out: bool, timeout_s: float, cpu_s: int) -> tuple[str, str]:
    if timed_out:
        return "timeout", f"no result after {timeout_s:g} s (wall clock)"
    if rc == 0:
        return "passed", ""
    marker = [ln for ln in stderr.splitlines() if ln.startswith("@@EXC@@")]
    if marker:
        name, _, msg = marker[-1][len("@@EXC@@"):].partition(": ")
        return f"failed:{shown(name, 80)}", shown(msg, 300)
    sig = -rc if rc is not None and rc < 0 else (rc - 128 if rc is not None and 128 < rc <= 128 + 64 else 0)
    if sig:
        # SIGXCPU (24 on Linux/macOS) = the CPU limit; SIGKILL after it too.
        if sig in (24, 9):
            return "timeout", f"killed by signal {sig} (CPU limit {cpu_s} s)"
        return f"failed:signal{sig}", shown(stderr[-300:], 300)
    return "failed:Exit", shown(f"exit status {rc}: {stderr[-300:]}", 400)


def _kill_session(proc: subprocess.Popen[bytes]) -> list[int]:
    """Kill the code's process group and anything left in its session (a daemon that forked away);
    return the pids that were still alive. In a PID namespace its init exiting already did this."""
    sid = proc.pid  # start with setsid(): session id = process group id = the pid
    try:
        os.killpg(sid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()
    left: list[int] = []
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        return left
    deadline = time.monotonic() + 2.0
    while True:
        alive = []
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) == sid or os.getpgid(p.pid) == sid:
                    alive.append(p.pid)
                    p.kill()
            except (OSError, psutil.Error):
                continue
        left += [p for p in alive if p not in left]
        if not alive or time.monotonic() > deadline:
            return left
        time.sleep(0.05)
