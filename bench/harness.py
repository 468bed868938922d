"""What every benchmark here shares: a program on a real pseudo-terminal whose screen is read back through a
terminal emulator (pyte), interleaved peers, percentiles, and one result row per figure.

A figure is what a user waits for: process start to the answer on stdout, or to the text on the terminal's
screen. Each script calls `emit(...)` for every figure it prints; `bench/run_all.py` (`make bench`) gathers the
rows of every script into one Markdown table (set by MLX_BENCH_OUT, one JSON object a line).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyte

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CONSOLE = Path(sys.executable).parent / "mlx-console"


# --- result rows ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    bench: str  # the script, e.g. "ui_startup"
    metric: str  # what was measured, in a user's words
    measured: float | None
    unit: str
    goal: str = ""  # e.g. "≤ 0.4 s"; empty: no goal, a reference figure
    met: bool | None = None
    peers: dict[str, str] = field(default_factory=dict)  # peer → its figure, measured in the same run
    note: str = ""


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit in ("%", "% core"):
        return f"{value:.2f} %"
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:g} {unit}".strip()


def ratio_to(measured: float | None, unit: str, peer: str) -> str:
    """`peer` ("0.750 s", "1.20 %") with the ratio ours/peer appended when both are figures in the same unit."""
    if measured is None or "×" in peer or peer[:1] in "+-":  # no ratio of signed errors
        return peer
    head = peer.split()
    try:
        value = float(head[0])
    except (ValueError, IndexError):
        return peer
    peer_unit = head[1] if len(head) > 1 else ""
    if value <= 0 or peer_unit != {"% core": "%"}.get(unit, unit):
        return peer
    return f"{peer} (ours {measured / value:.2f}×)"


def emit(row: Row) -> None:
    """Print the figure for a person and append it to MLX_BENCH_OUT for `make bench`'s table. Each peer's
    figure in the same unit gets the ratio ours/peer beside it."""
    row.peers = {k: ratio_to(row.measured, row.unit, v) for k, v in row.peers.items()}
    if row.peers:  # a row compared with peers names the ones that could not be had
        row.peers.update({k: f"not installed ({how})" for k, how in _MISSING.items() if k not in row.peers})
    goal = f"  goal {row.goal}: {'met' if row.met else 'NOT met'}" if row.goal and row.met is not None else ""
    peers = "  |  " + ", ".join(f"{k} {v}" for k, v in row.peers.items()) if row.peers else ""
    note = f"  ({row.note})" if row.note else ""
    print(f"[{row.bench}] {row.metric}: {fmt(row.measured, row.unit)}{goal}{peers}{note}", flush=True)
    out = os.environ.get("MLX_BENCH_OUT")
    if out:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(row)) + "\n")


def pct(xs: Sequence[float], q: float) -> float:
    """Percentile with linear interpolation (numpy's default): q in 0..1."""
    s = sorted(xs)
    if not s:
        raise ValueError("no samples")
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --- peers ---------------------------------------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    """A peer program: on PATH, or in the peers' venv that `make bench` creates (.venv-bench-peers)."""
    found = shutil.which(name)
    if found:
        return found
    for root in (REPO / ".venv-bench-peers", Path(os.environ.get("MLX_BENCH_PEERS", "/nonexistent"))):
        # one venv per peer (toolong and aiperf pin conflicting packages): ROOT/<peer>/bin/NAME
        for cand in (root / "bin" / name, *sorted(root.glob(f"*/bin/{name}"))):
            if cand.exists():
                return str(cand)
    return None


_MISSING: dict[str, str] = {}  # peer → how to get it, for the peers this run could not measure


def missing(name: str, how: str) -> str:
    """Say that peer `name` is not here; the rows emitted afterwards that compare with peers name it as such."""
    msg = f"{name} is not installed ({how}); its figures are left out of this run"
    print(f"  note: {msg}", flush=True)
    _MISSING[name] = how
    return msg


# --- a program on a pty, its screen read back ------------------------------------------------------------------


class PtyScreen:
    """`argv` on a pty of cols×rows. What it draws is fed to a pyte screen; `wait_for` polls that screen.

    Times are from just before the process is spawned (`t0`), so `wait_for` returns process start to text
    on screen: what a person at the terminal waits for.
    """

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, cols: int = 80, rows: int = 24,
                 cwd: str | None = None) -> None:
        self.cols, self.rows = cols, rows
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(env if env is not None else os.environ)
        env.setdefault("TERM", "xterm-256color")
        env["COLUMNS"], env["LINES"] = str(cols), str(rows)
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True)
        os.close(slave)
        self.closed = False

    def pump(self, timeout: float) -> bool:
        """Read what is there (waiting up to `timeout` for the first bytes); False once the pty is gone."""
        r, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not r:
            return True
        try:
            data = os.read(self.master, 1 << 16)
        except OSError:
            return False
        if not data:
            return False
        # Answer the terminal queries a real terminal answers (cursor position, device attributes), or some
        # programs (lnav) wait for them.
        if b"\x1b[6n" in data:
            os.write(self.master, f"\x1b[{self.screen.cursor.y + 1};{self.screen.cursor.x + 1}R".encode())
        if b"\x1b[c" in data or b"\x1b[0c" in data:
            os.write(self.master, b"\x1b[?62;22c")
        self.stream.feed(data)
        return True

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, check: str | Callable[[str], bool], timeout: float = 30.0, since: float | None = None) -> float:
        """Seconds from `since` (default: process start) until `check` holds on the screen."""
        pred = (lambda s: check in s) if isinstance(check, str) else check
        start = self.t0 if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            if pred(self.text()):
                return time.perf_counter() - start
            left = deadline - time.monotonic()
            if left <= 0:
                tail = "\n".join(self.text().splitlines()[-6:])
                raise TimeoutError(f"not on screen within {timeout:.0f} s: {check!r}; screen ends with:\n{tail}")
            if not self.pump(min(left, 0.05)):
                if pred(self.text()):
                    return time.perf_counter() - start
                raise RuntimeError(f"{self.proc.args!r} exited ({self.proc.poll()}) before {check!r} showed")

    def drain(self, seconds: float = 0.0) -> None:
        end = time.monotonic() + seconds
        while True:
            self.pump(max(0.0, min(0.05, end - time.monotonic())))
            if time.monotonic() >= end:
                return

    def send(self, keys: str | bytes) -> float:
        os.write(self.master, keys.encode() if isinstance(keys, str) else keys)
        return time.perf_counter()

    def close(self, quit_keys: bytes | None = b"q") -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if quit_keys is not None and self.proc.poll() is None:
                os.write(self.master, quit_keys)
                deadline = time.monotonic() + 3
                while self.proc.poll() is None and time.monotonic() < deadline:
                    self.pump(0.05)
        except OSError:
            pass
        if self.proc.poll() is None:
            with _quiet():
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        with _quiet():
            os.close(self.master)


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)  # type: ignore[arg-type]


def timed_run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    """Process start to exit, stdout read to the end (a pipe, so grep cannot stop early)."""
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    return time.perf_counter() - t0, done


def machine() -> str:
    """One line naming this machine for the table's header."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        try:
            cpu = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True).stdout.strip() or cpu
        except OSError:
            pass
    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:
        mem = "?"
    return (f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, {mem}, "
            f"Python {platform.python_version()}")
