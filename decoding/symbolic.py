"""The math-verify boundary: parse formulas, bound their cost, and find equal ones quickly.

math-verify's own timeouts use ``signal.alarm``, which only works on the main thread, and we run
off the event loop in worker threads; so both are disabled (``parse(parsing_timeout=None)``,
``verify(timeout_seconds=None)``) and time is bounded instead by an input length cap
(``MAX_FORMULA_CHARS``) and by ``is_tame``, which refuses trees whose evaluation could build huge
integers (power towers, big exponents or factorials) or that sympy evaluates slowly (sums,
integrals, limits). Callers fall back to a text key for refused formulas.

Equality of formulas is ``math_verify.verify``, but a verify costs milliseconds, so
``FormulaIndex`` first compares cheap numeric fingerprints (the value at fixed probe points for
the free symbols) and verifies only fingerprint matches: 64 distinct formulas cost 64 parses and a
handful of verifies, not 64 * 63 / 2 verifies.
"""

from __future__ import annotations

import cmath
from fractions import Fraction
from typing import Any, Generic, TypeVar

from math_verify import parse, verify

MAX_FORMULA_CHARS = 160
_MAX_TREE_NODES = 200
_MAX_EXPONENT = 4096
_MAX_FACTORIAL = 1000
_MAX_INT_BITS = 1 << 16
_HEAVY = frozenset({"Sum", "Product", "Integral", "Limit", "Derivative", "Subs"})
_FACTORIALS = frozenset(
    {"factorial", "factorial2", "subfactorial", "binomial", "gamma"}
    | {"RisingFactorial", "FallingFactorial"}
)
# Irrational-ish probe values for free symbols, so distinct polynomials rarely collide.
_PROBES = (0.5772156649, 1.3247179572, 2.6854520010, 0.9159655942, 1.6180339887, 2.5029078751)

_V = TypeVar("_V")


class _Untame(Exception):
    """Raised inside ``_size_bits`` as soon as a tree is too big to evaluate safely."""


def parse_formula(formula: str) -> Any | None:
    """The sympy value math-verify parses from a LaTeX/plain formula, or None if none or untame."""
    if not formula or len(formula) > MAX_FORMULA_CHARS:
        return None
    try:
        parsed = parse(f"${formula}$", parsing_timeout=None)
    except Exception:  # math-verify wraps sympy and antlr; any failure means "not a formula"
        return None
    expr = next((p for p in parsed if not isinstance(p, str)), None)
    return expr if expr is not None and is_tame(expr) else None


def is_tame(expr: Any) -> bool:
    """Whether sympy can evaluate and compare this parsed tree quickly (bounded integer sizes)."""
    try:
        _size_bits(expr, [0])
    except _Untame:
        return False
    return True


def _size_bits(node: Any, seen: list[int]) -> int:
    """An upper bound on the bits of any integer that evaluating ``node`` could create.

    Powers multiply their base's size by the exponent, so towers like ``(9^9)^9`` or
    ``9^{9^{9}}`` are caught however they are nested.
    """
    seen[0] += 1
    name = type(node).__name__
    if seen[0] > _MAX_TREE_NODES or name in _HEAVY:
        raise _Untame
    if getattr(node, "is_Rational", False):
        bits = max(abs(int(node.p)).bit_length(), int(node.q).bit_length(), 1)
    elif getattr(node, "is_Pow", False):
        base, exp = _size_bits(node.base, seen), node.exp
        if exp.is_Rational:
            if int(exp.q) > _MAX_EXPONENT:
                raise _Untame
            scale = abs(int(exp.p))
        else:
            exp_bits = _size_bits(exp, seen)
            if not exp.is_number:  # x^n, 2^x: nothing to evaluate, but keep n bounded
                scale = exp_bits
            elif exp_bits > _MAX_EXPONENT.bit_length():
                raise _Untame
            else:
                scale = 1 << exp_bits
        if scale > _MAX_EXPONENT:
            raise _Untame
        bits = base * max(scale, 1)
    elif name in _FACTORIALS:
        bits = 0
        for arg in node.args:
            if arg.is_number and not (arg.is_Integer and abs(int(arg)) <= _MAX_FACTORIAL):
                raise _Untame
            size = abs(int(arg)) if arg.is_number else _size_bits(arg, seen)
            bits += size * max(size.bit_length(), 1)  # n! < n^n
    else:
        bits = 1 + sum(_size_bits(arg, seen) for arg in getattr(node, "args", ()))
    if bits > _MAX_INT_BITS:
        raise _Untame
    return bits


def exact_rational(expr: Any) -> Fraction | None:
    """The exact value of a closed rational expression (``2^{10}``, ``5!``), else None."""
    try:
        if not expr.is_number:
            return None
        value = expr.doit()
        if getattr(value, "is_Rational", False):
            return Fraction(int(value.p), int(value.q))
    except Exception:  # sympy evaluation errors: treat as not a plain rational
        return None
    return None


def fingerprint(expr: Any) -> complex | None:
    """The numeric value at fixed probe points (None for sets, equations, ...): equal => close."""
    try:
        symbols = sorted(expr.free_symbols, key=str)
        probe = {
            s: _PROBES[i % len(_PROBES)] * (1 + i // len(_PROBES)) for i, s in enumerate(symbols)
        }
        value = complex(expr.subs(probe).evalf(15) if probe else expr.evalf(15))
    except Exception:  # not a scalar, or undefined at the probe point
        return None
    return value if cmath.isfinite(value) else None


class FormulaIndex(Generic[_V]):
    """Representatives of the distinct formulas seen so far, each with a value (e.g. its key)."""

    def __init__(self) -> None:
        self._entries: list[tuple[Any, complex | None, str, _V]] = []
        self.verifies = 0

    def find(self, expr: Any) -> tuple[_V | None, complex | None]:
        """The value of an equal representative (or None), and ``expr``'s fingerprint."""
        mark, kind = fingerprint(expr), type(expr).__name__
        for rep, rep_mark, rep_kind, value in self._entries:
            if mark is None or rep_mark is None:
                if mark is not rep_mark or kind != rep_kind:
                    continue
            elif not cmath.isclose(mark, rep_mark, rel_tol=1e-9, abs_tol=1e-12):
                continue
            self.verifies += 1
            if verify(rep, expr, timeout_seconds=None):
                return value, mark
        return None, mark

    def add(self, expr: Any, mark: complex | None, value: _V) -> None:
        """Register ``expr`` as the representative of a new group."""
        self._entries.append((expr, mark, type(expr).__name__, value))


def warm_up() -> None:
    """Parse and verify one formula, so the first request does not pay math-verify's start-up."""
    expr = parse_formula("\\frac{\\sqrt{2}}{2}")
    if expr is not None:
        verify(expr, expr, timeout_seconds=None)
