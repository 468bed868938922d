"""Bench history on disk: `<state_dir>/bench/<run_id>.json` (summary) + `<run_id>.requests.jsonl`.

Files are written to a temp name and renamed, so a crash never leaves a half-written record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlx_console import paths
from mlx_console.core.bench.record import RunRecord
from mlx_console.core.common.atomic import write_atomic
from mlx_console.core.errors import ConsoleError


def bench_dir() -> Path:
    return paths.private_dir(paths.state_dir() / "bench")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode("utf-8"), mode=0o600)  # records name hosts and prompts: owner only


def save(record: RunRecord, directory: Path | None = None) -> dict[str, str]:
    """Write the record into the history (and into `directory` too when given). Returns the paths."""
    out: dict[str, str] = {}
    targets = [bench_dir()] + ([Path(directory).expanduser()] if directory else [])
    summary = json.dumps(record.summary, ensure_ascii=False, indent=2) + "\n"
    rows = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in record.requests)
    for i, d in enumerate(targets):
        s, r = d / f"{record.run_id}.json", d / f"{record.run_id}.requests.jsonl"
        _atomic_write(r, rows)
        _atomic_write(s, summary)
        if i == 0:
            out = {"summary": str(s), "requests": str(r)}
        else:
            out.update({"out_summary": str(s), "out_requests": str(r)})
    record.paths = out
    return out


def history(model: str | None = None) -> list[dict[str, Any]]:
    """Stored run summaries, oldest first (optionally only for one model)."""
    runs = []
    for p in sorted(bench_dir().glob("*.json")):
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or doc.get("schema") != 1:
            continue
        if model and doc.get("model") != model:
            continue
        runs.append(doc)
    runs.sort(key=lambda d: (d.get("ts", ""), d.get("run_id", "")))
    return runs


def load(ref: str) -> dict[str, Any]:
    """A run summary by path, by run id, or by a unique run-id prefix, or `latest`."""
    p = Path(ref).expanduser()
    if p.is_file():
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as e:
            raise ConsoleError(f"{p}: not a JSON run record ({e})") from None
        if not isinstance(doc, dict) or doc.get("schema") != 1 or "cells" not in doc:
            raise ConsoleError(f"{p}: not a bench run record (needs schema 1 and cells)")
        return doc
    runs = history()
    if ref == "latest" and runs:
        return runs[-1]
    hits = [d for d in runs if d.get("run_id", "").startswith(ref)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise ConsoleError(f"run id prefix {ref!r} is ambiguous: {', '.join(d['run_id'] for d in hits[:5])}")
    raise ConsoleError(f"no run {ref!r}: not a file, and no stored run id starts with it (see bench history)")


def load_requests(run_id: str) -> list[dict[str, Any]]:
    p = bench_dir() / f"{run_id}.requests.jsonl"
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
