#!/usr/bin/env python3
"""STAND-IN for `omlx serve` of oMLX 0.5.0: a test double, NOT oMLX. It runs no model; it makes canned text.

oMLX is not on PyPI, so CI cannot install it. This stdlib-only script behaves like `omlx serve` where the console
relies on it: the `serve --help` flag list, settings.json precedence/saving, `{base}/logs/server.log` format and
messages, the OpenAI-compatible and admin HTTP APIs, and model_settings.json semantics (validated admin PUT, whole
file rewritten from memory, reload). Replies were checked against a real oMLX 0.5.0 run
(tests/fixtures/omlx-real/). Fault injection for tests: the `/standin/*` routes and `OMLX_STANDIN_*` variables
described in tests/standins/README.md. Start: `python omlx_standin.py serve --base-path DIR --port N`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# What it reports (`--version`, /api/status); OMLX_STANDIN_VERSION lets a test pose as another release, but the
# behaviour stays 0.5.0's.
VERSION = os.environ.get("OMLX_STANDIN_VERSION") or "0.5.0"
STANDIN = "omlx-standin"
TRACE = 5

# ---------------------------------------------------------------------------------------------------------------
# model_settings.json: the fields of oMLX 0.5.0's ModelSettings dataclass, in declaration order (the file keeps it).
# ---------------------------------------------------------------------------------------------------------------
MODEL_SETTINGS_FIELDS: list[tuple[str, Any]] = [
    ("max_context_window", None), ("max_tokens", None), ("temperature", None), ("top_p", None),
    ("top_k", None), ("repetition_penalty", None), ("min_p", None), ("presence_penalty", None),
    ("force_sampling", False), ("max_tool_result_tokens", None), ("chat_template_kwargs", None),
    ("forced_ct_kwargs", None), ("ttl_seconds", None), ("model_type_override", None), ("model_alias", None),
    ("index_cache_freq", None), ("enable_thinking", None), ("preserve_thinking", None),
    ("thinking_budget_enabled", False), ("thinking_budget_tokens", None), ("reasoning_parser", None),
    ("guided_grammar_enabled", False), ("guided_grammar", None),
    ("turboquant_kv_enabled", False), ("turboquant_kv_bits", 4), ("turboquant_skip_last", True),
    ("specprefill_enabled", False), ("specprefill_draft_model", None), ("specprefill_keep_pct", None),
    ("specprefill_threshold", None),
    ("dflash_enabled", False), ("dflash_draft_model", None), ("dflash_draft_quant_enabled", None),
    ("dflash_draft_quant_weight_bits", None), ("dflash_draft_quant_activation_bits", None),
    ("dflash_draft_quant_group_size", None), ("dflash_max_ctx", None), ("dflash_in_memory_cache", True),
    ("dflash_in_memory_cache_max_entries", 4), ("dflash_in_memory_cache_max_bytes", 8 * 1024**3),
    ("dflash_ssd_cache", False), ("dflash_ssd_cache_max_bytes", 20 * 1024**3),
    ("dflash_draft_window_size", None), ("dflash_draft_sink_size", None), ("dflash_verify_mode", None),
    ("mtp_enabled", False), ("mtp_num_draft_tokens", None),
    ("vlm_mtp_enabled", False), ("vlm_mtp_draft_model", None), ("vlm_mtp_draft_block_size", None),
    ("is_pinned", False), ("is_default", False), ("is_hidden", False), ("is_favorite", False),
    ("trust_remote_code", False),
    ("display_name", None), ("description", None), ("active_profile_name", None),
]
MODEL_SETTINGS_DEFAULTS = dict(MODEL_SETTINGS_FIELDS)

# Fields of the 0.5.0 admin PUT body (pydantic ModelSettingsRequest, extra keys ignored) and their types.
# Keys of ModelSettings missing here (preserve_thinking, turboquant_skip_last, mtp_num_draft_tokens, display_name,
# description, active_profile_name) are silently ignored by the PUT: the "F" keys.
PUT_FIELDS: dict[str, str] = {
    "model_alias": "str", "model_type_override": "str", "max_context_window": "int", "max_tokens": "int",
    "temperature": "float", "top_p": "float", "top_k": "int", "repetition_penalty": "float", "min_p": "float",
    "presence_penalty": "float", "force_sampling": "bool", "max_tool_result_tokens": "int",
    "chat_template_kwargs": "dict", "forced_ct_kwargs": "list[str]", "ttl_seconds": "int",
    "index_cache_freq": "int", "enable_thinking": "bool", "thinking_budget_enabled": "bool",
    "thinking_budget_tokens": "int", "turboquant_kv_enabled": "bool", "turboquant_kv_bits": "float",
    "specprefill_enabled": "bool", "specprefill_draft_model": "str", "specprefill_keep_pct": "float",
    "specprefill_threshold": "int", "dflash_enabled": "bool", "dflash_draft_model": "str",
    "dflash_draft_quant_enabled": "bool", "dflash_draft_quant_weight_bits": "int",
    "dflash_draft_quant_activation_bits": "int", "dflash_draft_quant_group_size": "int", "dflash_max_ctx": "int",
    "dflash_in_memory_cache": "bool", "dflash_in_memory_cache_max_entries": "int",
    "dflash_in_memory_cache_max_bytes": "int", "dflash_ssd_cache": "bool", "dflash_ssd_cache_max_bytes": "int",
    "dflash_draft_window_size": "int", "dflash_draft_sink_size": "int", "dflash_verify_mode": "str",
    "mtp_enabled": "bool", "vlm_mtp_enabled": "bool", "vlm_mtp_draft_model": "str",
    "vlm_mtp_draft_block_size": "int", "reasoning_parser": "str", "guided_grammar_enabled": "bool",
    "guided_grammar": "str", "is_pinned": "bool", "is_default": "bool", "is_hidden": "bool",
    "is_favorite": "bool", "trust_remote_code": "bool",
}
# Keys whose PUT on a loaded model unloads it at once (requires_reload), as 0.5.0's admin route lists them.
UNLOAD_KEYS = frozenset({
    "index_cache_freq", "dflash_enabled", "dflash_draft_model", "dflash_draft_quant_enabled",
    "dflash_draft_quant_weight_bits", "dflash_draft_quant_activation_bits", "dflash_draft_quant_group_size",
    "dflash_max_ctx", "dflash_in_memory_cache", "dflash_in_memory_cache_max_entries",
    "dflash_in_memory_cache_max_bytes", "dflash_ssd_cache", "dflash_ssd_cache_max_bytes", "trust_remote_code",
})
MODEL_TYPE_TO_ENGINE = {
    "llm": "batched", "vlm": "vlm", "embedding": "embedding", "reranker": "reranker",
    "audio_stt": "audio_stt", "audio_tts": "audio_tts", "audio_sts": "audio_sts",
}


class SettingsConflict(ValueError):
    """ModelSettings.__post_init__ refused a combination (mtp+dflash, vlm_mtp+...)."""


def settings_from_dict(data: dict[str, Any]) -> dict[str, Any]:
    """ModelSettings.from_dict: unknown keys dropped, no type checks, cross-key conflicts raise."""
    s = dict(MODEL_SETTINGS_DEFAULTS)
    s.update({k: v for k, v in data.items() if k in MODEL_SETTINGS_DEFAULTS})
    if s["mtp_enabled"] and s["dflash_enabled"]:
        raise SettingsConflict(
            "mtp_enabled and dflash_enabled cannot both be True; choose one speculative-decoding path per model")
    if s["vlm_mtp_enabled"]:
        for name in ("dflash_enabled", "specprefill_enabled", "mtp_enabled", "turboquant_kv_enabled"):
            if s[name]:
                raise SettingsConflict(
                    f"vlm_mtp_enabled and {name} cannot both be True; choose one speculative path per model")
    return s


def settings_to_dict(s: dict[str, Any]) -> dict[str, Any]:
    """ModelSettings.to_dict: every field that is not None, in declaration order."""
    return {k: s[k] for k, _ in MODEL_SETTINGS_FIELDS if s.get(k) is not None}


# ---------------------------------------------------------------------------------------------------------------
# Formatting helpers with oMLX's exact output.
# ---------------------------------------------------------------------------------------------------------------
def format_size(n: float) -> str:
    """omlx.model_discovery.format_size: '440.21KB'."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024.0:
            return f"{n:.2f}{unit}"
        n /= 1024.0
    return f"{n:.2f}PB"


def format_size_admin(n: float) -> str:
    """The admin API's format: '440.2 KB'."""
    if not n:
        return "0 B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024.0:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024.0
    return f"{n:.1f} PB"


def format_gb(n: float) -> str:
    return f"{n / 1024**3:.1f}GB"


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?B?)\s*", str(text).upper())
    if not m:
        raise ValueError(f"Invalid size: {text}")
    mult = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3,
            "T": 1024**4, "TB": 1024**4}[m.group(2)]
    return int(float(m.group(1)) * mult)


def total_memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 16 * 1024**3


# ---------------------------------------------------------------------------------------------------------------
# Logging: file `... - [%(request_id)s] - ...`, console the same without request id, uvicorn-style `INFO:     `.
# ---------------------------------------------------------------------------------------------------------------
FILE_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - [%(request_id)s] - %(message)s"
CONSOLE_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = "-"  # 0.5.0 never sets a request id
        return True


class RotatingServerLog(logging.FileHandler):
    """server.log; `rotate_now()` renames it to server.log.YYYY-MM-DD as the midnight rollover does."""

    def rotate_now(self, day: str | None = None) -> Path:
        with self.lock:  # type: ignore[union-attr]
            self.close()
            base = Path(self.baseFilename)
            suffix = day or (_dt.date.today() - _dt.timedelta(days=1)).isoformat()
            dest = base.with_name(f"{base.name}.{suffix}")
            if dest.exists():
                dest.unlink()
            if base.exists():
                base.rename(dest)
            self.stream = self._open()
            return dest


def uvicorn_line(text: str, level: str = "INFO") -> None:
    sys.stderr.write(f"{(level + ':'):<10}{text}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------------------------
# Global settings ({base}/settings.json): defaults as oMLX 0.5.0 writes them.
# ---------------------------------------------------------------------------------------------------------------
def default_global_settings() -> dict[str, Any]:
    return {
        "version": "1.0",
        "server": {"host": "127.0.0.1", "port": 8000, "log_level": "info", "cors_origins": ["*"],
                   "server_aliases": [], "sse_keepalive_mode": "chunk", "auto_start_on_launch": True,
                   "burst_decode_mode": "balanced", "preserve_mid_system_cache": True},
        "model": {"model_dirs": [], "model_dir": None, "model_fallback": False, "hide_helper_models": False},
        "memory": {"prefill_memory_guard": True, "memory_guard_tier": "balanced",
                   "memory_guard_custom_ceiling_gb": 0.0, "soft_threshold": 0.85, "hard_threshold": 0.95,
                   "prefill_safe_zone_ratio": 0.8, "prefill_min_chunk_tokens": 32},
        "scheduler": {"max_concurrent_requests": 8, "embedding_batch_size": 32, "chunked_prefill": False},
        "cache": {"enabled": True, "hot_cache_only": False, "ssd_cache_dir": None, "ssd_cache_max_size": "auto",
                  "hot_cache_max_size": "0", "initial_cache_blocks": 256},
        "auth": {"api_key": None, "secret_key": None, "skip_api_key_verification": False, "sub_keys": []},
        "mcp": {"config_path": None},
        "huggingface": {"endpoint": "", "hf_cache_enabled": True},
        "modelscope": {"endpoint": ""},
        "network": {"http_proxy": "", "https_proxy": "", "no_proxy": "", "ca_bundle": ""},
        "sampling": {"max_context_window": 32768, "max_context_window_policy": None, "max_tokens": 32768,
                     "temperature": 1.0, "top_p": 0.95, "top_k": 0, "repetition_penalty": 1.0},
        "logging": {"log_dir": None, "retention_days": 7},
        "claude_code": {"context_scaling_enabled": False, "target_context_size": 200000, "mode": "cloud",
                        "opus_model": None, "sonnet_model": None, "haiku_model": None},
        "integrations": {"codex_model": None, "opencode_model": None, "openclaw_model": None,
                         "hermes_model": None, "pi_model": None, "copilot_model": None,
                         "openclaw_tools_profile": "coding", "markitdown_enabled": True,
                         "markitdown_expose_model": False, "markitdown_max_file_size_mb": 25,
                         "markitdown_max_files_per_request": 5, "markitdown_pdf_processing_engine": "markitdown"},
        "ui": {"language": "en"},
        "idle_timeout": {"idle_timeout_seconds": None},
    }


# Flags that make `serve` save settings.json (0.5.0 `_has_cli_overrides`): note --api-key, --max-concurrent-requests
# and --sse-keepalive-mode are applied but do not trigger a save on their own.
SAVE_TRIGGER_FLAGS = ("model_dir", "port", "host", "log_level", "embedding_batch_size", "memory_guard",
                      "memory_guard_gb", "mcp_config", "hf_endpoint", "hf_cache_enabled", "ms_endpoint",
                      "http_proxy", "https_proxy", "no_proxy", "ca_bundle")


class GlobalSettings:
    """Precedence CLI > OMLX_* env > settings.json > defaults, as 0.5.0 `init_settings`."""

    def __init__(self, base_path: Path) -> None:
        self.base_path = base_path
        self.data = default_global_settings()
        self.file = base_path / "settings.json"
        self.load_warnings: list[str] = []

    def load_file(self) -> None:
        if not self.file.exists():
            return
        try:
            raw = json.loads(self.file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            self.load_warnings.append(f"Failed to parse settings file {self.file}: {e}")
            return
        except OSError as e:
            self.load_warnings.append(f"Failed to read settings file {self.file}: {e}")
            return
        if not isinstance(raw, dict):
            return
        for section, values in raw.items():
            target = self.data.get(section)
            if isinstance(target, dict) and isinstance(values, dict):
                for k, v in values.items():
                    if k in target:
                        target[k] = v
        # Backward compatibility with a bare model_dir, as oMLX does.
        m = self.data["model"]
        if not m["model_dirs"] and m.get("model_dir"):
            m["model_dirs"] = [m["model_dir"]]
        if isinstance(self.data["server"].get("host"), list):
            self.data["server"]["host"] = ", ".join(self.data["server"]["host"])

    def apply_env(self) -> None:
        env = os.environ
        srv, sched, auth = self.data["server"], self.data["scheduler"], self.data["auth"]
        if env.get("OMLX_HOST"):
            srv["host"] = env["OMLX_HOST"]
        if env.get("OMLX_PORT"):
            with contextlib.suppress(ValueError):
                srv["port"] = int(env["OMLX_PORT"])
        if env.get("OMLX_LOG_LEVEL"):
            srv["log_level"] = env["OMLX_LOG_LEVEL"].lower()
        if env.get("OMLX_MODEL_DIR"):
            dirs = [d.strip() for d in env["OMLX_MODEL_DIR"].split(",") if d.strip()]
            self.data["model"]["model_dirs"] = dirs
            self.data["model"]["model_dir"] = dirs[0] if dirs else None
        mcr = env.get("OMLX_MAX_CONCURRENT_REQUESTS") or env.get("OMLX_MAX_NUM_SEQS")
        if mcr:
            with contextlib.suppress(ValueError):
                sched["max_concurrent_requests"] = int(mcr)
        if env.get("OMLX_API_KEY"):
            auth["api_key"] = env["OMLX_API_KEY"]
        if env.get("OMLX_LOG_DIR"):
            self.data["logging"]["log_dir"] = env["OMLX_LOG_DIR"]
        if env.get("OMLX_LOG_RETENTION_DAYS"):
            with contextlib.suppress(ValueError):
                self.data["logging"]["retention_days"] = int(env["OMLX_LOG_RETENTION_DAYS"])
        if env.get("OMLX_CACHE_ENABLED"):
            self.data["cache"]["enabled"] = env["OMLX_CACHE_ENABLED"].lower() in ("true", "1", "yes")
        if env.get("OMLX_SSD_CACHE_DIR"):
            self.data["cache"]["ssd_cache_dir"] = env["OMLX_SSD_CACHE_DIR"]

    def apply_cli(self, a: argparse.Namespace) -> None:
        srv = self.data["server"]
        if a.host is not None:
            srv["host"] = a.host
        if a.port is not None:
            srv["port"] = a.port
        if a.log_level is not None:
            srv["log_level"] = a.log_level
        if a.sse_keepalive_mode is not None:
            srv["sse_keepalive_mode"] = a.sse_keepalive_mode
        if a.model_dir is not None:
            dirs = [d.strip() for d in a.model_dir.split(",") if d.strip()]
            self.data["model"]["model_dirs"] = dirs
            self.data["model"]["model_dir"] = dirs[0] if dirs else None
        if a.max_concurrent_requests is not None:
            self.data["scheduler"]["max_concurrent_requests"] = a.max_concurrent_requests
        if a.embedding_batch_size is not None:
            self.data["scheduler"]["embedding_batch_size"] = a.embedding_batch_size
        if a.memory_guard is not None:
            self.data["memory"]["memory_guard_tier"] = a.memory_guard
        if a.memory_guard_gb is not None:
            self.data["memory"]["memory_guard_tier"] = "custom"
            self.data["memory"]["memory_guard_custom_ceiling_gb"] = float(a.memory_guard_gb)
        if a.initial_cache_blocks is not None:
            self.data["cache"]["initial_cache_blocks"] = a.initial_cache_blocks
        if a.api_key is not None:
            self.data["auth"]["api_key"] = a.api_key
        if a.mcp_config is not None:
            self.data["mcp"]["config_path"] = a.mcp_config
        if a.hf_endpoint is not None:
            self.data["huggingface"]["endpoint"] = a.hf_endpoint
        if a.hf_cache_enabled is not None:
            self.data["huggingface"]["hf_cache_enabled"] = a.hf_cache_enabled
        if a.ms_endpoint is not None:
            self.data["modelscope"]["endpoint"] = a.ms_endpoint
        for key in ("http_proxy", "https_proxy", "no_proxy", "ca_bundle"):
            if getattr(a, key) is not None:
                self.data["network"][key] = getattr(a, key)

    def validate(self) -> list[str]:
        """0.5.0's checks and messages (its sets print in hash order; here in a fixed one)."""
        errors = []
        srv, mem = self.data["server"], self.data["memory"]
        if not isinstance(srv["port"], int) or not 1 <= srv["port"] <= 65535:
            errors.append(f"Invalid port: {srv['port']} (must be 1-65535)")
        levels = {"trace", "debug", "info", "warning", "error", "critical"}
        if str(srv["log_level"]).lower() not in levels:
            errors.append(f"Invalid log_level: {srv['log_level']} (must be one of {sorted(levels)})")
        modes = {"chunk", "comment", "off"}
        if srv["sse_keepalive_mode"] not in modes:
            errors.append(f"Invalid sse_keepalive_mode: {srv['sse_keepalive_mode']} (must be one of {sorted(modes)})")
        tiers = ["aggressive", "balanced", "custom", "safe"]
        if mem["memory_guard_tier"] not in tiers:
            errors.append(f"Invalid memory_guard_tier: {mem['memory_guard_tier']} (must be one of {tiers})")
        elif mem["memory_guard_tier"] == "custom" and not float(mem["memory_guard_custom_ceiling_gb"] or 0) > 0:
            errors.append("memory_guard_custom_ceiling_gb must be > 0 when memory_guard_tier is 'custom'")
        mcr = self.data["scheduler"]["max_concurrent_requests"]
        if not isinstance(mcr, int) or mcr < 1:
            errors.append(f"Invalid max_concurrent_requests: {mcr} (must be > 0)")
        return errors

    def ensure_directories(self) -> None:
        """Create base, cache, log and model dirs; model_dirs becomes the usable resolved dirs (as oMLX)."""
        for d in (self.base_path, self.ssd_cache_dir, self.log_dir):
            if d is not None:
                d.mkdir(parents=True, exist_ok=True)
        valid = []
        for d in self.model_dirs:
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                logging.getLogger("omlx.settings").warning(f"Model directory unavailable, skipping: {d} ({e})")
                continue
            valid.append(str(d))
        self.data["model"]["model_dirs"] = valid
        self.data["model"]["model_dir"] = None

    def save(self) -> None:
        self.ensure_directories()
        m = self.data["model"]
        m["model_dir"] = m["model_dirs"][0] if m["model_dirs"] else m.get("model_dir")
        self.file.write_text(json.dumps(self.data, indent=2), encoding="utf-8")
        logging.getLogger("omlx.settings").info(f"Saved settings to {self.file}")

    # Accessors used by the server.
    @property
    def log_dir(self) -> Path:
        d = self.data["logging"].get("log_dir")
        return Path(d).expanduser() if d else self.base_path / "logs"

    @property
    def model_dirs(self) -> list[Path]:
        dirs = self.data["model"]["model_dirs"]
        if dirs:
            return [Path(d).expanduser().resolve() for d in dirs]
        return [self.base_path / "models"]

    @property
    def ssd_cache_dir(self) -> Path | None:
        c = self.data["cache"]
        if not c["enabled"]:
            return None
        return Path(c["ssd_cache_dir"]).expanduser() if c["ssd_cache_dir"] else self.base_path / "cache"

    def memory_ceiling(self) -> int:
        mem = self.data["memory"]
        if mem["memory_guard_tier"] == "custom" and mem["memory_guard_custom_ceiling_gb"]:
            return int(float(mem["memory_guard_custom_ceiling_gb"]) * 1024**3)
        share = {"safe": 0.5, "balanced": 0.65, "aggressive": 0.8}.get(mem["memory_guard_tier"], 0.65)
        return int(total_memory_bytes() * share)


# ---------------------------------------------------------------------------------------------------------------
# Models and the engine pool (no engine: a loaded flag, sizes and timings).
# ---------------------------------------------------------------------------------------------------------------
def safetensors_data_bytes(path: Path) -> int:
    """Tensor bytes of a .safetensors file (file size minus its JSON header)."""
    try:
        with path.open("rb") as f:
            (hlen,) = struct.unpack("<Q", f.read(8))
        return max(0, path.stat().st_size - 8 - hlen)
    except (OSError, struct.error):
        return 0


def truncated_weights(model_dir: Path) -> str | None:
    """A load error for a safetensors file shorter than its header says (a truncated download), else None."""
    for st in sorted(model_dir.glob("*.safetensors")):
        try:
            with st.open("rb") as f:
                (hlen,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(hlen))
            need = max((int(v["data_offsets"][1]) for k, v in header.items()
                        if k != "__metadata__" and isinstance(v, dict)), default=0)
        except (OSError, struct.error, ValueError, KeyError, TypeError, IndexError):
            return f"[load_safetensors] Invalid safetensors header in {st}"
        if st.stat().st_size - 8 - hlen < need:
            return f"[load_safetensors] Failed to read {need} bytes of tensor data from {st} (file truncated)"
    return None


def safetensors_keys(model_dir: Path) -> list[str]:
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        with contextlib.suppress(Exception):
            return list(json.loads(index.read_text()).get("weight_map", {}))
        return []
    keys: list[str] = []
    for st in sorted(model_dir.glob("*.safetensors")):
        try:
            with st.open("rb") as f:
                (hlen,) = struct.unpack("<Q", f.read(8))
                keys.extend(json.loads(f.read(hlen)))
        except (OSError, struct.error, ValueError):
            continue
    return keys


@dataclass
class ModelEntry:
    model_id: str
    model_path: Path
    config: dict[str, Any]
    estimated_size: int
    actual_weight_bytes: int
    model_type: str = "llm"
    engine_type: str = "batched"
    config_model_type: str = ""
    is_pinned: bool = False
    loaded: bool = False
    is_loading: bool = False
    loading_started_at: float | None = None
    actual_size: int | None = None
    last_access: float = 0.0
    in_use: int = 0
    signature: tuple | None = None
    load_failure: str | None = None

    @property
    def standin(self) -> dict[str, Any]:
        """Stand-in knobs a test puts in the model's config.json under "omlx_standin"."""
        v = self.config.get("omlx_standin")
        return v if isinstance(v, dict) else {}

    @property
    def max_model_len(self) -> int | None:
        for key in ("max_position_embeddings", "max_seq_len", "seq_length"):
            if isinstance(self.config.get(key), int):
                return self.config[key]
        tc = self.config.get("text_config")
        if isinstance(tc, dict) and isinstance(tc.get("max_position_embeddings"), int):
            return tc["max_position_embeddings"]
        return None


def detect_model_type(config: dict[str, Any]) -> str:
    mt = str(config.get("model_type", "")).lower()
    if "vision_config" in config or mt.endswith("_vl") or "llava" in mt:
        return "vlm"
    if mt in ("bert", "xlm-roberta", "modernbert") or "embedding" in mt:
        return "embedding"
    return "llm"


def discover_models(model_dirs: list[Path]) -> dict[str, ModelEntry]:
    entries: dict[str, ModelEntry] = {}
    for root in model_dirs:
        if not root.is_dir():
            continue
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            cfg_path = d / "config.json"
            if not cfg_path.is_file():
                continue
            try:
                config = json.loads(cfg_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(config, dict):
                continue
            weights = sorted(d.glob("*.safetensors"))
            file_bytes = sum(w.stat().st_size for w in weights)
            if not file_bytes:  # 0.5.0 falls back to *.bin, then to safetensors in subdirectories
                file_bytes = sum(w.stat().st_size for w in d.glob("*.bin")
                                 if "optimizer" not in w.name.lower() and "training" not in w.name.lower())
            if not file_bytes:
                file_bytes = sum(w.stat().st_size for w in d.glob("**/*.safetensors"))
            knobs = config.get("omlx_standin") if isinstance(config.get("omlx_standin"), dict) else {}
            if "size_bytes" in knobs:  # a test may declare a huge model without writing its weights
                file_bytes = int(knobs["size_bytes"])
            if not file_bytes:  # measured: logged at every discovery refresh, the directory skipped
                logging.getLogger("omlx.model_discovery").error(
                    f"Failed to discover model {d.name}: No model weights found in {d}")
                continue
            mt = detect_model_type(config)
            entries[d.name] = ModelEntry(
                model_id=d.name, model_path=d, config=config,
                estimated_size=int(file_bytes * 1.05),
                actual_weight_bytes=int(knobs.get("size_bytes", 0)) or sum(safetensors_data_bytes(w) for w in weights),
                model_type=mt, engine_type=MODEL_TYPE_TO_ENGINE.get(mt, "batched"),
                config_model_type=str(config.get("model_type", "")),
            )
    return entries


def mtp_compat(entry: ModelEntry) -> tuple[bool, str]:
    cfg = entry.config
    tc = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}

    def heads(c: dict[str, Any]) -> bool:
        return int(c.get("mtp_num_hidden_layers", 0) or 0) > 0 or int(c.get("num_nextn_predict_layers", 0) or 0) > 0

    mt = cfg.get("model_type")
    if not (heads(cfg) or heads(tc)):
        return False, "model has no MTP heads in config"
    if not (isinstance(mt, str) and (mt.startswith(("qwen3_5", "qwen3_6", "deepseek_v4")) or mt == "glm_moe_dsa")):
        return False, (f"model_type={mt!r} is not on the MTP whitelist "
                       "(supported: qwen3_5*, qwen3_6*, deepseek_v4*)")
    if not any("mtp." in k for k in safetensors_keys(entry.model_path)):
        return False, ("Config declares MTP layers but the converted weights are missing mtp.* tensors. "
                       "Re-convert from HF with a converter that preserves MTP weights.")
    return True, ""


def dflash_compat(entry: ModelEntry) -> tuple[bool, str]:
    mt = str(entry.config.get("model_type") or "").lower()
    if "qwen" in mt or mt in ("gemma4", "gemma4_text"):
        return True, ""
    return False, f"DFlash supports only Qwen and Gemma4 models (model_type='{entry.config.get('model_type', '')}')"


def runtime_signature(s: dict[str, Any]) -> tuple:
    """The load-time variant of a model's settings (0.5.0 `_engine_runtime_signature`, simplified)."""
    sig: list[tuple[str, Any]] = [("trust_remote_code", bool(s.get("trust_remote_code"))),
                                  ("index_cache_freq", s.get("index_cache_freq") if (s.get("index_cache_freq") or 0) >= 2 else None),
                                  ("mtp_enabled", bool(s.get("mtp_enabled")))]
    if s.get("turboquant_kv_enabled"):
        sig += [("turboquant_kv_enabled", True), ("turboquant_kv_bits", s.get("turboquant_kv_bits", 4)),
                ("turboquant_skip_last", s.get("turboquant_skip_last", True))]
    if s.get("specprefill_enabled") and s.get("specprefill_draft_model"):
        sig += [(k, s.get(k)) for k in ("specprefill_draft_model", "specprefill_keep_pct", "specprefill_threshold")]
    if s.get("dflash_enabled") and s.get("dflash_draft_model"):
        sig += [(k, s.get(k)) for k, _ in MODEL_SETTINGS_FIELDS if k.startswith("dflash_")]
    if s.get("vlm_mtp_enabled") and s.get("vlm_mtp_draft_model"):
        sig += [(k, s.get(k)) for k in ("vlm_mtp_draft_model", "vlm_mtp_draft_block_size")]
    return tuple((k, json.dumps(v, sort_keys=True)) for k, v in sig)


class HTTPError(Exception):
    def __init__(self, status: int, detail: Any, *, unhandled: bool = False, ascii_arrow: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(str(detail))
        self.status, self.detail, self.unhandled, self.ascii_arrow = status, detail, unhandled, ascii_arrow
        self.headers = headers or {}


@dataclass
class Faults:
    """Injected misbehaviour, set by `/standin/*` routes or OMLX_STANDIN_* variables at start."""

    wedged: threading.Event = field(default_factory=threading.Event)  # set = completions hang
    unwedge: threading.Event = field(default_factory=threading.Event)
    cache_corruption: int = 0  # next N completions fail with the corruption sequence
    corruption_error: str = "[broadcast_shapes] Shapes (1,4,7,16) and (2,4,7,16) cannot be broadcast."
    load_seconds: float = 0.0
    tokens_per_second: float = 400.0
    # Measured on 0.5.0: 128 generated tokens arrive in 2-4 SSE content chunks; one delta per this many seconds.
    chunk_seconds: float = 0.1
    exit_on_load: int | None = None


class Pool:
    """Models, their settings, loads/unloads, request metrics."""

    def __init__(self, gs: GlobalSettings, faults: Faults) -> None:
        self.gs = gs
        self.faults = faults
        self.log = logging.getLogger("omlx.engine_pool")
        self.lock = threading.RLock()  # state
        self.load_lock = threading.Lock()  # oMLX's engine-pool asyncio lock: loads are serialized
        self.entries: dict[str, ModelEntry] = {}
        self.settings: dict[str, dict[str, Any]] = {}
        self.settings_file = gs.base_path / "model_settings.json"
        self.default_model: str | None = None
        self.load_observations = 0
        self.load_spg: float | None = None
        self.started = time.time()
        self.metrics = {"total_requests": 0, "total_prompt_tokens": 0, "total_completion_tokens": 0,
                        "prefill_tps": [], "gen_tps": []}
        self.active = 0
        self.waiting = 0
        self.slots = threading.BoundedSemaphore(int(gs.data["scheduler"]["max_concurrent_requests"]))

    def count(self, name: str, delta: int) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + delta)

    # model_settings.json ---------------------------------------------------------------------------------------
    def load_settings(self) -> None:
        log = logging.getLogger("omlx.model_settings")
        self.settings = {}
        if not self.settings_file.exists():
            return
        try:
            data = json.loads(self.settings_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            log.error(f"Invalid JSON in settings file: {e}")
            return
        except OSError as e:
            log.error(f"Failed to load settings file: {e}")
            return
        try:
            version = data.get("version", 1)
            if version != 1:
                log.warning(f"Settings file version {version} differs from current 1")
            for model_id, block in data.get("models", {}).items():
                try:
                    if not isinstance(block, dict):
                        raise TypeError(f"ModelSettings() argument after ** must be a mapping, not {type(block).__name__}")
                    self.settings[model_id] = settings_from_dict(block)
                except Exception as e:  # oMLX logs and drops the whole block
                    log.warning(f"Failed to load settings for model '{model_id}': {e}")
            log.info(f"Loaded settings for {len(self.settings)} models")
        except Exception as e:
            log.error(f"Failed to load settings file: {e}")
            self.settings = {}

    def save_settings(self) -> None:
        """Write the whole file from memory (indent=2, None omitted), via model_settings.tmp -> replace."""
        data = {"version": 1, "models": {mid: settings_to_dict(s) for mid, s in self.settings.items()}}
        tmp = self.settings_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.settings_file)

    def get_settings(self, model_id: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.settings.get(model_id) or MODEL_SETTINGS_DEFAULTS)

    # discovery ---------------------------------------------------------------------------------------------------
    def discover(self) -> None:
        dlog = logging.getLogger("omlx.model_discovery")
        found = discover_models(self.gs.model_dirs)
        for mid, e in found.items():
            dlog.info(f"Discovered model: {mid} (type: {e.model_type}, engine: {e.engine_type}, "
                      f"size: {e.estimated_size / 1024**3:.2f}GB)")
            s = self.settings.get(mid)
            if s and s.get("model_type_override") in MODEL_TYPE_TO_ENGINE:
                e.model_type = s["model_type_override"]
                e.engine_type = MODEL_TYPE_TO_ENGINE[e.model_type]
            if s and s.get("is_pinned"):
                e.is_pinned = True
                self.log.info(f"Pinned model: {mid}")
        self.entries = found
        self.log.info(f"Discovered {len(found)} models")
        self.default_model = next((m for m, s in self.settings.items() if s.get("is_default") and m in found),
                                  next(iter(sorted(found)), None))

    def alias_of(self, model_id: str) -> str | None:
        return (self.settings.get(model_id) or {}).get("model_alias")

    def resolve(self, name: str) -> str | None:
        """Request model name → directory id (dir name or alias)."""
        if name in self.entries:
            return name
        for mid, s in self.settings.items():
            if s.get("model_alias") == name and mid in self.entries:
                return mid
        if "/" in name:
            return self.resolve(name.split("/", 1)[1])
        return None

    def available_ids(self) -> list[str]:
        return sorted(self.entries)

    # memory ------------------------------------------------------------------------------------------------------
    @property
    def current_model_memory(self) -> int:
        return sum(e.estimated_size for e in self.entries.values() if e.loaded)

    # load / unload -----------------------------------------------------------------------------------------------
    def ensure_loaded(self, model_id: str, *, for_request: bool = False) -> float:
        """Load (or variant-reload) a model; returns seconds spent loading. Raises HTTPError like 0.5.0.

        Like 0.5.0's get_engine, this runs under one pool-wide lock held for the whole load: a second load, or a
        request to another (loaded) model, waits until the running load is done."""
        with self.load_lock:
            return self._ensure_loaded(model_id, for_request=for_request)

    def _ensure_loaded(self, model_id: str, *, for_request: bool) -> float:
        with self.lock:
            e = self.entries.get(model_id)
            if e is None:
                raise HTTPError(404, f"Model '{model_id}' not found. Available models: "
                                     f"{', '.join(self.available_ids()) or '(none)'}")
            expected = runtime_signature(self.get_settings(model_id))
            if e.loaded and e.signature is not None and e.signature != expected:
                if e.in_use > 0:
                    raise HTTPError(409, f"Model '{model_id}' is busy; cannot reload runtime settings variant "
                                         "until active requests finish or are aborted")
                self.log.info(f"Runtime settings variant changed for {model_id}; unloading before reload.")
                self._unload_locked(e)
            if e.loaded:
                e.last_access = time.time()
                return 0.0
            owner = not e.is_loading
            if not owner and not for_request:
                raise HTTPError(409, f"Model '{model_id}' is already being loaded")
            if owner:
                if e.load_failure:
                    self.log.warning(f"Skipping load retry for '{model_id}' after cached failure: {e.load_failure}")
                    raise HTTPError(409, f"Model '{model_id}' is unavailable after a previous load failure: "
                                         f"{e.load_failure}. Reload models after fixing the files to retry.")
                ceiling = self.gs.memory_ceiling()
                if e.estimated_size > ceiling:
                    raise HTTPError(507, f"Model '{model_id}' ({format_size(e.estimated_size)}) does not fit under "
                                         f"the memory ceiling ({format_size(ceiling)}). Free system memory or "
                                         "lower memory_guard_tier.")
                self._evict_for(e, ceiling)
                e.is_loading = True
                e.loading_started_at = time.time()
                self.log.info(f"Loading model: {model_id}")
        t0 = time.time()
        if not owner:  # a request arriving mid-load waits for the loader, as get_engine does
            while e.is_loading:
                time.sleep(0.02)
            if not e.loaded:
                raise HTTPError(409, f"Model '{model_id}' is unavailable")
            return time.time() - t0
        # Sleep outside the lock so status routes show is_loading while we "load".
        delay = float(e.standin.get("load_seconds", self.faults.load_seconds))
        deadline = t0 + delay
        while time.time() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.time())))
        with self.lock:
            fail = e.standin.get("load_error") or truncated_weights(e.model_path)
            if self.faults.exit_on_load is not None:
                self.log.error(f"Failed to load model {model_id}: fatal error during load")
                logging.shutdown()
                os._exit(self.faults.exit_on_load)
            e.is_loading = False
            e.loading_started_at = None
            if fail:
                # 0.5.0 (engine_pool.py): logger.exception, the failure cached until the next discovery refresh,
                # and ModelUnavailableError → 409 from the load API (measured: `Model 'ID' failed to load: …`).
                e.load_failure = str(fail)
                self.log.error(f"Failed to load model {model_id}: {fail}")
                self.log.error(f"Model load failed for '{model_id}'; caching failure until next discovery "
                               "refresh\nTraceback (most recent call last):\n  File \"omlx/engine_pool.py\", "
                               f"line 1690, in _load_engine\nValueError: {fail}")
                raise HTTPError(409, f"Model '{model_id}' failed to load: {fail}. Reload models after fixing the "
                                     "files to retry.")
            mt = str(e.config.get("model_type", ""))
            tc = e.config.get("text_config") if isinstance(e.config.get("text_config"), dict) else {}
            if "llama4" in (mt, str(tc.get("model_type", "")).replace("_text", "")) and int(
                    self.gs.data["scheduler"]["max_concurrent_requests"]) > 1:
                logging.getLogger("omlx.scheduler").info(
                    "Llama 4 detected; serializing requests because ChunkedKVCache does not support multi-row "
                    "batching yet")
            e.loaded = True
            e.signature = expected
            e.actual_size = e.actual_weight_bytes
            e.last_access = time.time()
            took = time.time() - t0
            spg = took / max(e.estimated_size / 1024**3, 1e-9)
            self.load_spg = spg if self.load_spg is None else 0.7 * self.load_spg + 0.3 * spg
            self.load_observations += 1
            self.log.info(f"Loaded model: {model_id} (actual: {format_size(e.actual_weight_bytes)}, "
                          f"estimated: {format_size(e.estimated_size)}, total: {format_size(self.current_model_memory)})")
            return took

    def _evict_for(self, e: ModelEntry, ceiling: int) -> None:
        while self.current_model_memory + e.estimated_size > ceiling:
            victims = sorted((x for x in self.entries.values() if x.loaded and not x.is_pinned and x.in_use == 0),
                             key=lambda x: x.last_access)
            if not victims:
                raise HTTPError(507, f"Cannot load '{e.model_id}': needs {format_size(e.estimated_size)}, "
                                     f"{format_size(self.current_model_memory)} in use by pinned or busy models "
                                     f"(ceiling {format_size(ceiling)})")
            v = victims[0]
            self.log.info(f"Evicting '{v.model_id}' to fit '{e.model_id}' under memory ceiling "
                          f"({format_size(self.current_model_memory)} + {format_size(e.estimated_size)} > "
                          f"{format_size(ceiling)})")
            self._unload_locked(v)

    def _unload_locked(self, e: ModelEntry) -> None:
        self.log.info(f"Unloading model: {e.model_id} (immediate abort)")
        freed = e.actual_size or 0
        e.loaded = False
        e.signature = None
        self.log.info(f"Unloaded model: {e.model_id}, freed={format_size(freed + 2048)} "
                      f"(expected>=0.00B), active_memory: 1.03KB (settled)")

    def unload(self, model_id: str) -> None:
        with self.lock:
            e = self.entries.get(model_id)
            if e is None:
                raise HTTPError(404, f"Model not found: {model_id}")
            if not e.loaded:
                raise HTTPError(400, f"Model not loaded: {model_id}")
            self._unload_locked(e)

    def unload_all(self) -> None:
        with self.lock:
            for e in self.entries.values():
                if e.loaded:
                    self._unload_locked(e)

    def preload_pinned(self) -> None:
        for mid, e in sorted(self.entries.items()):
            if e.is_pinned and not e.loaded:
                self.log.info(f"Preloading pinned model: {mid}")
                try:
                    self.ensure_loaded(mid)
                except HTTPError as err:
                    self.log.error(f"Failed to preload pinned model {mid}: {err.detail}")

    def check_ttl(self) -> None:
        """Unload idle models past their ttl_seconds (or the global idle timeout), as 0.5.0 does every second."""
        now = time.time()
        glob = self.gs.data["idle_timeout"].get("idle_timeout_seconds")
        with self.lock:
            for mid, e in self.entries.items():
                if not e.loaded or e.is_loading or e.is_pinned:
                    continue
                ttl = (self.settings.get(mid) or {}).get("ttl_seconds")
                ttl = glob if ttl is None else ttl
                if ttl is None:
                    continue
                idle = now - e.last_access
                if idle < ttl:
                    continue
                if e.in_use > 0:
                    e.last_access = now
                    continue
                self.log.info(f"TTL expired for model '{mid}' (idle {idle:.0f}s > ttl {ttl}s)")
                self._unload_locked(e)

    def status_models(self) -> list[dict[str, Any]]:
        return [{
            "id": mid, "model_path": str(e.model_path), "loaded": e.loaded, "is_loading": e.is_loading,
            "loading_started_at": e.loading_started_at, "estimated_size": e.estimated_size,
            "actual_size": e.actual_size, "pinned": e.is_pinned, "engine_type": e.engine_type,
            "model_type": e.model_type, "config_model_type": e.config_model_type, "is_helper": False,
            "thinking_default": None, "preserve_thinking_default": None, "source_type": "local",
            "source_repo_id": None, "last_access": e.last_access if e.last_access > 0 else None,
        } for mid, e in sorted(self.entries.items())]

    def max_context_window(self, model_id: str) -> int:
        s = self.settings.get(model_id) or {}
        if s.get("max_context_window"):
            return int(s["max_context_window"])
        e = self.entries.get(model_id)
        glob = int(self.gs.data["sampling"]["max_context_window"])
        return min(glob, e.max_model_len) if e and e.max_model_len else glob


# ---------------------------------------------------------------------------------------------------------------
# Canned generation: deterministic words derived from the prompt.
# ---------------------------------------------------------------------------------------------------------------
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "seven", "tiny", "models", "hum", "along", "on", "the", "studio", "shelf", "and", "every", "token", "arrives", "in", "order", "so", "tests", "can", "count", "them"]
REPLY_MARK = re.compile(r"STANDIN-REPLY:\s*(.+)")


def count_tokens(text: str) -> int:
    return max(1, len(re.findall(r"\w+|[^\w\s]", text)))


def canned_tokens(prompt: str, max_tokens: int) -> tuple[list[str], str]:
    """(tokens, finish_reason). `STANDIN-REPLY: text` in the prompt makes the reply exactly that text."""
    m = REPLY_MARK.search(prompt)
    if m:
        words = m.group(1).strip().split(" ")
        toks = [w if i == 0 else " " + w for i, w in enumerate(words)]
    else:
        h = hashlib.sha256(prompt.encode()).digest()
        n = 12 + h[0] % 20
        toks = [(" " if i else "") + WORDS[(h[i % len(h)] + i) % len(WORDS)] for i in range(n)]
    if len(toks) > max_tokens:
        return toks[:max_tokens], "length"
    return toks, "stop"


def message_text(messages: list[Any]) -> str:
    parts = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        c = m.get("content")
        if isinstance(c, list):
            c = " ".join(str(p.get("text", "")) for p in c if isinstance(p, dict))
        parts.append(f"{m.get('role', '')}: {c or ''}")
    return "\n".join(parts)


def tool_arguments(tool: dict[str, Any], prompt: str) -> dict[str, Any]:
    params = (tool.get("function") or {}).get("parameters") or {}
    props = params.get("properties") or {}
    args: dict[str, Any] = {}
    words = [w for w in re.findall(r"[A-Z][a-z]+", prompt)] or ["Paris"]
    for i, (name, spec) in enumerate(props.items()):
        t = (spec or {}).get("type", "string")
        if "enum" in (spec or {}):
            args[name] = spec["enum"][0]
        elif t in ("integer", "number"):
            args[name] = 3
        elif t == "boolean":
            args[name] = True
        else:
            args[name] = words[i % len(words)]
    return args


# ---------------------------------------------------------------------------------------------------------------
# Pydantic-like (lax mode) validation of the admin PUT body, to give FastAPI's 422 replies.
# ---------------------------------------------------------------------------------------------------------------
_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def coerce(kind: str, value: Any) -> tuple[Any, dict[str, str] | None]:
    if value is None:
        return None, None
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, int) and value in (0, 1):
            return bool(value), None
        if isinstance(value, float) and value in (0.0, 1.0):
            return bool(value), None
        if isinstance(value, str):
            if value.lower() in _TRUE:
                return True, None
            if value.lower() in _FALSE:
                return False, None
            return None, {"type": "bool_parsing", "msg": "Input should be a valid boolean, unable to interpret input"}
        return None, {"type": "bool_type", "msg": "Input should be a valid boolean"}
    if kind == "int":
        if isinstance(value, int):  # bool is an int too (pydantic lax mode accepts it)
            return int(value), None
        if isinstance(value, float):
            if value.is_integer():
                return int(value), None
            return None, {"type": "int_from_float", "msg": "Input should be a valid integer, got a number with a fractional part"}
        if isinstance(value, str):
            try:
                return int(value.strip()), None
            except ValueError:
                return None, {"type": "int_parsing", "msg": "Input should be a valid integer, unable to parse string as an integer"}
        return None, {"type": "int_type", "msg": "Input should be a valid integer"}
    if kind == "float":
        if isinstance(value, bool | int | float):
            return float(value), None
        if isinstance(value, str):
            try:
                return float(value.strip()), None
            except ValueError:
                return None, {"type": "float_parsing", "msg": "Input should be a valid number, unable to parse string as a number"}
        return None, {"type": "float_type", "msg": "Input should be a valid number"}
    if kind == "str":
        if isinstance(value, str):
            return value, None
        return None, {"type": "string_type", "msg": "Input should be a valid string"}
    if kind == "dict":
        if isinstance(value, dict):
            return value, None
        return None, {"type": "dict_type", "msg": "Input should be a valid dictionary"}
    if kind == "list[str]":
        if not isinstance(value, list):
            return None, {"type": "list_type", "msg": "Input should be a valid list"}
        if all(isinstance(x, str) for x in value):
            return value, None
        return None, {"type": "string_type", "msg": "Input should be a valid string"}
    return value, None


def validate_put_body(body: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(body, dict):
        return {}, [{"type": "model_attributes_type", "loc": ("body",),
                     "msg": "Input should be a valid dictionary or object to extract fields from", "input": body}]
    out: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for key, value in body.items():
        kind = PUT_FIELDS.get(key)
        if kind is None:
            continue  # pydantic ignores extra keys
        v, err = coerce(kind, value)
        if err:
            errors.append({"type": err["type"], "loc": ("body", key), "msg": err["msg"], "input": value})
        else:
            out[key] = v
    return out, errors


def errors_json(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**e, "loc": list(e["loc"])} for e in errors]


# ---------------------------------------------------------------------------------------------------------------
# The application: routes as in oMLX 0.5.0 (server.py + admin/routes.py).
# ---------------------------------------------------------------------------------------------------------------
class App:
    def __init__(self, gs: GlobalSettings, faults: Faults, file_handler: RotatingServerLog) -> None:
        self.gs = gs
        self.faults = faults
        self.file_handler = file_handler
        self.pool = Pool(gs, faults)
        self.sessions: set[str] = set()
        self.log = logging.getLogger("omlx.server")
        self.shutting_down = threading.Event()

    @property
    def api_key(self) -> str | None:
        return self.gs.data["auth"].get("api_key") or None

    # --- auth ---
    def check_api_key(self, headers: Any) -> None:
        key = self.api_key
        if not key or self.gs.data["auth"].get("skip_api_key_verification"):
            return
        auth = headers.get("Authorization") or ""
        given = auth[7:] if auth.startswith("Bearer ") else headers.get("x-api-key")
        if not given:
            raise HTTPError(401, "API key required")
        subs = [s.get("key") for s in self.gs.data["auth"].get("sub_keys") or [] if isinstance(s, dict)]
        if not (secrets.compare_digest(given, key) or given in subs):
            self.log.warning(f"Rejected API key (fp={hashlib.sha256(given.encode()).hexdigest()[:8]})")
            raise HTTPError(401, "Invalid API key")

    def check_admin(self, headers: Any, *, allow_bearer: bool = False) -> None:
        if self.gs.data["auth"].get("skip_api_key_verification"):
            return
        cookie = headers.get("Cookie") or ""
        for part in cookie.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "omlx_admin_session" and value in self.sessions:
                return
        if allow_bearer and self.api_key:
            auth = headers.get("Authorization") or ""
            if auth.startswith("Bearer ") and secrets.compare_digest(auth[7:], self.api_key):
                return
        raise HTTPError(401, "Admin authentication required", headers={"WWW-Authenticate": "Bearer"})

    # --- simple routes ---
    def health(self) -> dict[str, Any]:
        p = self.pool
        return {"status": "healthy", "default_model": p.default_model,
                "engine_pool": {"model_count": len(p.entries),
                                "loaded_count": sum(1 for e in p.entries.values() if e.loaded),
                                "final_ceiling": self.gs.memory_ceiling(),
                                "current_model_memory": p.current_model_memory},
                "mcp": None}

    def models_list(self) -> dict[str, Any]:
        p = self.pool
        data, favorites = [], set()
        now = int(time.time())
        for mid in sorted(p.entries):
            s = p.settings.get(mid) or {}
            if s.get("is_hidden"):
                continue
            shown = s.get("model_alias") or mid
            if s.get("is_favorite"):
                favorites.add(shown)
            data.append({"id": shown, "object": "model", "created": now, "owned_by": "omlx",
                         "max_model_len": p.max_context_window(mid)})
        data.sort(key=lambda m: m["id"] not in favorites)
        return {"object": "list", "data": data}

    def models_status(self) -> dict[str, Any]:
        p = self.pool
        with p.lock:
            models = p.status_models()
            for m in models:
                s = p.settings.get(m["id"]) or {}
                m["max_context_window"] = p.max_context_window(m["id"])
                if s.get("model_alias"):
                    m["model_alias"] = s["model_alias"]
                m["max_tokens"] = s.get("max_tokens") if s.get("max_tokens") is not None \
                    else self.gs.data["sampling"]["max_tokens"]
            return {"final_ceiling": self.gs.memory_ceiling(), "current_model_memory": p.current_model_memory,
                    "model_count": len(p.entries), "loaded_count": sum(1 for e in p.entries.values() if e.loaded),
                    "load_seconds_per_gb_estimate": p.load_spg, "load_time_observations": p.load_observations,
                    "models": models}

    def api_status(self) -> dict[str, Any]:
        p = self.pool
        mt = p.metrics
        used, ceiling = p.current_model_memory, self.gs.memory_ceiling()

        def avg(xs: list[float]) -> float:
            return round(sum(xs) / len(xs), 1) if xs else 0.0

        return {"status": "ok", "version": VERSION, "uptime_seconds": round(time.time() - p.started, 1),
                "models_discovered": len(p.entries),
                "models_loaded": sum(1 for e in p.entries.values() if e.loaded),
                "models_loading": sum(1 for e in p.entries.values() if e.is_loading),
                "default_model": p.default_model,
                "loaded_models": [m for m, e in sorted(p.entries.items()) if e.loaded],
                "total_requests": mt["total_requests"], "active_requests": p.active,
                "waiting_requests": p.waiting, "total_prompt_tokens": mt["total_prompt_tokens"],
                "total_completion_tokens": mt["total_completion_tokens"], "total_cached_tokens": 0,
                "cache_efficiency": 0.0, "avg_prefill_tps": avg(mt["prefill_tps"]),
                "avg_generation_tps": avg(mt["gen_tps"]), "model_memory_used": used,
                "model_memory_max": ceiling,
                "model_memory_used_formatted": format_size(used) if used else "0B",
                "model_memory_max_formatted": format_size(ceiling) if ceiling else "unlimited"}

    def admin_models(self) -> dict[str, Any]:
        p = self.pool
        out = []
        with p.lock:
            ssd = self.gs.ssd_cache_dir is not None
            for m in p.status_models():
                e = p.entries[m["id"]]
                s = p.settings.get(m["id"])
                d_ok, d_reason = dflash_compat(e)
                m_ok, m_reason = mtp_compat(e)
                item = {
                    "id": m["id"], "model_path": m["model_path"], "display_name": m["id"], "loaded": m["loaded"],
                    "is_loading": m["is_loading"], "estimated_size": m["estimated_size"],
                    "estimated_size_formatted": format_size_admin(m["estimated_size"]),
                    "actual_size": m["actual_size"] or 0,
                    "actual_size_formatted": format_size_admin(m["actual_size"]) if m["actual_size"] else None,
                    "pinned": m["pinned"], "is_default": p.default_model == m["id"],
                    "is_hidden": bool(s and s.get("is_hidden")), "is_favorite": bool(s and s.get("is_favorite")),
                    "is_helper": False, "engine_type": m["engine_type"], "model_type": m["model_type"],
                    "config_model_type": m["config_model_type"], "thinking_default": None,
                    "preserve_thinking_default": None, "source_type": "local", "source_repo_id": None,
                    "last_access": m["last_access"], "dflash_compatible": d_ok,
                    "dflash_compatibility_reason": d_reason, "dflash_ssd_cache_available": ssd,
                    "mtp_compatible": m_ok, "mtp_compatibility_reason": m_reason, "is_paroquant": False,
                    "paroquant_reason": "",
                }
                if s is not None:
                    item["settings"] = dict((k, s.get(k)) for k, _ in MODEL_SETTINGS_FIELDS)
                item["exposed_profiles"] = []
                out.append(item)
        return {"models": out}

    # --- admin PUT settings: the 0.5.0 semantics ---
    def put_settings(self, model_id: str, body: Any) -> dict[str, Any]:
        p = self.pool
        with p.lock:
            e = p.entries.get(model_id)
            if e is None:
                raise HTTPError(404, f"Model not found: {model_id}")
            req, errors = validate_put_body(body)
            if errors:
                raise HTTPError(422, errors)
            cur = p.get_settings(model_id)
            prev_engine = e.engine_type
            sent = set(req)

            def after(key: str) -> Any:
                return req[key] if key in sent else cur[key]

            if "model_alias" in sent:
                alias = (req["model_alias"] or "").strip() or None
                if alias is not None:
                    for mid, ms in p.settings.items():
                        if mid != model_id and ms.get("model_alias") == alias:
                            raise HTTPError(400, f"Alias '{alias}' is already used by model '{mid}'")
                    for mid in p.entries:
                        if mid != model_id and mid == alias:
                            raise HTTPError(400, f"Alias '{alias}' conflicts with model directory name '{mid}'")
                cur["model_alias"] = alias
            if "model_type_override" in sent:
                ov = req["model_type_override"] or None
                if ov is not None and ov not in MODEL_TYPE_TO_ENGINE:
                    raise HTTPError(400, f"Invalid model_type_override: {req['model_type_override']}")
                cur["model_type_override"] = ov
                e.model_type = ov or detect_model_type(e.config)
                e.engine_type = MODEL_TYPE_TO_ENGINE.get(e.model_type, "batched")
            for k in ("max_context_window", "max_tokens", "temperature", "top_p", "top_k", "repetition_penalty",
                      "min_p", "presence_penalty", "enable_thinking", "chat_template_kwargs", "forced_ct_kwargs",
                      "ttl_seconds", "vlm_mtp_draft_block_size"):
                if k in sent:
                    cur[k] = req[k]
            if "force_sampling" in sent:
                cur["force_sampling"] = req["force_sampling"]
            if "max_tool_result_tokens" in sent:
                v = req["max_tool_result_tokens"]
                cur["max_tool_result_tokens"] = v if v and v > 0 else None
            if "thinking_budget_enabled" in sent:
                cur["thinking_budget_enabled"] = req["thinking_budget_enabled"] or False
            if "thinking_budget_tokens" in sent:
                v = req["thinking_budget_tokens"]
                cur["thinking_budget_tokens"] = v if v and v > 0 else None
            if "index_cache_freq" in sent:
                v = req["index_cache_freq"]
                cur["index_cache_freq"] = v if v and v >= 2 else None
            if "turboquant_kv_enabled" in sent:
                cur["turboquant_kv_enabled"] = req["turboquant_kv_enabled"] or False
            if "turboquant_kv_bits" in sent:
                cur["turboquant_kv_bits"] = req["turboquant_kv_bits"] or 4
            if "specprefill_enabled" in sent:
                cur["specprefill_enabled"] = req["specprefill_enabled"] or False
            for k in ("specprefill_draft_model", "specprefill_keep_pct", "specprefill_threshold",
                      "dflash_draft_model", "vlm_mtp_draft_model", "reasoning_parser"):
                if k in sent:
                    cur[k] = req[k] or None
            if "dflash_enabled" in sent:
                on = bool(req["dflash_enabled"])
                if on:
                    ok, reason = dflash_compat(e)
                    if not ok:
                        raise HTTPError(400, reason)
                cur["dflash_enabled"] = on
            if "dflash_draft_quant_enabled" in sent:
                v = req["dflash_draft_quant_enabled"]
                cur["dflash_draft_quant_enabled"] = bool(v) if v is not None else None
            for k in ("dflash_draft_quant_weight_bits", "dflash_draft_quant_activation_bits",
                      "dflash_draft_quant_group_size"):
                if k in sent:
                    cur[k] = int(req[k]) if req[k] is not None else None
            if "dflash_max_ctx" in sent:
                v = req["dflash_max_ctx"]
                cur["dflash_max_ctx"] = v if v and v > 0 else None
            if "dflash_in_memory_cache" in sent:
                cur["dflash_in_memory_cache"] = bool(req["dflash_in_memory_cache"])
            if "dflash_in_memory_cache_max_entries" in sent:
                v = req["dflash_in_memory_cache_max_entries"]
                cur["dflash_in_memory_cache_max_entries"] = int(v) if v and v > 0 else 4
            if "dflash_in_memory_cache_max_bytes" in sent and req["dflash_in_memory_cache_max_bytes"]:
                cur["dflash_in_memory_cache_max_bytes"] = int(req["dflash_in_memory_cache_max_bytes"])
            if "dflash_ssd_cache" in sent:
                want = bool(req["dflash_ssd_cache"])
                if want:
                    if not bool(after("dflash_in_memory_cache")):
                        raise HTTPError(400, "DFlash SSD cache requires the in-memory cache to be enabled.")
                    if self.gs.ssd_cache_dir is None:
                        raise HTTPError(400, "DFlash SSD cache requires oMLX paged SSD cache to be enabled "
                                             "(set --paged-ssd-cache-dir or configure it in settings).")
                cur["dflash_ssd_cache"] = want
            if "dflash_ssd_cache_max_bytes" in sent and req["dflash_ssd_cache_max_bytes"]:
                cur["dflash_ssd_cache_max_bytes"] = int(req["dflash_ssd_cache_max_bytes"])
            if "dflash_draft_window_size" in sent:
                v = req["dflash_draft_window_size"]
                cur["dflash_draft_window_size"] = int(v) if v and v > 0 else None
            if "dflash_draft_sink_size" in sent:
                v = req["dflash_draft_sink_size"]
                cur["dflash_draft_sink_size"] = int(v) if v is not None and v >= 0 else None
            if "dflash_verify_mode" in sent:
                v = req["dflash_verify_mode"]
                cur["dflash_verify_mode"] = v if v in ("dflash", "adaptive", "ddtree", "off") else None
            if "mtp_enabled" in sent:
                on = bool(req["mtp_enabled"])
                if on:
                    cfg = e.config
                    mt = cfg.get("model_type")
                    ok, reason = mtp_compat(e)
                    if not ok:
                        if reason.startswith("Config declares"):
                            raise HTTPError(400, "Config declares MTP layers but the converted weights are missing "
                                                 "mtp.* tensors. Re-convert from HF with a converter that preserves "
                                                 "MTP weights. The default mlx-lm sanitize() path strips them.")
                        raise HTTPError(400, f"Model is not MTP-compatible (model_type={mt!r}, "
                                             f"mtp_num_hidden_layers={cfg.get('mtp_num_hidden_layers', 0)}). "
                                             "Native MTP requires Qwen3.5/3.6 or DeepSeek-V4 with MTP heads.")
                    if bool(after("dflash_enabled")):
                        raise HTTPError(400, "MTP and DFlash cannot both be enabled; choose one "
                                             "speculative-decoding path.")
                cur["mtp_enabled"] = on
            if "vlm_mtp_enabled" in sent:
                on = bool(req["vlm_mtp_enabled"])
                if on:
                    if not after("vlm_mtp_draft_model"):
                        raise HTTPError(400, "vlm_mtp_enabled requires vlm_mtp_draft_model (path to a "
                                             "gemma4_assistant drafter, e.g. 'gemma-4-26B-A4B-it-assistant').")
                    for other, label in (("dflash_enabled", "DFlash"), ("specprefill_enabled", "SpecPrefill"),
                                         ("mtp_enabled", "MTP"), ("turboquant_kv_enabled", "TurboQuant KV")):
                        if bool(after(other)):
                            raise HTTPError(400, f"vlm_mtp_enabled and {label} cannot both be enabled; choose "
                                                 "one speculative-decoding path.")
                cur["vlm_mtp_enabled"] = on
            if "guided_grammar_enabled" in sent:
                cur["guided_grammar_enabled"] = req["guided_grammar_enabled"] or False
            if "guided_grammar" in sent:
                g = req["guided_grammar"].strip() if req["guided_grammar"] else None
                cur["guided_grammar"] = g or None
            # These four ignore an explicit null (0.5.0 checks `is not None`, not "was sent").
            if req.get("is_pinned") is not None:
                cur["is_pinned"] = req["is_pinned"]
                e.is_pinned = req["is_pinned"]
            if req.get("is_default") is not None:
                cur["is_default"] = req["is_default"]
                if req["is_default"]:
                    p.default_model = model_id
            for k in ("is_hidden", "is_favorite"):
                if req.get(k) is not None:
                    cur[k] = req[k]
            if "trust_remote_code" in sent:
                cur["trust_remote_code"] = bool(req["trust_remote_code"])
            try:
                new = settings_from_dict(cur)
            except SettingsConflict as err:  # FastAPI turns this into an unhandled 500
                raise HTTPError(500, "Internal server error", unhandled=True) from err
            if new["is_default"]:
                for mid, s in p.settings.items():
                    if mid != model_id and s.get("is_default"):
                        s["is_default"] = False
                        logging.getLogger("omlx.model_settings").info(
                            f"Cleared is_default from model '{mid}' (new default: '{model_id}')")
            p.settings[model_id] = new
            logging.getLogger("omlx.model_settings").info(f"Updated settings for model '{model_id}'")
            p.save_settings()
            requires_reload = e.loaded and (
                ("model_type_override" in sent and e.engine_type != prev_engine) or bool(sent & UNLOAD_KEYS))
            auto_unloaded = auto_reloaded = False
            if requires_reload:
                logging.getLogger("omlx.admin.routes").info(
                    f"Settings changed for loaded model {model_id}, auto-unloading.")
                p._unload_locked(e)
                auto_unloaded = True
        if auto_unloaded and e.is_pinned:
            try:
                p.ensure_loaded(model_id)
                auto_reloaded = True
                logging.getLogger("omlx.admin.routes").info(
                    f"Auto-reloaded pinned model {model_id} with new settings.")
            except HTTPError as err:
                logging.getLogger("omlx.admin.routes").warning(
                    f"Auto-reload failed for pinned model {model_id}: {err.detail}")
        return {"success": True, "model_id": model_id, "settings": settings_to_dict(new),
                "model_type": e.model_type, "engine_type": e.engine_type, "requires_reload": requires_reload,
                "auto_unloaded": auto_unloaded, "auto_reloaded": auto_reloaded}

    def reload(self) -> dict[str, Any]:
        p = self.pool
        with p.lock:
            p.load_settings()
            p.unload_all()
            p.discover()
        p.preload_pinned()
        n = len(p.entries)
        return {"status": "ok", "message": f"Re-discovered {n} models from {len(self.gs.model_dirs)} "
                                           f"director{'y' if len(self.gs.model_dirs) == 1 else 'ies'}"}

    def admin_logs(self, query: dict[str, list[str]]) -> dict[str, Any]:
        try:
            lines = int(query.get("lines", ["100"])[0])
        except ValueError as err:
            raise HTTPError(422, [{"type": "int_parsing", "loc": ("query", "lines"),
                                   "msg": "Input should be a valid integer, unable to parse string as an integer",
                                   "input": query["lines"][0]}]) from err
        lines = min(max(1, lines), 10000)
        log_dir = self.gs.log_dir
        files = [f.name for f in log_dir.iterdir()
                 if f.name.startswith("server") and (f.suffix == ".log" or ".log." in f.name)] if log_dir.exists() else []
        files.sort(key=lambda n: (log_dir / n).stat().st_mtime, reverse=True)
        name = query.get("file", [None])[0]
        if name:
            if "/" in name or "\\" in name or ".." in name:
                raise HTTPError(400, "Invalid file name")
            path = log_dir / name
            if not path.exists():
                raise HTTPError(404, f"Log file not found: {name}")
        else:
            path = log_dir / "server.log"
        if path.exists():
            all_lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
            content, total = "".join(all_lines[-lines:]), len(all_lines)
        else:
            content, total = "", 0
        return {"logs": content, "total_lines": total, "log_file": path.name, "available_files": files}


# ---------------------------------------------------------------------------------------------------------------
# HTTP layer.
# ---------------------------------------------------------------------------------------------------------------
def error_type(status: int) -> str:
    return {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 413: "invalid_request_error", 429: "rate_limit_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error")


class ClientGone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    sys_version = ""
    app: App  # set on the class by serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # http.server's own lines are not oMLX's; the access log is written in log_request

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # oMLX 0.5.0 prints no access log, not even at --log-level trace (measured)

    # --- plumbing ---
    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("vary", "Origin")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _start_stream(self, content_type: str, *, sse: bool = False) -> None:
        self.send_response(200)
        if sse:
            self.send_header("x-accel-buffering", "no")
            self.send_header("cache-control", "no-cache")
        self.send_header("content-type", content_type)
        self.send_header("vary", "Origin")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, text: str) -> None:
        data = text.encode()
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError) as e:
            raise ClientGone() from e

    def _end_stream(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _abort_stream(self) -> None:
        """Close mid-body: the client sees 'transfer closed with outstanding read data remaining'."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> tuple[Any, bool]:
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.command == "POST" and self.app.log.isEnabledFor(TRACE):
            self.app.log.log(TRACE, "Incoming %s %s — body: %s", self.command, urlsplit(self.path).path,
                             raw.decode("utf-8", errors="replace"))
        if not raw:
            return None, False
        try:
            return json.loads(raw), True
        except ValueError:
            return raw.decode(errors="replace"), False

    def _error(self, err: HTTPError) -> None:
        method, path = self.command, urlsplit(self.path).path
        log = self.app.log
        is_api = path.startswith("/v1/")
        if err.status == 422 and isinstance(err.detail, list):
            log.warning("%s %s → 422: %s", method, path, err.detail)
            if is_api:
                parts = [f"{' -> '.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.detail]
                param = err.detail[0]["loc"][-1] if err.detail else None
                body = {"error": {"message": "; ".join(parts), "type": "invalid_request_error", "param": param,
                                  "code": None}}
            else:
                body = {"detail": errors_json(err.detail)}
            return self._send_json(422, body)
        if err.unhandled:
            log.error("%s %s → 500 (unhandled): %s", method, path, err.__cause__ or err.detail)
            body = ({"error": {"message": "Internal server error", "type": "server_error", "param": None,
                               "code": None}} if is_api else {"detail": "Internal server error"})
            return self._send_json(500, body)
        admin_expiry = path.startswith("/admin/") and path != "/admin/api/login" and err.status == 401
        if not admin_expiry:
            arrow = "->" if err.ascii_arrow else "→"
            log.warning("%s %s %s %d: %s", method, path, arrow, err.status, err.detail)
        if is_api:
            body = {"error": {"message": err.detail, "type": error_type(err.status), "param": None, "code": None}}
        else:
            body = {"detail": err.detail}
        self._send_json(err.status, body, err.headers)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        try:
            self._route(self.command, path, query)
        except HTTPError as err:
            self._error(err)
        except ClientGone:
            self.close_connection = True
        except Exception as exc:  # the unhandled handler of FastAPI
            self._error(HTTPError(500, str(exc), unhandled=True))

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch  # noqa: N815 - http.server naming

    # --- routing ---
    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        app = self.app
        h = self.headers
        if path.startswith("/standin/"):
            return self._standin(method, path)
        if method == "GET" and path == "/health":
            return self._send_json(200, app.health())
        if method == "GET" and path == "/api/status":
            app.check_api_key(h)
            return self._send_json(200, app.api_status())
        if method == "GET" and path == "/v1/models":
            app.check_api_key(h)
            return self._send_json(200, app.models_list())
        if method == "GET" and path == "/v1/models/status":
            app.check_api_key(h)
            return self._send_json(200, app.models_status())
        m = re.fullmatch(r"/v1/models/(.+)/(load|unload)", path)
        if method == "POST" and m:
            app.check_api_key(h)
            return self._load_unload(m.group(1), m.group(2), admin=False)
        if method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            app.check_api_key(h)
            body, _ = self._read_body()
            return self._completion(body, chat=path == "/v1/chat/completions")
        if method == "POST" and path == "/admin/api/login":
            body, _ = self._read_body()
            return self._login(body)
        if method == "POST" and path == "/admin/api/logout":
            return self._send_json(200, {"success": True}, {"set-cookie": 'omlx_admin_session=""; Max-Age=0; Path=/'})
        if path.startswith("/admin/api/"):
            return self._admin(method, path, query)
        raise HTTPError(404, "Not Found")

    def _admin(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        app = self.app
        m = re.fullmatch(r"/admin/api/models/(.+)/(load|unload)", path)
        if method == "POST" and m:
            app.check_admin(self.headers, allow_bearer=m.group(2) == "load")
            return self._load_unload(m.group(1), m.group(2), admin=True)
        app.check_admin(self.headers)
        if method == "GET" and path == "/admin/api/models":
            return self._send_json(200, app.admin_models())
        m = re.fullmatch(r"/admin/api/models/(.+)/settings", path)
        if method == "PUT" and m:
            body, ok = self._read_body()
            if not ok and body is not None:
                raise HTTPError(422, [{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error",
                                       "input": {}}])
            return self._send_json(200, app.put_settings(m.group(1), body if body is not None else {}))
        if method == "POST" and path == "/admin/api/reload":
            return self._send_json(200, app.reload())
        if method == "GET" and path == "/admin/api/logs":
            return self._send_json(200, app.admin_logs(query))
        raise HTTPError(404, "Not Found")

    def _login(self, body: Any) -> None:
        app = self.app
        if not isinstance(body, dict) or not isinstance(body.get("api_key"), str):
            raise HTTPError(422, [{"type": "missing", "loc": ("body", "api_key"), "msg": "Field required",
                                   "input": body}])
        if not app.api_key:
            raise HTTPError(400, "No API key configured. Please set up an API key first.")
        if not secrets.compare_digest(body["api_key"], app.api_key):
            raise HTTPError(401, "Invalid API key")
        token = secrets.token_urlsafe(24)
        app.sessions.add(token)
        max_age = 30 * 86400 if body.get("remember") else 86400
        self._send_json(200, {"success": True},
                        {"set-cookie": f"omlx_admin_session={token}; HttpOnly; Max-Age={max_age}; Path=/; SameSite=lax"})

    def _load_unload(self, model_id: str, action: str, *, admin: bool) -> None:
        pool = self.app.pool
        if action == "unload":
            pool.unload(model_id)
            if admin:
                logging.getLogger("omlx.admin.routes").info(f"Manually unloaded model: {model_id}")
                return self._send_json(200, {"status": "ok", "model_id": model_id, "message": f"Unloaded {model_id}"})
            return self._send_json(200, {"status": "ok", "model_id": model_id})
        e = pool.entries.get(model_id)
        if e is None:
            raise HTTPError(404, f"Model not found: {model_id}")
        if e.loaded:
            return self._send_json(200, {"status": "ok", "model_id": model_id,
                                         "message": f"Already loaded: {model_id}"})
        if e.is_loading and admin:
            raise HTTPError(409, f"Model is already loading: {model_id}")
        pool.ensure_loaded(model_id)  # /v1: waits for a load in progress, then "Loaded" (0.5.0 does the same)
        if admin:
            logging.getLogger("omlx.admin.routes").info(f"Manually loaded model: {model_id}")
        self._send_json(200, {"status": "ok", "model_id": model_id, "message": f"Loaded {model_id}"})

    # --- completions ---
    def _keepalive_wait(self, until: Any, frame: str | None) -> None:
        """Wait while `until()` is false, sending oMLX's keepalive frame every interval (10 s by default)."""
        interval = env_float("OMLX_STANDIN_KEEPALIVE_SECONDS") or 10.0
        last = time.time()
        while not until() and not self.app.shutting_down.is_set():
            time.sleep(0.05)
            if frame is not None and time.time() - last >= interval:
                self._chunk(frame)
                last = time.time()

    def _completion(self, body: Any, *, chat: bool) -> None:
        app, pool, faults = self.app, self.app.pool, self.app.faults
        if not isinstance(body, dict):
            raise HTTPError(422, [{"type": "model_attributes_type", "loc": ("body",),
                                   "msg": "Input should be a valid dictionary or object to extract fields from",
                                   "input": body}])
        missing = [k for k in (("model", "messages") if chat else ("model", "prompt")) if k not in body]
        if missing:
            raise HTTPError(422, [{"type": "missing", "loc": ("body", k), "msg": "Field required", "input": body}
                                  for k in missing])
        name = str(body["model"])
        model_id = pool.resolve(name)
        if model_id is None:
            raise HTTPError(404, f"Model '{name}' not found. Available models: "
                                 f"{', '.join(pool.available_ids()) or '(none)'}")
        s = pool.get_settings(model_id)
        e = pool.entries[model_id]
        if chat:
            msgs = body.get("messages")
            if not isinstance(msgs, list) or not msgs:
                raise HTTPError(400, "messages must be a non-empty list", ascii_arrow=True)
            prompt = message_text(msgs)
            app.log.debug(f"Chat completion request received: model={name}, messages={len(msgs)}, "
                          f"stream={bool(body.get('stream'))}, max_tokens={body.get('max_tokens')}, "
                          f"temp={body.get('temperature')}")
            for i, msg in enumerate(msgs):
                if isinstance(msg, dict):
                    content = msg.get("content")
                    app.log.log(TRACE, "  Message[%d]: role=%s, content=%s...", i, msg.get("role"),
                                str(content)[:200] if content else "(empty)")
        else:
            pr = body.get("prompt")
            prompt = " ".join(map(str, pr)) if isinstance(pr, list) else str(pr)
        tools = body.get("tools") if chat and isinstance(body.get("tools"), list) and body.get("tools") else None
        prompt_tokens = count_tokens(prompt) + (4 * len(body.get("messages") or []) if chat else 1)
        if tools:
            prompt_tokens += count_tokens(json.dumps(tools))
        req_max = body.get("max_tokens", body.get("max_completion_tokens"))
        max_tokens = int(req_max) if isinstance(req_max, int) and req_max > 0 else int(
            s.get("max_tokens") or app.gs.data["sampling"]["max_tokens"])
        ctx = pool.max_context_window(model_id)
        if prompt_tokens > ctx:
            raise HTTPError(400, f"Prompt too long: {prompt_tokens} tokens exceeds max_context_window of {ctx}",
                            ascii_arrow=True)
        stream = bool(body.get("stream"))
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:8]
        mode = app.gs.data["server"]["sse_keepalive_mode"]
        if stream:
            if mode == "chunk":
                frame: str | None = (
                    'data: {"id":"' + rid + '","object":"chat.completion.chunk","created":0,"model":"keepalive",'
                    '"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
                    if chat else
                    'data: {"id":"cmpl-keepalive","object":"text_completion","created":0,"model":"keepalive",'
                    '"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":null}]}\n\n')
            else:
                frame = ": keep-alive\n\n" if mode == "comment" else None
        else:
            frame = " "  # non-streaming replies are a chunked JSON body led by keepalive spaces
        t_start = time.time()
        # The model is loaded before the response starts: load errors are plain JSON errors.
        load_s = pool.ensure_loaded(model_id, for_request=True)
        e.in_use += 1
        try:
            if stream:
                self._start_stream("text/event-stream; charset=utf-8", sse=True)
            else:
                self._start_stream("application/json")
            if frame is not None:
                self._chunk(frame)
            if faults.wedged.is_set():
                # #1883/#2852: /health stays 200, the request gets headers and keepalives but never an answer.
                self._keepalive_wait(lambda: not faults.wedged.is_set(), frame)
            pool.count("waiting", +1)
            got: list[bool] = []

            def acquired() -> bool:
                if pool.slots.acquire(blocking=False):
                    got.append(True)
                return bool(got)

            try:
                if not acquired():  # --max-concurrent-requests reached: queue, keepalives flowing
                    self._keepalive_wait(acquired, frame)
            finally:
                pool.count("waiting", -1)
            if not got:
                return self._abort_stream()  # shutting down
            pool.count("active", +1)
            try:
                self._generate(body, chat, stream, rid, model_id, prompt, prompt_tokens, max_tokens, tools,
                               load_s, t_start)
            finally:
                pool.count("active", -1)
                pool.slots.release()
        finally:
            e.in_use -= 1
            e.last_access = time.time()

    def _corrupt(self, chat: bool, stream: bool) -> None:
        """The §2.4 cache-corruption sequence, then the request fails the way 0.5.0 fails it."""
        app, faults = self.app, self.app.faults
        sched = logging.getLogger("omlx.scheduler")
        err = faults.corruption_error
        for attempt in range(2):
            time.sleep(0.05)
            sched.warning(f"Cache corruption detected: {err}, clearing cache and re-prefilling...")
            sched.info("Cache recovery completed")
            if attempt == 0:
                sched.info("Rescheduled 1 requests for re-prefill")
        msg = f"Cache corruption not recoverable after retries: {err}"
        if stream:
            app.log.error(f"Error during {'chat ' if chat else 'completion '}streaming: {msg}")
            self._chunk(f"data: {json.dumps({'error': {'message': msg, 'type': 'server_error'}})}\n\n")
            self._chunk("data: [DONE]\n\n")
            return self._end_stream()
        # Non-streaming: the 200 and a keepalive space are already out, so the client sees a cut transfer.
        app.log.error("%s %s → 500 (unhandled): %s", "POST", "/v1/chat/completions" if chat else "/v1/completions",
                      msg)
        uvicorn_line("Exception in ASGI application", "ERROR")
        sys.stderr.write(f"Traceback (most recent call last):\n  File \"omlx/engine_core.py\", line 66, in "
                         f"_raise_output_error\nRuntimeError: {msg}\n")
        sys.stderr.flush()
        self._abort_stream()

    def _generate(self, body: dict[str, Any], chat: bool, stream: bool, rid: str, model_id: str, prompt: str,
                  prompt_tokens: int, max_tokens: int, tools: list[Any] | None, load_s: float,
                  t_start: float) -> None:
        app, pool, faults = self.app, self.app.pool, self.app.faults
        if faults.cache_corruption > 0:
            faults.cache_corruption -= 1
            return self._corrupt(chat, stream)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        entry = pool.entries[model_id]
        tool_mode = str(entry.standin.get("tool_calls", "parsed"))
        tps = float(entry.standin.get("tokens_per_second", faults.tokens_per_second))
        per_token = 1.0 / tps if tps > 0 else 0.0
        chunk_s = float(entry.standin.get("stream_chunk_seconds", faults.chunk_seconds))
        time.sleep(min(0.5, prompt_tokens / 20000.0))  # "prefill"
        t_first = time.time()
        toks, finish = canned_tokens(prompt, max_tokens)
        if (entry.standin.get("reply_tokens") == "max" or os.environ.get("OMLX_STANDIN_REPLY_MAX") == "1") \
                and not REPLY_MARK.search(prompt) and toks:
            # Like the real tiny model, which rarely emits EOS: generate until max_tokens.
            toks = [toks[i % len(toks)] if i < len(toks) else " " + toks[i % len(toks)].strip()
                    for i in range(max_tokens)]
            finish = "length"
        tool_call = None
        if tools and tool_mode != "none":
            tool = tools[0] if isinstance(tools[0], dict) else {}
            name = (tool.get("function") or {}).get("name", "tool")
            args = tool_arguments(tool, prompt)
            call_text = json.dumps({"name": name, "arguments": args})
            if tool_mode == "parsed":
                tool_call = {"id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                             "function": {"name": name, "arguments": json.dumps(args)}}
                finish = "tool_calls"
                toks = [""] * count_tokens(call_text)
            else:  # "text": the call arrives as plain content (Pattern B)
                text = json.dumps({"name": name, "parameters": args})
                toks = [text[i:i + 4] for i in range(0, len(text), 4)]
                finish = "stop"
        completion_tokens = len(toks)
        created = int(time.time())
        model_name = str(body["model"])

        def usage(extra_stream: bool) -> dict[str, Any]:
            total = time.time() - t_start
            gen = max(time.time() - t_first, 1e-6)
            u: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens, "input_tokens": prompt_tokens,
                                 "output_tokens": completion_tokens, "prompt_tokens_details": {"cached_tokens": 0}}
            if load_s > 1.0:
                u["model_load_duration"] = round(load_s, 2)
            if extra_stream:
                ttft = max(t_first - t_start - load_s, 1e-6)
                u.update({"time_to_first_token": round(ttft, 2), "total_time": round(total, 2),
                          "prompt_eval_duration": round(ttft, 2), "generation_duration": round(gen, 2),
                          "prompt_tokens_per_second": round(prompt_tokens / ttft, 2),
                          "generation_tokens_per_second": round(completion_tokens / gen, 2)})
            else:
                u["total_time"] = round(total, 2)
            return u

        if stream:
            obj = "chat.completion.chunk" if chat else "text_completion"

            def emit(choices: list[dict[str, Any]], **extra: Any) -> None:
                # Chat chunks are pydantic dumps (compact); text-completion chunks are json.dumps (spaced, ASCII),
                # and their usage chunk carries a fresh id — as 0.5.0 sends them.
                ident = rid if chat or not extra else "cmpl-" + uuid.uuid4().hex[:8]
                payload = {"id": ident, "object": obj, "created": created, "model": model_name,
                           "choices": choices, **extra}
                text = (json.dumps(payload, separators=(",", ":"), ensure_ascii=False) if chat
                        else json.dumps(payload))
                self._chunk("data: " + text + "\n\n")

            if chat:
                emit([{"index": 0, "delta": {"role": "assistant"}}])
            last_emit, buf = time.time(), ""
            for tok in toks:
                time.sleep(per_token)
                if tool_call is not None:
                    continue  # tool-call tokens are held back until the call completes
                buf += tok
                # oMLX sends what its scheduler produced since the last delta: many tokens per chunk.
                if time.time() - last_emit >= chunk_s:
                    emit([{"index": 0, "delta": {"content": buf}}] if chat else
                         [{"index": 0, "text": buf, "finish_reason": None}])
                    buf, last_emit = "", time.time()
            if chat:
                if tool_call is not None:
                    emit([{"index": 0, "delta": {"tool_calls": [{"index": 0, **tool_call}]}}])
                if buf:
                    emit([{"index": 0, "delta": {"content": buf}}])
                emit([{"index": 0, "delta": {}, "finish_reason": finish}])
            else:
                emit([{"index": 0, "text": buf, "finish_reason": finish}])
            if include_usage:
                emit([], usage=usage(True))
            self._chunk("data: [DONE]\n\n")
            self._end_stream()
        else:
            time.sleep(per_token * len(toks))
            text_out = "".join(toks)
            if chat:
                msg: dict[str, Any] = {"role": "assistant"}
                if tool_call is not None:
                    msg["tool_calls"] = [tool_call]
                else:
                    msg["content"] = text_out
                reply = {"id": rid, "object": "chat.completion", "created": created, "model": model_name,
                         "choices": [{"index": 0, "message": msg, "finish_reason": finish}], "usage": usage(False)}
            else:
                reply = {"id": rid, "object": "text_completion", "created": created, "model": model_name,
                         "choices": [{"index": 0, "text": text_out, "finish_reason": finish}],
                         "usage": usage(False)}
            self._chunk(json.dumps(reply, ensure_ascii=False))
            self._end_stream()
        logging.getLogger("omlx.scheduler").log(TRACE, "Request %s generated text:\n%s", uuid.uuid4(),
                                                 "".join(toks) if tool_call is None else json.dumps(tool_call))
        elapsed = max(time.time() - t_start, 1e-6)
        m = pool.metrics
        m["total_requests"] += 1
        m["total_prompt_tokens"] += prompt_tokens
        m["total_completion_tokens"] += completion_tokens
        m["gen_tps"].append(completion_tokens / max(time.time() - t_first, 1e-6))
        m["prefill_tps"].append(prompt_tokens / max(t_first - t_start, 1e-6))
        rate = completion_tokens / elapsed
        if chat:
            app.log.info(f"Chat completion: {completion_tokens} tokens in {elapsed:.2f}s ({rate:.1f} tok/s), "
                         f"prompt: {prompt_tokens}, finish_reason={finish}, max_tokens={max_tokens}, "
                         f"request_max_tokens={body.get('max_tokens')}")
        else:
            app.log.info(f"Completion: {completion_tokens} tokens in {elapsed:.2f}s ({rate:.1f} tok/s), "
                         f"prompt: {prompt_tokens}")

    # --- stand-in control routes (no auth; loopback tests only) ---
    def _standin(self, method: str, path: str) -> None:
        app, faults = self.app, self.app.faults
        body, _ = self._read_body() if method in ("POST", "PUT") else (None, False)
        body = body if isinstance(body, dict) else {}
        if path == "/standin/state" and method == "GET":
            return self._send_json(200, {
                "standin": True, "pid": os.getpid(), "wedged": faults.wedged.is_set(),
                "cache_corruption": faults.cache_corruption, "load_seconds": faults.load_seconds,
                "tokens_per_second": faults.tokens_per_second, "sessions": len(app.sessions),
                "log_file": str(app.file_handler.baseFilename)})
        if method != "POST":
            raise HTTPError(405, "Method Not Allowed")
        if path == "/standin/wedge":
            if body.get("on", True):
                faults.unwedge.clear()
                faults.wedged.set()
            else:
                faults.wedged.clear()
                faults.unwedge.set()
            return self._send_json(200, {"wedged": faults.wedged.is_set()})
        if path == "/standin/cache-corruption":
            faults.cache_corruption = int(body.get("count", 1))
            if body.get("error"):
                faults.corruption_error = str(body["error"])
            return self._send_json(200, {"cache_corruption": faults.cache_corruption})
        if path == "/standin/memory-pressure":
            new = str(body.get("level", "soft"))
            prev = str(body.get("previous", "ok"))
            ceiling = app.gs.memory_ceiling()
            soft, hard = int(ceiling * 0.85), int(ceiling * 0.95)
            current = int(body.get("current_bytes") or {"ok": ceiling * 0.5, "soft": ceiling * 0.87,
                                                          "hard": ceiling * 0.97}.get(new, ceiling * 0.9))
            logging.getLogger("omlx.process_memory_enforcer").info(
                f"Memory pressure level: {prev} -> {new} (current={format_gb(current)}, soft={format_gb(soft)}, "
                f"hard={format_gb(hard)}, ceiling={format_gb(ceiling)})")
            return self._send_json(200, {"level": new})
        if path == "/standin/load-delay":
            faults.load_seconds = float(body.get("seconds", 0))
            return self._send_json(200, {"load_seconds": faults.load_seconds})
        if path == "/standin/speed":
            faults.tokens_per_second = float(body.get("tokens_per_second", faults.tokens_per_second))
            faults.chunk_seconds = float(body.get("chunk_seconds", faults.chunk_seconds))
            return self._send_json(200, {"tokens_per_second": faults.tokens_per_second,
                                         "chunk_seconds": faults.chunk_seconds})
        if path == "/standin/log":
            lg = logging.getLogger(str(body.get("logger", "omlx.server")))
            level = logging.getLevelName(str(body.get("level", "INFO")).upper())
            for line in body.get("lines") or [body.get("message", "")]:
                lg.log(level if isinstance(level, int) else logging.INFO, line)
            return self._send_json(200, {"ok": True})
        if path == "/standin/log-rate":
            # A log that keeps growing: `lines_per_second` INFO lines for `seconds` (console idle-CPU benches).
            rate = max(0.1, float(body.get("lines_per_second", 10)))
            seconds = float(body.get("seconds", 10))
            lg = logging.getLogger(str(body.get("logger", "omlx.scheduler")))
            text = str(body.get("message", "Cache phase timings: cleanup_finished_sync=0.1ms/{n}"))

            def write() -> None:
                n, end = 0, time.time() + seconds
                while time.time() < end and not app.shutting_down.is_set():
                    n += 1
                    lg.info(text.replace("{n}", str(n)))
                    time.sleep(1.0 / rate)

            threading.Thread(target=write, daemon=True).start()
            return self._send_json(200, {"lines_per_second": rate, "seconds": seconds})
        if path == "/standin/rotate-log":
            dest = app.file_handler.rotate_now(body.get("day"))
            return self._send_json(200, {"rotated_to": str(dest)})
        if path == "/standin/crash":
            code = int(body.get("code", 1))
            msg = str(body.get("message", "Fatal Python error: Aborted"))
            self._send_json(200, {"exiting": code})
            self.wfile.flush()
            crash_log = app.gs.log_dir / "crash.log"
            with contextlib.suppress(OSError), crash_log.open("a") as f:
                f.write(f"{msg}\n\nThread 0x{threading.get_ident():016x} (most recent call first):\n"
                        '  File "omlx/engine_core.py", line 412 in _step\n')
            sys.stderr.write(f"{msg}\n")
            sys.stderr.flush()
            os._exit(code)
        if path == "/standin/exit-on-load":
            faults.exit_on_load = int(body.get("code", 1))
            return self._send_json(200, {"exit_on_load": faults.exit_on_load})
        raise HTTPError(404, "Not Found")


# ---------------------------------------------------------------------------------------------------------------
# CLI: the same subcommands and `serve` flags as oMLX 0.5.0 (`omlx serve --help`).
# ---------------------------------------------------------------------------------------------------------------
SERVE_DESCRIPTION = """
Start a multi-model inference server with LRU-based memory management.

Models are discovered from subdirectories of --model-dir. Each subdirectory
should contain a valid model with config.json and *.safetensors files.

Example directory structure:
  /path/to/models/
  ├── llama-3b/           → model_id: "llama-3b"
  │   ├── config.json
  │   └── model.safetensors
  ├── qwen-7b/            → model_id: "qwen-7b"
  └── mistral-7b/         → model_id: "mistral-7b"
"""


def _positive_float(value: str) -> float:
    try:
        parsed = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("must be a number") from exc
    if not math.isfinite(parsed) or parsed <= 0:
        raise argparse.ArgumentTypeError("must be a finite number greater than 0")
    return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omlx", description="omlx: Production-ready LLM server for Apple Silicon",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\nExamples:\n  omlx serve mlx-community/Llama-3.2-3B-Instruct-4bit --port 8000\n"
               "  omlx launch codex --model qwen3.5\n        ")
    parser.add_argument("--version", action="version", version=VERSION, help="Print the oMLX version and exit")
    sub = parser.add_subparsers(dest="command", help="Commands")
    for name, text in (("start", "Start oMLX as a managed background server"),
                       ("stop", "Stop the managed background oMLX server"),
                       ("restart", "Restart the managed background oMLX server")):
        lp = sub.add_parser(name, help=text, description=text)
        lp.add_argument("--timeout", type=float, default=60.0,
                        help="Seconds to wait for the macOS app/server to reach the requested state")
        if name != "stop":
            lp.add_argument("--no-wait", action="store_true",
                            help="Return after sending the request without waiting for server health")
    sp = sub.add_parser("serve", help="Start multi-model OpenAI-compatible server",
                        formatter_class=argparse.RawDescriptionHelpFormatter, description=SERVE_DESCRIPTION)
    a = sp.add_argument
    a("--model-dir", type=str, default=None,
      help="Directory containing model subdirectories (default: ~/.omlx/models)")
    a("--host", type=str, default=None, help="Host to bind (default: 127.0.0.1)")
    a("--port", type=int, default=None, help="Port to bind (default: 8000)")
    a("--log-level", type=str, choices=["trace", "debug", "info", "warning", "error"], default=None,
      help="Log level (default: info). trace includes full message content")
    a("--sse-keepalive-mode", type=str, choices=["chunk", "comment", "off"], default=None,
      help="SSE keepalive emission mode (default: chunk). 'chunk' emits protocol-aware no-op events compatible "
           "with strict clients like OpenClaw / WorkBuddy; 'comment' emits the legacy ': keep-alive' SSE comment; "
           "'off' disables keepalive entirely")
    a("--max-concurrent-requests", type=int, default=None,
      help="Max requests processed simultaneously. Higher values increase throughput but use more memory. "
           "(default: 8)")
    a("--embedding-batch-size", type=int, default=None,
      help="Max embedding inputs processed in one forward pass. Higher values increase throughput but use more "
           "memory. (default: 32)")
    a("--memory-guard", type=str, choices=["safe", "balanced", "aggressive"], default=None,
      help="Memory guard tier. safe reserves more system memory; aggressive allows more oMLX memory use. "
           "(default: balanced)")
    a("--memory-guard-gb", type=_positive_float, default=None,
      help="Custom memory guard ceiling in GB. Sets memory guard tier to custom.")
    a("--paged-ssd-cache-dir", type=str, default=None,
      help="Directory for paged SSD cache storage (enables oMLX prefix cache)")
    a("--paged-ssd-cache-max-size", type=str, default=None,
      help="Maximum paged SSD cache size (e.g., '100GB', '50GB'). Default: 100GB")
    a("--hot-cache-max-size", type=str, default=None,
      help="Maximum in-memory hot cache size (e.g., '8GB', '4GB'). Default: 0 (disabled)")
    a("--no-cache", action="store_true",
      help="Disable oMLX paged SSD cache. mlx-lm BatchGenerator still manages KV states internally.")
    a("--initial-cache-blocks", type=int, default=None,
      help="Number of cache blocks to pre-allocate at startup (default: 256). Higher values reduce dynamic "
           "allocation overhead for large contexts.")
    a("--mcp-config", type=str, default=None,
      help="Path to MCP configuration file (JSON/YAML) for tool integration")
    a("--hf-endpoint", type=str, default=None,
      help="Custom HuggingFace Hub endpoint URL (e.g., https://hf-mirror.com)")
    a("--hf-cache", dest="hf_cache_enabled", action=argparse.BooleanOptionalAction, default=None,
      help="Discover models from the standard HuggingFace Hub local cache (default: enabled)")
    a("--ms-endpoint", type=str, default=None, help="Custom ModelScope Hub endpoint URL")
    a("--http-proxy", type=str, default=None, help="HTTP proxy URL (e.g., http://proxy.company.com:8080)")
    a("--https-proxy", type=str, default=None, help="HTTPS proxy URL (e.g., http://proxy.company.com:8080)")
    a("--no-proxy", type=str, default=None,
      help="Comma-separated hosts/IPs to bypass proxy (e.g., localhost,127.0.0.1)")
    a("--ca-bundle", type=str, default=None, help="Path to CA bundle PEM file for TLS interception environments")
    a("--base-path", type=str, default=None, help="Base directory for oMLX data (default: ~/.omlx)")
    a("--api-key", type=str, default=None, help="API key for authentication (optional)")
    # Stand-in only (hidden from --help so the help mirrors oMLX's): fault injection at start.
    a("--standin-load-seconds", type=float, default=None, help=argparse.SUPPRESS)
    a("--standin-tokens-per-second", type=float, default=None, help=argparse.SUPPRESS)
    a("--standin-wedged", action="store_true", help=argparse.SUPPRESS)
    a("--standin-crash-after", type=float, default=None, help=argparse.SUPPRESS)
    sub.add_parser("launch", help="Launch an external tool with oMLX integration")
    dp = sub.add_parser("diagnose", help="Diagnose installation or runtime issues",
                        description="Run diagnostic checks and print recovery steps.")
    dp.add_argument("target", type=str, choices=["menubar"],
                    help="What to diagnose. 'menubar' checks Tahoe ControlCenter visibility.")
    return parser


def detect_server_aliases(host: str) -> list[str]:
    """localhost/127.0.0.1 (when bound there), hostname, hostname.local, FQDN, non-loopback IPv4 (as oMLX)."""
    out: list[str] = []
    if {h.strip() for h in host.split(",")} & {"127.0.0.1", "localhost", "0.0.0.0", "::"}:
        out += ["localhost", "127.0.0.1"]
    hostname = socket.gethostname()
    if hostname:
        out += [hostname] + ([] if hostname.endswith(".local") else [f"{hostname}.local"])
    fqdn = socket.getfqdn()
    if fqdn and not fqdn.endswith((".ip6.arpa", ".in-addr.arpa")):
        out.append(fqdn)
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing interface
        out.append(u.getsockname()[0])
    with contextlib.suppress(OSError):
        out += [i[4][0] for i in socket.getaddrinfo(hostname, None, family=socket.AF_INET)]
    result: list[str] = []
    for a in out:
        if a not in result and (a == "127.0.0.1" or not a.startswith("127.")):
            result.append(a)
    return result


def env_float(name: str) -> float | None:
    v = os.environ.get(name)
    try:
        return float(v) if v else None
    except ValueError:
        return None


def serve(args: argparse.Namespace) -> int:
    print("\033[33moMLX - LLM inference, optimized for your Mac\033[0m")
    print("\033[33m├─ https://github.com/jundot/omlx\033[0m")
    print(f"\033[33m└─ Version: {VERSION}\033[0m")
    print(flush=True)

    base = Path(args.base_path or os.environ.get("OMLX_BASE_PATH") or "~/.omlx").expanduser().resolve()
    gs = GlobalSettings(base)
    gs.load_file()
    gs.apply_env()
    gs.apply_cli(args)
    level_name = gs.data["server"]["log_level"].upper()
    level = TRACE if level_name == "TRACE" else getattr(logging, level_name, logging.INFO)
    logging.addLevelName(TRACE, "TRACE")
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    root.addHandler(console)
    for w in gs.load_warnings:
        logging.getLogger("omlx.settings").warning(w)

    errors = gs.validate()
    if errors:
        for err in errors:
            print(f"Configuration error: {err}", flush=True)
        return 1
    if any(getattr(args, k) is not None for k in SAVE_TRIGGER_FLAGS):
        try:
            gs.save()
            print("Saved CLI arguments to settings.json", flush=True)
        except OSError as e:
            print(f"Warning: Failed to save settings: {e}", flush=True)

    gs.ensure_directories()
    log_dir = gs.log_dir
    fh = RotatingServerLog(log_dir / "server.log", encoding="utf-8")
    fh.setLevel(level)
    fh.setFormatter(logging.Formatter(FILE_FORMAT))
    fh.addFilter(RequestIdFilter())
    root.addHandler(fh)
    print(f"Log directory: {log_dir}", flush=True)
    (log_dir / "crash.log").touch()

    host = gs.data["server"]["host"]
    port = int(gs.data["server"]["port"])
    bind_hosts = [h.strip() for h in str(host).split(",") if h.strip()]
    for h in bind_hosts:
        print(f"Binding server at http://{h}:{port}", flush=True)
    faults = Faults()
    faults.load_seconds = args.standin_load_seconds if args.standin_load_seconds is not None else (
        env_float("OMLX_STANDIN_LOAD_SECONDS") or 0.0)
    tps = args.standin_tokens_per_second if args.standin_tokens_per_second is not None else env_float(
        "OMLX_STANDIN_TOKENS_PER_SECOND")
    if tps is not None:
        faults.tokens_per_second = tps
    chunk_s = env_float("OMLX_STANDIN_CHUNK_SECONDS")
    if chunk_s is not None:
        faults.chunk_seconds = chunk_s
    if args.standin_wedged or os.environ.get("OMLX_STANDIN_WEDGED") == "1":
        faults.wedged.set()
    app = App(gs, faults, fh)
    Handler.app = app
    ThreadingHTTPServer.request_queue_size = 128  # uvicorn's backlog is 2048; 5 would refuse bench bursts
    try:
        httpd = ThreadingHTTPServer((bind_hosts[0], port), Handler)
    except OSError as e:
        uvicorn_line(f"[Errno {e.errno}] error while attempting to bind on address ('{bind_hosts[0]}', {port}): "
                     f"{e.strerror.lower() if e.strerror else e}", "ERROR")
        return 1
    httpd.daemon_threads = True
    uvicorn_line(f"Uvicorn running on http://{bind_hosts[0]}:{port} (Press CTRL+C to quit)")
    print(f"Base path: {base}", flush=True)
    print(f"Model directories: {', '.join(str(d) for d in gs.model_dirs)}", flush=True)
    print(f"Memory guard tier: {gs.data['memory']['memory_guard_tier']}", flush=True)
    ssd = None if args.no_cache else (Path(args.paged_ssd_cache_dir) if args.paged_ssd_cache_dir else gs.ssd_cache_dir)
    if args.no_cache:
        gs.data["cache"]["enabled"] = False
        print("Mode: Multi-model serving (no oMLX cache, mlx-lm BatchGenerator only)", flush=True)
    elif ssd:
        ssd.mkdir(parents=True, exist_ok=True)
        print("Mode: Multi-model serving (continuous batching + paged SSD cache)", flush=True)
        print(f"paged SSD cache: {ssd} (max: 25.2GB)", flush=True)
    else:
        print("Mode: Multi-model serving (continuous batching, no cache)", flush=True)

    slog = logging.getLogger("omlx.server")
    pool = app.pool
    if not gs.data["auth"].get("secret_key"):
        gs.data["auth"]["secret_key"] = secrets.token_hex(32)
        gs.save()
        slog.info("Generated and saved new auth secret key")
    slog.info(f"CORS origins: {gs.data['server']['cors_origins']}")
    pool.load_settings()
    pool.discover()
    slog.info(f"Server initialized with {len(pool.entries)} models")
    if pool.default_model:
        slog.info(f"Default model: {pool.default_model}")
    slog.info(f"Memory guard tier: {gs.data['memory']['memory_guard_tier']} (guard on)")
    slog.info(f"Default max tokens: {gs.data['sampling']['max_tokens']}")
    if app.api_key:
        slog.info("API key authentication: enabled")
    for h in bind_hosts:
        print(f"Starting server at http://{h}:{port}", flush=True)
    uvicorn_line(f"Started server process [{os.getpid()}]")
    uvicorn_line("Waiting for application startup.")
    aliases = detect_server_aliases(str(host))
    if not gs.data["server"].get("server_aliases"):
        gs.data["server"]["server_aliases"] = aliases
        gs.save()
        slog.info(f"Auto-detected server aliases: {aliases}")
    ceiling = gs.memory_ceiling()
    logging.getLogger("omlx.process_memory_enforcer").info(
        f"Process memory enforcer started (tier={gs.data['memory']['memory_guard_tier']}, "
        f"ceiling={format_gb(ceiling)}, interval=1.0s)")
    def ttl_loop() -> None:
        while not app.shutting_down.is_set():
            time.sleep(1.0)
            try:
                pool.check_ttl()
            except Exception as e:  # noqa: BLE001 - as oMLX: log and keep checking
                slog.error(f"TTL check error: {e}")

    threading.Thread(target=ttl_loop, name="ttl", daemon=True).start()
    pool.preload_pinned()  # in the lifespan, before startup completes (connections wait in the backlog)
    uvicorn_line("Application startup complete.")

    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        app.shutting_down.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    crash_after = args.standin_crash_after if args.standin_crash_after is not None else env_float(
        "OMLX_STANDIN_CRASH_AFTER")
    if crash_after is not None:
        def crash() -> None:
            time.sleep(crash_after)
            logging.getLogger("omlx.engine_core").critical("Fatal error in engine loop: simulated crash")
            sys.stderr.write("libc++abi: terminating due to uncaught exception\n")
            sys.stderr.flush()
            os._exit(134)
        threading.Thread(target=crash, daemon=True).start()

    parent = os.environ.get("OMLX_STANDIN_EXIT_WITH_PARENT")
    if parent and parent.isdigit():
        # Test safety net: a killed test runner must not leave stand-ins behind.
        def watch_parent(pid: int = int(parent)) -> None:
            while True:
                time.sleep(0.5)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    on_signal(signal.SIGINT, None)
                    return
                except PermissionError:
                    continue
        threading.Thread(target=watch_parent, daemon=True).start()

    httpd.serve_forever(poll_interval=0.2)
    uvicorn_line("Shutting down")
    uvicorn_line("Waiting for application shutdown.")
    logging.getLogger("omlx.process_memory_enforcer").info("Process memory enforcer stopped")
    slog.info("Process memory enforcer stopped")
    pool.unload_all()
    pool.log.info("Engine pool shutdown complete")
    slog.info("Engine pool shutdown")
    uvicorn_line("Application shutdown complete.")
    uvicorn_line(f"Finished server process [{os.getpid()}]")
    httpd.server_close()
    logging.shutdown()
    if signal.SIGTERM in received:
        # uvicorn re-raises the signal after a graceful shutdown: the exit status is "killed by SIGTERM" (143).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "launch":
        print("oMLX stand-in: `launch` is not implemented")
        return 1
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "serve":
        return serve(args)
    if args.command in ("start", "stop", "restart"):
        if args.command == "start":
            print("Background start is available for the macOS app and Homebrew installs.")
            print("For this install, run foreground server mode with: omlx serve")
        else:
            print("Background stop/restart requires the macOS app or Homebrew service.")
        return 1
    if args.command == "diagnose":
        print("oMLX menubar diagnostics")
        return 1
    parser.print_help()
    return 1


if __name__ == "__main__":
    sys.exit(main())
