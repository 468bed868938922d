"""The backends table: one row per profile with the state the supervisor reports (never guessed)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from mlx_console.core import api
from mlx_console.core.api import fmt_bytes
from mlx_console.ui.actions import bindings

STATE_STYLE = {
    "ready": "success", "starting": "warning", "loading": "warning", "degraded": "warning",
    "dead": "error", "stopped": "dim", "unreachable": "error",
}
WIDE = ("name", "kind", "state", "model", "port", "pid", "rss", "req/m", "tok/s", "uptime", "restarts")
# At 80 columns: restarts stay visible; requests/min and tok/s too (the sparkline shortened).
NARROW = ("name", "state", "model", "port", "rss", "req/m", "tok/s", "uptime", "restarts")
# With [[host]]s at 80 columns the HOST column takes the room of port, RSS and uptime (`i` shows them).
NARROW_FLEET = ("name", "state", "model", "req/m", "tok/s", "restarts")
NARROW_MODEL = 16  # characters of the model cell at 80 columns (the end cut with …)
SPARK_WIDTH = {False: 10, True: 5}  # characters of the throughput sparkline (wide, narrow)


def human_bytes(n: object) -> str:
    return fmt_bytes(n, compact=True)


def human_uptime(s: Any) -> str:
    if not isinstance(s, int | float) or s <= 0:
        return "-"
    s = int(s)
    # Never seconds: a cell that changes every second repaints the table every second (the first minute of
    # a backend cost the console twice its idle CPU, bench/ui_idle_cpu.py). Minutes change once a minute.
    if s < 60:
        return "<1m"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def short_model(model: Any, narrow: bool) -> str:
    text = str(model or "-")
    if narrow and "/" in text and " " not in text:  # (an unreachable host's row carries its ssh error here)
        text = text.rstrip("/").rsplit("/", 1)[-1]
    if narrow and len(text) > NARROW_MODEL:
        text = text[:NARROW_MODEL - 1] + "…"
    return text


def rate_cells(r: dict[str, Any], narrow: bool = False) -> tuple[str, str]:
    """The REQ/M and TOK/S cells: the last minute's rates, and the throughput sparkline of the last minutes
    next to what it plots (tok/s; requests/min where completion tokens are not counted: mlx-lm unmetered)."""
    req, tps = r.get("requests_1m"), r.get("tok_s_1m")
    req_text = f"{req:.0f}" if isinstance(req, int | float) else "-"
    tps_text = (f"{tps:.0f}" if tps >= 10 else f"{tps:.1f}") if isinstance(tps, int | float) else "-"
    spark = api.sparkline(list(r.get("spark") or []), SPARK_WIDTH[narrow])
    if spark and r.get("spark_of") == "req/min":
        req_text = f"{req_text} {spark}"
    elif spark:
        tps_text = f"{tps_text} {spark}"
    return req_text, tps_text


def shown(rows: list[dict[str, Any]]) -> tuple[tuple[str, ...], ...]:
    """What the table would show of these rows (uptime and RSS as displayed): equal → nothing to repaint."""
    return tuple((str(r.get("name")), str(r.get("kind")), str(r.get("status")), str(r.get("model")),
                  str(r.get("port")), str(r.get("pid")), human_bytes(r.get("rss_bytes")),
                  human_uptime(r.get("uptime_s")), str(r.get("restarts", "-")), *rate_cells(r)) for r in rows)


class BackendsTable(DataTable):
    BINDINGS = bindings("table")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self.rows_data: list[dict[str, Any]] = []
        self._layout: tuple[tuple[str, ...], tuple[int, ...]] = ((), ())
        self._keys: list[str] = []
        self.narrow = False

    def state_style(self, state: str) -> str:
        theme = self.app.current_theme
        name = STATE_STYLE.get(state, "")
        colour = getattr(theme, name, None) if name and name != "dim" else None
        if name == "dim":
            return "dim"
        return f"bold {colour}" if colour else ""

    def show(self, rows: list[dict[str, Any]], narrow: bool | None = None, force: bool = False) -> None:
        """Replace the rows (dicts shaped like BackendStatus.to_json()), keeping the selection."""
        if force:  # e.g. a new theme: state colours must be rebuilt
            self._layout = ((), ())
        if narrow is not None:
            self.narrow = narrow
        cols = NARROW if self.narrow else WIDE
        if any(r.get("fleet_host") for r in rows):  # [[host]]s configured: rows grouped by host, named once
            cols = ("host", *(NARROW_FLEET if self.narrow else cols))
        selected = self.selected_name
        self.rows_data = rows
        cells = [[self._cell(c, r) for c in cols] for r in rows]
        if cols[0] == "host":
            for i in range(len(rows) - 1, 0, -1):
                if rows[i].get("fleet_host") == rows[i - 1].get("fleet_host"):
                    cells[i][0] = ""
        # Widths are computed here, not left to DataTable: it keeps a column's old width after clear(),
        # which cut "stopped" to the width of an earlier "…". Columns are rebuilt only when widths change.
        widths = tuple(max([len(self._header(c))] + [Text(str(row[i])).cell_len if not isinstance(row[i], Text)
                                                      else row[i].cell_len for row in cells])
                       for i, c in enumerate(cols))
        keys = [str(r.get("name")) for r in rows]
        if (cols, widths) == self._layout and keys == self._keys:
            # Same shape: change only the cells that differ (a rebuild every poll re-lays out the screen).
            for key, row in zip(keys, cells, strict=True):
                for c, value in zip(cols, row, strict=True):
                    if str(self.get_cell(key, c)) != str(value):
                        self.update_cell(key, c, value)
            return
        if (cols, widths) != self._layout:
            self.clear(columns=True)
            for c, w in zip(cols, widths, strict=True):
                self.add_column(self._header(c), key=c, width=w)
            self._layout = (cols, widths)
        else:
            self.clear()
        for key, row in zip(keys, cells, strict=True):
            self.add_row(*row, key=key)
        self._keys = keys
        if selected is not None:
            names = [str(r.get("name")) for r in rows]
            if selected in names:
                self.move_cursor(row=names.index(selected), animate=False)

    @staticmethod
    def _header(col: str) -> str:
        return "RST" if col == "restarts" else col.upper()

    def _cell(self, col: str, r: dict[str, Any]) -> Text | str:
        if col == "state":
            state = str(r.get("status") or "-")
            return Text(state, style=self.state_style(state))
        if col == "model":
            return short_model(r.get("model"), self.narrow)
        if col == "rss":
            return human_bytes(r.get("rss_bytes"))
        if col == "uptime":
            return human_uptime(r.get("uptime_s"))
        if col == "pid":
            return str(r.get("pid") or "-")
        if col == "restarts":
            return str(r.get("restarts", "-"))
        if col == "host":
            return str(r.get("fleet_host") or "-")
        if col in ("req/m", "tok/s"):
            return rate_cells(r, self.narrow)[col == "tok/s"]
        value = r.get(col)
        return "-" if value is None else str(value)

    def action_describe_row(self) -> None:
        if self.selected_name:
            self.app.action_describe(self.selected_name)  # type: ignore[attr-defined]

    @property
    def selected_name(self) -> str | None:
        if not self.rows_data or self.cursor_row < 0 or self.cursor_row >= len(self.rows_data):
            return None
        return str(self.rows_data[self.cursor_row].get("name"))

    def select_name(self, name: str) -> bool:
        names = [str(r.get("name")) for r in self.rows_data]
        if name not in names:
            return False
        self.move_cursor(row=names.index(name), animate=False)
        return True
