"""Pure parsers for the text of system commands (sysctl, memory_pressure, system_profiler, lsof, /proc).

Each takes the command's output as a string, so the macOS paths are tested on Linux with real captured
outputs (tests/system/fixtures/macos/). Parsers are tolerant: unknown or garbled lines are skipped.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

GIB = 1024**3
MIB = 1024**2

_UNITS = {"B": 1, "K": 1024, "KB": 1024, "M": MIB, "MB": MIB, "G": GIB, "GB": GIB, "T": 1024**4, "TB": 1024**4}


def parse_size(text: str) -> int | None:
    """'128 GB' / '2048.00M' / '16GB' → bytes (Apple's GB in these outputs are GiB)."""
    m = re.match(r"^\s*([\d.]+)\s*([KMGT]?B?)\s*$", text.strip(), re.I)
    if not m:
        return None
    return int(float(m.group(1)) * _UNITS.get(m.group(2).upper() or "B", 1))


def parse_sysctl(text: str) -> dict[str, str]:
    """`sysctl a b c` output → {name: value}. The `name: old -> new` form of a write keeps the new value."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([a-z][\w.]*)\s*[:=]\s*(.*?)\s*$", line)
        if not m:
            continue
        value = m.group(2)
        if "->" in value:
            value = value.rsplit("->", 1)[1].strip()
        out[m.group(1)] = value
    return out


def sysctl_int(values: dict[str, str], name: str) -> int | None:
    try:
        return int(values[name].split()[0])
    except (KeyError, ValueError, IndexError):
        return None


def parse_swapusage(value: str) -> dict[str, int]:
    """`total = 2048.00M  used = 1034.25M  free = 1013.75M  (encrypted)` → {"total":…, "used":…, "free":…} bytes."""
    out: dict[str, int] = {}
    for key, num in re.findall(r"(total|used|free)\s*=\s*([\d.]+\s*[KMGT]?)", value):
        size = parse_size(num)
        if size is not None:
            out[key] = size
    return out


# kern.memorystatus_vm_pressure_level: 1 normal, 2 warn, 4 critical (docs/apple-silicon.md §2)
_KERN_LEVELS = {1: "normal", 2: "warn", 4: "critical"}


def kern_pressure_level(level: int | None) -> str:
    return _KERN_LEVELS.get(level, "unknown") if level is not None else "unknown"


def parse_memory_pressure(text: str) -> dict[str, Any]:
    """`memory_pressure -Q` → {"free_percent": float, "total": bytes, "page_size": int} (keys present when seen)."""
    out: dict[str, Any] = {}
    m = re.search(r"memory free percentage:\s*([\d.]+)\s*%", text, re.I)
    if m:
        out["free_percent"] = float(m.group(1))
    m = re.search(r"system has\s+(\d+)\s*\((\d+)\s+pages with a page size of\s+(\d+)", text, re.I)
    if m:
        out["total"] = int(m.group(1))
        out["page_size"] = int(m.group(3))
    return out


def parse_psi(text: str) -> dict[str, dict[str, float]]:
    """/proc/pressure/memory → {"some": {"avg10": …, "avg60": …, "avg300": …}, "full": {…}}."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0] not in ("some", "full"):
            continue
        vals: dict[str, float] = {}
        for item in parts[1:]:
            k, _, v = item.partition("=")
            try:
                vals[k] = float(v)
            except ValueError:
                continue
        out[parts[0]] = vals
    return out


_PROFILER_KEYS = {
    "model name": "model_name",
    "model identifier": "model_id",
    "chip": "chip",
    "processor name": "chip",  # Intel Macs
    "total number of cores": "cores",
    "memory": "memory",
}


def parse_system_profiler(text: str) -> dict[str, Any]:
    """`system_profiler SPHardwareDataType` (any detail level) → model_name, model_id, chip, cores,
    perf_cores, eff_cores, memory_bytes. Lines that are not `Key: value` of a known key are ignored: macOS
    26.4 mixes `… system_profiler[pid] hw.cpufamily: 0x…` log lines from stderr into the output."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.+?)\s*$", line)
        if not m:
            continue
        key = _PROFILER_KEYS.get(m.group(1).lower())
        if key is None:
            continue
        value = m.group(2)
        if key == "cores":
            n = re.match(r"(\d+)", value)
            if n:
                out["cores"] = int(n.group(1))
            pe = re.search(r"(\d+)\s+performance\s+and\s+(\d+)\s+efficiency", value, re.I)
            if pe:
                out["perf_cores"], out["eff_cores"] = int(pe.group(1)), int(pe.group(2))
        elif key == "memory":
            size = parse_size(value)
            if size:
                out["memory_bytes"] = size
        else:
            out[key] = value
    return out


def parse_cpuinfo_model(text: str) -> str | None:
    """/proc/cpuinfo → the first `model name` (x86) or `Hardware`/`Model` (ARM boards)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            found.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "hardware", "model", "cpu model"):
        if key in found:
            return found[key]
    return None


def parse_device_info(text: str) -> dict[str, Any]:
    """MLX's device_info dict as printed: JSON, or a Python repr such as mx.metal.device_info() printed."""
    text = text.strip()
    if not text:
        return {}
    for loader in (json.loads, ast.literal_eval):
        try:
            value = loader(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return {}


@dataclass(frozen=True)
class LsofListen:
    command: str
    pid: int
    user: str
    address: str
    port: int


_LSOF_LINE = re.compile(
    r"^(?P<cmd>\S+)\s+(?P<pid>\d+)\s+(?P<user>\S+)\s+.*?\bTCP\s+(?P<name>\S+)\s+\((?P<state>[A-Z_]+)\)\s*$"
)


def split_host_port(name: str) -> tuple[str, int] | None:
    """'127.0.0.1:8080' / '*:8080' / '[::1]:8080' → (host, port); '*' → '0.0.0.0'."""
    host, sep, port = name.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.strip("[]")
    return ("0.0.0.0" if host in ("*", "") else host), int(port)


def parse_lsof_listen(text: str) -> list[LsofListen]:
    """`lsof -nP -iTCP -sTCP:LISTEN` → listeners. Columns: COMMAND PID USER FD TYPE DEVICE SIZE/OFF NODE NAME;
    NAME is `addr:port (LISTEN)`. COMMAND is truncated by lsof (often to 9 chars): resolve the pid for more."""
    out: list[LsofListen] = []
    for line in text.splitlines():
        m = _LSOF_LINE.match(line)
        if not m or m.group("state") != "LISTEN":
            continue
        hp = split_host_port(m.group("name"))
        if hp is None:
            continue
        cmd = m.group("cmd").replace("\\x20", " ")
        out.append(LsofListen(cmd, int(m.group("pid")), m.group("user"), hp[0], hp[1]))
    return out
