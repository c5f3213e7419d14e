"""The judgements a judge runs: parse, exact value, key, fingerprint, equality; values bounded.

Only inputs that are cheap to judge are here (these functions have no bound of their own).
Hostile ones (huge powers, towers, deep nesting) go through the judge pool: ``tests/runtime``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import sympy

from decoding.judge import TooLarge
from decoding.symbolic import (
    MAX_EXACT_BITS,
    exact_rational,
    fingerprint,
    formula_key,
    formulas_equal,
    judge_formula,
    parse_formula,
)


@pytest.mark.parametrize(
    ("formula", "value"),
    [
        ("2^{10}", Fraction(1024)),
        ("5!", Fraction(120)),
        ("\\frac{6}{4}", Fraction(3, 2)),
        ("\\sqrt[3]{27}", Fraction(3)),
        ("0.5", Fraction(1, 2)),
        ("\\sum_{k=1}^{10} k", Fraction(55)),  # refused by the old guard; the judge bounds it
        ("\\int_0^1 x dx", Fraction(1, 2)),
        ("(5!)!", Fraction(sympy.factorial(120))),
        ("1001!", Fraction(sympy.factorial(1001))),
        (f"2^{{{MAX_EXACT_BITS - 1}}}", Fraction(2 ** (MAX_EXACT_BITS - 1))),
        ("\\sqrt{2}", None),
        ("x+1", None),
    ],
)
def test_exact_rational(formula: str, value: Fraction | None) -> None:
    expr = parse_formula(formula)
    assert expr is not None
    assert exact_rational(expr) == value


@pytest.mark.parametrize(
    "formula",
    [
        f"2^{{{MAX_EXACT_BITS + 1}}}",
        "9^{99999}",
        "{10^{4096}}^{2}",
        "999!\\cdot 999!\\cdot 999!\\cdot 999!",
        "\\frac{1}{2^{20000}}",
    ],
)
def test_huge_exact_values_are_too_large(formula: str) -> None:
    with pytest.raises(TooLarge):
        judge_formula(formula)


@pytest.mark.parametrize(
    ("formula", "key", "kind", "has_mark"),
    [
        ("\\sqrt{2}", "sym:sqrt(2)", "Pow", True),
        ("2\\pi", "sym:2*pi", "Mul", True),
        ("x^2+2x+1", "sym:x**2 + 2*x + 1", "Add", True),
        ("\\{1, 2\\}", "sym:{1, 2}", "FiniteSet", False),
        ("1,2,3", "sym:{1, 2, 3}", "FiniteSet", False),
        ("a = b", "sym:Eq(a, b)", "Equality", False),
        ("\\infty", "sym:oo", "Infinity", False),
        ("\\frac{1}{0}", "sym:zoo", "ComplexInfinity", False),
        ("(x+1)^{5000}", "sym:(x + 1)**5000", "Pow", False),  # overflows the probe: no mark
        ("x^{10^{10}}", "sym:x**(10**10)", "Pow", True),
        ("\\sqrt[99999]{2}", "sym:2**(1/99999)", "Pow", True),
    ],
)
def test_judge_formula_keys_other_formulas(
    formula: str, key: str, kind: str, has_mark: bool
) -> None:
    judged = judge_formula(formula)
    assert judged is not None and judged.value is None
    assert (judged.key, judged.kind, judged.mark is not None) == (key, kind, has_mark)


@pytest.mark.parametrize("formula", ["", "1+" * 100 + "1", "√2"])
def test_judge_formula_finds_no_formula(formula: str) -> None:
    assert judge_formula(formula) is None


x = sympy.Symbol("x")


@pytest.mark.parametrize(
    "expr",
    [
        sympy.Integer(3**20000) + x,  # past Python's int-to-str limit
        sympy.Integer(3**9000) + x,  # prints, but longer than a key may be
        sum(sympy.Symbol(f"s{i}") for i in range(1000)),
    ],
    ids=["int-str-limit", "long-integer", "many-terms"],
)
def test_formula_keys_are_bounded(expr: Any) -> None:
    with pytest.raises(TooLarge):
        formula_key(expr)


@pytest.mark.parametrize(
    ("first", "second", "equal"),
    [
        ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", True),
        ("x+1", "1+x", True),
        ("(x+1)^2", "x^2+2x+1", True),
        ("\\{1, 2\\}", "\\{2, 1\\}", True),
        ("x+1", "x-1", False),
        ("\\sqrt{2}", "\\sqrt{3}", False),
        ("", "1", False),
        ("1+" * 100 + "1", "101", False),  # too long to be a formula
    ],
)
def test_formulas_equal(first: str, second: str, equal: bool) -> None:
    assert formulas_equal(first, second) is equal


def test_fingerprints_of_equal_formulas_are_close() -> None:
    a, b = parse_formula("\\frac{1}{\\sqrt{2}}"), parse_formula("\\frac{\\sqrt{2}}{2}")
    c = parse_formula("(x+1)^2")
    d = parse_formula("x^2 + 2x + 1")
    marks = [fingerprint(e) for e in (a, b, c, d)]
    assert all(m is not None for m in marks)
    assert marks[0] == pytest.approx(marks[1]) and marks[2] == pytest.approx(marks[3])
    assert fingerprint(parse_formula("\\{1, 2\\}")) is None


def test_math_verify_works_off_the_main_thread() -> None:
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(parse_formula("\\frac{1}{2}")))
    worker.start()
    worker.join()
    assert results and results[0] is not None


ROOT = Path(__file__).resolve().parents[2]


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
