"""The math-verify boundary: the judgements that parse and evaluate formulas.

Everything here is a pure function of strings with no bound of its own: a short formula can make
sympy build a number with trillions of digits (``2^{10^{13}}``), evaluate ``\\binom`` of a huge
argument inside the parse, or spin in ``evalf`` on nested exponentials. So these functions run
where a ``decoding.judge.Judge`` bounds them (the server's worker processes: a wall-clock limit
and a memory limit, killed and replaced on expiry), and the parent only ever receives small,
plain results (``FormulaJudgement``: a ``Fraction``, short strings, a complex number).

Values are bounded on the way out, so that no answer can make anyone build or print a huge
number: an exact value past ``MAX_EXACT_BITS`` or a key past ``MAX_KEY_CHARS`` raises
``TooLarge``; memory errors, recursion errors and Python's int-to-str limit propagate (the judge
reports all of them as ``too_large``). No guard guesses which expressions are dangerous: the
judge's limits are the bound. math-verify's own timeouts use ``signal.alarm`` (main thread
only), so they are disabled (``parsing_timeout=None``, ``timeout_seconds=None``).
"""

from __future__ import annotations

import cmath
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from math_verify import parse, parser, verify
from sympy.core.cache import clear_cache

from decoding.judge import TooLarge, failure_of

MAX_FORMULA_CHARS = 160
# About 3,900 decimal digits: an exact answer this long still prints under Python's default
# 4,300-digit int-to-str limit, and nobody votes over longer ones.
MAX_EXACT_BITS = 13_000
MAX_KEY_CHARS = 4_096
# Irrational-ish probe values for free symbols, so distinct polynomials rarely collide.
_PROBES = (0.5772156649, 1.3247179572, 2.6854520010, 0.9159655942, 1.6180339887, 2.5029078751)


@dataclass(frozen=True)
class FormulaJudgement:
    """What judging one formula yields: its exact rational ``value``, or else its ``key``,
    the numeric ``mark`` (fingerprint) that finds equal candidates, and its sympy ``kind``."""

    value: Fraction | None
    key: str | None = None
    mark: complex | None = None
    kind: str = ""


def parse_formula(formula: str) -> Any | None:
    """The sympy value math-verify parses from a LaTeX/plain formula, or None if there is none.

    Memory and recursion errors (and the int-to-str limit) propagate: they say the formula is
    too large, not that it is no formula.
    """
    if not formula or len(formula) > MAX_FORMULA_CHARS:
        return None
    try:
        parsed = parse(f"${formula}$", parsing_timeout=None, raise_on_error=True)
    except Exception as exc:  # math-verify wraps sympy and antlr; failing means "no formula"
        if failure_of(exc) == "too_large":
            raise
        return None
    return next((p for p in parsed if not isinstance(p, str)), None)


def exact_rational(expr: Any) -> Fraction | None:
    """The exact value of a closed rational expression (``2^{10}``, ``5!``), else None;
    ``TooLarge`` past ``MAX_EXACT_BITS``."""
    try:
        if not expr.is_number:
            return None
        value = expr.doit()
        if not getattr(value, "is_Rational", False):
            return None
        p, q = int(value.p), int(value.q)
    except Exception as exc:  # sympy evaluation errors: not a plain rational
        if failure_of(exc) == "too_large":
            raise
        return None
    if max(p.bit_length(), q.bit_length()) > MAX_EXACT_BITS:
        raise TooLarge(f"an exact value of more than {MAX_EXACT_BITS} bits")
    return Fraction(p, q)


def fingerprint(expr: Any) -> complex | None:
    """The numeric value at fixed probe points (None for sets, equations, ...): equal => close."""
    try:
        symbols = sorted(expr.free_symbols, key=str)
        probe = {
            s: _PROBES[i % len(_PROBES)] * (1 + i // len(_PROBES)) for i, s in enumerate(symbols)
        }
        value = complex(expr.subs(probe).evalf(15) if probe else expr.evalf(15))
    except Exception as exc:  # not a scalar, or undefined at the probe point
        if failure_of(exc) == "too_large":
            raise
        return None
    return value if cmath.isfinite(value) else None


def formula_key(expr: Any) -> str:
    """The grouping key of a formula that is not a plain rational; ``TooLarge`` if it is long."""
    try:
        printed = str(expr)
    except ValueError as exc:  # sympy printing an integer past the int-to-str limit
        raise TooLarge("a formula too large to print") from exc
    if len(printed) > MAX_KEY_CHARS:
        raise TooLarge(f"a formula key of more than {MAX_KEY_CHARS} characters")
    return f"sym:{printed}"


def judge_formula(formula: str) -> FormulaJudgement | None:
    """Everything the vote needs about one formula answer (None: it is no formula), in one
    call so that a judge runs it once per distinct answer."""
    try:
        expr = parse_formula(formula)
        if expr is None:
            return None
        value = exact_rational(expr)
        if value is not None:
            return FormulaJudgement(value)
        return FormulaJudgement(None, formula_key(expr), fingerprint(expr), type(expr).__name__)
    except Exception as exc:
        _forget_if_too_large(exc)
        raise


def formulas_equal(first: str, second: str) -> bool:
    """Whether math-verify finds two formulas equal (False if either is no formula)."""
    try:
        a, b = parse_formula(first), parse_formula(second)
        if a is None or b is None:
            return False
        return bool(verify(a, b, timeout_seconds=None))
    except Exception as exc:
        _forget_if_too_large(exc)
        raise


def _forget_if_too_large(exc: Exception) -> None:
    """After a too-large formula, drop the parser's and sympy's caches, which may hold its
    parts: a long-lived worker must not carry one answer's memory into the next."""
    if failure_of(exc) != "too_large":
        return
    for name in ("parse_latex_cached", "parse_expr_cached", "extract_latex"):
        cached = getattr(parser, name, None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()
    clear_cache()


def warm_up() -> None:
    """Parse and verify one formula, so the first answer does not pay math-verify's start-up
    (ANTLR builds its caches on first use, ~100 ms)."""
    formulas_equal("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}")
