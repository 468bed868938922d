"""Cold start of the console to its first frame, side by side with bare `import textual.app`.

Goal (issue 6): ≤ 1.0 s on this machine. The first frame is the moment the key bar ("? Help") is drawn.
Run: .venv/bin/python bench/ui_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ui_common import PtyConsole  # noqa: E402


def import_textual() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import textual.app"], check=True)
    return time.perf_counter() - t0


def first_frame(env: dict[str, str]) -> float:
    c = PtyConsole(env)
    try:
        return c.read_until(b"Help")
    finally:
        c.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "/nonexistent"\nport = 1\n')
        env = dict(os.environ, MLX_CONSOLE_CONFIG=str(cfg), MLX_CONSOLE_STATE_DIR=tmp)
        frames, imports = [], []
        for _ in range(args.runs):
            imports.append(import_textual())
            frames.append(first_frame(env))
    f, i = statistics.median(frames), statistics.median(imports)
    print(f"python -c 'import textual.app': median {i:.3f} s over {args.runs} runs")
    print(f"mlx-console first frame:        median {f:.3f} s (min {min(frames):.3f}, max {max(frames):.3f})")
    print(f"ratio first frame / bare textual import: {f / i:.2f}x; goal ≤ 1.0 s: {'met' if f <= 1.0 else 'NOT met'}")
    mods = subprocess.run([sys.executable, "-c", "import mlx_console.ui.app, sys; "
                           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'mlx_lm')))"],
                          capture_output=True, text=True).stdout.strip()
    print(f"mlx modules imported by the UI: {mods}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
