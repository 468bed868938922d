"""Pre-flight checks: each one pass / warn / fail with a one-line detail and a one-line fix.

Slow probes (MLX subprocess, system_profiler, /v1/models) run concurrently, each with its own timeout, so a
doctor run takes about as long as its slowest probe. `Report.to_json()` is the `doctor --json` contract.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from mlx_console import paths
from mlx_console.core.config import DEFAULT_PORTS, Config, Profile
from mlx_console.core.machine import models as models_mod
from mlx_console.core.machine import system
from mlx_console.core.machine.system import ChipInfo, Listener, MemoryInfo, MlxProbe, fmt_bytes, is_loopback

PASS, WARN, FAIL = "pass", "warn", "fail"
STATUSES = (PASS, WARN, FAIL)
IS_MAC = sys.platform == "darwin"
T = TypeVar("T")


@dataclass
class Check:
    id: str
    status: str  # pass | warn | fail
    detail: str
    fix: str = ""


@dataclass
class Report:
    checks: list[Check]
    versions: dict[str, str | None]
    listening: list[Listener]
    chip: ChipInfo | None = None
    memory: MemoryInfo | None = None
    models: list[models_mod.ModelInfo] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        """Exactly {"checks":[{"id","status","detail","fix"}], "versions":{…}, "listening":[{…}]}."""
        return {
            "checks": [asdict(c) for c in self.checks],
            "versions": dict(self.versions),
            "listening": [{"port": x.port, "pid": x.pid, "process": x.process, "backend": x.backend}
                          for x in self.listening],
        }


def _pkg_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def omlx_version(commands: Sequence[list[str]] = (), timeout: float = 3.0) -> tuple[str | None, str]:
    """(version, where it was found): the console's environment, then `omlx --version` on PATH, then
    `<command> --version` of each omlx profile (an app bundle's omlx is often not on PATH)."""
    v = _pkg_version("omlx")
    if v:
        return v, "python package"
    candidates = [[exe] for exe in [shutil.which("omlx")] if exe] + [list(c) for c in commands if c]
    for cmd in candidates:
        out = (system.run_text([*cmd, "--version"], timeout) or "").strip().splitlines()
        m = re.search(r"\b(\d+\.\d+[\w.+-]*)", out[-1]) if out else None  # "0.5.0" or "omlx 0.5.0"
        if m:
            return m.group(1), " ".join(cmd)
    return None, "not found"


def _version_tuple(v: str | None) -> tuple[int, ...]:
    parts: list[int] = []
    for p in (v or "").split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)


def _state_dir_check() -> Check:
    try:
        d = paths.state_dir()
        with tempfile.NamedTemporaryFile(dir=d, prefix=".doctor-"):
            pass
    except OSError as e:
        return Check("state_dir", FAIL, f"state dir not writable: {e}",
                     "set MLX_CONSOLE_STATE_DIR to a writable directory")
    return Check("state_dir", PASS, f"{d} is writable")


def _platform_check(chip: ChipInfo | None, problem: str | None, mac: bool = IS_MAC) -> Check:
    if chip is None:
        return Check("platform", WARN, f"chip info {problem or 'unavailable'}", "run the doctor again")
    if mac and not chip.apple_silicon:
        return Check("platform", FAIL, f"{chip.summary()}: MLX needs Apple Silicon",
                     "run on an M-series Mac (and a native arm64 Python, not under Rosetta)")
    note = "" if mac else " (not macOS: MLX runs on its CPU backend)"
    return Check("platform", PASS, chip.summary() + note)


def _memory_checks(mem: MemoryInfo | None, problem: str | None, mac: bool = IS_MAC) -> list[Check]:
    if mem is None:
        return [Check("memory", WARN, f"memory info {problem or 'unavailable'}", "run the doctor again")]
    out: list[Check] = []
    level = system.ratio_level(mem.available, mem.total)
    status = {"normal": PASS, "warn": WARN, "critical": FAIL}.get(level, WARN)
    detail = f"{fmt_bytes(mem.available)} available of {fmt_bytes(mem.total)}"
    if mem.swap_total:
        detail += f"; swap {fmt_bytes(mem.swap_used)} used of {fmt_bytes(mem.swap_total)}"
    fix = "" if status == PASS else "quit memory-hungry apps or unload a model before loading another"
    if mem.swap_total and (mem.swap_used or 0) > 0.9 * mem.swap_total:
        status, fix = (FAIL if status == FAIL else WARN), "swap is nearly full: free memory or reboot"
    out.append(Check("memory", status, detail, fix))
    pstatus = {"normal": PASS, "warn": WARN, "critical": FAIL}.get(mem.pressure, WARN)
    out.append(Check("memory_pressure", pstatus, f"{mem.pressure} ({mem.pressure_reason or 'no signal'})",
                     "" if pstatus == PASS else "memory is under pressure: unload models or close apps first"))
    if mac:
        ws = mem.working_set
        wired = mem.wired_limit_mb
        src = f"iogpu.wired_limit_mb={wired}" if wired else "system default (iogpu.wired_limit_mb=0)"
        if ws is None:
            out.append(Check("metal_working_set", WARN, f"recommended working set unknown ({src})",
                             "check that mlx imports (see the mlx check)"))
        else:
            out.append(Check("metal_working_set", PASS,
                             f"GPU may use {fmt_bytes(ws)} of {fmt_bytes(mem.total)} ({src})",
                             ""))
    return out


def _mlx_check(probe: MlxProbe | None, problem: str | None, mac: bool = IS_MAC) -> Check:
    if probe is None:
        return Check("mlx", WARN, f"the mlx probe {problem or 'is unavailable'}", "run: python -c 'import mlx.core'")
    if probe.error:
        return Check("mlx", FAIL, f"mlx does not import: {probe.error}",
                     "pip install mlx (macOS) or 'mlx[cpu]' (Linux) into this environment")
    detail = f"mlx {probe.version}, default device {probe.device}"
    if mac and "gpu" not in (probe.device or ""):
        return Check("mlx", WARN, detail + ": not using the GPU",
                     "use a native arm64 Python (not Rosetta) and the macOS build of mlx")
    return Check("mlx", PASS, detail)


def _mlx_lm_check(version: str | None, cfg: Config | None) -> Check:
    needed = cfg is not None and any(p.kind == "mlx-lm" for p in cfg.backends)
    if version is None:
        return Check("mlx_lm", FAIL if needed else WARN, "mlx-lm is not installed in this environment",
                     "pip install mlx-lm")
    if _version_tuple(version) < (0, 32, 2):
        return Check("mlx_lm", PASS, f"mlx-lm {version} (before 0.32.2 /health says ok while generation is "
                     "dead; the console probes with a real completion)", "")
    return Check("mlx_lm", PASS, f"mlx-lm {version}")


def _omlx_check(version: str | None, where: str, cfg: Config | None, mlx_lm: str | None) -> Check:
    profiles = [p for p in (cfg.backends if cfg else []) if p.kind == "omlx"]
    for p in profiles:
        exe = p.command[0]
        if shutil.which(exe) is None and not os.path.isfile(os.path.expanduser(exe)):
            return Check("omlx", FAIL, f"profile {p.name!r} runs {exe!r}, which is not found",
                         "install oMLX (macOS app or Homebrew) or set `command` in the profile")
    if version is not None and where == "python package" and _version_tuple(version)[:2] == (0, 5) \
            and _version_tuple(mlx_lm) >= (0, 32):
        # backends.md §2.0: oMLX 0.5 with PyPI mlx-lm 0.32.x dies at start (SequenceStateMachine ImportError)
        return Check("omlx", WARN, f"oMLX {version} with mlx-lm {mlx_lm} in one environment: `omlx serve` "
                     "fails with ImportError SequenceStateMachine", "pip install 'mlx-lm==0.31.3' in oMLX's environment")
    if version is not None:
        return Check("omlx", PASS, f"oMLX {version} ({where})")
    if profiles:
        cmd = " ".join(profiles[0].command)
        return Check("omlx", WARN, f"profile {profiles[0].name!r}: `{cmd} --version` printed no version",
                     f"check that `{cmd} serve --help` runs")
    return Check("omlx", PASS, "oMLX not installed (no omlx profile configured)")


def _config_check(cfg: Config | None, error: str | None) -> Check:
    if error is not None or cfg is None:
        return Check("config", FAIL, error or "config not loaded", "fix the file and key named above (README: Configuration)")
    if not cfg.exists:
        return Check("config", PASS, f"no config at {cfg.path}: using the built-in demo profile")
    if cfg.catalogs:  # a catalogue the config names but that is missing or broken fails triage later
        from mlx_console.core.logs.patterns import Catalog, CatalogError

        try:
            Catalog.load(cfg.catalogs, shipped=False)
        except CatalogError as e:
            return Check("config", FAIL, f"{cfg.path}: key 'catalog': {e}",
                         "fix or remove the catalogue file named in the config key `catalog`")
    return Check("config", PASS, f"{cfg.path}: {len(cfg.backends)} backend profile(s)")


def _hf_cache_check(models: list[models_mod.ModelInfo]) -> Check:
    hub = models_mod.hf_cache_dir()
    if not hub.is_dir():
        return Check("hf_cache", WARN, f"{hub} does not exist: mlx_lm.server's GET /v1/models then answers "
                     "an empty body (and logs CacheNotFound)", f"mkdir -p {hub}")
    n = sum(1 for m in models if m.source == "hf-cache")
    return Check("hf_cache", PASS, f"{hub}: {n} model(s)")


def _port_checks(cfg: Config | None, found: list[Listener], problem: str | None) -> list[Check]:
    if problem:
        return [Check("ports", WARN, f"listing listening ports {problem}", "run the doctor again")]
    out: list[Check] = []
    by_port: dict[int, list[Listener]] = {}
    for x in found:
        by_port.setdefault(x.port, []).append(x)
    profiles = cfg.backends if cfg else []
    for p in profiles:
        sharing = [q.name for q in profiles if q.port == p.port and q is not p]
        if sharing:
            out.append(Check(f"port:{p.name}", WARN, f"port {p.port} is also the port of profile(s) "
                             f"{', '.join(sharing)}: only one can run at a time", "give each profile its own port"))
            continue
        owners = by_port.get(p.port, [])
        if not owners:
            out.append(Check(f"port:{p.name}", PASS, f"port {p.port} is free"))
            continue
        x = owners[0]
        note = f"; {x.probe}" if x.probe else ""
        if x.backend == p.kind:
            out.append(Check(f"port:{p.name}", PASS, f"port {p.port}: {x.describe()}{note}"))
        else:
            out.append(Check(f"port:{p.name}", WARN, f"port {p.port} is taken by {x.describe()}{note}",
                             f"stop pid {x.pid} or give profile {p.name!r} another port" if x.pid
                             else f"give profile {p.name!r} another port"))
    return out


def _bind_checks(cfg: Config | None, found: list[Listener]) -> list[Check]:
    out: list[Check] = []
    for p in cfg.backends if cfg else []:
        if is_loopback(p.host):
            continue
        if p.kind == "mlx-lm":
            out.append(Check(f"bind:{p.name}", WARN, f"binds {p.host}: mlx_lm.server has no API key, anyone "
                             "who can reach the port can use it", "bind 127.0.0.1 and tunnel over SSH"))
        elif not p.api_key:
            out.append(Check(f"bind:{p.name}", WARN, f"binds {p.host} without an API key",
                             "set api_key in the profile or bind 127.0.0.1"))
    for x in found:
        if x.is_llm and not x.loopback_only and not x.auth_required:
            answered = x.confirmed or bool(x.models)
            how = "answers GET /v1/models without an API key" if answered else "is reachable from other hosts"
            out.append(Check(f"exposed:{x.port}", WARN, f"{x.backend} on {', '.join(x.addresses)}:{x.port} {how}",
                             "bind 127.0.0.1 (tunnel over SSH) or set an API key"))
    return out


def _model_checks(cfg: Config | None, mem: MemoryInfo | None) -> list[Check]:
    out: list[Check] = []
    for p in cfg.backends if cfg else []:
        if p.kind == "omlx":
            out.append(_omlx_models_check(p))
            if p.model:
                out.append(_omlx_model_check(p))
            out += _advice_checks(cfg, p, mem)  # type: ignore[arg-type]
            continue
        if not p.model or p.distributed:  # doctor.distributed checks it per rank host
            continue
        m = models_mod.resolve_profile(p)
        cid = f"model:{p.name}"
        if m is None:
            if p.demo:
                out.append(Check(cid, PASS, "demo model is built on first start"))
            elif os.path.isabs(os.path.expanduser(p.model)) or p.model.startswith("."):
                out.append(Check(cid, FAIL, f"{p.model} does not exist", "fix `model` in the profile"))
            else:
                out.append(Check(cid, WARN, f"{p.model} is not in the HF cache: mlx_lm.server would download it "
                                 "(with HF_HUB_OFFLINE=1 it dies)", f"hf download {p.model}"))
            continue
        if not m.mlx_weights:
            out.append(Check(cid, FAIL, f"{m.path} has no model*.safetensors: mlx_lm.server's generation thread "
                             "dies with 'No safetensors found'", "point `model` at a complete MLX model dir"))
            continue
        if mem is None:
            out.append(Check(cid, PASS, f"{m.id}: {fmt_bytes(m.weights_bytes)} of weights (memory unknown)"))
            continue
        f = models_mod.fit(m, mem)
        status = {"ok": PASS, "warn": WARN, "fail": FAIL}[f.status]
        fix = "" if status == PASS else "free memory, unload another model or pick a smaller quantization"
        out.append(Check(cid, status, f"{m.name}: {f.reason}", fix))
        out += _advice_checks(cfg, p, mem)  # type: ignore[arg-type]
    return out


def _distributed_checks(config: Config | None) -> list[Check]:
    from mlx_console.core.doctor.distributed import checks  # it imports this module

    return checks(config)
def _advice_checks(cfg: Config, p: Profile, mem: MemoryInfo | None) -> list[Check]:
    """The advisor's warnings for the profile's model (core/advisor.py), one check each."""
    from mlx_console.core import advisor
    from mlx_console.core.errors import ConsoleError

    if not p.model:
        return []
    try:
        advice = advisor.advise_profile(cfg, p.name, memory_bytes=mem.total if mem else None)
    except ConsoleError:
        return []  # the model checks above already say it is missing
    return [Check(f"advise:{p.name}:{w.id}", FAIL if w.severity == "error" else WARN, w.message, w.fix)
            for w in advice.warnings]


def _omlx_model_check(p: Profile) -> Check:
    """oMLX loads a profile's `model` by id: a folder of its model dirs that holds weights."""
    dirs = models_mod.omlx_model_dirs(p)
    cid = f"model:{p.name}"
    for d in dirs:
        m = d / str(p.model)
        if (m / "config.json").is_file():
            if not any(m.glob("*.safetensors")) and not any(m.glob("*.bin")):
                return Check(cid, FAIL, f"{m} has no weights: oMLX skips it (`No model weights found`), so "
                             f"loading {p.model!r} answers 404", "put the model's *.safetensors in that folder")
            return Check(cid, PASS, f"{p.model} is in {d}")
    return Check(cid, FAIL, f"oMLX has no model {p.model!r}: no folder of that name in "
                 f"{', '.join(map(str, dirs))} (the id is the folder name)",
                 "fix `model` in the profile, or put the model folder in oMLX's model directory")


def _omlx_models_check(p: Profile) -> Check:
    dirs = models_mod.omlx_model_dirs(p)
    missing = [d for d in dirs if not d.is_dir()]
    if missing:
        return Check(f"models:{p.name}", WARN, f"oMLX model dir {missing[0]} does not exist",
                     f"mkdir -p {missing[0]} and put models there (one folder per model)")
    found = [m for d in dirs for m in models_mod.scan_model_dir(d, f"omlx:{p.name}")]
    n = sum(1 for m in found if m.weights_bytes > 0)
    skipped = [m.name for m in found if m.weights_bytes <= 0]  # oMLX: `No model weights found`, not a model
    detail = f"{n} model(s) in {', '.join(map(str, dirs))}"
    if skipped:
        detail += f"; skipped by oMLX (no weights): {', '.join(skipped[:5])}"
    return Check(f"models:{p.name}", PASS if n and not skipped else WARN, detail,
                 "" if n and not skipped else "put an MLX model folder (config.json + *.safetensors) there")


def ports_of_interest(cfg: Config | None) -> set[int]:
    ports = set(DEFAULT_PORTS.values())
    ports.update(p.port for p in (cfg.backends if cfg else []))
    return ports


def _get(fut: Future[T], deadline: float, name: str, problems: dict[str, str]) -> T | None:
    """The probe's result, or None with the reason in problems[name] (a probe never breaks the doctor)."""
    try:
        return fut.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        problems[name] = "did not answer in time"
    except Exception as e:  # noqa: BLE001 - reported as a check, not raised
        problems[name] = f"failed: {type(e).__name__}: {e}"
    return None


def run(config: Config | None, *, config_error: str | None = None, budget: float = 6.0,
        progress: Callable[[str], None] | None = None) -> Report:
    """All checks. config None (with config_error) still checks the machine. Probes share `budget` seconds."""
    t0 = time.monotonic()
    deadline = t0 + budget
    interest = ports_of_interest(config)
    keys = {p.port: p.api_key for p in (config.backends if config else []) if p.api_key}
    problems: dict[str, str] = {}
    pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="doctor")
    try:
        f_chip = pool.submit(system.chip)
        f_mem = pool.submit(system.memory)
        f_mlx = pool.submit(system.mlx_probe, None, min(4.0, budget))
        f_ports = pool.submit(system.listeners, None, probe=True, probe_ports=interest, api_keys=keys)
        f_models = pool.submit(models_mod.discover, config) if config else None
        f_omlx = pool.submit(omlx_version, [p.command for p in (config.backends if config else [])
                                            if p.kind == "omlx"])
        if progress:
            progress("probing: chip, memory, mlx, ports, models, omlx")
        chip = _get(f_chip, deadline, "platform", problems)
        mem = _get(f_mem, deadline, "memory", problems)
        probe = _get(f_mlx, deadline, "mlx", problems)
        found = _get(f_ports, deadline, "ports", problems) or []
        models = (_get(f_models, deadline, "models", problems) if f_models else None) or []
        omlx = _get(f_omlx, deadline, "omlx", problems) or (None, problems.get("omlx", ""))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if mem is not None and mem.working_set is None and probe is not None:
        mem.working_set = probe.working_set  # wired limit 0 (default): Metal's own recommendation
    listening = [x for x in found if x.port in interest or x.is_llm]
    mlx_lm_v = _pkg_version("mlx-lm")
    versions = {
        "python": platform.python_version(),
        "mlx": (probe.version if probe and probe.version else None) or _pkg_version("mlx"),
        "mlx_lm": mlx_lm_v,
        "omlx": omlx[0],
    }
    checks = [
        _platform_check(chip, problems.get("platform")),
        *_memory_checks(mem, problems.get("memory")),
        Check("python", PASS if sys.version_info >= (3, 11) else FAIL, f"Python {versions['python']} ({sys.executable})",
              "" if sys.version_info >= (3, 11) else "use Python 3.11 or newer"),
        _mlx_check(probe, problems.get("mlx")),
        _mlx_lm_check(mlx_lm_v, config),
        _omlx_check(omlx[0], omlx[1], config, mlx_lm_v),
        _config_check(config, config_error),
        _state_dir_check(),
        _hf_cache_check(models),
        *_port_checks(config, found, problems.get("ports")),
        *_bind_checks(config, found),
        *_model_checks(config, mem),
        *_distributed_checks(config),
    ]
    return Report(checks=checks, versions=versions, listening=listening, chip=chip, memory=mem,
                  models=models, elapsed_s=round(time.monotonic() - t0, 3))
