"""Doctor checks of a distributed profile (mlx.launch): every rank host reachable by ssh without a prompt, the
same Python/mlx/mlx-lm on each, the model on each, the hostfile valid, the sharded weights fitting each host's
memory, RDMA for JACCL (as `mlx.distributed_config` checks it: `ibv_devices` lists rdma_* devices), and the CPU
an idle group burns.

Each host is asked once, by the interpreter the ranks run (the console's own path: mlx.launch runs the same
command on every host), with a small script that prints JSON. Hosts are asked in parallel, each with a timeout.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlx_console.core.config import Config, Profile
from mlx_console.core.doctor import FAIL, PASS, WARN, Check
from mlx_console.core.errors import ConsoleError
from mlx_console.core.lifecycle import distributed
from mlx_console.core.machine.system import fmt_bytes

# Printed by each rank host: versions, the model dir, available memory, RDMA devices.
PROBE = r"""
import json, os, platform, subprocess, sys
from importlib import metadata
def v(n):
    try: return metadata.version(n)
    except Exception: return None
m = sys.argv[1]
w = 0
if os.path.isdir(m):
    w = sum(os.path.getsize(os.path.join(m, f)) for f in os.listdir(m) if f.endswith(".safetensors"))
avail = None
try:
    import psutil; avail = psutil.virtual_memory().available
except Exception:
    try:
        avail = int([l for l in open("/proc/meminfo") if l.startswith("MemAvailable")][0].split()[1]) * 1024
    except Exception:
        pass
rdma = None
if sys.argv[2] == "1":
    try: rdma = [d for d in subprocess.run(["ibv_devices"], capture_output=True, text=True, timeout=5).stdout.split() if d.startswith("rdma_")]
    except Exception: rdma = []
print(json.dumps({"python": platform.python_version(), "mlx": v("mlx"), "mlx_lm": v("mlx-lm"),
                  "model": os.path.isfile(os.path.join(m, "config.json")), "weights": w, "available": avail,
                  "rdma": rdma, "platform": sys.platform}))
"""

# Measured on this project's Linux test machine (README): an idle two-rank group is not free.
IDLE_CPU = ("an idle distributed group burns CPU: mlx.launch relays output in a polling loop (~45 % of a core "
            "here) and a waiting rank spins in its collective (~25-45 %)")


def probe_host(host: str, model: str, jaccl: bool, timeout: float) -> dict[str, Any]:
    """The probe's JSON from one rank host; {"error": …} when it cannot be had."""
    args = [sys.executable, "-c", PROBE, model, "1" if jaccl else "0"]
    if host != distributed.LOCAL:
        args = [*distributed.SSH_BASE, host, shlex.join(args)]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {timeout:g}s"}
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
        kind = "ssh" if out.returncode == 255 else sys.executable
        return {"error": f"{kind} failed (exit {out.returncode}): {tail}"}
    try:
        got: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return got
    except (ValueError, IndexError):
        return {"error": f"the probe printed no JSON: {out.stdout[-200:]!r}"}


def profile_checks(p: Profile, timeout: float = 8.0) -> list[Check]:
    out: list[Check] = []
    name = p.name
    try:
        hosts = distributed.rank_hosts(p)
        if p.hostfile:
            out.append(Check(f"hostfile:{name}", PASS, f"{p.hostfile}: {len(hosts)} rank(s) on {', '.join(hosts)}"))
    except ConsoleError as e:
        return [Check(f"hostfile:{name}", FAIL, str(e), "write one with mlx.distributed_config --output-hostfile")]
    model = str(Path(p.model or "").expanduser())
    jaccl = p.distributed_backend == "jaccl"
    unique = list(dict.fromkeys(hosts))
    with ThreadPoolExecutor(max_workers=min(8, len(unique))) as pool:
        found = dict(zip(unique, pool.map(lambda h: probe_host(h, model, jaccl, timeout), unique), strict=True))
    ok = {h: r for h, r in found.items() if "error" not in r}
    for h, r in found.items():
        if "error" in r:
            how = "ssh -o BatchMode=yes (no password prompt)" if h != distributed.LOCAL else "the local probe"
            out.append(Check(f"ssh:{name}:{h}", FAIL, f"{h}: {r['error']}",
                             f"make {how} work: ssh-copy-id {h}, and the same Python at {sys.executable}"))
        elif h != distributed.LOCAL:
            out.append(Check(f"ssh:{name}:{h}", PASS, f"{h}: reachable by ssh without a prompt"))
    versions = {h: (r["python"], r["mlx"], r["mlx_lm"]) for h, r in ok.items()}
    if len(set(versions.values())) > 1:
        detail = "; ".join(f"{h}: Python {v[0]}, mlx {v[1]}, mlx-lm {v[2]}" for h, v in versions.items())
        out.append(Check(f"versions:{name}", FAIL, f"versions differ across hosts: {detail}",
                         "install the same Python, mlx and mlx-lm on every host"))
    elif versions:
        v = next(iter(versions.values()))
        out.append(Check(f"versions:{name}", PASS if v[2] else FAIL,
                         f"Python {v[0]}, mlx {v[1]}, mlx-lm {v[2]} on {len(versions)} host(s)",
                         "" if v[2] else "install mlx-lm on every host"))
    world = len(hosts)
    for h, r in ok.items():
        cid = f"rank_model:{name}:{h}"
        if not r["model"]:
            out.append(Check(cid, FAIL, f"{h}: {model} has no config.json", f"copy the model to {model} on {h}"))
            continue
        share = r["weights"] * hosts.count(h) // max(1, world)
        avail = r.get("available")
        if avail is None:
            out.append(Check(cid, PASS, f"{h}: model present; {fmt_bytes(share)} of weights here (memory unknown)"))
        else:
            status = FAIL if share > avail else WARN if share * 1.2 + (1 << 30) > avail else PASS
            out.append(Check(cid, status, f"{h}: {fmt_bytes(share)} of sharded weights for "
                             f"{hosts.count(h)}/{world} rank(s), {fmt_bytes(avail)} available",
                             "" if status == PASS else "free memory or spread the model over more hosts"))
        if jaccl:
            rdma = r.get("rdma") or []
            out.append(Check(f"jaccl:{name}:{h}", PASS if rdma else FAIL,
                             f"{h}: RDMA devices {', '.join(rdma)}" if rdma else f"{h}: no RDMA device (ibv_devices)",
                             "" if rdma else "JACCL needs macOS 26.2+ with Thunderbolt 5 and RDMA enabled: "
                             "mlx.distributed_config --backend jaccl --over thunderbolt --auto-setup"))
    out.append(Check(f"idle_cpu:{name}", WARN, IDLE_CPU,
                     f"stop it while unused (mlx-console backends stop {name}); a single-host profile idles at ~0"))
    return out


def checks(config: Config | None) -> list[Check]:
    return [c for p in (config.backends if config else []) if p.distributed for c in profile_checks(p)]
