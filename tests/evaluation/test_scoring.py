"""Scoring predicted answers against gold ones: equivalent forms, letters, code, hostile input."""

from __future__ import annotations

import pytest

from evaluation.sandbox import run_tests
from evaluation.scoring import Scorer, choice_correct, number_correct


@pytest.mark.parametrize(
    ("predicted", "gold", "right"),
    [
        ("42", "42", True),
        ("42.0", "42", True),
        ("1,000", "1000", True),
        ("−5", "-5", True),  # U+2212 minus
        ("$12", "12", True),
        ("12%", "12", True),
        ("1/2", "0.5", True),
        ("\\frac{1}{2}", "0.5", True),
        ("\\sqrt{4}", "2", True),
        ("2^{10}", "1024", True),
        ("x = 7", "7", True),
        ("43", "42", False),
        ("0.333", "1/3", False),  # decimals are exact
        ("(8 * -7) = 64", "-56", False),
        ("seven", "7", False),
        ("", "7", False),
        ("9" * 10_000, "9", False),  # huge answers are refused, not parsed
        ("9^{9^{9^{9}}}", "1", False),  # a power tower is refused, not evaluated
    ],
)
def test_numbers_and_formulas(predicted: str, gold: str, right: bool) -> None:
    assert number_correct(predicted, gold) is right


@pytest.mark.parametrize(
    ("predicted", "gold", "right"),
    [
        ("B", "B", True),
        ("(b)", "B", True),
        ("\\text{B}", "B", True),
        ("B.", "B", True),
        ("C", "B", False),
        ("BB", "B", False),
        ("", "B", False),
    ],
)
def test_choice_letters(predicted: str, gold: str, right: bool) -> None:
    assert choice_correct(predicted, gold) is right


def test_scorer_handles_no_answer_and_caches() -> None:
    scorer = Scorer("number", "10", {})
    assert scorer(None) is False
    assert scorer("10.0") is True
    assert scorer("10.0") is True


@pytest.mark.parametrize(
    ("code", "passed"),
    [
        ("def double(x):\n    return 2 * x\n", True),
        ("def double(x):\n    return x + x + 1\n", False),
        ("def double(x)\n    return 2 * x\n", False),  # syntax error
        ("import os\ndef double(x):\n    os._exit(0)\n", False),  # exit 0 before the asserts
        ("def double(x):\n    while True:\n        pass\n", False),  # killed at the limit
        ("def double(x):\n    return bytearray(1 << 40)\n", False),  # over the memory limit
    ],
)
def test_code_runs_tests_in_a_bounded_child(code: str, passed: bool) -> None:
    verdict = run_tests(code, ["assert double(2) == 4", "assert double(-3) == -6"], timeout_s=2)
    assert verdict.passed is passed


def test_code_scorer_uses_item_tests() -> None:
    scorer = Scorer("code", "unused", {"tests": ["assert f() == 1"]})
    assert scorer("def f():\n    return 1") is True
    assert scorer("def f():\n    return 2") is False
