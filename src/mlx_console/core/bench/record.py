"""The run record (schema 1): summary JSON plus per-request rows, with the config fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from typing import Any

from mlx_console.core.machine.ports import redact

SCHEMA = 1


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def config_hash(kind: str | None, version: str | None, model: str, server_flags: Any,
                model_settings: Any) -> str:
    """Hash of everything that defines the configuration under test (one flag changes it)."""
    blob = json.dumps({"kind": kind, "version": version, "model": model, "server_flags": server_flags,
                       "model_settings": model_settings}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def _chip() -> str:
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True, timeout=5)
            if out.returncode == 0:
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Where the run happened. ENV_KEYS must match for two runs to be comparable."""
    return {
        "host": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "chip": _chip(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "console": _version("mlx-console"),
    }


# Keys that make two runs incomparable when they differ (python/console versions do not).
ENV_KEYS = ("host", "os", "machine", "chip")


@dataclass
class RunRecord:
    """`summary` is the schema-1 JSON document; `requests` the per-request rows (JSONL)."""

    summary: dict[str, Any]
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.summary["run_id"])

    @property
    def cells(self) -> dict[str, dict[str, Any]]:
        cells: dict[str, dict[str, Any]] = self.summary["cells"]
        return cells

    def to_json(self) -> dict[str, Any]:
        return self.summary


def new_summary(*, suite: str, label: str, base_url: str, kind: str | None, version: str | None,
                model: str, server_flags: Any, model_settings: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    if isinstance(server_flags, list) and all(isinstance(f, str) for f in server_flags):
        server_flags = redact(server_flags)  # a record is shared: no --api-key/--*token values in it
    return {
        "schema": SCHEMA,
        "run_id": new_run_id(now),
        "ts": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "suite": suite,
        "label": label,
        "backend": {"base_url": base_url, "kind": kind, "version": version},
        "model": model,
        "config": {"server_flags": server_flags, "model_settings": model_settings},
        "config_hash": config_hash(kind, version, model, server_flags, model_settings),
        "env": environment(),
        "cells": {},
    }
