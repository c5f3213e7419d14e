"""Answer extraction: a table per format, the ugly cases, and bounded time on huge outputs."""

from __future__ import annotations

import time

import pytest

from decoding.equivalence import AnswerFormat
from decoding.extraction import (
    MAX_BLOCK_SCAN_CHARS,
    MAX_SCAN_CHARS,
    extract_answer,
    extract_boxed,
)

CASES: list[tuple[str, AnswerFormat, str | None]] = [
    # auto: boxed > "answer is" / #### > "Answer:" line > last equation result > last number
    (r"So \boxed{\frac{1}{2}} is it.", "auto", r"\frac{1}{2}"),
    (r"Nested: \boxed{\frac{\sqrt{2}}{2}}", "auto", r"\frac{\sqrt{2}}{2}"),
    (r"First \boxed{3}, then corrected: \boxed{4}.", "auto", "4"),
    (r"Unclosed at the end \boxed{5} and \boxed{6", "auto", "5"),
    (r"The answer is 7 but \boxed{8}", "auto", "8"),
    ("Step: 3+4=7. The answer is 42.", "auto", "42"),
    ("The answer is $\\frac{3}{4}$, which is nice.", "auto", r"\frac{3}{4}"),
    ("The answer is:\n\n12 apples", "auto", "12"),
    ("Natalia sold 48 clips in April.\n#### 72", "auto", "72"),
    ("#### 10\nlater the answer is 11.", "auto", "11"),
    ("the answer is 5. Later, #### 6", "auto", "6"),
    ("We compute 5 and 6.\nAnswer: 1,000 apples", "auto", "1,000"),
    ("**Final Answer:** −5", "auto", "−5"),
    ("Final answer: $x = 3$", "auto", "x = 3"),
    ("We get 12 then 15 and finally 17.", "auto", "17"),
    # an unmarked equation's result beats the last number, often an operand restated
    ("2 + 3 = 5\n\nThis is the sum of 2 and 3.", "auto", "5"),
    ("7 + 8 equals 15, not 14 or 3", "auto", "15"),
    ("2+3=5, then 5*2=10 for 3 people", "auto", "10"),
    ("Total: 1,234,567 and change 0.25.", "auto", "0.25"),
    ("It costs $1,234.50 in total.", "auto", "1,234.50"),
    ("Half of it: 3/4 remains", "auto", "3/4"),
    ("From 2024-01-05 on", "auto", "05"),
    ("A temperature of −12 degrees", "auto", "−12"),
    ("No numbers here.", "auto", None),
    ("", "auto", None),
    # number: a marked span that is prose falls through to its first number
    ("The answer is 18 dollars and 3 cents.", "number", "18"),
    ("The answer is unclear; we saw 4 and 9.", "number", "9"),
    ("Answer: none", "number", None),
    # math keeps formulas whole
    (r"The answer is 2\sqrt{2}", "math", r"2\sqrt{2}"),
    (r"Thus $\boxed{x^2 + 1}$.", "math", "x^2 + 1"),
    # choice: boxed letter, "answer is", last line
    (r"\boxed{\text{(B)}}", "choice", "B"),
    (r"\boxed{D}", "choice", "D"),
    ("I think the answer is C because it fits.", "choice", "C"),
    ("The answer is (d).", "choice", "D"),
    ("Answer: E", "choice", "E"),
    ("Options (A) 1 (B) 2.\nReasoning...\n(B)", "choice", "B"),
    ("A cat sat on the mat.\nB.", "choice", "B"),
    ("the answer is a bit tricky", "choice", None),
    ("A cat sat on the mat.", "choice", None),
    # text
    ("The capital is\n\nParis.", "text", "Paris."),
    ("The answer is Paris.", "text", "Paris"),
    ("", "text", None),
    # code: the last fenced block, an unclosed one runs to the end
    ("Here:\n```python\ndef f():\n    return 1\n```\ndone", "code", "def f():\n    return 1"),
    ("```py\na = 1\n```\nthen\n```js\nx()\n```\n", "code", "x()"),
    ("Cut by a stop string:\n```python\nprint(1)\n", "code", "print(1)"),
    ("No code at all.", "code", None),
    ("```\n\n```", "code", None),
    # json: fenced first, else the last top-level object
    ('Result {"b": 1, "a": [1, 2]} and then {"c": {"d": 2}} end', "json", '{"c": {"d": 2}}'),
    ('```json\n{"a": 1}\n```\ntrailing {"z": 0', "json", '{"a": 1}'),
    ('{"a": 1} then {broken', "json", '{"a": 1}'),
    ("no braces", "json", None),
    ("[1, 2, 3]", "json", None),
]


@pytest.mark.parametrize(("text", "answer_format", "expected"), CASES)
def test_extract_answer(text: str, answer_format: AnswerFormat, expected: str | None) -> None:
    assert extract_answer(text, answer_format) == expected


@pytest.mark.parametrize(
    ("text", "answer_format", "expected"),
    [
        ("We get 12 then 15 and", "auto", None),
        ("So far 12 and \\boxed{13}", "auto", "13"),
        ("The answer is 9", "number", "9"),
        ("Looking at the options, A seems", "choice", None),
        ("Option\n(B)", "choice", None),
        ("The capital is Paris", "text", None),
    ],
)
def test_no_fallback_keeps_only_marked_answers(
    text: str, answer_format: AnswerFormat, expected: str | None
) -> None:
    assert extract_answer(text, answer_format, allow_fallback=False) == expected


def test_boxed_with_deep_nesting() -> None:
    assert extract_boxed(r"\boxed{\left\{ \frac{1}{\sqrt{2}} \right\}}") == (
        r"\left\{ \frac{1}{\sqrt{2}} \right\}"
    )


def test_only_the_tail_is_examined() -> None:
    text = r"\boxed{1}" + "x " * MAX_SCAN_CHARS + "so 2"
    assert extract_answer(text) == "2"


HUGE = 1_000_000
PATHOLOGICAL = [
    "1," * (HUGE // 2),
    "{" * HUGE,
    '{"a":' * (HUGE // 5),
    "\\boxed{" * (HUGE // 7),
    "answer is " * (HUGE // 10),
    "```\n" * (HUGE // 4),
    "(" * HUGE,
    "a" * HUGE,
    "Answer: " * (HUGE // 8),
    "9" * HUGE,
    "answer is" + "\n" * HUGE,
    "answer" + " " * HUGE + "x",
    "answer is " + "\t" * HUGE,
    "#### " + " \t" * (HUGE // 2),
    "The answer is " + "1." * (HUGE // 2),
    "x" + "\n" * HUGE,
]


@pytest.mark.parametrize("text", PATHOLOGICAL, ids=lambda t: repr(t[:10]))
@pytest.mark.parametrize("answer_format", ["auto", "number", "choice", "text", "json", "code"])
def test_huge_outputs_cost_no_more_than_their_scanned_tail(
    text: str, answer_format: AnswerFormat
) -> None:
    # Only the tail is scanned, so a 1 MB sample costs what its last 64 KB cost: a ratio on CPU
    # time (best of three), not a time limit.
    tail = text[-MAX_BLOCK_SCAN_CHARS:]

    def cost(sample: str) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            extract_answer(sample, answer_format)
            best = min(best, time.process_time() - start)
        return best

    assert extract_answer(text, answer_format) == extract_answer(tail, answer_format)
    assert cost(text) < 4 * cost(tail) + 0.005


def test_huge_output_still_finds_the_final_answer() -> None:
    text = "Let me think. " * 70_000 + "The answer is 1,234."
    assert len(text) > HUGE - 100_000
    assert extract_answer(text) == "1,234"
