"""Generate every item set with one seed, assign splits, and write the JSONL files and manifest.

``quorum eval items`` rewrites ``evaluation/items/``; ``--check`` compares instead and fails on
any difference, so the committed files are provably what the recorded generators produce.

Splits: within each set, a permutation drawn from ``Random(f"{seed}:{set}:split")`` picks exactly
``dev`` items for the dev split, the rest are test; duplicate questions were removed first, so
the splits are disjoint by construction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.items.choice import choice_items
from evaluation.items.code import code_items
from evaluation.items.reasoning import GYM_SETS, gym_config, gym_items
from evaluation.items.store import ITEMS_DIR, MANIFEST, Item, dumps_items

DEFAULT_SEED = 20261129
CHOICE_SPLIT = (20, 40)
CODE_SPLIT = (8, 16)


def assign_splits(items: Sequence[Item], dev: int, seed: int, name: str) -> list[Item]:
    """Exactly ``dev`` items (drawn with a seeded permutation) become dev, the rest test."""
    order = list(range(len(items)))
    random.Random(f"{seed}:{name}:split").shuffle(order)
    chosen = set(order[:dev])
    return [
        dataclasses.replace(item, split="dev" if i in chosen else "test")
        for i, item in enumerate(items)
    ]


def build(seed: int = DEFAULT_SEED) -> dict[str, bytes]:
    """Every file of the items folder (name -> bytes), the manifest included."""
    files: dict[str, bytes] = {}
    sets: dict[str, Any] = {}
    for spec in GYM_SETS:
        items, counts = gym_items(spec, seed)
        files[f"{spec.name}.jsonl"] = dumps_items(assign_splits(items, spec.dev, seed, spec.name))
        sets[spec.name] = {
            "generator": f"reasoning_gym:{spec.generator}",
            "config": gym_config(spec, seed),
            "answer_check": "exact expression value" if spec.check_expression else "generator",
            "skipped": counts,
            "dev": spec.dev,
            "test": spec.test,
        }
    own = (
        ("choice", choice_items(seed), CHOICE_SPLIT, "evaluation.items.choice"),
        ("code", code_items(), CODE_SPLIT, "evaluation.items.code"),
    )
    for name, items, (dev, test), generator in own:
        if len(items) != dev + test:
            raise RuntimeError(f"{name}: {len(items)} items, expected {dev + test}")
        files[f"{name}.jsonl"] = dumps_items(assign_splits(items, dev, seed, name))
        sets[name] = {"generator": generator, "config": {}, "dev": dev, "test": test}
    for name, entry in sets.items():
        entry["file"] = f"{name}.jsonl"
        entry["sha256"] = hashlib.sha256(files[f"{name}.jsonl"]).hexdigest()
    manifest = {
        "format": 1,
        "seed": seed,
        "reasoning_gym_version": importlib.metadata.version("reasoning-gym"),
        "regenerate": "quorum eval items",
        "sets": sets,
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()
    return files


def write(files: dict[str, bytes], directory: Path = ITEMS_DIR) -> None:
    """Write the generated files into ``directory``."""
    for name, data in files.items():
        (directory / name).write_bytes(data)


def differences(files: dict[str, bytes], directory: Path = ITEMS_DIR) -> list[str]:
    """Names of generated files whose bytes differ from (or are missing in) ``directory``."""
    changed = []
    for name, data in files.items():
        path = directory / name
        if not path.exists() or path.read_bytes() != data:
            changed.append(name)
    return changed
