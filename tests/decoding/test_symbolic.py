"""The math-verify boundary: tameness bounds, exact rationals, verify only on fingerprint hits."""

from __future__ import annotations

import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import pytest

from decoding.symbolic import (
    FormulaIndex,
    exact_rational,
    fingerprint,
    is_tame,
    parse_formula,
)


@pytest.mark.parametrize(
    ("formula", "tame"),
    [
        ("\\frac{\\sqrt{2}}{2}", True),
        ("(2^3)^2", True),
        ("(\\sqrt{2})^3", True),
        ("2^{4096}", True),
        ("x^{100}", True),
        ("1000!", True),
        ("\\binom{999}{500}", True),
        ("2^{\\sqrt{2}}", True),
        ("9^{9^{9}}", False),
        ("{9^9}^{9^9}", False),
        ("(999^{4096})^{4096}", False),
        ("2^{2^{12}}", False),
        ("9^{99999}", False),
        ("(x+1)^{5000}", False),
        ("1001!", False),
        ("(5!)!", False),
        ("\\sum_{k=1}^{10} k", False),
        ("\\int_0^1 x dx", False),
    ],
)
def test_is_tame(formula: str, tame: bool) -> None:
    from math_verify import parse

    [expr, *_] = parse(f"${formula}$", parsing_timeout=None)
    assert is_tame(expr) is tame


@pytest.mark.parametrize(
    ("formula", "value"),
    [
        ("2^{10}", Fraction(1024)),
        ("5!", Fraction(120)),
        ("\\frac{6}{4}", Fraction(3, 2)),
        ("\\sqrt[3]{27}", Fraction(3)),
        ("\\sqrt{2}", None),
        ("x+1", None),
    ],
)
def test_exact_rational(formula: str, value: Fraction | None) -> None:
    expr = parse_formula(formula)
    assert expr is not None
    assert exact_rational(expr) == value


ROOT = Path(__file__).resolve().parents[2]


def test_parse_formula_refuses_long_or_empty_input() -> None:
    assert parse_formula("") is None
    assert parse_formula("1+" * 100 + "1") is None


def test_fingerprints_of_equal_formulas_are_close() -> None:
    a, b = parse_formula("\\frac{1}{\\sqrt{2}}"), parse_formula("\\frac{\\sqrt{2}}{2}")
    c = parse_formula("(x+1)^2")
    d = parse_formula("x^2 + 2x + 1")
    marks = [fingerprint(e) for e in (a, b, c, d)]
    assert all(m is not None for m in marks)
    assert marks[0] == pytest.approx(marks[1]) and marks[2] == pytest.approx(marks[3])
    assert fingerprint(parse_formula("\\{1, 2\\}")) is None


def test_index_verifies_only_fingerprint_matches() -> None:
    index: FormulaIndex[int] = FormulaIndex()
    for k in range(2, 34):
        expr = parse_formula(f"\\frac{{\\sqrt{{{k}}}}}{{{k + 1}}}")
        found, mark = index.find(expr)
        assert found is None
        index.add(expr, mark, k)
    assert index.verifies == 0
    found, _ = index.find(parse_formula("\\sqrt{3}/4"))
    assert found == 3 and index.verifies == 1


def test_sets_compare_only_with_sets() -> None:
    index: FormulaIndex[str] = FormulaIndex()
    first = parse_formula("\\{1, 2\\}")
    index.add(first, fingerprint(first), "set")
    assert index.find(parse_formula("\\{2, 1\\}"))[0] == "set"
    assert index.find(parse_formula("(1, 2)"))[0] is None


def test_math_verify_works_off_the_main_thread() -> None:
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(parse_formula("\\frac{1}{2}")))
    worker.start()
    worker.join()
    assert results and results[0] is not None


def test_warm_up_pays_the_parsers_first_use_cost_once() -> None:
    # A fresh interpreter, so the parser's caches are not already warm from other tests. A
    # ratio, not a time limit: the first parse builds ANTLR's caches (~100 ms), later ones not.
    script = (
        "import time\n"
        "from decoding.symbolic import warm_up\n"
        "start = time.perf_counter(); warm_up(); first = time.perf_counter() - start\n"
        "start = time.perf_counter(); warm_up(); again = time.perf_counter() - start\n"
        "assert again * 10 < first, (first, again)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)
