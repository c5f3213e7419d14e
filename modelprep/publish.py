"""Publishing a built folder atomically, at most once across processes.

Model folders are large and slow to make: they are built in a temporary sibling and renamed
into place with a completion marker, so a crash or a concurrent start never leaves a
half-written model behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

COMPLETE_MARKER = ".quorum-complete.json"


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` was fully built and published by ``build_once``."""
    return (folder / COMPLETE_MARKER).is_file()


def build_once(
    target: Path, build: Callable[[Path], None], meta: dict[str, object] | None = None
) -> Path:
    """Build a folder at most once: ``build(tmp)`` fills a temporary sibling renamed to ``target``.

    Why: model folders are large and slow to make; readers must never see a partial one, and two
    processes starting together must not both convert (an advisory lock next to ``target``
    serialises them; the second one finds the folder complete and returns).
    """
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if is_complete(target):
            return target
        if target.exists():
            # No marker: left over from an interrupted older layout; rebuild it.
            shutil.rmtree(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private (0700); a model folder is ordinary data
        try:
            started = time.monotonic()
            build(tmp)
            for path in tmp.rglob("*"):
                if path.is_file():
                    path.chmod(0o644)  # some writers create private temp files and rename them
            elapsed = round(time.monotonic() - started, 2)
            marker: dict[str, object] = {"built_at": time.time(), "build_seconds": elapsed}
            marker.update(meta or {})
            (tmp / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
