"""Run a suite, then compare it with the same model's previous run: one call for the console's bench
pane and `mlx-console bench run --compare-previous`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlx_console.core.bench import store
from mlx_console.core.bench.compare import compare_runs
from mlx_console.core.bench.runner import run_suite
from mlx_console.core.bench.suites import Suite
from mlx_console.core.bench.target import Target
from mlx_console.core.errors import ConsoleError


@dataclass
class ComparedRun:
    """A finished run and its verdict against the model's previous stored run.

    `comparison` is `bench compare --json`'s document; when it is None, `not_compared` says why
    (the first run of this model, or the two runs are not comparable)."""

    record: dict[str, Any]
    previous_run_id: str | None = None
    comparison: dict[str, Any] | None = None
    not_compared: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"previous_run_id": self.previous_run_id, "comparison": self.comparison,
                "not_compared": self.not_compared or None}


def run_compared(target: Target, suite: Suite, **run_kw: Any) -> ComparedRun:
    """run_suite on `target` (run_kw: label, runs, concurrency, progress, cancel, out_dir, api_key …), then
    compare_runs(previous, this) where previous is the newest stored run of the same model before it."""
    previous = store.history(target.model)
    kwargs = {**target.run_kwargs(), **run_kw}
    record = run_suite(suite=suite, **kwargs)
    data = record.summary
    out = ComparedRun(record=data, history=store.history(target.model))
    if not previous:
        out.not_compared = "first run of this model: the next run is compared with it"
        return out
    out.previous_run_id = str(previous[-1].get("run_id"))
    try:
        out.comparison = compare_runs(previous[-1], data)
    except ConsoleError as e:  # not comparable: say why instead of a verdict
        out.not_compared = str(e)
    return out
