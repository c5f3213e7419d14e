"""Checking a formula answer by substitution or by an equation (``decoding.verification``).

``check_math(answer, spec)`` is a pure function of strings, like ``decoding.symbolic``'s
judgements, and just as unbounded: sympy may spin or grow on a hostile formula. So it runs where
a ``decoding.judge.Judge`` bounds it (the server's judge workers: a wall clock and a memory cap).

- ``substitute`` + ``expected``: the answer is an expression; with the given values put for its
  symbols it must equal ``expected`` (numerically, to a relative 1e-9, or symbolically).
- ``equation`` (``lhs = rhs``): the answer is a value (or ``x = value``); put for ``variable``
  (default: the equation's only symbol), both sides must be equal.
"""

from __future__ import annotations

from typing import Any

from decoding.judge import failure_of
from decoding.symbolic import parse_formula
from decoding.verification import Check, MathCheck

_TOLERANCE = 1e-9


def check_math(answer: str, spec: MathCheck) -> Check:
    """Whether ``answer`` passes ``spec``; a reason either way."""
    try:
        expr = parse_formula(answer)
        if expr is None:
            return Check(False, "failed", "no formula in the answer")
        if spec.equation is not None:
            return _equation(expr, spec.equation, spec.variable)
        return _substitute(expr, spec.substitute or {}, spec.expected or "")
    except Exception as exc:
        if failure_of(exc) == "too_large":
            raise
        return Check(False, "failed", f"{type(exc).__name__} while checking")


def _value(text: str, what: str) -> Any:
    parsed = parse_formula(text)
    if parsed is None:
        raise ValueError(f"{what} is no formula: {text[:80]!r}")
    return parsed


def _same(left: Any, right: Any) -> bool:
    """Equal numerically (relative tolerance) or, failing that, symbolically."""
    difference = left - right
    try:
        value = complex(difference.evalf(30))
        scale = max(1.0, abs(complex(right.evalf(30))))
        return abs(value) <= _TOLERANCE * scale
    except (TypeError, ValueError):
        from sympy import simplify  # only for answers with symbols left over

        return bool(simplify(difference) == 0)


def _substitute(expr: Any, values: dict[str, str] | Any, expected: str) -> Check:
    if getattr(expr, "is_Relational", False):
        expr = expr.rhs
    symbols = {str(s): s for s in expr.free_symbols}
    unknown = sorted(set(symbols) - set(values))
    if unknown:
        return Check(False, "failed", f"the answer uses symbols without values: {unknown[:5]}")
    bound = {symbols[name]: _value(str(v), name) for name, v in values.items() if name in symbols}
    got = expr.subs(bound)
    if _same(got, _value(expected, "expected")):
        return Check(True, "passed", "equals the expected value after substitution")
    return Check(False, "failed", f"after substitution it is {str(got)[:80]}, not {expected[:80]}")


def _equation(expr: Any, equation: str, variable: str | None) -> Check:
    if getattr(expr, "is_Relational", False):
        expr = expr.rhs
    lhs_text, sep, rhs_text = equation.partition("=")
    if not sep:
        raise ValueError("an equation needs '='")
    lhs, rhs = _value(lhs_text, "lhs"), _value(rhs_text, "rhs")
    free = sorted((lhs - rhs).free_symbols, key=str)
    chosen = [s for s in free if str(s) == variable] if variable else free
    if len(chosen) != 1:
        return Check(None, "error", "the equation has no single variable to put the answer for")
    symbol = chosen[0]
    if _same(lhs.subs(symbol, expr), rhs.subs(symbol, expr)):
        return Check(True, "passed", f"satisfies the equation for {symbol}")
    return Check(False, "failed", f"does not satisfy the equation for {symbol}")
