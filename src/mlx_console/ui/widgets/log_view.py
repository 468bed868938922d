"""The live log view: follow mode, filter, match and severity navigation, selection of events.

Line-API widget (only visible rows are rendered). It holds a bounded tail of the log; what each line
means (its event, severity, triage) is given to it by the caller: it decides nothing about the domain.
"""

from __future__ import annotations

import bisect
import os
import re
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from math import ceil
from typing import Any

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip

from mlx_console.core.api import RUN_START, LogDocument, is_run_start, without_formatting
from mlx_console.core.api import visible_text as visible
from mlx_console.ui.actions import bindings
from mlx_console.ui.textual_private import RowStylesCache

MAX_LINES = 50_000       # lines kept in memory; older ones are dropped (the file keeps them)
MAX_RENDER = 2_000       # characters of one line shown: a 10 MB line must not stall a frame
SEVERITIES = ("error", "warning", "info")
GUTTER = {"error": "E", "warning": "W", "info": "i"}
GAP_TEXT = "⋯ the start of the file is being indexed ({pct:.0f} %): g reaches line 1 ⋯"
RUN_MARK = "━━ server start ━━"
SYNC_LINES = 100_000     # a log this short is searched and filtered at once; a longer one by a worker


def thumb(bar: ScrollBar) -> tuple[int, int, int] | None:
    """What a scrollbar draws (its size and thumb ends in eighths of a cell), as ScrollBarRender computes it:
    a scrollbar is repainted only when this changes, not on every appended line."""
    size = bar.size.height if bar.vertical else bar.size.width
    virtual = ceil(bar.window_virtual_size)
    window = ceil(bar.window_size if bar.window_size < bar.window_virtual_size else 0)
    if not (window and size and virtual and size != virtual):
        return None
    thumb_size = max(1, window / (virtual / size))
    start = int((size - thumb_size) * (bar.position / (virtual - window)) * 8)
    return size, start, start + ceil(thumb_size * 8)


def set_bar(bar: ScrollBar, **values: float) -> None:
    """Set a scrollbar's window/position without the repaint each reactive set causes (the log view repaints
    it afterwards only if what it draws changed: two scrollbar repaints cost more than the new log rows)."""
    for name, value in values.items():
        if name == "position":
            value = bar.validate_position(value)
        bar.set_reactive(getattr(ScrollBar, name), value)


class PatternError(ValueError):
    """A search or filter pattern that is not a valid regular expression (the message says where)."""


def compile_pattern(text: str) -> re.Pattern[str]:
    """A regex with smart case (case-insensitive unless the pattern has an upper-case letter)."""
    try:
        return re.compile(text, 0 if any(c.isupper() for c in text) else re.IGNORECASE)
    except re.error as e:
        raise PatternError(f"bad regex {text!r}: {e.msg} at position {e.pos}") from None


def line_filter(text: str) -> Callable[[str], bool]:
    """The filter `text` stands for: lines matching the regex, or with `!PATTERN` lines not matching it."""
    exclude = text.startswith("!")
    rx = compile_pattern(text[1:] if exclude else text)
    if exclude:
        return lambda line: rx.search(line) is None
    return lambda line: rx.search(line) is not None


@dataclass
class LogEvent:
    """A group of lines (e.g. a traceback) with what triage says about it."""

    start: int                     # absolute line number (0-based since the log was opened)
    end: int                       # inclusive
    severity: str                  # error | warning | info
    title: str = ""
    cause: str = ""
    first_move: str = ""
    references: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    pattern: str = ""


class LogView(ScrollView, can_focus=True):
    """A scrolling log with a cursor line. Absolute line numbers survive trimming of the buffer."""

    BINDINGS = bindings("log")
    COMPONENT_CLASSES = {"logview--cursor", "logview--match", "logview--error", "logview--warning",
                         "logview--info", "logview--gutter"}

    follow: reactive[bool] = reactive(True)
    wrap: reactive[bool] = reactive(False)    # long lines wrapped (no sideways scroll) or cut
    filter_text: reactive[str] = reactive("")   # regex; `!regex` hides matching lines
    search_text: reactive[str] = reactive("")   # regex; matches highlighted, n/N jump

    class Status(Message):
        """Follow state, unseen line count, filter and match counts changed (for the pane's status line)."""

        def __init__(self, follow: bool, new_lines: int, shown: int, total: int, filter_text: str) -> None:
            super().__init__()
            self.follow, self.new_lines, self.shown, self.total = follow, new_lines, shown, total
            self.filter_text = filter_text

    class ReportRequested(Message):
        """`R`: draft an upstream issue for these lines (the selected event), numbered from `first_line`."""

        def __init__(self, lines: list[str], first_line: int) -> None:
            super().__init__()
            self.lines = lines
            self.first_line = first_line

    class EventSelected(Message):
        """The cursor moved onto (or off) an event; None when the line belongs to none."""

        def __init__(self, event: LogEvent | None) -> None:
            super().__init__()
            self.event = event

    def __init__(self, *, max_lines: int = MAX_LINES, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._styles_cache = RowStylesCache()
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._first = 0                  # absolute number of _lines[0]
        self._events: list[LogEvent] = []  # sorted by start
        self._severity: dict[int, str] = {}  # absolute line → severity
        self._visible: list[int] | None = None  # absolute line numbers shown when filtering
        self._cursor = -1                # row in the shown list; -1 = last row
        self._new_lines = 0
        self._width = 0
        self._last_event: LogEvent | None = None
        # Rendered rows by (line, width, scroll_x, cursor): following a log shifts rows, it does not change
        # them, so most rows of a new frame are cache hits (rendering a Text is ~0.5 ms a line).
        self._strips: dict[tuple[int, int, int, bool], Strip] = {}
        self._last_status: tuple[bool, int, int, int, str] | None = None
        self._drawn_bars: dict[bool, tuple[int, int, int] | None] = {}  # vertical? → thumb last painted
        self._bars_check_pending = False
        self._keep: Callable[[str], bool] | None = None   # the filter's line test
        self._search: re.Pattern[str] | None = None
        # The whole file, paged from disk (open_document): the head indexed so far, a gap row while the
        # head is being indexed, then the tail (the end of the file and what was appended since).
        self._row_styles: dict[tuple[str, bool], Style] = {}
        self._wrap_key: tuple[Any, ...] | None = None
        self._wrap_cache: list[tuple[int, int]] = []
        self._recent: dict[int, str] = {}    # appended lines by number: the rows a follower draws next
        self._doc: LogDocument | None = None
        self._scan_gen = {"filter": 0, "search": 0}
        self.scan_note = ""                              # e.g. "searching 43 %" (the pane's status line)
        self._search_hits: array[int] | None = None     # whole-file search result (long documents)
        self._head_n = 0
        self._gap = False
        self._tail_n = 0

    # ---- data in ----------------------------------------------------------------------------------------

    @property
    def line_count(self) -> int:
        if self._doc is not None:
            return self._head_n + self._gap + self._tail_n
        return self._first + len(self._lines)

    @property
    def tail_base(self) -> int:
        """The view line number of the document's tail line 0 (events of the tail are numbered from it)."""
        return self._head_n + self._gap

    @property
    def document(self) -> LogDocument | None:
        return self._doc

    def open_document(self, doc: LogDocument) -> None:
        """Show a whole file: its end at once, the rest as the head is indexed (grow_head)."""
        self.clear()
        self._doc = doc
        self._head_n = doc.head_count
        self._gap = not doc.head_done
        self._tail_n = doc.tail_count
        self._width = max(self._width, min(MAX_RENDER, max((len(doc.tail_line(p)) for p in
                                                           range(max(0, self._tail_n - 200), self._tail_n)),
                                                          default=0)))
        if self._keep is not None:
            test = self._keep
            self._visible = [n for n in range(self.line_count) if test(self.text_of(n))]
        self._update_size()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self.refresh_rows()
        self._post_status()

    def grow_head(self, head_lines: int, done: bool) -> None:
        """The document's head is indexed up to `head_lines` lines (done: all of it, the gap row goes):
        rows are inserted above the tail; what is on screen stays where it is."""
        doc = self._doc
        if doc is None:
            return
        at = self._head_n
        shift = (head_lines - self._head_n) - (1 if done and self._gap else 0)
        new = range(self._head_n, head_lines)
        self._head_n = head_lines
        if done:
            self._gap = False
        if shift == 0 and not new:
            return
        keep = self._keep
        self._shift_from(at, shift, [n for n in new if keep is None or keep(doc.head_line(n))],
                         drop_gap=done and shift < len(new))
        self._post_status()

    def _shift_from(self, at: int, shift: int, inserted: list[int], drop_gap: bool) -> None:
        """Line numbers ≥ at move by `shift` (head rows inserted at `at`; drop_gap: the gap row at `at` goes);
        `inserted`: the new lines that are shown (the filter's)."""
        rows = self._shown_count()
        top_row = round(self.scroll_y)
        top_line = self._line_at(top_row) if top_row < rows else None
        cursor_line = None if self._cursor < 0 else self.cursor_line
        self._events = [replace(e, start=e.start + shift if e.start >= at else e.start,
                                end=e.end + shift if e.end >= at else e.end) for e in self._events]
        self._severity = {(n + shift if n >= at else n): sev for n, sev in self._severity.items()}
        if self._visible is not None:
            i = bisect.bisect_left(self._visible, at)
            moved = [n + shift for n in self._visible[i:] if not (drop_gap and n == at)]
            self._visible[i:] = array("q", inserted + moved) if isinstance(self._visible, array) else inserted + moved
        self._strips.clear()
        self._recent.clear()
        added = self._shown_count() - rows
        if cursor_line is not None and cursor_line >= at:
            self._cursor = max(0, min(self._cursor + added, self._shown_count() - 1))
        self._update_size()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        elif top_line is not None and top_line >= at:
            self.scroll_to(y=max(0, top_row + added), animate=False, immediate=True, force=True)
        self.refresh_rows()

    @property
    def new_lines(self) -> int:
        return self._new_lines

    def clear(self) -> None:
        self._lines.clear()
        self._first = 0
        if self._doc is not None:
            self._doc.close()
        self._doc = None
        self._recent.clear()
        self._search_hits = None
        self.scan_note = ""
        for kind in self._scan_gen:
            self._scan_gen[kind] += 1
        self._head_n = self._tail_n = 0
        self._gap = False
        self._events.clear()
        self._severity.clear()
        self._visible = [] if self.filter_text else None
        self._cursor = -1
        self._new_lines = 0
        self._width = 0
        self._strips.clear()
        self._update_size()
        self._post_status()

    def append(self, lines: list[str]) -> None:
        if not lines:
            return
        start = self.line_count
        if self._doc is not None:
            if len(self._recent) > 2000:
                self._recent.clear()
            self._recent.update(enumerate(lines, start))
            self._tail_n += len(lines)   # already in the document: the texts are only looked at
        else:
            self._lines.extend(lines)
        self._width = max(self._width, min(MAX_RENDER, max(len(x) for x in lines)))
        keep = self._keep
        if self._visible is not None and keep is not None:
            self._visible.extend(start + i for i, x in enumerate(lines) if keep(x))
        if self._search_hits is not None and self._search is not None:
            rx = self._search
            self._search_hits.extend(start + i for i, x in enumerate(lines) if rx.search(x))
        if len(self._lines) > self.max_lines:
            self._trim(len(self._lines) - self.max_lines)
        if not self.follow:
            self._new_lines += len(lines) if keep is None else sum(1 for x in lines if keep(x))
        self._update_size()
        if self.follow:
            self._cursor = -1
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self.refresh_rows()
        self._post_status()

    def add_events(self, events: list[LogEvent]) -> None:
        """Mark lines as belonging to events (severity colours, e/w navigation, triage card)."""
        for ev in events:
            if ev.end < self._first:
                continue
            bisect.insort(self._events, ev, key=lambda e: e.start)
            for n in range(max(ev.start, self._first), ev.end + 1):
                self._severity[n] = ev.severity
                for k in [k for k in self._strips if k[0] == n]:
                    del self._strips[k]
        self.refresh_rows()
        self._announce_event()

    def _trim(self, drop: int) -> None:
        del self._lines[:drop]
        self._first += drop
        self._events = [e for e in self._events if e.end >= self._first]
        self._severity = {n: s for n, s in self._severity.items() if n >= self._first}
        if self._visible is not None:
            self._visible = self._visible[bisect.bisect_left(self._visible, self._first):]

    # ---- what is shown -----------------------------------------------------------------------------------

    def _shown_count(self) -> int:
        return self.line_count - self._first if self._visible is None else len(self._visible)

    def _line_at(self, row: int) -> int:
        """Absolute line number of a shown row."""
        return self._first + row if self._visible is None else self._visible[row]

    def _row_of(self, line: int) -> int:
        if self._visible is None:
            return line - self._first
        return bisect.bisect_left(self._visible, line)

    @property
    def cursor_row(self) -> int:
        n = self._shown_count()
        if n == 0:
            return -1
        return n - 1 if self._cursor < 0 or self._cursor >= n else self._cursor

    @property
    def cursor_line(self) -> int | None:
        row = self.cursor_row
        return None if row < 0 else self._line_at(row)

    def text_of(self, line: int) -> str:
        doc = self._doc
        if doc is None:
            return self._lines[line - self._first]
        recent = self._recent.get(line)
        if recent is not None:
            return recent
        if line < self._head_n:
            return doc.head_line(line)
        if self._gap and line == self._head_n:
            return GAP_TEXT.format(pct=doc.progress * 100)
        return doc.tail_line(line - self._head_n - self._gap)

    def shown_lines(self) -> list[str]:
        """The lines currently shown (after the filter), for tests and copy."""
        return [self.text_of(self._line_at(r)) for r in range(self._shown_count())]

    def event_at(self, line: int | None) -> LogEvent | None:
        if line is None or not self._events:
            return None
        i = bisect.bisect_right(self._events, line, key=lambda e: e.start) - 1
        while i >= 0:
            ev = self._events[i]
            if ev.start <= line <= ev.end:
                return ev
            if ev.end < line and i < len(self._events) - 1:
                break
            i -= 1
        return None

    def _update_size(self) -> None:
        old = self.virtual_size
        new = old.__class__(1 if self.wrap else self._width + 2, self._shown_count())
        if new == old:
            return
        box = self.container_size
        same_bars = (old.height > box.height) == (new.height > box.height) and \
            (old.width > box.width) == (new.width > box.width) and box.height > 0
        if same_bars and self.is_mounted:
            # Scrollbars stay as they are: skip the screen-wide layout pass a virtual_size change triggers
            # (it re-rendered every widget on each appended line: ~9 ms a line on this machine).
            self.set_reactive(LogView.virtual_size, new)
            self._quiet_scroll_update(new, horizontal=new.width != old.width)
            self.refresh_rows()
        else:
            self._drawn_bars.clear()  # Textual repaints the scrollbars itself on this path
            self.virtual_size = new
            # Scrollbars may appear in the layout pass, which changes the end: stick to it afterwards.
            self.call_after_refresh(self._stick_to_end)

    def _bars_changed(self) -> None:
        """Repaint a scrollbar when its thumb moved, once per turn of the loop (an append changes its size and
        then its position: the state in between must not cost a repaint)."""
        if not self._bars_check_pending:
            self._bars_check_pending = True
            self.call_later(self._repaint_moved_bars)

    def _repaint_moved_bars(self) -> None:
        self._bars_check_pending = False
        for vertical, shown in ((True, self.show_vertical_scrollbar), (False, self.show_horizontal_scrollbar)):
            if not shown:
                continue
            bar = self.vertical_scrollbar if vertical else self.horizontal_scrollbar
            now = thumb(bar)
            if self._drawn_bars.get(vertical, -1) != now:
                self._drawn_bars[vertical] = now
                bar.refresh()

    def _quiet_scroll_update(self, size: Any, horizontal: bool) -> None:
        """ScrollView._scroll_update without repainting scrollbars whose drawing does not change."""
        width, height = self.container_size
        if self.show_vertical_scrollbar and self.styles.scrollbar_size_vertical:
            set_bar(self.vertical_scrollbar, window_virtual_size=size.height,
                    window_size=height - self.scrollbar_size_horizontal)
        if horizontal and self.show_horizontal_scrollbar and self.styles.scrollbar_size_horizontal:
            set_bar(self.horizontal_scrollbar, window_virtual_size=size.width,
                    window_size=width - self.scrollbar_size_vertical)
        self.scroll_x = self.validate_scroll_x(self.scroll_x)
        self.scroll_y = self.validate_scroll_y(self.scroll_y)
        self._bars_changed()

    def _stick_to_end(self) -> None:
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    def refresh_rows(self) -> None:
        """Repaint the rows, not the scrollbars (refresh() repaints the whole widget, scrollbars included)."""
        size = self.scrollable_content_region.size
        if size.width and size.height:
            self.refresh(Region(0, 0, size.width, size.height))
        else:
            self.refresh()

    def invalidate(self) -> None:
        """Forget rendered rows (theme, filter, severity or buffer changes) and repaint."""
        self._strips.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._row_styles.clear()
        self._strips.clear()
        self._drawn_bars.clear()

    def on_resize(self) -> None:
        self._drawn_bars.clear()
        if not self.follow and self.cursor_row >= 0:
            self._reveal_event()  # the card opening under the view shrinks it: keep the selection in sight

    def _reveal_event(self) -> None:
        """Scroll so the cursor's event is on screen whole when it fits (its first line when it does not), the
        cursor line always. Unwrapped view only (a wrapped view keeps the cursor row in sight by itself)."""
        if self.wrap:
            return
        row = self.cursor_row
        height = self.scrollable_content_region.height or 1
        top = round(self.scroll_y)
        ev = self.event_at(self.cursor_line)
        last = row
        if ev is not None:
            last = self._row_of(min(ev.end, self.line_count - 1))
            if self._visible is not None and (last >= len(self._visible) or self._visible[last] > ev.end):
                last -= 1  # a filter hides the event's last line: its last shown line
            last = max(row, last)
        if row < top:
            top = row
        elif last >= top + height:
            top = min(row, last - height + 1)
        if top != round(self.scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True, force=True)
            self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if self.wrap:
            rows = self._wrap_rows()
            if y >= len(rows) or width <= 0:
                return Strip.blank(width, self.rich_style)
            row, seg = rows[y]
        else:
            row, seg = round(self.scroll_y) + y, -1
            if row >= self._shown_count() or width <= 0:
                return Strip.blank(width, self.rich_style)
        line_no = self._line_at(row)
        cursor = row == self.cursor_row
        x = round(self.scroll_x) if seg < 0 else -1 - seg   # wrapped rows: the segment instead of the offset
        key = (line_no, width, x, cursor)
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        if len(self._strips) > 4096:
            self._strips.clear()
        if cursor:  # the cursor row is the plain row with the cursor style on top: one text render per line
            plain_key = (line_no, width, x, False)
            plain = self._strips.get(plain_key)
            if plain is None:
                plain = self._strips[plain_key] = self._render_row(line_no, width, seg)
            strip = plain.apply_style(self.cursor_style())
        else:
            strip = self._render_row(line_no, width, seg)
        self._strips[key] = strip
        return strip

    # ---- wrap ---------------------------------------------------------------------------------------------

    def _segments(self, row: int, width: int) -> int:
        """Screen rows a shown row takes when wrapped at `width` (gutter excluded)."""
        text = self.text_of(self._line_at(row))
        n = cell_len(visible(without_formatting(text[:MAX_RENDER]), newlines=False).expandtabs(4))
        return max(1, -(-n // max(1, width)))

    def _wrap_rows(self) -> list[tuple[int, int]]:
        """The (shown row, segment) on each screen row when wrapping: laid out down from the top row, or up
        from the last (or the cursor's) row at the end of the log, so the newest line is on screen."""
        region = self.scrollable_content_region
        height, w = region.height, region.width - 2
        n, top, cur = self._shown_count(), round(self.scroll_y), self.cursor_row
        key = (top, cur, n, w, height, self.follow, self._head_n, self._gap)
        if key == self._wrap_key:
            return self._wrap_cache
        rows: list[tuple[int, int]] = []
        if n and (self.follow or top >= self.max_scroll_y):
            bottom = n - 1 if self.follow else max(cur, min(n - 1, top + height - 1))
            r = bottom
            while len(rows) < height and r >= 0:
                rows[:0] = [(r, k) for k in range(self._segments(r, w))]
                r -= 1
            rows = rows[-height:] if len(rows) > height else rows
        else:
            r = top
            while len(rows) < height and r < n:
                rows += [(r, k) for k in range(self._segments(r, w))]
                r += 1
            rows = rows[:height]
        self._wrap_key, self._wrap_cache = key, rows
        return rows

    def _wrap_top_for(self, row: int) -> int:
        """The top row that puts `row` (all of it, when it fits) on the last screen rows."""
        region = self.scrollable_content_region
        room, r = region.height - self._segments(row, region.width - 2), row
        while r > 0 and room >= self._segments(r - 1, region.width - 2):
            room -= self._segments(r - 1, region.width - 2)
            r -= 1
        return r

    def watch_wrap(self, wrap: bool) -> None:
        self._strips.clear()
        self._wrap_key = None
        if wrap:
            self.scroll_to(x=0, animate=False, immediate=True, force=True)
        self._drawn_bars.clear()
        self._update_size()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self.refresh()
        self._post_status()

    def action_toggle_wrap(self, state: str | None = None) -> None:
        """`z` toggles wrapping long lines; `:wrap [on|off]` sets it."""
        choice = (state or "").strip().lower()
        if choice not in ("", "on", "off"):
            self.notify(f"wrap: {state!r} is not on or off", severity="error", timeout=6)
            return
        self.wrap = (not self.wrap) if not choice else choice == "on"

    def _style(self, component: str, partial: bool = False) -> Style:
        """The widget's (component="") or a component's rich style, looked up once per style update: a new
        row is rendered on every appended line, and Textual computes these anew on each call."""
        key = (component, partial)
        style = self._row_styles.get(key)
        if style is None:
            style = self._row_styles[key] = (self.get_component_rich_style(component, partial=partial) if component
                                         else self.rich_style)
        return style

    def cursor_style(self) -> Style:
        """The selected line: the theme's cursor colour, and reverse video too when colour is off (NO_COLOR)
        or the theme's cursor colour equals the background (the line must never be told by colour alone)."""
        style = self._style("logview--cursor")
        if self.app.no_color or style.bgcolor == self._style("").bgcolor:
            style = style + Style(reverse=True)
        return style

    def _render_row(self, line_no: int, width: int, seg: int = -1) -> Strip:
        text = self.text_of(line_no)
        sev = self._severity.get(line_no)
        base = self._style("")
        if sev:
            base = base + self._style(f"logview--{sev}", partial=True)
            if self.app.no_color and sev in ("error", "warning"):  # no colour: severity by weight, never dimmer
                base = base + Style(bold=True, dim=False)
        mark = GUTTER.get(sev or "", " ")
        body = Text(visible(without_formatting(text[:MAX_RENDER]), newlines=False).expandtabs(4), style=base, no_wrap=True, end="")
        if self._search is not None:
            body.highlight_regex(self._search, style=self._style("logview--match"))
        if self._doc is not None and self._gap and line_no == self._head_n:
            body.stylize("italic")
        elif line_no > self._first and RUN_START.search(text) and is_run_start(
                text, "\n".join(self.text_of(n) for n in range(max(self._first, line_no - 3), line_no))):
            # A new server run: a marker that reads without colour (bold reverse), the line after it.
            body = Text.assemble((f" {RUN_MARK} ", Style(bold=True, reverse=True)), " ", body, end="")
            mark = "▶"
        gutter = Text(mark, style=self._style("logview--gutter", partial=True))
        # The gutter stays put; only the text scrolls sideways (or wraps: segment `seg` of the line).
        if seg > 0:
            gutter = Text(" ")
        left = Strip(list(Text.assemble(gutter, " ", end="").render(self.app.console)))
        x = round(self.scroll_x) if seg < 0 else seg * max(1, width - 2)
        right = Strip(list(Text.assemble(body, end="").render(self.app.console))).crop(x, x + max(0, width - 2))
        return Strip.join([left, right]).extend_cell_length(width, base)

    # ---- follow and status -------------------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        # ScrollView's watcher, but the scrollbar repaints only when its thumb moves on screen.
        if self.show_vertical_scrollbar:
            set_bar(self.vertical_scrollbar, position=new_value)
            self._bars_changed()
        if round(old_value) != round(new_value):
            self.refresh_rows()
        if new_value < old_value and round(new_value) < self.max_scroll_y and self.follow:
            self.follow = False

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._new_lines = 0
            self._cursor = -1
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
            self.refresh()
            self._announce_event()
        self._post_status()

    def validate_filter_text(self, text: str) -> str:
        self._keep = line_filter(text) if text else None  # raises PatternError: the filter stays as it was
        return text

    def validate_search_text(self, text: str) -> str:
        self._search = compile_pattern(text) if text else None
        return text

    def watch_search_text(self, text: str) -> None:
        self._strips.clear()
        self.refresh()
        self._search_hits = None
        if text and self._big():
            self._start_scan("search")
        self._post_status()
        if text and not self._big():
            self._to_a_match()

    def _to_a_match(self) -> None:
        hits = self._matching()
        if hits and not self._contains(hits, self.cursor_line):
            self._jump(hits, -1 if self.follow else 1)

    @staticmethod
    def _contains(lines: Any, line: int | None) -> bool:
        i = bisect.bisect_left(lines, line) if line is not None else len(lines)
        return i < len(lines) and lines[i] == line

    def _big(self) -> bool:
        return self._doc is not None and self.line_count > SYNC_LINES

    def _start_scan(self, kind: str) -> None:
        """Search or filter a long document in a worker (the status line shows how far it got)."""
        self._scan_gen[kind] += 1
        gen, doc = self._scan_gen[kind], self._doc
        rx = self._search if kind == "search" else compile_pattern(self.filter_text.removeprefix("!"))
        invert = kind == "filter" and self.filter_text.startswith("!")
        if doc is None or rx is None:
            return
        self.scan_note = f"{'searching' if kind == 'search' else 'filtering'} …"

        def current() -> bool:
            return self._scan_gen[kind] == gen and self._doc is doc

        def run() -> None:
            while (self._gap or not doc.head_done) and current():
                time.sleep(0.05)  # the follower is still indexing the start of the file
            n0 = self.line_count
            said = time.monotonic()

            def progress(reached: int, found: array[int]) -> bool:
                nonlocal said
                if time.monotonic() - said > 0.1:
                    said = time.monotonic()
                    self.app.call_from_thread(self._scan_progress, kind, gen, reached / max(1, n0))
                return current()

            try:
                found = doc.scan(rx, 0, n0, invert=invert, progress=progress)
            except (OSError, ValueError):
                return  # the document was closed under us (another log is shown)
            if current():
                self.app.call_from_thread(self._scan_done, kind, gen, found, n0)

        self.run_worker(run, thread=True, group=f"log-{kind}", exclusive=True)

    def _scan_progress(self, kind: str, gen: int, fraction: float) -> None:
        if self._scan_gen[kind] == gen:
            self.scan_note = f"{'searching' if kind == 'search' else 'filtering'} {fraction * 100:.0f} %"
            self._last_status = None
            self._post_status()

    def _scan_done(self, kind: str, gen: int, found: array[int], n0: int) -> None:
        if self._scan_gen[kind] != gen:
            return
        self.scan_note = ""
        self._last_status = None
        if kind == "filter":
            keep = self._keep
            if keep is None:
                return
            found.extend(n for n in range(n0, self.line_count) if keep(self.text_of(n)))
            self._show_filtered(found)
        else:
            rx = self._search
            if rx is None:
                return
            found.extend(n for n in range(n0, self.line_count) if rx.search(self.text_of(n)))
            self._search_hits = found
            self._post_status()
            if not found:
                self.notify(f"search: no line matches {self.search_text!r}", severity="warning", timeout=4)
            self._to_a_match()

    def watch_filter_text(self, text: str) -> None:
        if self._keep is not None and self._big():
            self._visible = None   # all lines while the worker filters
            self._start_scan("filter")
            self._show_filtered(None)
            return
        if self._keep is not None:
            test = self._keep
            self._show_filtered([n for n in range(self._first, self.line_count) if test(self.text_of(n))])
        else:
            self._show_filtered(None)

    def _show_filtered(self, visible: Any) -> None:
        keep = self.cursor_line
        self._visible = visible
        self._strips.clear()
        self._update_size()
        if self.follow or keep is None:
            self._cursor = -1
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        else:
            self._move_to_row(min(self._row_of(keep), max(0, self._shown_count() - 1)))
        self.refresh()
        self._post_status()

    def _post_status(self) -> None:
        shown = self._shown_count() if self.filter_text else -1  # the count is shown only when filtering
        state = (self.follow, self._new_lines, shown, -1, self.filter_text + "\0" + self.search_text
                 + "\0" + self.scan_note + "\0" + str(self.wrap))
        if state == self._last_status:
            return  # nothing the status line shows has changed: no message, no repaint
        self._last_status = state
        self.post_message(self.Status(self.follow, self._new_lines, self._shown_count(), self.line_count - self._first,
                                      self.filter_text))

    def _announce_event(self) -> None:
        ev = self.event_at(self.cursor_line)
        if ev is not self._last_event:
            self._last_event = ev
            self.post_message(self.EventSelected(ev))

    # ---- cursor movement ---------------------------------------------------------------------------------

    def _move_to_row(self, row: int) -> None:
        n = self._shown_count()
        if n == 0:
            return
        row = max(0, min(row, n - 1))
        self._cursor = row
        if row < n - 1 and self.follow:
            self.follow = False
        height = self.scrollable_content_region.height or 1
        top = round(self.scroll_y)
        if self.wrap:
            if row < top:
                self.scroll_to(y=row, animate=False, immediate=True, force=True)
            elif not any(r == row for r, _ in self._wrap_rows()):
                self.scroll_to(y=self._wrap_top_for(row), animate=False, immediate=True, force=True)
        elif row < top:
            self.scroll_to(y=row, animate=False, immediate=True, force=True)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True, force=True)
        self.refresh()
        self._announce_event()

    def _jump(self, lines: list[int], direction: int) -> bool:
        """Move to the next/previous of the given absolute lines (sorted), relative to the cursor."""
        here = self.cursor_line
        if here is None or not lines:
            self.app.bell()
            return False
        if direction > 0:
            i = bisect.bisect_right(lines, here)
            target = lines[i] if i < len(lines) else None
        else:
            i = bisect.bisect_left(lines, here) - 1
            target = lines[i] if i >= 0 else None
        if target is None:
            self.app.bell()
            return False
        self.follow = False
        self._move_to_row(self._row_of(target))
        self._reveal_event()
        return True

    def action_cursor(self, delta: int) -> None:
        self._move_to_row(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self._move_to_row(self.cursor_row + direction * max(1, self.scrollable_content_region.height - 1))

    def action_top(self) -> None:
        self.follow = False
        self._move_to_row(0)

    def action_bottom(self) -> None:
        self.follow = True

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_filter(self, text: str | None = None) -> None:
        """`&` opens the filter prompt; `:filter TEXT` sets it (regex, `!PATTERN` hides matching lines)."""
        if text is None:
            self.app.action_command_line("&")  # type: ignore[attr-defined]
        else:
            self.set_pattern("filter_text", text)

    def action_search(self, text: str | None = None) -> None:
        """`/` opens the search prompt; `:search TEXT` sets it (regex, smart case)."""
        if text is None:
            self.app.action_command_line("/")  # type: ignore[attr-defined]
        else:
            self.set_pattern("search_text", text)

    def set_pattern(self, which: str, text: str) -> bool:
        """Set the search or the filter; a bad regex is refused with a one-line error, the old one stays."""
        try:
            setattr(self, which, text)
        except PatternError as e:
            self.notify(f"{'search' if which == 'search_text' else 'filter'}: {e}", severity="error", timeout=8)
            return False
        if which == "search_text" and text and not self._big() and not self._matching():
            self.notify(f"search: no line matches {text!r}", severity="warning", timeout=4)
        return True

    def action_clear_filter(self) -> None:
        self.search_text = ""
        self.filter_text = ""

    def action_hscroll(self, direction: int) -> None:
        """Half a screen sideways (the gutter stays)."""
        if self.wrap:
            return
        half = max(1, self.scrollable_content_region.width // 2)
        self.scroll_to(x=max(0, self.scroll_x + direction * half), animate=False, immediate=True, force=True)
        self._strips.clear()
        self.refresh_rows()

    def _matching(self) -> list[int]:
        """Shown lines the search matches (the filter's matches when there is no search)."""
        rx = self._search
        if rx is None:
            test = self._keep
            if test is None:
                return []
        else:
            def test(line: str) -> bool:
                return rx.search(line) is not None
        if self._big():
            hits = self._search_hits if rx is not None else self._visible
            if hits is None:
                return []
            if rx is None or self._visible is None:
                return list(hits)
            return [n for n in hits if self._contains(self._visible, n)]
        shown = range(self._first, self.line_count) if self._visible is None else self._visible
        return [n for n in shown if test(self.text_of(n))]

    def match_count(self) -> int:
        """Lines the search matches (-1 while a worker is still searching a long document)."""
        if self._search is None:
            return 0
        if self._big() and self._search_hits is None:
            return -1
        return len(self._matching())

    def action_next_match(self) -> None:
        self._jump(self._matching(), 1)

    def action_prev_match(self) -> None:
        self._jump(self._matching(), -1)

    def _event_starts(self, severity: str) -> list[int]:
        starts = [e.start for e in self._events if e.severity == severity and e.start >= self._first]
        if self._visible is not None:
            starts = [s for s in starts if self._contains(self._visible, s)]
        return starts

    def action_next_error(self) -> None:
        self._jump(self._event_starts("error"), 1)

    def action_prev_error(self) -> None:
        self._jump(self._event_starts("error"), -1)

    def action_next_warning(self) -> None:
        self._jump(self._event_starts("warning"), 1)

    def action_prev_warning(self) -> None:
        self._jump(self._event_starts("warning"), -1)

    def selected_text(self) -> str:
        """The selected event's lines, or the cursor line when it belongs to no event."""
        line = self.cursor_line
        if line is None:
            return ""
        ev = self.event_at(line)
        if ev is None:
            return self.text_of(line)
        start = max(ev.start, self._first)
        end = min(ev.end, self.line_count - 1)
        return "\n".join(self.text_of(n) for n in range(start, end + 1))

    def action_report_event(self) -> None:
        line = self.cursor_line
        ev = self.event_at(line) if line is not None else None
        if ev is None or line is None:
            self.notify("report: put the cursor on an error or warning event first (e/E jump to errors)",
                        severity="warning", timeout=5)
            return
        start = max(ev.start, self._first)
        end = min(ev.end, self.line_count - 1)
        self.post_message(self.ReportRequested([self.text_of(n) for n in range(start, end + 1)], start + 1))

    def action_copy_event(self) -> None:
        text = self.selected_text()
        if not text:
            self.app.bell()
            return
        self.app.copy_to_clipboard(text)
        n = text.count("\n") + 1
        tmux = " · in tmux this needs: set -g set-clipboard on" if os.environ.get("TMUX") else ""
        self.notify(f"Copied {n} line{'s' if n > 1 else ''} to the clipboard (OSC 52){tmux}", timeout=5)
