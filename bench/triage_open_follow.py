"""Open a 1 GB log to its last line (LineIndex over mmap), index it all, then follow it: time and RSS.

Usage: python bench/triage_open_follow.py [--log FILE] [--size-mb 1024] [--append-lines 200000] [--keep]
Prints: time from opening the file to its last screen (50 lines), RSS before/after, time and RSS for the
complete 8-bytes-a-line index, then RSS and latency while following appends (LogFollower + Triager).
Not a test.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from mlx_console.core.logs.index import LineIndex
from mlx_console.core.logs.source import LogFollower
from mlx_console.core.logs.triage import Triager

LINE = b"2026-11-25 13:22:38,803 - INFO - Prompt processing progress: 1024/4096\n"


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def anon_mb() -> float:
    """RSS minus file-backed shared pages: what the process owns (mmap'd log pages are page cache)."""
    m = psutil.Process().memory_info()
    return (m.rss - getattr(m, "shared", 0)) / 1e6


def generate(path: Path, size_mb: int) -> None:
    block = LINE * ((8 << 20) // len(LINE))
    with path.open("wb") as f:
        for _ in range(max(1, size_mb // 8)):
            f.write(block)
        f.write(b"2026-11-25 13:22:39,000 - INFO - the very last line\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", type=Path)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--append-lines", type=int, default=200_000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="triage-open-"))
    log = args.log or tmp / "big.log"
    if args.log is None:
        t0 = time.perf_counter()
        generate(log, args.size_mb)
        print(f"generated {log.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    base = rss_mb()
    t0 = time.perf_counter()
    idx = LineIndex(log)
    last = idx.tail(50)
    t_open = time.perf_counter() - t0
    print(f"open → last 50 lines: {t_open * 1000:.1f} ms (last: {last[-1][-40:]!r}); "
          f"RSS {base:.0f} → {rss_mb():.0f} MB; {len(idx)} lines indexed so far")

    t0 = time.perf_counter()
    idx.scan_all()
    t_all = time.perf_counter() - t0
    n = len(idx)
    print(f"full index: {n} lines in {t_all:.2f}s ({log.stat().st_size / t_all / 1e6:.0f} MB/s); "
          f"offsets {n * 8 / 1e6:.0f} MB (8 bytes a line); RSS {rss_mb():.0f} MB, of which own {anon_mb():.0f} MB")
    mid = idx.line(n // 2)
    print(f"random access line {n // 2}: {mid[:40]!r}")
    idx.close()
    del idx

    # Follow: a writer appends while a LogFollower + Triager keep up; RSS stays flat.
    stop = threading.Event()
    rss_samples: list[float] = []

    def writer() -> None:
        with log.open("ab") as f:
            for i in range(args.append_lines):
                f.write(LINE if i % 1000 else b"OSError: [Errno 48] Address already in use\n")
                if i % 500 == 0:
                    f.flush()
                    time.sleep(0.001)
        stop.set()

    seen = events = 0
    before = anon_mb()
    with LogFollower(log) as fol:
        fol.poll()
        tri = Triager()
        th = threading.Thread(target=writer)
        t0 = time.perf_counter()
        th.start()
        while not (stop.is_set() and seen >= args.append_lines):
            fol.wait(0.2)
            for ln in fol.poll():
                seen += 1
                events += len(tri.feed(ln.text))
            rss_samples.append(anon_mb())
        events += len(tri.flush())
        th.join()
        dt = time.perf_counter() - t0
    print(f"follow: {seen} appended lines read and triaged in {dt:.2f}s ({seen / dt:.0f} lines/s), {events} events; "
          f"own memory {before:.0f} MB before, max {max(rss_samples):.0f} MB while following")
    if not args.keep and args.log is None:
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
