"""One log path followed as it grows, across rotation, truncation and absence, read through `LogDocument`.

    tail = LogTail(path, start=offset)   # first open: the lines from this byte offset on (or tail_bytes=N:
    polled = tail.poll()                 #   the file's end indexed, for a view that pages the rest)
    polled.lines                         # complete lines since the last poll (the old file's last ones, then
    polled.opened                        #   the new file's); the document opened in this poll, if one was
    tail.document, tail.generation, tail.error, tail.offset

The supervising daemon and the metrics sampler read their server's log through it; `live.LiveTriage` (the
console's log pane and `triage --follow`) adds waiting and triage on top.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlx_console.core.logs.document import MAX_POLL_BYTES, LogDocument


@dataclass
class Polled:
    lines: list[str] = field(default_factory=list)  # complete lines read (of the old file, then the new one)
    opened: LogDocument | None = None  # the document opened in this poll (the first, or after a rotation)
    rotated: bool = False              # the file was replaced or truncated during this poll
    resumed: bool = False              # the same file opened again at the start of a line that was taken for
    #                                    a dead backend's last one and went on (its whole text is read again)


class LogTail:
    def __init__(self, path: str | os.PathLike[str], *, start: int | None = None, tail_bytes: int | None = None,
                 read_opened: bool = True, hand_over: bool = False) -> None:
        """`start`: the first document's tail begins at this byte offset (later ones at 0: a new file is read
        whole); else `tail_bytes` of each file's end are indexed (LogDocument). `read_opened`: a document's
        tail lines, when it is opened, are returned as new lines (a reader resuming at an offset); else the
        caller reads them. `hand_over`: documents are the caller's to close (a view that pages them)."""
        self.path = Path(path)
        self.document: LogDocument | None = None
        self.generation = 0           # files opened after the first (rotations, truncations)
        self.error: str | None = None  # why the file cannot be read right now (it is retried), or None
        self.failure: OSError | None = None  # the exception behind `error`
        self._start = start
        self._tail_bytes = tail_bytes
        self._read_opened = read_opened
        self._hand_over = hand_over
        self._opened_once = False

    @property
    def offset(self) -> int:
        """Where the lines read so far end in the current file (0 before it is open)."""
        return self.document.offset if self.document is not None else 0

    def open(self, at: int | None = None) -> LogDocument | None:
        """The document of the file at `path`, opened now if it is not yet (`at`: its lines from this byte
        offset, a line start, on); None while the file is missing or unreadable (`error` says why)."""
        if self.document is not None:
            return self.document
        if at is None and self._start is not None:
            at = self._start if not self._opened_once else 0  # a new file after a rotation: all of it is new
        try:
            doc = LogDocument(self.path, start=at, tail_bytes=self._tail_bytes)
        except FileNotFoundError:
            self.error = self.failure = None
            if not self._opened_once and self._start is not None:
                self._start = 0  # created later: all of it is new
            return None
        except OSError as e:  # permission, a directory, …: retried, said why
            self.error = f"{self.path}: {e.strerror}" if e.strerror else str(e)
            self.failure = e
            return None
        self.error = self.failure = None
        self.document = doc
        self._opened_once = True
        return doc

    def poll(self, max_bytes: int = MAX_POLL_BYTES) -> Polled:
        out = Polled()
        doc = self.document
        resume_at = None
        if doc is not None:
            out.lines = doc.poll(max_bytes)
            if not doc.replaced:
                return out
            if not self._hand_over:
                doc.close()
            self.document = None
            resume_at = doc.resume_at if not self._hand_over else None  # a view shows the file anew
            if resume_at is None:
                out.rotated = True
                self.generation += 1
        doc = self.open(resume_at)
        if doc is not None:
            out.opened, out.resumed = doc, resume_at is not None
            if self._read_opened:
                out.lines += doc.tail_lines(0, doc.tail_count)
        return out

    @property
    def behind(self) -> bool:
        """The last poll stopped at its byte limit: more is waiting."""
        return self.document is not None and self.document.behind

    def close(self) -> None:
        if self.document is not None and not self._hand_over:
            self.document.close()
        self.document = None

    def __enter__(self) -> LogTail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
