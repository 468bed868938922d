"""A bench cell across runs: the median with its p25–p75 band per run, the runs' labels, and where the
configuration changed (server flags, oMLX model settings, backend version: the record's config_hash).
The bench pane plots it; any other face can print it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

METRIC = "decode_tps"


@dataclass
class TrendPoint:
    run_id: str
    ts: str          # ISO 8601 UTC, as in the record
    label: str       # the run's label (`--label`, `console:NAME`)
    median: float
    p25: float
    p75: float
    config_hash: str

    @property
    def short(self) -> str:
        """`MM-DD HH:MM` of the run (the x axis' tick)."""
        return self.ts[5:16].replace("T", " ") if len(self.ts) >= 16 else self.run_id[:8]


@dataclass
class Trend:
    """`cell`'s `metric` over the runs that measured it, oldest first. `changes` are indices into `points`
    whose run has another configuration than the run before it; `cells` every cell with the metric."""

    cell: str | None
    metric: str
    points: list[TrendPoint] = field(default_factory=list)
    changes: list[int] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"cell": self.cell, "metric": self.metric, "cells": self.cells, "changes": self.changes,
                "points": [{**p.__dict__} for p in self.points]}


def _block(cell: Any, metric: str) -> dict[str, Any] | None:
    block = cell.get(metric) if isinstance(cell, dict) else None
    if isinstance(block, dict) and isinstance(block.get("median"), int | float):
        return block
    return None


def trend(runs: list[dict[str, Any]], cell: str | None = None, metric: str = METRIC) -> Trend:
    """The trend of `cell` (default: the cell measured in the most runs) across `runs` (oldest first)."""
    counts: dict[str, int] = {}
    for r in runs:
        for cid, c in (r.get("cells") or {}).items():
            if _block(c, metric) is not None:
                counts[cid] = counts.get(cid, 0) + 1
    cells = sorted(counts, key=lambda c: (-counts[c], c))
    if cell not in counts:
        cell = cells[0] if cells else None
    out = Trend(cell, metric, cells=cells)
    if cell is None:
        return out
    for r in runs:
        block = _block((r.get("cells") or {}).get(cell), metric)
        if block is None:
            continue
        median = float(block["median"])
        p25 = block.get("p25")
        p75 = block.get("p75")
        out.points.append(TrendPoint(str(r.get("run_id") or "?"), str(r.get("ts") or ""), str(r.get("label") or ""),
                                     median, float(p25) if isinstance(p25, int | float) else median,
                                     float(p75) if isinstance(p75, int | float) else median,
                                     str(r.get("config_hash") or "")))
    out.changes = [i for i in range(1, len(out.points))
                   if out.points[i].config_hash != out.points[i - 1].config_hash]
    return out
