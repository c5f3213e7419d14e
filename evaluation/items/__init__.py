"""Evaluation item sets: committed JSONL files, their generators, and how to load them."""

from evaluation.items.store import (
    ITEMS_DIR,
    SPLITS,
    AnswerKind,
    Item,
    Split,
    interleave,
    load_items,
    set_names,
)

__all__ = [
    "ITEMS_DIR",
    "SPLITS",
    "AnswerKind",
    "Item",
    "Split",
    "interleave",
    "load_items",
    "set_names",
]
