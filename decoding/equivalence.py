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

Answers come from model output, so every step is linear in the answer's length (most inputs are
capped besides: ``MAX_NUMBER_CHARS``, ``MAX_FORMULA_CHARS``): runs that the next token cannot take
back from are possessive (``*+``), a failed thousands run is consumed whole instead of being tried
again from each of its groups, and ``display_text`` strips by moving two indices, not by copying
the string once per character stripped.
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
_FRACTION = re.compile(r"(?<!\d)[+-]?\d++/\d++")
# A run of thousands groups ("1,234,567"); only a run that ends the number sets ``whole``. A run
# that does not is still consumed, so its later groups are not each tried again as a start.
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}+(?:,\d{3})++(?P<whole>(?![\d,]))?")
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
_FACTORIAL_TRAILER = ".,;:?"  # punctuation after a factorial's "!" ("5!." ends in "5!")
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
    s = _THOUSANDS.sub(_drop_separators, strip_decorations(answer))
    s = s.replace(" ", "")
    if not (_NUMBER.fullmatch(s) or _FRACTION.fullmatch(s)):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def _drop_separators(m: re.Match[str]) -> str:
    return m.group(0).replace(",", "") if m.group("whole") is not None else m.group(0)


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
    """The answer as shown: NFKC, one-spaced, no wrapping quotes/markdown, no end punctuation.

    Wrappers and end punctuation are stripped in turn until neither changes (``**5.**`` -> ``5``),
    but the ``!`` of a factorial stays (``5!.`` -> ``5!``).
    """
    s = " ".join(unicodedata.normalize("NFKC", answer).split())
    start, end, previous = 0, len(s), (-1, -1)
    while previous != (start, end):
        previous = (start, end)
        start, end = _strip_span(s, start, end, _WRAPPERS)
        start, end = _strip_span(s, start, end, " ")  # the only whitespace left by the join
        run = end
        while run > start and s[run - 1] in _FACTORIAL_TRAILER:
            run -= 1
        if run - start >= 2 and s[run - 1] == "!" and _is_factorial_operand(s[run - 2]):
            end = run
        else:
            end = _strip_span(s, start, end, _TRAILING_PUNCT, left=False)[1]
    return s[start:end]


def _strip_span(s: str, start: int, end: int, chars: str, *, left: bool = True) -> tuple[int, int]:
    """``s[start:end]`` stripped of ``chars`` (on the right only unless ``left``), as indices."""
    while left and start < end and s[start] in chars:
        start += 1
    while end > start and s[end - 1] in chars:
        end -= 1
    return start, end


def _is_factorial_operand(c: str) -> bool:
    """Whether ``c!`` reads as a factorial: after a digit (any script, as ``\\d``), ``)``, ``}``."""
    return c.isdecimal() or c in ")}"


def canonical_choice(answer: str) -> str | None:
    """The upper-case option letter of ``(b)``, ``B.``, ``\\text{B}``, or None if it is not one."""
    s = _TEXT_GROUP.sub(lambda m: m.group(0)[m.group(0).index("{") + 1 : -1], answer)
    s = s.strip().strip("()[]*$ ").rstrip(".):").strip("()[]*$ ")
    return s.upper() if len(s) == 1 and s.isalpha() else None


def canonical_json(answer: str) -> str | None:
    """Compact JSON with sorted keys, so key order and spacing do not split the vote."""
    try:
        value = json.loads(answer)
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):  # not JSON, or nested too deep for the codec
        return None


def canonical_code(answer: str) -> str:
    """Code without trailing whitespace per line or surrounding blank lines."""
    return "\n".join(line.rstrip() for line in answer.strip("\n").splitlines()).strip("\n")


def number_key(value: Fraction) -> Canonical:
    """The key and display of an exact number (fast path and formulas alike)."""
    return Canonical(f"num:{value.numerator}/{value.denominator}", format_number(value))


def text_key(answer: str) -> Canonical:
    """The key and display of an answer compared as text (also the fallback of any other)."""
    return Canonical(f"text:{canonical_text(answer)}", display_text(answer))
