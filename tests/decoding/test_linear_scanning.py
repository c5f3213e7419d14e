"""Scanning model output costs time linear in its length, whatever the model printed.

Extraction runs on the server's threads holding the GIL, so one pattern that backtracks
quadratically on a hostile sample stalls every request. Each growth check does the same work on a
text and on one four times longer and asserts the time grows less than ``MAX_GROWTH`` times:
linear work grows about 4 times, quadratic work 16. That is a ratio, not a wall-clock limit:
times are CPU time, the best of up to ``ROUNDS`` alternating runs, so a slow or busy machine does
not fail it.

``extract_answer`` examines only a window at the end of a sample, so it is timed at a quarter of
its window and at the whole window; the patterns and the answer functions are timed at ``SMALL``
and ``LARGE`` on the whole text.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoding import equivalence, extraction
from decoding.equivalence import (
    ANSWER_FORMATS,
    AnswerFormat,
    canonical_choice,
    canonical_code,
    canonical_json,
    canonical_text,
    display_text,
    looks_symbolic,
    parse_number,
    strip_decorations,
)
from decoding.extraction import MAX_BLOCK_SCAN_CHARS, MAX_SCAN_CHARS, extract_answer
from decoding.normalizer import AnswerNormalizer

SMALL, LARGE = 16_384, 65_536
MAX_GROWTH = 8.0
ROUNDS = 5
_MIN_SAMPLE_S = 5e-4  # repeat a quick call until the CPU clock has this much to measure

# Every kind of marker extraction looks for (line markers start a line), and the runs a model
# could print after one.
MARKERS = [
    "\\boxed{",
    "\\fbox{",
    "\\boxed",
    "answer is ",
    "The answer is: ",
    "answer is option ",
    "#### ",
    "\nAnswer: ",
    "\n> **Final answer**: ",
    "= ",
    "equals ",
    "is equal to ",
    "x = $",
    "-1,234.5/6 ",
    "(B) ",
    "\nB. ",
    "\n```",
    "\n```python",
    "{",
    '{"a": ',
    '{"a": [1, ',
    "$$",
    "\\text{",
    "5!",
]
RUNS = {
    "spaces": " ",
    "tabs": "\t",
    "newlines": "\n",
    "mixed whitespace": " \t\r\n\x0b\x0c\u00a0\u2028",
    "equals": "= ",
    "boxes": "\\boxed{",
    "answer is": "answer is ",
    "hashes": "#",
    "fences": "```",
    "fence lines": "```\n",
    "braces": "{",
    "json keys": '{"a":',
    "brackets": "[",
    "digits": "9",
    "digit commas": "1,",
    "thousands groups": ",123",
    "digit dots": "1.",
    "dollars": "$",
    "emphasis": "*_",
    "bangs": "!.",
    "carets": "^ ",
    "letters": "(B",
}
# What follows a run: a character nothing continues with, or a digit that continues a number.
ENDS = ("!", "1")
# After each marker through extract_answer: whitespace, digit and dollar runs (and the marker).
PIPELINE_RUNS = [" ", "\t", "\n", " \t\r\n", "1,", "1.", "$"]

PATTERNS = {
    f"{module.__name__.rsplit('.', 1)[-1]}.{name}": value
    for module in (extraction, equivalence)
    for name, value in vars(module).items()
    if isinstance(value, re.Pattern)
}
ANSWER_FUNCTIONS: dict[str, Callable[[str], object]] = {
    "display_text": display_text,
    "canonical_text": canonical_text,
    "canonical_code": canonical_code,
    "canonical_choice": canonical_choice,
    "canonical_json": canonical_json,
    "strip_decorations": strip_decorations,
    "parse_number": parse_number,
    "looks_symbolic": looks_symbolic,
    "text key": lambda answer: AnswerNormalizer("text").key_now(answer),
}
ANSWER_RUNS = [
    "*.",
    "_,",
    "!.",
    "5!.",
    "\"'`",
    " .",
    "\\text{",
    "1,",
    ",123",
    "$",
    "^ ",
    "[",
    "x =",
]


def repeat_to(unit: str, size: int) -> str:
    """``unit`` repeated to about ``size`` characters, whole units only, so all sizes end alike."""
    return unit * max(1, size // len(unit))


def after_marker(marker: str, run: str, end: str, size: int) -> str:
    """``marker``, then ``run`` repeated, then ``end``: about ``size`` characters in all."""
    return marker + repeat_to(run, size - len(marker) - len(end)) + end


def after_every_marker(run: str, end: str, size: int) -> str:
    """Every marker in turn, each followed by ``run`` repeated and ``end``."""
    share = size // len(MARKERS)
    return "".join(after_marker(marker, run, end, share) for marker in MARKERS)


def cpu_seconds(work: Callable[[str], object], text: str) -> float:
    """CPU time of one ``work(text)``, repeating quick calls until the clock can resolve them."""
    calls, start = 0, time.process_time()
    while True:
        work(text)
        calls += 1
        elapsed = time.process_time() - start
        if elapsed >= _MIN_SAMPLE_S:
            return elapsed / calls


def growth(work: Callable[[str], object], small: str, large: str) -> float:
    """How many times longer ``work`` takes on ``large`` than on ``small``.

    Runs alternate and each size keeps its best time; another round runs only while the ratio
    still looks too high, so a round slowed by noise is retried rather than failed.
    """
    best_small = best_large = float("inf")
    for _ in range(ROUNDS):
        best_small = min(best_small, cpu_seconds(work, small))
        best_large = min(best_large, cpu_seconds(work, large))
        if best_large < MAX_GROWTH * best_small:
            break
    return best_large / best_small


ALL_MARKERS = "".join(MARKERS)
PATTERN_SHAPES = {
    f"{name} then {end!r}": (
        after_every_marker(run, end, SMALL),
        after_every_marker(run, end, LARGE),
    )
    for name, run in RUNS.items()
    for end in ENDS
} | {"every marker, repeated": (repeat_to(ALL_MARKERS, SMALL), repeat_to(ALL_MARKERS, LARGE))}


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_every_pattern_scans_in_linear_time(name: str) -> None:
    pattern = PATTERNS[name]

    def scan(text: str) -> int:
        return sum(1 for _ in pattern.finditer(text))

    slow: dict[str, float] = {}
    for shape, (small, large) in PATTERN_SHAPES.items():
        ratio = growth(scan, small, large)
        if ratio >= MAX_GROWTH:
            slow[shape] = round(ratio, 1)
    assert slow == {}


def scan_window(answer_format: AnswerFormat) -> int:
    """How much of a sample's end ``extract_answer`` examines in this format."""
    return MAX_BLOCK_SCAN_CHARS if answer_format in ("code", "json") else MAX_SCAN_CHARS


@pytest.mark.parametrize("marker", MARKERS)
@pytest.mark.parametrize("answer_format", ANSWER_FORMATS)
def test_extraction_grows_linearly_after_every_marker(
    answer_format: AnswerFormat, marker: str
) -> None:
    large = scan_window(answer_format)

    def extract(text: str) -> str | None:
        return extract_answer(text, answer_format)

    slow: dict[str, float] = {}
    for run in [*PIPELINE_RUNS, marker]:
        small_text = after_marker(marker, run, "!}", large // 4)
        ratio = growth(extract, small_text, after_marker(marker, run, "!}", large))
        if ratio >= MAX_GROWTH:
            slow[run] = round(ratio, 1)
    assert slow == {}


@pytest.mark.parametrize("name", sorted(ANSWER_FUNCTIONS))
def test_answer_functions_grow_linearly(name: str) -> None:
    work = ANSWER_FUNCTIONS[name]
    slow: dict[str, float] = {}
    for run in ANSWER_RUNS:
        for end in ENDS:
            small, large = repeat_to(run, SMALL) + end, repeat_to(run, LARGE) + end
            ratio = growth(work, small, large)
            if ratio >= MAX_GROWTH:
                slow[run + end] = round(ratio, 1)
    assert slow == {}


HUGE = 200_000
SANE: list[tuple[AnswerFormat, str, str | None]] = [
    # the answer, then a hostile run that stays inside the scan window
    ("auto", "So 2 + 3 = 5." + "\t" * 15_000, "5"),
    ("auto", "#### 72" + " \t" * 7_000, "72"),
    ("auto", "So 2 + 3 = " + "$" * 10_000 + "5", "5"),
    ("auto", "\\boxed{42}" + " " * 15_000 + "!", "42"),
    ("auto", "\\boxed{42}" + "\\boxed" * 2_000, "42"),
    ("auto", "answer is\n" * 1_500 + "answer is 7", "7"),
    ("auto", "Answer:\n" * 1_800 + "Answer: 12", "12"),
    ("auto", "= " * HUGE + "5", "5"),
    ("number", "The answer is 18 dollars." + " " * 15_000, "18"),
    ("number", "So 2 + 3 = 5." + "\n" * HUGE, None),
    ("math", "Thus \\boxed{x^2 + 1}." + "\n" * 15_000, "x^2 + 1"),
    ("choice", "The answer is (B)." + " " * 15_000, "B"),
    ("choice", "\\boxed{D}" + "\\boxed" * 2_000, "D"),
    ("text", "The capital is\n\nParis." + "\n" * 15_000, "Paris."),
    ("code", "```python\nprint(1)\n```\n" + "\t" * 60_000 + "!", "print(1)"),
    ("code", "```python\nprint(1)\n```\n" + "`" * 60_000, "print(1)"),
    ("json", '{"a": 1}' + " " * 60_000, '{"a": 1}'),
    ("json", '{"a": 1} ' + '{"b":' * 50 + "}", '{"a": 1}'),
    ("json", '{"a": 1} ' + '{"b": [1, ' * 20 + "}", '{"a": 1}'),
    ("json", '{"a": 1} {"b": ' + "[" * 5_000 + "}", '{"a": 1}'),
    ("json", '```json\n{"a": 1}\n```' + "`" * 60_000, '{"a": 1}'),
    # hostile runs alone: nothing answer-like, so no answer
    ("auto", "=" + "\t" * 16_000 + "x", None),
    ("auto", "\\boxed{" * HUGE, None),
    ("auto", "#### " + " \t" * 8_000, None),
    ("auto", "Answer:\n" * HUGE, None),
    ("auto", "$" * HUGE, None),
    ("number", "is equal to " + " " * 16_000 + "x", None),
    ("math", "\\boxed{" + "\\text{" * 2_000, None),
    ("choice", "answer " * HUGE, None),
    ("choice", "(" * HUGE, None),
    ("text", "\t" * HUGE, None),
    ("text", " \n\r\x0b\x0c\u2028" * HUGE, None),
    ("code", "```" + "\t" * 60_000 + "!", None),
    ("code", "```\n" * HUGE, None),
    ("json", "{" * HUGE, None),
    ("json", '{"a":' * HUGE, None),
    ("json", '{"a":' * HUGE + "}", None),
    ("json", '{"a": [1, ' * HUGE + "}", None),
    ("json", "```json\n" + "[" * 5_000, None),
    ("json", '```\n{"a":' + "[" * 5_000 + "}", None),
]


@pytest.mark.parametrize(("answer_format", "text", "expected"), SANE, ids=lambda v: repr(v)[:24])
def test_hostile_output_gives_none_or_the_answer(
    answer_format: AnswerFormat, text: str, expected: str | None
) -> None:
    assert extract_answer(text, answer_format) == expected


@pytest.mark.parametrize("text", ["[" * 5_000 + "]" * 5_000, '{"a":' * 5_000 + "1" + "}" * 5_000])
def test_json_nested_too_deep_for_the_codec_is_not_json(text: str) -> None:
    assert canonical_json(text) is None
    judged = AnswerNormalizer("json").key_now(text)
    assert judged is not None and judged.canonical.key.startswith("text:")


def display_text_by_definition(answer: str) -> str:
    """What ``display_text`` computes: strip wrappers and end punctuation until nothing changes."""
    s = " ".join(unicodedata.normalize("NFKC", answer).split())
    previous = None
    while previous != s:
        previous = s
        s = s.strip("\"'`*_").strip()
        factorial = re.search(r"[\d)}]!(?=[.,;:?]*$)", s)
        s = s[: factorial.end()] if factorial else s.rstrip(".,;:!?")
    return s


@given(st.text(alphabet="\"'`*_.,;:!? 5x)}\u0663\t\u00a0", max_size=24))
def test_display_text_strips_as_defined(answer: str) -> None:
    assert display_text(answer) == display_text_by_definition(answer)
