"""The results file: one JSON line per (item, config), appended as each request finishes.

Crash safety: each record is one ``os.write`` of a complete line to an ``O_APPEND`` file, then
``fsync``. A crash can therefore only leave a partial LAST line; ``ResultsFile`` cuts such a tail
off before appending again (and readers skip it), so the pair is simply redone on resume.

A record: ``{"v", "item": {id, set, split, answer, kind, metadata}, "config": {...},
"request": {...}, "response": {...} | null, "error": {...} | null, "status", "wall_s",
"started_at"}``. ``response`` is the server's JSON exactly as received.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

RECORD_VERSION = 1
Record = dict[str, Any]


def repair_tail(path: Path) -> int:
    """Cut an unterminated last line (a write cut short by a crash); returns bytes removed."""
    if not path.exists():
        return 0
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        keep = _last_newline_end(handle, size)
        handle.truncate(keep)
        return size - keep


def _last_newline_end(handle: BinaryIO, size: int) -> int:
    """Offset just past the last newline (0 if none), reading backwards in blocks."""
    position = size
    while position > 0:
        start = max(0, position - 65_536)
        handle.seek(start)
        block = handle.read(position - start)
        found = block.rfind(b"\n")
        if found != -1:
            return start + found + 1
        position = start
    return 0


def read_records(path: Path) -> Iterator[Record]:
    """Every complete, parseable record of a results file, in file order."""
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                return  # a partial last line: the pair will be redone
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and "item" in record and "config" in record:
                yield record


def record_key(record: Record) -> tuple[str, str]:
    """(item id, config name): what a run does once."""
    return str(record["item"]["id"]), str(record["config"]["name"])


def is_ok(record: Record) -> bool:
    """A record holding a response (not an error)."""
    return record.get("error") is None and isinstance(record.get("response"), dict)


class ResultsFile:
    """Appends records safely; knows which pairs are done and which configs it holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired_bytes = repair_tail(path)
        self.done: set[tuple[str, str]] = set()
        self.configs: dict[str, dict[str, Any]] = {}
        if path.exists():
            for record in read_records(path):
                self.configs.setdefault(record["config"]["name"], record["config"])
                if is_ok(record):
                    self.done.add(record_key(record))
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, record: Record) -> None:
        """Write one record as one complete line, durably."""
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        if is_ok(record):
            self.done.add(record_key(record))

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
