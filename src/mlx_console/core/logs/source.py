"""Bytes of a log to lines of text, as every reader in core/logs does it: split on newlines only, CR dropped,
invalid UTF-8 replaced, a line longer than MAX_LINE_BYTES keeps its head and tail and says it was cut.
Files are read through `document.LogDocument` (and followed through `tail.LogTail`); `stream_lines` reads a
pipe (`triage -` from stdin) the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from mlx_console.core.common.text import CSI, without_formatting

MAX_LINE_BYTES = 64 * 1024  # longer lines keep their first 64 KiB: bounded memory, patterns still see the head
_READ_CHUNK = 1 << 20
_ANSI_BYTES = re.compile(CSI.encode())
strip_ansi = without_formatting  # a log line's colours are not what it says (core.common.text)


def strip_ansi_bytes(buf: bytes) -> bytes:
    """`buf` without terminal formatting (newlines kept, so line numbers hold); `buf` itself when it has none."""
    return _ANSI_BYTES.sub(b"", buf) if b"\x1b" in buf else buf


def decode_line(raw: bytes | bytearray, max_bytes: int = MAX_LINE_BYTES) -> str:
    """Bytes of one line (no newline) → text: CR dropped, invalid UTF-8 replaced, long lines cut and marked."""
    if len(raw) > max_bytes:
        half = max_bytes // 2
        return cut_line(raw[:half], raw[-half:], len(raw))
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", "replace")


def cut_line(head: bytes | bytearray, tail: bytes | bytearray, total: int) -> str:
    """A line too long to keep: its head and tail (errors are often at the end), with what was cut."""
    cut = total - len(head) - len(tail)
    end = tail.removesuffix(b"\r").decode("utf-8", "replace")
    return f"{head.decode('utf-8', 'replace')} [… line truncated: {cut} of {total} bytes cut …] {end}"


def stream_lines(read: Callable[[int], bytes], max_bytes: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Lines of a stream (a pipe: `read` returns what is there, b"" at the end) as they complete, each
    bounded like the file follower's: a line longer than `max_bytes` keeps its head and tail, marked cut."""
    half = max_bytes // 2
    head, tail, total = bytearray(), bytearray(), 0
    while True:
        data = read(_READ_CHUNK)
        start = 0
        while data:
            nl = data.find(b"\n", start)
            piece = data[start:] if nl < 0 else data[start:nl]
            total += len(piece)
            if total <= max_bytes:
                head += piece
            else:  # too long: keep the head and a rolling tail
                if len(head) > half:
                    tail += head[half:]
                    del head[half:]
                room = max(0, half - len(head))
                head += piece[:room]
                tail += piece[room:][-half:]
                del tail[:-half]
            if nl < 0:
                break
            yield decode_line(bytes(head), max_bytes) if total <= max_bytes else cut_line(bytes(head), bytes(tail), total)
            head, tail, total = bytearray(), bytearray(), 0
            start = nl + 1
        if not data:
            if total:
                yield decode_line(bytes(head)) if total <= max_bytes else cut_line(bytes(head), bytes(tail), total)
            return


def split_text(text: str) -> list[str]:
    """Split like the file readers do: on newlines only, CR dropped, no empty last line."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]
