"""The machine: memory and its pressure, chip, MLX's view of the device, and who listens on which port.

macOS facts come from `sysctl`, `memory_pressure -Q` and `system_profiler` (parsed in system_parse.py);
Linux facts from psutil and /proc. MLX is asked in a subprocess: the console never imports it.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from mlx_console.core.common.units import fmt_bytes  # noqa: F401  (re-exported: the one byte formatter)
from mlx_console.core.machine.parse import (
    MIB,
    kern_pressure_level,
    parse_cpuinfo_model,
    parse_device_info,
    parse_memory_pressure,
    parse_psi,
    parse_swapusage,
    parse_sysctl,
    parse_system_profiler,
    sysctl_int,
)
from mlx_console.core.machine.ports import (  # noqa: F401  (re-exported: the agreed interface)
    LLM_BACKENDS,
    MLX_LM,
    OMLX,
    UNKNOWN,
    Listener,
    guess_backend,
    is_loopback,
    listeners,
    owner_of,
)

IS_MAC = sys.platform == "darwin"
PRESSURE_ORDER = ("unknown", "normal", "warn", "critical")


def run_text(cmd: list[str], timeout: float) -> str | None:
    """stdout of a command, or None if it is missing, times out or fails without output."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if (r.returncode == 0 or r.stdout.strip()) else None


def worse(a: str, b: str) -> str:
    return a if PRESSURE_ORDER.index(a) >= PRESSURE_ORDER.index(b) else b


# --- memory ------------------------------------------------------------------------------------------

@dataclass
class MemoryInfo:
    """total/available in bytes; pressure is normal | warn | critical | unknown, with the reason in detail."""

    total: int
    available: int
    pressure: str
    detail: str
    free_percent: float | None = None
    swap_total: int | None = None
    swap_used: int | None = None
    pressure_reason: str = ""  # the signals the level came from, e.g. "kernel level 2, 38% free"
    wired_limit_mb: int | None = None  # macOS iogpu.wired_limit_mb; 0 = the system default
    working_set: int | None = None  # Metal's recommended working set in bytes, when known
    sources: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ratio_level(available: int, total: int) -> str:
    """Level from the share of memory still available: under 5 % critical, under 15 % warn."""
    if total <= 0:
        return "unknown"
    r = available / total
    return "critical" if r < 0.05 else "warn" if r < 0.15 else "normal"


def psi_level(psi: dict[str, dict[str, float]]) -> str:
    """Level from Linux PSI (share of the last 10 s that tasks stalled on memory)."""
    some = psi.get("some", {}).get("avg10")
    full = psi.get("full", {}).get("avg10", 0.0)
    if some is None:
        return "unknown"
    if full >= 10:
        return "critical"
    return "warn" if some >= 10 or full >= 1 else "normal"


def memory_linux(vm: Any, psi_text: str | None) -> MemoryInfo:
    """Linux: psutil's available; pressure = the worse of PSI (stalls now) and the available ratio
    (room for a load). Without PSI (old kernels, some containers) the ratio alone."""
    level = ratio_level(vm.available, vm.total)
    parts = [f"{fmt_bytes(vm.available)} available of {fmt_bytes(vm.total)} ({100 * vm.available / vm.total:.0f}%)"]
    sources = ["psutil.virtual_memory"]
    reasons = [f"{100 * vm.available / vm.total:.0f}% available"]
    psi = parse_psi(psi_text or "")
    if psi:
        level = worse(level, psi_level(psi))
        reasons.insert(0, f"PSI some avg10={psi.get('some', {}).get('avg10', 0):.2f} "
                          f"full avg10={psi.get('full', {}).get('avg10', 0):.2f}")
        parts.append(reasons[0])
        sources.append("/proc/pressure/memory")
    return MemoryInfo(total=vm.total, available=vm.available, pressure=level, detail="; ".join(parts),
                      pressure_reason=", ".join(reasons),
                      free_percent=round(100 * vm.available / vm.total, 1), sources=sources)


MAC_MEMORY_SYSCTLS = ["hw.memsize", "kern.memorystatus_vm_pressure_level", "vm.swapusage", "iogpu.wired_limit_mb"]


def memory_macos(sysctl_text: str | None, pressure_text: str | None, vm: Any | None = None) -> MemoryInfo:
    """macOS from `sysctl <MAC_MEMORY_SYSCTLS>` and `memory_pressure -Q` text. The kernel's pressure level
    decides; available = the free percentage × total (psutil's `available` is disputed on macOS)."""
    values = parse_sysctl(sysctl_text or "")
    mp = parse_memory_pressure(pressure_text or "")
    total = sysctl_int(values, "hw.memsize") or mp.get("total") or (vm.total if vm else 0)
    free_pct = mp.get("free_percent")
    sources: list[str] = []
    if free_pct is not None:
        available = int(total * free_pct / 100)
        sources.append("memory_pressure -Q")
    else:
        available = vm.available if vm else 0
        free_pct = round(100 * available / total, 1) if total else None
        sources.append("psutil.virtual_memory")
    kern = sysctl_int(values, "kern.memorystatus_vm_pressure_level")
    level = kern_pressure_level(kern)
    if kern is not None:
        sources.append("kern.memorystatus_vm_pressure_level")
    elif total:
        level = ratio_level(available, total)
    swap = parse_swapusage(values.get("vm.swapusage", ""))
    wired = sysctl_int(values, "iogpu.wired_limit_mb")
    parts = [f"{fmt_bytes(available)} available of {fmt_bytes(total)}"
             + (f" ({free_pct:.0f}% free)" if free_pct is not None else "")]
    if kern is not None:
        parts.append(f"kernel pressure level {kern} ({level})")
    if swap.get("total"):
        parts.append(f"swap {fmt_bytes(swap.get('used', 0))} used of {fmt_bytes(swap['total'])}")
    reasons = ([f"kernel level {kern}"] if kern is not None else []) + (
        [f"{free_pct:.0f}% free"] if free_pct is not None else [])
    info = MemoryInfo(total=total, available=available, pressure=level, detail="; ".join(parts),
                      pressure_reason=", ".join(reasons),
                      free_percent=free_pct, swap_total=swap.get("total"), swap_used=swap.get("used"),
                      wired_limit_mb=wired, sources=sources)
    if wired:
        info.working_set = wired * MIB
    return info


def memory(*, working_set: bool = False, timeout: float = 2.0) -> MemoryInfo:
    """Memory now. On macOS the two commands run concurrently; on Linux nothing is spawned.
    working_set=True: when iogpu.wired_limit_mb is 0 (the default), ask MLX for the recommended working
    set (a subprocess, cached per wired limit)."""
    vm = psutil.virtual_memory()
    if IS_MAC:
        from concurrent.futures import ThreadPoolExecutor  # not at import: `backends list` needs none

        with ThreadPoolExecutor(max_workers=2) as pool:
            s = pool.submit(run_text, ["sysctl", *MAC_MEMORY_SYSCTLS], timeout)
            p = pool.submit(run_text, ["memory_pressure", "-Q"], timeout)
            info = memory_macos(s.result(), p.result(), vm)
        if working_set and info.working_set is None:
            info.working_set = _default_working_set(info.wired_limit_mb)
        return info
    try:
        psi_text: str | None = Path("/proc/pressure/memory").read_text()
    except OSError:
        psi_text = None
    info = memory_linux(vm, psi_text)
    swap = psutil.swap_memory()
    info.swap_total, info.swap_used = swap.total, swap.used
    return info


# --- MLX's view of the device (subprocess) -------------------------------------------------------------

_MLX_SCRIPT = """
import json, mlx.core as mx
info = {}
try:
    info = mx.device_info() if hasattr(mx, "device_info") else mx.metal.device_info()
except Exception:
    pass
print(json.dumps({"version": mx.__version__, "device": str(mx.default_device()), "device_info": info},
                 default=str))
"""


@dataclass
class MlxProbe:
    version: str | None = None
    device: str | None = None  # e.g. "Device(gpu, 0)"
    device_info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def working_set(self) -> int | None:
        v = self.device_info.get("max_recommended_working_set_size")
        return int(v) if isinstance(v, int | float) else None


def mlx_probe(python: str | None = None, timeout: float = 4.0) -> MlxProbe:
    """Ask a Python that has mlx for its version, default device and device_info (never imported here)."""
    cmd = [python or sys.executable, "-c", _MLX_SCRIPT]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return MlxProbe(error=f"`import mlx.core` did not answer within {timeout:.0f} s")
    except OSError as e:
        return MlxProbe(error=f"cannot run {cmd[0]}: {e}")
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["exit status " + str(r.returncode)])[-1]
        return MlxProbe(error=last)
    try:
        data = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return MlxProbe(error=f"unexpected output: {r.stdout.strip()[:200]}")
    info = data.get("device_info")
    return MlxProbe(version=data.get("version"), device=data.get("device"),
                    device_info=info if isinstance(info, dict) else parse_device_info(str(info or "")))


@functools.lru_cache(maxsize=4)
def _default_working_set(wired_limit_mb: int | None) -> int | None:
    # keyed on the wired limit: Metal's recommended working set follows `sysctl iogpu.wired_limit_mb`
    return mlx_probe().working_set


# --- chip ----------------------------------------------------------------------------------------------

@dataclass
class ChipInfo:
    name: str  # "Apple M4 Max", or the CPU model name elsewhere
    model: str | None = None  # "Mac Studio (Mac16,9)"
    cores: int | None = None
    perf_cores: int | None = None
    eff_cores: int | None = None
    memory_bytes: int | None = None
    os: str = ""
    apple_silicon: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        cores = f"{self.cores} cores" if self.cores else "? cores"
        if self.perf_cores is not None and self.eff_cores is not None:
            cores += f" ({self.perf_cores}P+{self.eff_cores}E)"
        model = f"{self.model}, " if self.model else ""
        return f"{model}{self.name}, {cores}, {fmt_bytes(self.memory_bytes)} RAM, {self.os}"


MAC_CHIP_SYSCTLS = ["machdep.cpu.brand_string", "hw.model", "hw.ncpu", "hw.memsize",
                    "hw.perflevel0.physicalcpu", "hw.perflevel1.physicalcpu"]


def chip_macos(profiler_text: str | None, sysctl_text: str | None, os_name: str = "macOS") -> ChipInfo:
    """From `system_profiler SPHardwareDataType` (any detail level, stderr noise tolerated) and
    `sysctl <MAC_CHIP_SYSCTLS>`; either may be missing or partial."""
    sp = parse_system_profiler(profiler_text or "")
    sc = parse_sysctl(sysctl_text or "")
    name = sp.get("chip") or sc.get("machdep.cpu.brand_string") or "Apple Silicon (chip unknown)"
    model_id = sp.get("model_id") or sc.get("hw.model")
    model = sp.get("model_name")
    if model and model_id:
        model = f"{model} ({model_id})"
    return ChipInfo(
        name=name, model=model or model_id,
        cores=sp.get("cores") or sysctl_int(sc, "hw.ncpu"),
        perf_cores=sp.get("perf_cores", sysctl_int(sc, "hw.perflevel0.physicalcpu")),
        eff_cores=sp.get("eff_cores", sysctl_int(sc, "hw.perflevel1.physicalcpu")),
        memory_bytes=sysctl_int(sc, "hw.memsize") or sp.get("memory_bytes"),
        os=os_name, apple_silicon=name.startswith("Apple"),
    )


def chip_linux(cpuinfo_text: str | None, total_memory: int, ncpu: int | None, os_name: str) -> ChipInfo:
    name = parse_cpuinfo_model(cpuinfo_text or "") or platform.processor() or platform.machine() or "unknown CPU"
    return ChipInfo(name=name, cores=ncpu, memory_bytes=total_memory, os=os_name)


@functools.lru_cache(maxsize=1)
def chip(timeout: float = 5.0) -> ChipInfo:
    """The chip (cached: it does not change while we run)."""
    if IS_MAC:
        os_name = f"macOS {platform.mac_ver()[0]} {platform.machine()}".strip()
        from concurrent.futures import ThreadPoolExecutor  # not at import: `backends list` needs none

        with ThreadPoolExecutor(max_workers=2) as pool:
            sp = pool.submit(run_text, ["system_profiler", "SPHardwareDataType"], timeout)
            sc = pool.submit(run_text, ["sysctl", *MAC_CHIP_SYSCTLS], timeout)
            return chip_macos(sp.result(), sc.result(), os_name)
    try:
        cpuinfo: str | None = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = None
    os_name = f"{platform.system()} {platform.release()} {platform.machine()}"
    return chip_linux(cpuinfo, psutil.virtual_memory().total, os.cpu_count(), os_name)
