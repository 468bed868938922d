"""Compare two run records: a verdict per cell and metric, and an overall verdict.

Per metric: `regression` / `improvement` need both a change beyond max(5 %, 2 × the baseline's CV)
and a Mann-Whitney U p < 0.05; `inconclusive` when the sample sizes cannot reach that p (3 vs 3),
or the baseline itself drifted; otherwise `within_noise`. Status changes pass↔fail are `flip`.
Overall precedence: error or must-pass flip > quality drop > perf regression > improvement, so a
faster run that fails coding is `worse`.
"""

from __future__ import annotations

import statistics
from typing import Any

from mlx_console.core.bench import stats
from mlx_console.core.bench.record import ENV_KEYS
from mlx_console.core.errors import ConsoleError

ALPHA = 0.05
MIN_CHANGE = 0.05
DRIFT_CV = 0.25  # a baseline this noisy cannot tell anything apart
HIGHER_IS_BETTER = {"decode_tps": True, "prefill_tps": True, "aggregate_tps": True,
                    "ttft_ms": False, "e2e_s": False}
GOOD = ("pass", "ok")


def comparability(base: dict[str, Any], cand: dict[str, Any]) -> list[str]:
    """Why two runs are not comparable (empty when they are)."""
    out = []
    be, ce = base.get("env") or {}, cand.get("env") or {}
    for k in ENV_KEYS:
        if be.get(k) != ce.get(k):
            out.append(f"env.{k}: {be.get(k)!r} vs {ce.get(k)!r}")
    bb, cb = base.get("backend") or {}, cand.get("backend") or {}
    for k in ("kind", "version"):
        if bb.get(k) != cb.get(k):
            out.append(f"backend.{k}: {bb.get(k)!r} vs {cb.get(k)!r}")
    return out


def _drifted(samples: list[float]) -> bool:
    """Samples that only ever rise (or only fall) across ≥ 4 trials by more than 5 % drifted."""
    if len(samples) < 4:
        return False
    rising = all(b > a for a, b in zip(samples, samples[1:], strict=False))
    falling = all(b < a for a, b in zip(samples, samples[1:], strict=False))
    med = statistics.median(samples)
    return (rising or falling) and med != 0 and (max(samples) - min(samples)) / abs(med) > MIN_CHANGE


def metric_verdict(metric: str, base: list[float], cand: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"baseline_median": None, "candidate_median": None, "change_pct": None,
                           "threshold_pct": None, "p": None, "verdict": "inconclusive", "reason": ""}
    if not base or not cand:
        out["reason"] = "no samples on one side"
        return out
    bm, cm = statistics.median(base), statistics.median(cand)
    out["baseline_median"], out["candidate_median"] = bm, cm
    if bm == 0:
        out["reason"] = "baseline median is 0"
        return out
    change = (cm - bm) / abs(bm)
    base_cv = stats.cv(base) or 0.0
    threshold = max(MIN_CHANGE, 2 * base_cv)
    mw = stats.mann_whitney(base, cand)
    out.update(change_pct=round(100 * change, 2), threshold_pct=round(100 * threshold, 2), p=round(mw.p, 4))
    if mw.min_p >= ALPHA:
        out["reason"] = (f"{len(base)} vs {len(cand)} samples cannot reach p < {ALPHA} (smallest possible p "
                         f"{mw.min_p:.3f}); run ≥ 4 trials on each side")
        return out
    if base_cv > DRIFT_CV or _drifted(base):
        out["reason"] = f"the baseline itself drifted (CV {100 * base_cv:.1f} %, samples {base})"
        return out
    if abs(change) < threshold:
        out["verdict"], out["reason"] = "within_noise", f"change {100 * change:+.1f} % < {100 * threshold:.1f} %"
        return out
    if mw.p >= ALPHA:
        out["reason"] = f"change {100 * change:+.1f} % but not significant (p = {mw.p:.3f})"
        return out
    better = (change > 0) == HIGHER_IS_BETTER[metric]
    out["verdict"] = "improvement" if better else "regression"
    out["reason"] = f"{100 * change:+.1f} % (threshold {100 * threshold:.1f} %, p = {mw.p:.3f})"
    return out


def _status_verdict(b: str | None, c: str | None) -> str:
    if b is None or c is None:
        return "inconclusive"
    if c == "error" and b != "error":
        return "error"
    if b in GOOD and c == "fail":
        return "flip"
    if b == "fail" and c in GOOD:
        return "flip"
    return "within_noise"


def compare_runs(base: dict[str, Any], cand: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """The comparison document (see README, bench compare --json)."""
    diffs = comparability(base, cand)
    if diffs and not force:
        raise ConsoleError("runs are not comparable (" + "; ".join(diffs) + "); use --force to compare anyway")
    cells: dict[str, Any] = {}
    bc, cc = base.get("cells") or {}, cand.get("cells") or {}
    for cid in list(bc) + [c for c in cc if c not in bc]:
        b, c = bc.get(cid), cc.get(cid)
        if b is None or c is None:
            cells[cid] = {"kind": (b or c or {}).get("kind"), "verdict": "inconclusive",
                          "reason": f"only in the {'baseline' if c is None else 'candidate'}",
                          "must_pass": bool((b or c or {}).get("must_pass"))}
            continue
        sv = _status_verdict(b.get("status"), c.get("status"))
        entry: dict[str, Any] = {"kind": b.get("kind"), "must_pass": bool(b.get("must_pass") or c.get("must_pass")),
                                 "status": {"baseline": b.get("status"), "candidate": c.get("status"),
                                            "verdict": sv},
                                 "reason": c.get("reason", "") if sv in ("flip", "error") else "",
                                 "metrics": {}}
        for m in HIGHER_IS_BETTER:
            if isinstance(b.get(m), dict) and isinstance(c.get(m), dict):
                entry["metrics"][m] = metric_verdict(m, b[m].get("samples") or [], c[m].get("samples") or [])
        verdicts = [sv] + [v["verdict"] for v in entry["metrics"].values()]
        entry["verdict"] = next((v for v in ("error", "flip", "regression", "improvement", "inconclusive")
                                 if v in verdicts), "within_noise")
        cells[cid] = entry
    return {"baseline": base.get("run_id"), "candidate": cand.get("run_id"),
            "baseline_label": base.get("label"), "candidate_label": cand.get("label"),
            "not_comparable": diffs, "forced": bool(diffs and force),
            "config_changed": base.get("config_hash") != cand.get("config_hash"),
            "cells": cells, "overall": overall(cells)}


def overall(cells: dict[str, Any]) -> dict[str, Any]:
    """worse / better / same / inconclusive, with the cause that decided it (precedence order)."""
    def ids(pred: Any) -> list[str]:
        return [cid for cid, e in cells.items() if pred(e)]

    def st(e: dict[str, Any]) -> dict[str, Any]:
        return e.get("status") or {}

    errors = ids(lambda e: st(e).get("verdict") == "error")
    must_flips = ids(lambda e: e.get("must_pass") and st(e).get("verdict") == "flip"
                     and st(e).get("candidate") == "fail")
    if errors or must_flips:
        cause = "error" if errors else "must_pass_flip"
        which = errors or must_flips
        return {"verdict": "worse", "cause": cause,
                "reason": ("new errors in " if errors else "must-pass cells now fail: ") + ", ".join(which)}
    drops = ids(lambda e: st(e).get("verdict") == "flip" and st(e).get("candidate") == "fail")
    if drops:
        return {"verdict": "worse", "cause": "quality_drop", "reason": "cells now fail: " + ", ".join(drops)}
    regress = ids(lambda e: any(m["verdict"] == "regression" for m in (e.get("metrics") or {}).values()))
    if regress:
        return {"verdict": "worse", "cause": "perf_regression", "reason": "slower in " + ", ".join(regress)}
    gains = ids(lambda e: any(m["verdict"] == "improvement" for m in (e.get("metrics") or {}).values())
                or (st(e).get("verdict") == "flip" and st(e).get("candidate") in GOOD))
    if gains:
        return {"verdict": "better", "cause": "improvement", "reason": "better in " + ", ".join(gains)}
    unsure = ids(lambda e: e.get("verdict") == "inconclusive")
    if unsure:
        return {"verdict": "inconclusive", "cause": "inconclusive",
                "reason": "no change shown; inconclusive in " + ", ".join(unsure)}
    return {"verdict": "same", "cause": "within_noise", "reason": "every cell within noise"}
