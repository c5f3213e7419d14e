"""Canonical keys: equivalent answers share a key, different ones do not.

Hostile formulas are judged in bounds by the server's judge pool: ``tests/runtime``."""

from __future__ import annotations

from fractions import Fraction

import pytest

from decoding.equivalence import (
    AnswerFormat,
    canonical_choice,
    canonical_code,
    canonical_json,
    canonical_text,
    format_number,
    looks_symbolic,
    parse_number,
)
from decoding.normalizer import AnswerNormalizer


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("1000", Fraction(1000)),
        ("1,000", Fraction(1000)),
        ("1,000,000.50", Fraction(2000001, 2)),
        ("1000.0", Fraction(1000)),
        ("1/2", Fraction(1, 2)),
        ("-3/6", Fraction(-1, 2)),
        (".5", Fraction(1, 2)),
        ("\u22125", Fraction(-5)),
        ("+7", Fraction(7)),
        ("$5", Fraction(5)),
        ("\\$5.25", Fraction(21, 4)),
        ("5%", Fraction(5)),
        ("5\\%", Fraction(5)),
        ("90^\\circ", Fraction(90)),
        ("90°", Fraction(90)),
        ("x = 12", Fraction(12)),
        ("1{,}000", Fraction(1000)),
        ("1e3", Fraction(1000)),
        ("12.", Fraction(12)),
        ("1,00", None),
        ("1,5", None),
        ("1/0", None),
        ("\\frac{1}{2}", None),
        ("two", None),
        ("", None),
        ("1" * 200, None),
    ],
)
def test_parse_number(answer: str, expected: Fraction | None) -> None:
    assert parse_number(answer) == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Fraction(1000), "1000"),
        (Fraction(1, 2), "0.5"),
        (Fraction(-1, 8), "-0.125"),
        (Fraction(1, 3), "1/3"),
        (Fraction(-7, 6), "-7/6"),
        (Fraction(3, 100), "0.03"),
        (Fraction(0), "0"),
    ],
)
def test_format_number(value: Fraction, shown: str) -> None:
    assert format_number(value) == shown
    assert parse_number(shown) == value


SAME: list[tuple[AnswerFormat, list[str]]] = [
    ("auto", ["1,000", "1000", "1000.0", "$1000", "1e3"]),
    ("auto", ["1/2", "0.5", "\\frac{1}{2}", "\\dfrac{2}{4}", "\\left(\\frac{1}{2}\\right)"]),
    ("auto", ["\u22125", "-5", "\u2212 5"]),
    ("auto", ["5%", "5", "5\\%"]),
    ("auto", ["2^{10}", "1024"]),
    ("auto", ["(2^3)^2", "64", "{2^3}^2"]),
    ("math", ["5!", "120", "\\binom{10}{3}"]),
    ("auto", ["\\sqrt{8}", "2\\sqrt{2}", "2^{3/2}"]),
    ("auto", ["2\\pi", "\\pi \\cdot 2", "2 \\pi"]),
    ("auto", ["x+1", "1+x"]),
    ("math", ["\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"]),
    ("math", ["5\\text{ cm}", "5"]),
    ("auto", ["Paris", "paris.", "**Paris**", "  PARIS  "]),
    ("text", ["New  York", "new york!", '"New York"']),
    ("choice", ["B", "(b)", "b.", "\\text{B}", "(B)"]),
    ("json", ['{"a": 1, "b": [1, 2]}', '{"b":[1,2],"a":1}']),
    ("code", ["def f():\n    return 1   \n\n", "\n\ndef f():\n    return 1"]),
]


@pytest.mark.parametrize(("answer_format", "answers"), SAME)
async def test_equivalent_answers_share_a_key(
    answer_format: AnswerFormat, answers: list[str]
) -> None:
    normalizer = AnswerNormalizer(answer_format)
    keys = {(await normalizer.canonical(a)).canonical.key for a in answers}
    assert len(keys) == 1, keys


DIFFERENT: list[tuple[AnswerFormat, list[str]]] = [
    ("auto", ["1000", "100", "10000", "1,0000"]),
    ("auto", ["0.333", "1/3"]),
    ("auto", ["5%", "0.05"]),
    ("auto", ["\\sqrt{2}", "\\sqrt{3}", "1.4142135623730951"]),
    ("auto", ["x+1", "x-1"]),
    ("auto", ["Paris", "Sirap", "paris france"]),
    ("choice", ["A", "B"]),
    ("json", ['{"a": 1}', '{"a": 2}', '{"a": "1"}']),
    ("code", ["x = 1", "x  = 1", "    x = 1"]),
]


@pytest.mark.parametrize(("answer_format", "answers"), DIFFERENT)
async def test_different_answers_get_different_keys(
    answer_format: AnswerFormat, answers: list[str]
) -> None:
    normalizer = AnswerNormalizer(answer_format)
    keys = [(await normalizer.canonical(a)).canonical.key for a in answers]
    assert len(set(keys)) == len(answers), keys


@pytest.mark.parametrize(
    ("answer_format", "answer", "display"),
    [
        ("auto", "1,000", "1000"),
        ("auto", "\\frac{1}{2}", "0.5"),
        ("auto", "\\frac{1}{3}", "1/3"),
        ("auto", "\\sqrt{2}", "\\sqrt{2}"),
        ("auto", "**Paris**.", "Paris"),
        ("choice", "(c)", "C"),
        ("json", '{"b": 1, "a": 2}', '{"a":2,"b":1}'),
    ],
)
async def test_display(answer_format: AnswerFormat, answer: str, display: str) -> None:
    judged = await AnswerNormalizer(answer_format).canonical(answer)
    assert judged.canonical.display == display and judged.verdict == "ok"


async def test_formats_do_not_share_keys() -> None:
    auto = await AnswerNormalizer("auto").canonical("1")
    text = await AnswerNormalizer("text").canonical("1")
    assert auto.canonical.key != text.canonical.key


async def test_distinct_strings_are_parsed_once() -> None:
    normalizer = AnswerNormalizer("auto")
    for _ in range(64):
        await normalizer.canonical("\\sqrt{2}")
        await normalizer.canonical("42")
    assert normalizer.symbolic_parses == 1


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="answer_format"):
        AnswerNormalizer("yaml")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "symbolic"),
    [
        ("\\frac{1}{2}", True),
        ("2x+1", True),
        ("\\sin(x)", True),
        ("sqrt(2)/2", True),
        ("5 \\text{ apples}", True),
        ("Paris", False),
        ("New-York", False),
        ("42", False),
        ("x" * 500, False),
    ],
)
def test_looks_symbolic(answer: str, symbolic: bool) -> None:
    assert looks_symbolic(answer) is symbolic


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("  Hello,   World. ", "hello, world"), ("ÅNGSTRÖM", "ångström"), ("ﬁne", "fine")],
)
def test_canonical_text(answer: str, expected: str) -> None:
    assert canonical_text(answer) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("B", "B"), ("(d)", "D"), ("C.", "C"), ("\\text{(E)}", "E"), ("AB", None), ("", None)],
)
def test_canonical_choice(answer: str, expected: str | None) -> None:
    assert canonical_choice(answer) == expected


def test_canonical_json_and_code() -> None:
    assert canonical_json('{"é": 1, "a": {"z": 1, "y": 2}}') == '{"a":{"y":2,"z":1},"é":1}'
    assert canonical_json("{not json") is None
    assert canonical_code("\n\n  a = 1  \n  b = 2\t\n\n") == "  a = 1\n  b = 2"
