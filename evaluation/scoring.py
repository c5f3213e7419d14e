"""Is a predicted answer the gold one? Numbers exactly, formulas via math-verify, letters, code.

Predicted answers are model output, so every check is bounded: numbers take decoding's exact
``Fraction`` path; anything else is capped at ``MAX_ANSWER_CHARS`` and, when it must go to
math-verify, parsed under math-verify's own ``signal.alarm`` timeouts (only possible on the main
thread: the report runs there; elsewhere, e.g. in tests' worker threads, the input cap is the
only bound). Code answers run
their item's tests in a limited child process (``evaluation.sandbox``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from math_verify import parse, verify

from decoding.equivalence import canonical_choice, canonical_code, parse_number, strip_decorations
from evaluation.sandbox import run_tests

MAX_ANSWER_CHARS = 512
MATH_VERIFY_TIMEOUT_S = 2


def _timeout() -> int | None:
    """math-verify's alarm timeouts need the main thread; None elsewhere."""
    return MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def _formula(text: str) -> Any | None:
    try:
        parsed = parse(f"${text}$", parsing_timeout=_timeout())
    except Exception:  # math-verify wraps sympy and antlr; a failure means "not a formula"
        return None
    expr = next((p for p in parsed if not isinstance(p, str)), None)
    return expr


def number_correct(predicted: str, gold: str) -> bool:
    """Exact numeric equality (``1,000`` = ``1000.0``, ``1/2`` = ``0.5``), else math-verify."""
    if len(predicted) > MAX_ANSWER_CHARS:
        return False
    want, got = parse_number(gold), parse_number(predicted)
    if want is not None and got is not None:
        return want == got
    gold_expr, predicted_expr = (
        _formula(strip_decorations(gold)),
        _formula(strip_decorations(predicted)),
    )
    if gold_expr is None or predicted_expr is None:
        return False
    try:
        return bool(verify(gold_expr, predicted_expr, timeout_seconds=_timeout()))
    except Exception:  # sympy comparison errors: not shown equal
        return False


def choice_correct(predicted: str, gold: str) -> bool:
    """The same option letter."""
    return canonical_choice(predicted[:MAX_ANSWER_CHARS]) == gold.strip().upper()


def code_correct(predicted: str, tests: Sequence[str]) -> bool:
    """The candidate passes every test of its item."""
    return run_tests(canonical_code(predicted), tests).passed


class Scorer:
    """Scores answers against one item's gold, caching each distinct answer string."""

    def __init__(self, kind: str, gold: str, metadata: dict[str, Any]) -> None:
        self.kind = kind
        self.gold = gold
        self.tests: list[str] = list(metadata.get("tests", []))
        self._cache: dict[str, bool] = {}

    def __call__(self, predicted: str | None) -> bool:
        """Whether ``predicted`` (an extracted answer; None: no answer) is right."""
        if predicted is None:
            return False
        known = self._cache.get(predicted)
        if known is None:
            known = self._cache[predicted] = self._score(predicted)
        return known

    def _score(self, predicted: str) -> bool:
        if self.kind == "choice":
            return choice_correct(predicted, self.gold)
        if self.kind == "code":
            return code_correct(predicted, self.tests)
        return number_correct(predicted, self.gold)
