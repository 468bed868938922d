"""The mlx_lm.server kind: command line, the log lines that mean trouble, the 1-token readiness probe."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from mlx_console.core.backends.base import (
    BackendKind,
    ProbeResult,
    ping_completion,
    refuse_managed_args,
)
from mlx_console.core.common.net import is_loopback
from mlx_console.core.config import Profile
from mlx_console.core.errors import ConsoleError

# Logged by the generation thread for every prompt it processes (backends.md §1.5): it is alive and working.
PROOF_OF_LIFE = re.compile(r" - INFO - Prompt processing progress: \d+/\d+")


def looks_like_path(model: str) -> bool:
    """A local path (absolute, ~, ./, or existing) rather than a hub id such as org/name."""
    return model.startswith(("/", "~", ".")) or Path(model).expanduser().exists()


@dataclass
class MlxLmKind(BackendKind):
    kind: str = "mlx-lm"

    def command(self, profile: Profile, model: str | None) -> list[str]:
        refuse_managed_args(profile, ("--model", "--host", "--port"))
        model = model or profile.model
        if not model:
            raise ConsoleError(f"backend {profile.name!r}: no model configured")
        if looks_like_path(model):
            model = str(Path(model).expanduser().resolve())
        # The console's own interpreter: mlx-lm is one of its dependencies. `-m mlx_lm server` is the
        # form mlx-lm recommends (`-m mlx_lm.server` prints a deprecation notice).
        return [sys.executable, "-m", "mlx_lm", "server", "--model", model,
                "--host", profile.host, "--port", str(profile.port), *profile.args]

    def check_model(self, profile: Profile, model: str | None) -> None:
        model = model or profile.model
        if model and looks_like_path(model) and not Path(model).expanduser().is_dir():
            raise ConsoleError(f"backend {profile.name!r}: model directory {model} does not exist")

    def exposure_warning(self, profile: Profile) -> str | None:
        # mlx_lm.server has no authentication at all: an API key in the profile cannot protect it.
        if is_loopback(profile.host):
            return None
        return (f"backend {profile.name!r} binds {profile.host} (not loopback) and mlx_lm.server has no "
                "API key: anyone who can reach this host can use it")

    def probe(self, base_url: str, api_key: str | None, timeout: float) -> ProbeResult:
        return ping_completion(base_url, api_key, timeout)

    def proof_of_life(self, line: str) -> bool:
        return PROOF_OF_LIFE.search(line) is not None
