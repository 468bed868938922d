"""The log view driven by keys, on a real log file followed while it grows."""

from __future__ import annotations

from pathlib import Path

from mlx_console.ui.widgets.log_view import LogView

from .conftest import LOG_LINES, wait_for


def append(path: Path, lines: list[str]) -> None:
    with path.open("a") as fh:
        fh.write("".join(f"{x}\n" for x in lines))


async def test_follow_leaves_on_scroll_up_counts_new_lines_and_resumes_at_end(make_app, log_file: Path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES), what="initial lines")
        append(log_file, [f"line {i}" for i in range(40)])
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES) + 40, what="appended lines")
        assert log.follow and log.cursor_line == log.line_count - 1
        assert log.scroll_y == log.max_scroll_y > 0
        await pilot.press("up")
        assert not log.follow
        append(log_file, ["late 1", "late 2", "late 3"])
        await wait_for(pilot, lambda: log.new_lines == 3, what="new line count")
        status = str(app.query_one("#log-status").render())
        assert "3 new lines" in status and "paused" in status
        assert log.scroll_y < log.max_scroll_y
        await pilot.press("end")
        assert log.follow and log.new_lines == 0
        assert log.scroll_y == log.max_scroll_y
        assert "following" in str(app.query_one("#log-status").render())
        await pilot.press("g")
        assert not log.follow and log.cursor_line == 0 and log.scroll_y == 0
        await pilot.press("G")
        assert log.follow
        await pilot.press("f")
        assert not log.follow
        await pilot.press("f")
        assert log.follow


async def test_filter_hides_lines_and_n_N_walk_matches(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES))
        await pilot.press("ampersand", *"POST", "enter")
        assert log.filter_text == "POST"
        assert log.shown_lines() == [x for x in LOG_LINES if "POST" in x]
        assert "filter &POST (3 lines)" in str(app.query_one("#log-status").render())
        await pilot.press("g")
        first = log.cursor_line
        await pilot.press("n")
        assert log.cursor_line is not None and log.cursor_line > first
        await pilot.press("N")
        assert log.cursor_line == first
        await pilot.press("escape")
        assert log.filter_text == "" and len(log.shown_lines()) == len(LOG_LINES)
        # `:filter TEXT` is the same filter; `!PATTERN` hides what matches (regex)
        await pilot.press("colon", *"filter httpd", "enter")
        await wait_for(pilot, lambda: log.shown_lines() == [LOG_LINES[0]])
        await pilot.press("colon", *"filter !POST|INFO", "enter")
        await wait_for(pilot, lambda: log.shown_lines() == [x for x in LOG_LINES if "POST" not in x
                                                             and "INFO" not in x])
        assert "hiding &!POST|INFO" in str(app.query_one("#log-status").render())


async def test_search_highlights_regex_smart_case_and_bad_regex(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES))
        await pilot.press("slash", *"post|done", "enter")  # lower case: ignores case
        assert log.search_text == "post|done" and len(log.shown_lines()) == len(LOG_LINES)  # nothing hidden
        assert log.match_count() == 4
        assert "search /post|done (4 matches, n/N)" in str(app.query_one("#log-status").render())
        # the cursor is on a match; n/N walk the matches
        assert log.cursor_line == 8
        await pilot.press("N")
        assert log.cursor_line == 7
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"Post", "enter")  # an upper-case letter: case matters
        assert log.match_count() == 0
        # the match is highlighted in context (the match style on those cells only)
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"httpd", "enter")
        await pilot.press("g")
        strip = log.render_line(0)
        match = log.get_component_rich_style("logview--match")
        styled = "".join(seg.text for seg in strip if seg.style and seg.style.bgcolor == match.bgcolor)
        assert styled == "httpd"
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"(unclosed", "enter")
        await wait_for(pilot, lambda: any("bad regex '(unclosed': missing ), unterminated subpattern"
                                          in str(n.message) for n in app._notifications), what="regex error")
        assert log.search_text == "httpd"  # the last good search stays


async def test_left_right_scroll_half_a_screen_and_the_gutter_stays(make_app, tmp_path) -> None:
    long = tmp_path / "long.log"
    long.write_text("Traceback (most recent call last):\n" + "x" * 300 + " END\n")
    app = make_app(logs={"qwen": long})
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 2)
        log.focus()
        width = log.scrollable_content_region.width
        await pilot.press("right")
        assert log.scroll_x == width // 2
        await pilot.press("right", "right", "right", "right", "right")
        assert log.scroll_x == log.max_scroll_x
        row = "".join(seg.text for seg in log.render_line(1))
        assert row.rstrip().endswith("END")
        assert "".join(seg.text for seg in log.render_line(0))[:2] in ("E ", "i ", "W ", "  ")  # gutter kept
        await pilot.press("left")
        assert log.scroll_x == log.max_scroll_x - width // 2


async def test_error_and_warning_navigation_triage_card_and_copy(make_app) -> None:
    """Events come from the real triage engine (core/logs) over the followed file."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES))
        await wait_for(pilot, lambda: log.event_at(4) is not None, what="triage events")
        await pilot.press("g")
        await pilot.press("e")
        assert log.cursor_line == 4
        card = app.query_one("#triage")
        assert card.display
        text = str(card.render())
        # MLX refusing a buffer over Metal's maximum: out of memory, on the Metal path
        assert "Metal ran out of memory during inference" in text and "oom_inference, metal_error" in text
        assert "First move:" in text and "github.com" in text
        await pilot.press("y")
        assert app.clipboard == "\n".join(LOG_LINES[4:7])
        await pilot.press("E")  # no earlier error: stays
        assert log.cursor_line == 4
        await pilot.press("W")
        assert log.cursor_line == 2
        assert "WARNING" in str(app.query_one("#triage").render())
        await pilot.press("w")
        assert log.cursor_line == 2  # no later warning
        await pilot.press("down", "down", "down")
        await pilot.press("y")
        assert app.clipboard.startswith("Traceback")
        await pilot.press("g")
        assert not app.query_one("#triage").has_class("-shown")
        await pilot.press("y")
        assert app.clipboard == LOG_LINES[0]


async def test_live_append_of_a_known_bug_is_triaged(make_app, log_file: Path) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES))
        append(log_file, ["OSError: [Errno 98] Address already in use"])
        n = len(LOG_LINES)
        await wait_for(pilot, lambda: log.event_at(n) is not None, timeout=5, what="port_in_use event")
        assert "port_in_use" in log.event_at(n).categories


async def test_huge_line_is_cut_and_every_line_stays_reachable(make_app, log_file: Path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES))
        append(log_file, ["x" * 2_000_000] + [f"n{i}" for i in range(200)])
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES) + 201, timeout=10)
        shown = log.shown_lines()   # paged from the file, not kept in memory: nothing is dropped
        assert shown[: len(LOG_LINES)] == LOG_LINES and shown[-1] == "n199"
        assert "line truncated" in shown[len(LOG_LINES)] and len(shown[len(LOG_LINES)]) < 100_000


async def test_L_switches_an_omlx_backend_to_its_own_server_log_and_back(make_app, log_file: Path,
                                                                         tmp_path: Path) -> None:
    from .conftest import FixedBackends, fixed_config

    captured = tmp_path / "omlx-captured.log"
    captured.write_text("captured stdout line\n")
    server_log = tmp_path / "base" / "logs" / "server.log"
    server_log.parent.mkdir(parents=True)
    server_log.write_text("2026-11-25 10:00:00,000 - omlx.server - INFO - oMLX server.log line\n")
    config = fixed_config()
    backends = FixedBackends(config, {"qwen": log_file, "omlx": captured})
    backends.extra_logs["omlx"] = [server_log]
    app = make_app(config=config, backends=backends)
    async with app.run_test(size=(160, 48)) as pilot:
        log = app.query_one(LogView)
        await pilot.press("colon", *"logs omlx", "enter")
        await wait_for(pilot, lambda: log.shown_lines() == ["captured stdout line"], what="captured log")
        await pilot.press("L")
        await wait_for(pilot, lambda: log.shown_lines() and "oMLX server.log line" in log.shown_lines()[-1],
                       what="server.log shown")
        assert app.log_path == server_log
        assert str(server_log) in str(app.query_one("#log-title").render())
        with server_log.open("a") as fh:  # and it is followed
            fh.write("2026-11-25 10:00:01,000 - omlx.server - INFO - later\n")
        await wait_for(pilot, lambda: log.shown_lines()[-1].endswith("later"), what="server.log followed")
        await pilot.press("L")
        await wait_for(pilot, lambda: log.shown_lines() == ["captured stdout line"], what="back to captured")
        assert app.log_path == captured
        await pilot.press("colon", *"logs qwen", "enter")  # an mlx-lm backend has one log: L says so
        await wait_for(pilot, lambda: app.log_path == log_file, what="qwen log")
        await pilot.press("L")
        await wait_for(pilot, lambda: any("only one log" in n.message for n in app._notifications),
                       what="only-one-log notice")
        assert app.log_path == log_file


async def _rows_after(make_app, log_file: Path, line: str) -> list[str]:
    """The log view's rows once `line` is appended to the followed log and shown."""
    app = make_app()
    async with app.run_test(size=(100, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES), what="initial lines")
        append(log_file, [line])
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES) + 1, what="appended line")
        await pilot.pause()
        return ["".join(seg.text for seg in log.render_line(y)) for y in range(log.size.height)]


async def test_control_characters_in_the_log_are_shown_not_obeyed(make_app, log_file: Path) -> None:
    rows = await _rows_after(make_app, log_file, "evil \x1b]52;c;aGk=\x07 \x1b[2J done\r\x9bX")
    shown = next(r for r in rows if "evil" in r)
    assert "evil ^[]52;c;aGk=^G ^[[2J done^MM-^[X" in shown
    assert not any(c in "".join(rows) for c in "\x1b\x07\r\x9b")


async def test_a_coloured_line_is_shown_as_its_text(make_app, log_file: Path) -> None:
    # uvicorn and loguru colour their records on a terminal: the colours are dropped, the text is shown as is.
    rows = await _rows_after(make_app, log_file, "\x1b[31mERROR\x1b[0m:    Exception in \x1b[1;33mASGI\x1b[0m application")
    assert any("ERROR:    Exception in ASGI application" in r for r in rows), rows
    assert "^[" not in "".join(rows)


DEAD_LOG = [
    "2026-11-25 10:00:00,001 - INFO - Starting httpd at 127.0.0.1 on port 8080...",
    '127.0.0.1 - - [25/Nov/2026 10:00:01] "POST /v1/chat/completions HTTP/1.1" 200 -',
    "2026-11-25 10:00:02,000 - ERROR - request failed",
    "Traceback (most recent call last):",
    '  File "/opt/homebrew/lib/python3.12/site-packages/mlx_lm/server.py", line 853, in handle_completion',
    "    ratio = total // count",
    "ZeroDivisionError: integer division or modulo by zero (api_key=sk-abcdefghijklmnopqrstuvwx)",
]


async def test_post_mortem_event_of_a_dead_log_is_shown_reached_and_reported(
    make_app, tmp_path: Path, monkeypatch
) -> None:
    """A backend that died mid-traceback writes nothing more: its last event is still closed, triaged and shown;
    e/E reach it; the card gives an unknown error a tracker search; R drafts the upstream issue (0600, OSC 52)."""
    import os
    import stat

    state = tmp_path / "state"
    monkeypatch.setenv("MLX_CONSOLE_STATE_DIR", str(state))
    dead = tmp_path / "dead.log"
    dead.write_text("\n".join(DEAD_LOG) + "\n")
    old = dead.stat().st_mtime - 60
    os.utime(dead, (old, old))  # nobody has written it for a minute
    app = make_app(logs={"qwen": dead, "omlx": tmp_path / "omlx-missing.log"})
    async with app.run_test(size=(110, 32)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == len(DEAD_LOG))
        await wait_for(pilot, lambda: log.event_at(2) is not None, what="the post-mortem event")
        ev = log.event_at(2)
        assert (ev.start, ev.end, ev.severity) == (2, 6, "error")
        await pilot.press("g")
        await pilot.press("e")
        assert log.cursor_line == 2
        card = str(app.query_one("#triage").render())
        assert "First move:" in card and "github.com/ml-explore/mlx-lm/issues?q=" in card
        assert "ZeroDivisionError" in card
        await pilot.press("G", "E")
        assert log.cursor_line == 2
        await pilot.press("R")
        reports = state / "reports"
        await wait_for(pilot, lambda: reports.is_dir() and any(reports.iterdir()), timeout=20, what="saved report")
        saved = next(reports.iterdir())
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        text = saved.read_text()
        assert "ZeroDivisionError" in text and "### Environment" in text and "Lines 3–7 of `dead.log`" in text
        assert "sk-abcdefghijklmnop" not in text  # secrets redacted
        await wait_for(pilot, lambda: app.clipboard == text, what="report copied")


async def test_the_whole_file_is_reachable_and_runs_are_marked(make_app, tmp_path: Path, monkeypatch) -> None:
    """The end shows first (a gap row while the start is indexed), then g reaches line 1; a server start
    after the first line is marked in bold reverse (readable without colour)."""
    from mlx_console.core.logs import document

    monkeypatch.setattr(document, "TAIL_BYTES", 4096)
    monkeypatch.setattr(document, "CHUNK", 64 << 10)
    big = tmp_path / "big.log"
    warn = "/x/mlx_lm/server.py:1894: UserWarning: mlx_lm.server is not recommended for production"
    body = [f"2026-11-25 10:00:00,000 - INFO - request {i}" for i in range(50_000)]
    big.write_text("\n".join(["first line", *body, warn, "  warnings.warn(", "2026-11-25 - INFO - Starting httpd at 127.0.0.1",
                              "last line"]) + "\n")
    app = make_app(logs={"qwen": big})
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 50_005, timeout=20, what="the whole file indexed")
        assert log.follow and log.text_of(log.line_count - 1) == "last line"
        rows = ["".join(seg.text for seg in log.render_line(y)) for y in range(log.size.height)]
        marked = [r for r in rows if "server start" in r]
        assert len(marked) == 1 and "UserWarning" in marked[0] and marked[0].startswith("▶")
        y = rows.index(marked[0])
        mark = [seg for seg in log.render_line(y) if "server start" in seg.text]
        assert mark and mark[0].style.reverse and mark[0].style.bold   # told without colour (NO_COLOR too)
        log.focus()
        await pilot.press("g")
        assert log.cursor_line == 0 and log.text_of(0) == "first line"
        assert "first line" in "".join(seg.text for seg in log.render_line(0))
        assert not any("server start" in "".join(s.text for s in log.render_line(y)) for y in range(3))
        await pilot.press("G")
        assert log.follow and log.cursor_line == 50_004


async def test_search_and_filter_of_a_long_log_run_in_a_worker(make_app, tmp_path: Path, monkeypatch) -> None:
    from mlx_console.ui.widgets import log_view

    monkeypatch.setattr(log_view, "SYNC_LINES", 100)
    big = tmp_path / "big.log"
    big.write_text("".join(f"req {i}{' ERROR boom' if i % 1000 == 7 else ''}\n" for i in range(20_000)))
    app = make_app(logs={"qwen": big})
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 20_000, timeout=20, what="indexed")
        await pilot.press("slash", *"error", "enter")   # smart case: lower case ignores case
        await wait_for(pilot, lambda: log.match_count() == 20, timeout=20, what="whole-file search")
        assert "search /error (20 matches, n/N)" in str(app.query_one("#log-status").render())
        assert log.cursor_line == 19_007
        await pilot.press("g", "n")
        assert log.cursor_line == 7
        await pilot.press("n")
        assert log.cursor_line == 1007
        await pilot.press("N", "N")
        assert log.cursor_line == 7
        await pilot.press("escape", "ampersand", *"!req", "enter")
        await wait_for(pilot, lambda: log.shown_lines() == [], timeout=20, what="exclusion filter")
        await pilot.press("escape", "ampersand", *"ERROR", "enter")
        await wait_for(pilot, lambda: len(log.shown_lines()) == 20, timeout=20, what="filter")
        assert "filter &ERROR (20 lines)" in str(app.query_one("#log-status").render())
        with big.open("a") as fh:
            fh.write("late ERROR\nlate fine\n")
        await wait_for(pilot, lambda: log.shown_lines()[-1] == "late ERROR", timeout=10, what="appended match")


async def test_z_wraps_long_lines_and_the_last_line_stays_on_screen(make_app, tmp_path: Path) -> None:
    long = tmp_path / "long.log"
    long.write_text("first\n" + "".join(f"w{i} " + "y" * 300 + f" END{i}\n" for i in range(40)) + "last\n")
    app = make_app(logs={"qwen": long})
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 42)
        log.focus()

        def screen() -> list[str]:
            return ["".join(seg.text for seg in log.render_line(y)) for y in range(log.size.height)]

        await pilot.press("z")
        assert log.wrap
        await wait_for(pilot, lambda: "wrap" in str(app.query_one("#log-status").render()), what="wrap status")
        rows = screen()
        assert rows[-1].rstrip().endswith("last") or "last" in "".join(rows[-2:])
        assert any(r.rstrip().endswith("END39") for r in rows)   # the end of a long line, wrapped, not cut
        await pilot.press("right")
        assert log.scroll_x == 0                                 # nothing to scroll sideways
        await pilot.press("g")
        assert screen()[0].startswith("  first") and log.cursor_line == 0
        await pilot.press("down", "down", "down")
        assert any(r.startswith("  w2 ") for r in screen())
        await pilot.press("colon", *"wrap off", "enter")
        assert not log.wrap
        await pilot.press("colon", *"wrap sideways", "enter")
        await wait_for(pilot, lambda: any("not on or off" in str(n.message) for n in app._notifications))
        assert "log.wrap" in {a.id for a in __import__("mlx_console.ui.actions", fromlist=["ACTIONS"]).ACTIONS}


async def test_E_from_the_end_shows_the_whole_event_above_the_card(make_app, tmp_path: Path) -> None:
    """Issue 11: the card never hides what it explains. From the newest line, E selects the last error, whose
    lines (a traceback at the end of a long log) must all be on screen once the card has opened under the view."""
    log_path = tmp_path / "long.log"
    tb = ["2026-12-06 00:40:00,001 - ERROR - request failed",
          "Traceback (most recent call last):",
          '  File "/x/mlx_lm/models/cache.py", line 300, in merge',
          "    self.keys[..., :n, :] = k",
          "ValueError: [broadcast_shapes] Shapes (1,8,4,64) and (2,8,4,64) cannot be broadcast."]
    body = [f"2026-12-06 00:3{i % 10}:00,000 - INFO - Prompt processing progress: {i}/60" for i in range(60)]
    log_path.write_text("\n".join([*body, *tb, "2026-12-06 00:41:00,000 - INFO - after"]) + "\n")
    app = make_app(logs={"qwen": log_path})
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == 66)
        await wait_for(pilot, lambda: log.event_at(60) is not None, what="the traceback's event")
        log.focus()
        await pilot.press("E")
        assert log.cursor_line == 60
        card = app.query_one("#triage")
        await wait_for(pilot, lambda: card.display and card.region.height > 0, what="the card")

        def on_screen() -> str:
            return "\n".join("".join(seg.text for seg in log.render_line(y)) for y in range(log.size.height))

        await wait_for(pilot, lambda: all(line.strip()[:40] in on_screen() for line in tb), what="whole event shown")
        assert log.region.bottom <= card.region.y  # the view ends where the card begins: nothing under it
