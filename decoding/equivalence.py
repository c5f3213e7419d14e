"""Canonical keys for extracted answers, so that equivalent answers vote together.

Numbers take a fast exact path (``fractions.Fraction``): ``1,000`` = ``1000`` = ``1000.0``,
``1/2`` = ``0.5``, ``−5`` (U+2212) = ``-5``. Decorations are dropped before comparing: ``$``/``\\$``
currency signs, ``%``/``\\%`` (so ``5%`` votes with ``5``, not with ``0.05``: the question fixes the
unit and models mostly differ only in whether they print the sign), degree marks, LaTeX spacing, and
a leading ``x =``. Decimals are compared exactly, so ``0.333`` is not ``1/3``.

LaTeX and symbolic answers (``\\frac{1}{2}``, ``\\sqrt{2}``, ``2\\pi``) go to math-verify in a
bounded judge (see ``decoding.normalizer``), only when the fast path fails and only once per
DISTINCT answer string. Rational results share the number keys; other formulas are grouped with
an equal representative; any answer can fall back to its text key (``text_key``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from decoding.symbolic import MAX_FORMULA_CHARS

AnswerFormat = Literal["auto", "number", "math", "choice", "text", "json", "code"]
ANSWER_FORMATS: tuple[AnswerFormat, ...] = (
    "auto",
    "number",
    "math",
    "choice",
    "text",
    "json",
    "code",
)

MAX_NUMBER_CHARS = 128

_MINUS = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-", "\uff0d": "-"})
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?")
_FRACTION = re.compile(r"[+-]?\d+/\d+")
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d,])")
_LATEX_SPACES = re.compile(r"\\[!,;: ]|\\q?quad|~")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°")
_ASSIGNMENT = re.compile(r"^[A-Za-z]\s*=\s*(?=\S)")
_TEXT_GROUP = re.compile(r"\\(?:text|mathrm|mbox|textbf)\{[^{}]*\}")
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_MATH_WORDS = frozenset(
    {"sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "sqrt", "pi"}
)
_OPERATOR = re.compile(r"[+\-*/=^()!]")
_TRAILING_PUNCT = ".,;:!?"
_FACTORIAL_END = re.compile(r"([\d)}]!)[.,;:?]*$")  # "5!" is a factorial, not an exclamation
_WRAPPERS = "\"'`*_"


@dataclass(frozen=True)
class Canonical:
    """An answer's grouping ``key`` (equal keys vote together) and its normalised ``display``."""

    key: str
    display: str


def strip_decorations(answer: str) -> str:
    """Drop notation that does not change a numeric answer: currency, %, degrees, ``x =``."""
    s = unicodedata.normalize("NFKC", answer).translate(_MINUS).strip()
    s = s.strip("$").strip()
    if (s.startswith("\\(") and s.endswith("\\)")) or (s.startswith("\\[") and s.endswith("\\]")):
        s = s[2:-2].strip()
    s = _LATEX_SPACES.sub("", s).replace("{,}", ",").replace("\\$", "").replace("\\%", "")
    s = _DEGREES.sub("", s).rstrip(".").strip()
    s = s.lstrip("$").rstrip("%").strip()
    return _ASSIGNMENT.sub("", s)


def parse_number(answer: str) -> Fraction | None:
    """Exact value of a plain integer, decimal or ``p/q`` answer, without any symbolic parsing."""
    if len(answer) > MAX_NUMBER_CHARS:
        return None
    s = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), strip_decorations(answer))
    s = s.replace(" ", "")
    if not (_NUMBER.fullmatch(s) or _FRACTION.fullmatch(s)):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def format_number(value: Fraction) -> str:
    """Display an exact number: an integer, a terminating decimal, or ``p/q``."""
    if value.denominator == 1:
        return str(value.numerator)
    d, twos, fives = value.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10**places // value.denominator
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def looks_symbolic(answer: str) -> bool:
    """Whether an answer is worth a math-verify parse (LaTeX, or a short formula, not prose)."""
    if not answer or len(answer) > MAX_FORMULA_CHARS:
        return False
    if any(c in answer for c in "\\^√π∞"):
        return True
    words = [w.lower() for w in _WORD.findall(_TEXT_GROUP.sub("", answer))]
    if any(w not in _MATH_WORDS for w in words):
        return False
    return bool(_OPERATOR.search(answer)) and any(c.isalnum() for c in answer)


def canonical_text(answer: str) -> str:
    """Case-folded ``display_text``, so capitalisation does not split the vote."""
    return " ".join(display_text(answer).casefold().split())


def display_text(answer: str) -> str:
    """The answer as shown: NFKC, one-spaced, no wrapping quotes/markdown, no end punctuation."""
    s = " ".join(unicodedata.normalize("NFKC", answer).split())
    previous = None
    while previous != s:
        previous = s
        s = s.strip(_WRAPPERS).strip()
        s = _FACTORIAL_END.sub(r"\1", s) if _FACTORIAL_END.search(s) else s.rstrip(_TRAILING_PUNCT)
    return s.strip()


def canonical_choice(answer: str) -> str | None:
    """The upper-case option letter of ``(b)``, ``B.``, ``\\text{B}``, or None if it is not one."""
    s = _TEXT_GROUP.sub(lambda m: m.group(0)[m.group(0).index("{") + 1 : -1], answer)
    s = s.strip().strip("()[]*$ ").rstrip(".):").strip("()[]*$ ")
    return s.upper() if len(s) == 1 and s.isalpha() else None


def canonical_json(answer: str) -> str | None:
    """Compact JSON with sorted keys, so key order and spacing do not split the vote."""
    try:
        value = json.loads(answer)
    except ValueError:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_code(answer: str) -> str:
    """Code without trailing whitespace per line or surrounding blank lines."""
    return "\n".join(line.rstrip() for line in answer.strip("\n").splitlines()).strip("\n")


def number_key(value: Fraction) -> Canonical:
    """The key and display of an exact number (fast path and formulas alike)."""
    return Canonical(f"num:{value.numerator}/{value.denominator}", format_number(value))


def text_key(answer: str) -> Canonical:
    """The key and display of an answer compared as text (also the fallback of any other)."""
    return Canonical(f"text:{canonical_text(answer)}", display_text(answer))
