"""`bench bisect` on a real mlx-lm profile: the supervisor restarts it with each flag set, then baseline."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mlx_console.cli import main
from mlx_console.core import config as config_mod
from mlx_console.core.lifecycle.control import Supervisor

pytestmark = pytest.mark.slow


@pytest.fixture
def profile(tiny_model: Path, port: int) -> Iterator[Path]:
    cfg = Path(os.environ["MLX_CONSOLE_CONFIG"])
    cfg.write_text(f'[[backend]]\nname = "t"\nkind = "mlx-lm"\nmodel = "{tiny_model}"\nport = {port}\n'
                   f'args = ["--prompt-cache-size", "10"]\nenv = {{ HF_HUB_OFFLINE = "1" }}\n')
    yield cfg
    Supervisor(config_mod.load(cfg)).stop("t")


def test_bisect_restarts_with_each_flag_and_restores_the_baseline(
        profile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "base.args").write_text("--prompt-cache-size 10\n")
    (tmp_path / "cand.args").write_text("--prompt-cache-size 10 --prefill-step-size 64  # smaller steps\n")
    rc = main(["bench", "bisect", "--backend", "t", "--baseline", str(tmp_path / "base.args"),
               "--candidate", str(tmp_path / "cand.args"), "--cells", "throughput.short", "--runs", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads(out)
    assert res["changes"] == ['--prefill-step-size: (unset) → "64"'] and res["restored"]
    assert set(res["runs"]) >= {"baseline", "candidate"}
    assert "bisect: restoring the baseline" in err
    # The server now running is the baseline's: restarted by the supervisor with the baseline args.
    st = Supervisor(config_mod.load(profile)).status("t")
    assert st.status == "ready" and st.pid
    cmd = psutil.Process(st.pid).cmdline()
    assert "--prompt-cache-size" in cmd and "--prefill-step-size" not in cmd
