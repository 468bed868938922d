"""A 1 GB log in the console, as a user sees it: process start to the last line on screen, `g` to line 1 and
`G` back (key to text on screen), and the console's RSS while it shows the log.

Interleaved in the same run: lnav and toolong opening the same file (process start to the last line on screen),
where installed, and the console itself on a ten-line log (what the size of the log costs: the rest is
start-up). Then `/` searches the whole file for its first line (key to the match count on screen).
Goals (issue 11): last line ≤ 0.5 s, g to line 1 and back ≤ 0.2 s each, RSS ≤ 150 MiB.
The file is built once in --dir (default: a temp dir) and kept with --keep.
Run: .venv/bin/python bench/ui_big_log.py [--size-mb 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from harness import CONSOLE, PtyScreen, Row, emit, find_tool, missing  # noqa: E402

FIRST = "2026-11-25 00:00:00,000 - INFO - the first line of the big log"
LAST = "2026-11-25 23:59:59,999 - INFO - the last line of the big log"


def build(path: Path, size_mb: int) -> None:
    if path.exists() and path.stat().st_size >= size_mb * 2**20:
        return
    block = "".join(
        f"2026-11-25 13:{(i // 60) % 60:02d}:{i % 60:02d},803 - INFO - 127.0.0.1 - - \"POST /v1/chat/completions "
        f"HTTP/1.1\" 200 - prompt processing progress: {i % 4096}/4096\n" for i in range(40_000)).encode()
    with path.open("wb") as fh:
        fh.write((FIRST + "\n").encode())
        written = 0
        while written < size_mb * 2**20:
            fh.write(block)
            written += len(block)
        fh.write((LAST + "\n").encode())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-big-log-", dir=args.dir))
    try:
        big = tmp / "big.log"
        build(big, args.size_mb)
        cfg = tmp / "config.toml"
        cfg.write_text('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "/nonexistent"\nport = 1\n')
        (tmp / "state" / "backends" / "a").mkdir(parents=True, exist_ok=True)
        shown = tmp / "state" / "backends" / "a" / "server.log"
        if not shown.exists():
            os.link(big, shown)
        env = dict(os.environ, MLX_CONSOLE_CONFIG=str(cfg), MLX_CONSOLE_STATE_DIR=str(tmp / "state"))
        lnav, tl = find_tool("lnav"), find_tool("tl")
        if not lnav:
            missing("lnav", "apt-get install lnav / brew install lnav")
        if not tl:
            missing("toolong", "make bench installs it in .venv-bench-peers")
        small_dir = tmp / "small"
        (small_dir / "state" / "backends" / "a").mkdir(parents=True, exist_ok=True)
        (small_dir / "state" / "backends" / "a" / "server.log").write_text("a line\n" * 9 + LAST + "\n")
        small_env = dict(env, MLX_CONSOLE_STATE_DIR=str(small_dir / "state"))
        small_s: list[float] = []
        search_s: list[float] = []
        open_s: list[float] = []
        top_s: list[float | None] = []
        back_s: list[float] = []
        rss: list[float] = []
        peers: dict[str, list[float]] = {}
        for _ in range(args.runs):
            s = PtyScreen([str(CONSOLE)], env, 100, 30)
            try:
                open_s.append(s.wait_for("the last line of the big log", 60))
                s.drain(0.3)
                rss.append(psutil.Process(s.proc.pid).memory_info().rss / 2**20)
                t0 = s.send("g")
                try:
                    top_s.append(s.wait_for(lambda text: "the first line of the big log" in text
                                            and "the last line of the big log" not in text, 5, since=t0))
                except TimeoutError:
                    top_s.append(None)
                    continue  # G from where g left it would time nothing
                t0 = s.send("G")
                back_s.append(s.wait_for("the last line of the big log", 10, since=t0))
                query = "first line of the big"
                s.send("/")
                s.wait_for(lambda text: any(x.startswith("/") for x in text.splitlines()[-3:]), 10)  # prompt open
                for i, ch in enumerate(query):  # typed as a person does: each key lands in the prompt
                    s.send(ch)
                    s.wait_for(lambda text, q=query[: i + 1]: any(q in x for x in text.splitlines()[-3:]), 5)
                t0 = s.send("\r")
                search_s.append(s.wait_for("(1 matches", 120, since=t0))
            finally:
                s.close()
            r = PtyScreen([str(CONSOLE)], small_env, 100, 30)
            try:
                small_s.append(r.wait_for("the last line of the big log", 60))
            finally:
                r.close()
            for name, argv, quit_keys in (("lnav", [lnav, str(big)] if lnav else None, b"q"),
                                          ("toolong", [tl, str(big)] if tl else None, b"\x1b\x1bq")):
                if argv is None:
                    continue
                p = PtyScreen(argv, env, 100, 30)
                try:
                    peers.setdefault(name, []).append(p.wait_for("the last line of the big log", 120))
                finally:
                    p.close(quit_keys)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    size = f"{args.size_mb} MB"
    peer_open = {k: f"{statistics.median(v):.2f} s" for k, v in peers.items()}
    o = statistics.median(open_s)
    small = statistics.median(small_s)
    peer_open["console on a 10-line log"] = f"{small:.2f} s"
    emit(Row("ui_big_log", f"{size} log: start → last line on screen (median)", o, "s", "≤ 0.5 s", o <= 0.5,
             peer_open, f"{args.runs} runs; the log's own cost: {o - small:+.2f} s"))
    reached = [x for x in top_s if x is not None]
    if reached and len(reached) == len(top_s):
        g = statistics.median(reached)
        emit(Row("ui_big_log", f"{size} log: g → line 1 on screen (median)", g * 1000, "ms", "≤ 200 ms", g <= 0.2))
    else:
        emit(Row("ui_big_log", f"{size} log: g → line 1 on screen", None, "ms", "≤ 200 ms", False,
                 note=f"line 1 not reached in {len(top_s) - len(reached)} of {len(top_s)} runs"))
    if back_s:
        b = statistics.median(back_s)
        emit(Row("ui_big_log", f"{size} log: G → last line on screen (median)", b * 1000, "ms", "≤ 200 ms",
                 b <= 0.2))
    if search_s:
        f = statistics.median(search_s)
        emit(Row("ui_big_log", f"{size} log: / search of the whole file → match count on screen (median)", f,
                 "s", note=f"{args.size_mb / f:.0f} MB/s; the view stays usable meanwhile"))
    r = max(rss)
    emit(Row("ui_big_log", f"{size} log: console RSS while shown (max)", r, "MiB", "≤ 150 MiB", r <= 150))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
