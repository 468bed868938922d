"""A log line must not drive the operator's terminal: every text output shows control characters like
`cat -v`, and JSON output escapes those a terminal may obey (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlx_console.core.common.text import json_safe, visible

HOSTILE = ("ERROR clipboard \x1b]52;c;cm0gLXJmIH4=\x07 clear \x1b[2J title \x1b]0;pwned\x07 "
           "csi8 \x9b2J back\rover bidi \u202eevil\u202c")
# What a terminal obeys: ESC, BEL, CR, C1, the bidi overrides and line separators.
OBEYED = ["\x1b", "\x07", "\r", "\x9b", "\u202e", "\u202c", "\u2028"]


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "mlx_console", *args], input=stdin, capture_output=True,
                       timeout=60, env=os.environ.copy())
    return subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode("utf-8", "replace"),
                                       p.stderr.decode("utf-8", "replace"))


def _clean(text: str) -> bool:
    return not any(c in text for c in OBEYED)


def test_visible_is_cat_v() -> None:
    assert visible("a\x1b[2Jb\x07\r\x7f\x9b\tc\nd") == "a^[[2Jb^G^M^?M-^[\tc\nd"
    assert visible("x\ny", newlines=False) == "x^Jy"
    assert visible("plain ünïcode ✓") == "plain ünïcode ✓"


@given(st.text())
def test_visible_never_leaves_a_control_character(s: str) -> None:
    out = visible(s, newlines=False)
    assert all(c == "\t" or (ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F) for c in out)
    assert _clean(out)


@given(st.text())
def test_json_safe_is_the_same_json_value(s: str) -> None:
    text = json_safe(json.dumps({"k": s}, ensure_ascii=False))
    assert json.loads(text) == {"k": s} and _clean(text)


@pytest.mark.slow
def test_triage_text_and_json_do_not_pass_control_characters(tmp_path: Path) -> None:
    log = tmp_path / "hostile\x1b[31m.log"
    log.write_text("INFO start\n" + HOSTILE + "\nTraceback (most recent call last):\n"
                   '  File "x.py", line 1, in <module>\nRuntimeError: boom \x1b]52;c;aGk=\x07\n')
    text = _run("triage", str(log), "--all")
    assert text.returncode == 0, text.stderr
    assert _clean(text.stdout) and _clean(text.stderr) and "^[]52;c;" in text.stdout
    js = _run("triage", str(log), "--all", "--json")
    assert _clean(js.stdout)
    events = [json.loads(ln) for ln in js.stdout.splitlines()]
    assert any("\x1b]52;c;aGk=\x07" in e["summary"] for e in events)  # the value is intact in JSON
    piped = _run("triage", "-", "--all", stdin=log.read_bytes())
    assert _clean(piped.stdout) and "^[" in piped.stdout
    missing = _run("triage", str(tmp_path / "no\x1b]52;c;x\x07such"))
    assert missing.returncode == 2 and _clean(missing.stderr) and "^[]52;" in missing.stderr


def test_backends_log_shows_control_characters(tmp_path: Path, isolated_state: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from mlx_console.cli import main

    Path(os.environ["MLX_CONSOLE_CONFIG"]).write_text('[[backend]]\nname = "b"\nkind = "mlx-lm"\nmodel = "/nowhere"\n')
    d = isolated_state / "backends" / "b"
    d.mkdir(parents=True)
    (d / "server.log").write_text("ok\n" + HOSTILE + "\n")
    assert main(["backends", "log", "b"]) == 0
    out, err = capsys.readouterr()
    assert _clean(out) and "clipboard ^[]52;c;cm0gLXJmIH4=^G" in out and "back^Mover" in out


def test_stream_lines_are_bounded() -> None:
    from mlx_console.core.logs.source import stream_lines

    chunks = [b"a" * 50_000, b"b" * 50_000, b"c" * 50_000 + b"\nshort\r\n", b"x" * 10, b""]
    lines = list(stream_lines(lambda n: chunks.pop(0), max_bytes=1000))
    assert len(lines) == 3 and lines[1:] == ["short", "x" * 10]
    assert lines[0].startswith("a" * 500 + " [… line truncated: 149000 of 150000 bytes cut …] ")
    assert lines[0].endswith("c" * 500) and len(lines[0]) < 1100


@pytest.mark.slow
def test_triage_stdin_follow_caps_a_line_with_no_newline() -> None:
    """`triage - --follow` fed 64 MiB without a newline stays small (it used to keep the whole line)."""
    import psutil

    p = subprocess.Popen([sys.executable, "-m", "mlx_console", "triage", "-", "--follow", "--all"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdin is not None
    block = b"y" * (1 << 20)
    for _ in range(64):
        p.stdin.write(block)
    p.stdin.flush()
    rss = psutil.Process(p.pid).memory_info().rss
    p.stdin.write(b" ERROR the end\nTraceback (most recent call last):\nValueError: v\n")
    p.stdin.close()
    assert p.stdout is not None and p.stderr is not None
    out, err = p.stdout.read(), p.stderr.read()
    assert p.wait(timeout=60) == 0, err
    assert rss < 48 * 1024 * 1024, rss  # the interpreter and catalogue; not the 64 MiB line
    assert b"ValueError: v" in out
