"""``quorum eval``: measure whether precise mode makes answers right.

Items are committed JSONL files (``evaluation.items``); ``run`` sends each (item, config) pair to
``POST /v1/precise`` and appends the full response to a results file; ``report`` re-judges every
sample offline with decoding's own functions and compares vote rules, sample counts and stopping
rules with Wilson intervals and exact McNemar tests.
"""

from evaluation.cli import main

__all__ = ["main"]
