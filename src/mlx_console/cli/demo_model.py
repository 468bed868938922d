"""`mlx-console demo-model DIR`: build the tiny random-weight model offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo-model",
        help="build a tiny random-weight model (offline) that mlx_lm.server can serve",
        description="Writes config.json, model.safetensors, tokenizer.json and tokenizer_config.json "
        "(with a chat template) into DIR. Deterministic; under a few MB; built in seconds.",
    )
    p.add_argument("dir", metavar="DIR", type=Path)
    p.add_argument("--arch", choices=("llama", "llama4"), default="llama",
                   help="llama (batchable) or llama4 (chunked attention: ChunkedKVCache cannot batch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite a non-empty DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imports mlx: only ever run as its own process, never inside the console.
    from mlx_console.demo_model import build

    out = build(args.dir, arch=args.arch, seed=args.seed, force=args.force)
    print(f"built {args.arch} demo model in {out}", file=sys.stderr)
    return 0
