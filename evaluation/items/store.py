"""Evaluation items: one frozen record per question, read from and written to JSONL.

A line holds ``id``, ``set``, ``split`` (``dev`` for tuning, ``test`` for reporting), the
``question`` sent as the user message, the gold ``answer``, its ``kind`` (``number``, ``choice``,
``code``) and free ``metadata`` (for code: ``entry_point`` and ``tests``). Lines are written with
sorted keys and no ASCII escaping, so regenerating a set gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

AnswerKind = Literal["number", "choice", "code"]
Split = Literal["dev", "test"]
SPLITS: tuple[Split, ...] = ("dev", "test")
ITEMS_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Item:
    """One question with its exact gold answer; ``id`` is unique across all sets."""

    id: str
    set: str
    split: Split
    question: str
    answer: str
    kind: AnswerKind
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One JSONL line (without the newline), byte-stable for equal items."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Item:
        """Parse one JSONL line, refusing unknown kinds and splits."""
        raw = json.loads(line)
        if raw.get("kind") not in ("number", "choice", "code"):
            raise ValueError(f"item {raw.get('id')!r}: unknown kind {raw.get('kind')!r}")
        if raw.get("split") not in SPLITS:
            raise ValueError(f"item {raw.get('id')!r}: unknown split {raw.get('split')!r}")
        return cls(
            id=str(raw["id"]),
            set=str(raw["set"]),
            split=raw["split"],
            question=str(raw["question"]),
            answer=str(raw["answer"]),
            kind=raw["kind"],
            metadata=dict(raw.get("metadata") or {}),
        )


def dumps_items(items: Iterable[Item]) -> bytes:
    """The JSONL bytes of a set: one line per item, each ending in a newline."""
    return "".join(item.to_json() + "\n" for item in items).encode()


def load_set(path: Path) -> list[Item]:
    """Read one set's JSONL file."""
    return [Item.from_json(line) for line in path.read_text().splitlines() if line.strip()]


def set_names(directory: Path = ITEMS_DIR) -> list[str]:
    """The sets recorded in the manifest, in its order."""
    manifest = json.loads((directory / MANIFEST).read_text())
    return list(manifest["sets"])


def load_items(
    directory: Path = ITEMS_DIR,
    *,
    sets: Sequence[str] | None = None,
    split: Split | None = None,
) -> list[Item]:
    """Items of the chosen sets (default: all) and split (default: both), in manifest order."""
    names = set_names(directory)
    unknown = sorted(set(sets or ()) - set(names))
    if unknown:
        raise ValueError(f"unknown item sets {unknown}; known: {names}")
    chosen = [n for n in names if sets is None or n in sets]
    items = [item for name in chosen for item in load_set(directory / f"{name}.jsonl")]
    return [item for item in items if split is None or item.split == split]


def interleave(items: Sequence[Item], limit: int | None) -> list[Item]:
    """The first ``limit`` items taken round-robin over sets, so a smoke run touches every set."""
    if limit is None:
        return list(items)
    by_set: dict[str, list[Item]] = {}
    for item in items:
        by_set.setdefault(item.set, []).append(item)
    queues = list(by_set.values())
    chosen: list[Item] = []
    depth = 0
    while len(chosen) < limit and any(depth < len(q) for q in queues):
        chosen.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return chosen[:limit]
