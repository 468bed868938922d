"""The dashboard with [[host]]s at 80 columns: HOST groups the rows, the rate columns and RST still fit, and an
unreachable host's ssh error is said under the table."""

from __future__ import annotations

from typing import Any

from mlx_console.ui.app import ConsoleApp

from .conftest import THEMES, FixedBackends, fixed_config, wait_for

ERROR = "host 'dead' (deadbox): ssh failed: ssh: connect to host 127.0.0.1 port 2222: Connection refused"


class FleetBackends(FixedBackends):
    def rows(self) -> list[dict[str, Any]]:
        rows = [dict(r, fleet_host="local") for r in super().rows()]
        far = dict(rows[0], name="qwen@studio2", fleet_host="studio2", model="/models/Llama-3.3-70B-Instruct-8bit")
        dead = {"name": "@dead", "kind": "-", "status": "unreachable", "model": ERROR[:70], "pid": None,
                "port": None, "fleet_host": "dead", "reason": ERROR}
        return [*rows, far, dead]


async def test_fleet_rows_fit_80_columns(tmp_path) -> None:
    config = fixed_config()
    app = ConsoleApp(config, theme_dirs=[THEMES], backends=FleetBackends(config, {}), autostart=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(app.backends_table.rows_data) == 4, what="rows")
        table = app.backends_table
        assert [c.key.value for c in table.columns.values()] == ["host", "name", "state", "model", "req/m",
                                                                "tok/s", "restarts"]
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80
        assert str(table.get_cell("qwen@studio2", "model")) == "Llama-3.3-70B-I…"
        await wait_for(pilot, lambda: ERROR in str(app.reasons.render()), what="the ssh error under the table")
