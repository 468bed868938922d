"""A CLI whose reader goes away early (`| head -1`) stops quietly with exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "logs"


def test_triage_json_into_head_is_quiet(tmp_path: Path) -> None:
    corpus = FIXTURES / "upstream_bugs.jsonl"
    text = "\n".join(__import__("json").loads(line)["excerpt"] for line in corpus.read_text().splitlines())
    log = tmp_path / "many.log"
    log.write_text((text + "\n") * 200)
    cli = subprocess.Popen([sys.executable, "-m", "mlx_console", "triage", "--json", str(log)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert cli.stdout is not None and cli.stderr is not None
    first = cli.stdout.readline()
    cli.stdout.close()  # what `head -1` does
    err = cli.stderr.read().decode()
    assert cli.wait(30) == 0, err
    assert first.startswith(b"{")
    assert err == ""
