"""Cold start to the first frame on the terminal (80×24), read from the screen, interleaved with the references.

Measured in the same run, round-robin: `python -c pass` (process start to exit), a bare Textual app (process
start to its text on screen), the console (process start to its key bar on screen), and lnav and toolong
opening a small log (process start to its last line on screen) where they are installed.
Goal (issue 9): the console's first frame at 80×24 in ≤ 0.4 s.
Run: .venv/bin/python bench/ui_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import CONSOLE, PtyScreen, Row, emit, find_tool, missing, pct, timed_run  # noqa: E402

BARE_APP = """\
from textual.app import App
from textual.widgets import Footer, Static

class Bare(App):
    BINDINGS = [("q", "quit", "Quit")]
    def compose(self):
        yield Static("bare textual ready")
        yield Footer()

Bare().run()
"""
GOAL_S = 0.4


def first_frame(argv: list[str], env: dict[str, str], text: str, quit_keys: bytes = b"q") -> float:
    screen = PtyScreen(argv, env)
    try:
        return screen.wait_for(text, timeout=30)
    finally:
        screen.close(quit_keys)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        cfg = t / "config.toml"
        cfg.write_text('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "/nonexistent"\nport = 1\n')
        env = dict(os.environ, MLX_CONSOLE_CONFIG=str(cfg), MLX_CONSOLE_STATE_DIR=str(t / "state"))
        bare = t / "bare.py"
        bare.write_text(BARE_APP)
        log = t / "small.log"
        log.write_text("".join(f"2026-11-25 10:00:{i % 60:02d},000 - INFO - line {i}\n" for i in range(200))
                       + "2026-11-25 10:01:00,000 - INFO - the last line\n")
        lnav, tl = find_tool("lnav"), find_tool("tl")
        notes = []
        if not lnav:
            notes.append(missing("lnav", "apt-get install lnav / brew install lnav"))
        if not tl:
            notes.append(missing("toolong", "make bench installs it in .venv-bench-peers"))
        samples: dict[str, list[float]] = {"python -c pass": [], "bare Textual app": [], "console": []}
        if lnav:
            samples["lnav"] = []
        if tl:
            samples["toolong"] = []
        for _ in range(args.runs):
            samples["python -c pass"].append(timed_run([sys.executable, "-c", "pass"])[0])
            samples["bare Textual app"].append(first_frame([sys.executable, str(bare)], env, "bare textual ready"))
            samples["console"].append(first_frame([str(CONSOLE)], env, "Help"))
            if lnav:
                samples["lnav"].append(first_frame([lnav, str(log)], env, "the last line", b"q"))
            if tl:
                samples["toolong"].append(first_frame([tl, str(log)], env, "the last line", b"\x1b\x1bq"))
    med = {k: statistics.median(v) for k, v in samples.items()}
    peers = {k: f"{v:.3f} s" for k, v in med.items() if k != "console"}
    c = med["console"]
    emit(Row("ui_startup", "console first frame at 80×24 (median)", c, "s", f"≤ {GOAL_S} s", c <= GOAL_S, peers,
             f"p95 {pct(samples['console'], 0.95):.3f} s over {args.runs} runs; "
             f"{c / med['bare Textual app']:.2f}× a bare Textual app"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
