"""A catalogue file's parsed form, cached in the state dir (`cache/catalog-<hash>.json`).

Reading the shipped catalogue costs a small triage more than its log does: TOML parsing in pure Python (~20 ms
for ~1,800 lines) and finding the literals each evidence regex requires (~15 ms, the stdlib regex parser). Both
depend only on the file's text and on the code that reads it, so they are kept as JSON (read in ~1 ms), keyed by
the SHA-256 of the text and of that code. A cache that is missing, unreadable, corrupt or from other code is
simply rebuilt; an unwritable state dir only costs the parse next time. A file that does not parse is never
cached: its error is raised as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mlx_console.core.logs import cache_files

_FORMAT = "mlx-console catalogue cache 1"


def _code_tag() -> bytes:
    """The code that turns text into what is cached (this project's parsers and literal finder): a change to it
    makes a new key, so a cache written by other code is never read."""
    here = Path(__file__).parent
    parts = [_FORMAT.encode()]
    for name in ("literals.py", "patterns.py", "catalog_cache.py"):
        try:
            parts.append((here / name).read_bytes())
        except OSError:  # a zipped install: the package version stands for its code
            from importlib.metadata import version

            parts.append(version("mlx-console").encode())
            break
    return b"\0".join(parts)


def cache_path(text: str, cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    key = hashlib.sha256(_code_tag() + b"\0" + text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return cache_dir / f"catalog-{key}.json"


def load(
    text: str,
    parse: Callable[[str], dict[str, Any]],
    regexes: Callable[[dict[str, Any]], Iterable[str]],
    literals: Callable[[str], list[str] | None],
    cache_dir: Path | None,
) -> tuple[dict[str, Any], dict[str, list[str] | None]]:
    """(the parsed TOML, the required literals of each regex `regexes(data)` names), from the cache when it holds
    them for this text, else computed with `parse` and `literals` and written to the cache."""
    path = cache_path(text, cache_dir)
    if path is not None:
        try:
            got = json.loads(path.read_text(encoding="utf-8"))
            if got.get("format") == _FORMAT and isinstance(got.get("data"), dict) and isinstance(got.get("literals"), dict):
                return got["data"], got["literals"]
        except (OSError, ValueError, AttributeError):
            pass  # missing or damaged: rebuilt below
    data = parse(text)
    lits = {p: literals(p) for p in dict.fromkeys(regexes(data))}
    if path is not None:
        _write(path, {"format": _FORMAT, "data": data, "literals": lits})
    return data, lits


def _write(path: Path, obj: dict[str, Any]) -> None:
    try:
        payload = json.dumps(obj, ensure_ascii=False)
    except (TypeError, ValueError):
        return  # a user file with TOML dates or the like: not cached (they are refused by the parser anyway)
    cache_files.write(path, payload.encode("utf-8"), "catalog-*.json")
