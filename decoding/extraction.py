"""Find the final answer in a sample's text, by ``answer_format``.

Formats ``auto``/``number``/``math`` share one cascade, strongest marker first: the last
``\\boxed{...}`` (nested braces) > the last "answer is ..." or GSM8K "#### ..." > the last
"Answer: ..." line > the result of the last equation ("= 5", "equals 5") > the last number.
``choice`` looks for an option letter A-E,
``text`` falls back to the last non-empty line, ``code`` takes the last fenced block and ``json``
the last fenced JSON block or the last parseable ``{...}`` object.

Model output is hostile input, and extraction runs on the server's threads holding the GIL, so its
cost is linear in the part of a sample examined, and that part is bounded:

- only the last ``MAX_SCAN_CHARS`` (``MAX_BLOCK_SCAN_CHARS`` for code and JSON) are examined;
- the regexes run in linear time on Python's backtracking ``re``: no attempt reads a run once per
  way of splitting it (where two runs could share characters, as the ``\\s*`` in ``\\s*\\$?\\s*``
  or the ``[ \\t]*`` on both sides of a fence's optional language tag, they are possessive,
  ``*+``), and attempts start only at a marker or at the start of a number, so they read disjoint
  stretches.
  ``google-re2`` would guarantee linear time by construction, but it has no lookarounds, which
  ``_NUMBER`` needs; possessive runs keep every pattern's matches exactly as they were, at the
  same cost on ordinary samples (``tests/decoding/test_linear_scanning.py`` checks the growth);
- a box is read for at most ``MAX_ANSWER_CHARS`` from each of the last ``_MAX_BOXES_TRIED`` starts;
- JSON decoding tries at most ``_MAX_JSON_STARTS`` candidate braces and reads at most
  ``_JSON_READ_FACTOR`` characters per character of the tail in all; nesting too deep for the
  decoder (``RecursionError``) counts as no object.
"""

from __future__ import annotations

import json
import re

from decoding.equivalence import AnswerFormat, looks_symbolic, parse_number

MAX_SCAN_CHARS = 16_384
MAX_BLOCK_SCAN_CHARS = 65_536
MAX_ANSWER_CHARS = 512
_MAX_JSON_STARTS = 512
_MAX_BOXES_TRIED = 8
_JSON_READ_FACTOR = 8
_JSON_MIN_READ = 4_096
_JSON = json.JSONDecoder()  # stateless between calls, like json.loads's own

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_IS = re.compile(r"answer\s+is[ \t]*:?\s*([^\n]+)", re.IGNORECASE)
_HASHES = re.compile(r"####[ \t]*([^\n]+)")
_ANSWER_LINE = re.compile(
    r"^[ \t>#*_]*(?:final[ \t]+)?answer[ \t*_]*[:：][ \t]*([^\n]*)$", re.IGNORECASE | re.MULTILINE
)
_NUMBER = re.compile(r"(?<![\w.])[-−]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:/\d+)?")
# The result of the last equation ("2 + 3 = 5", "equals 5"): a stronger guess than the last
# number, which in "2 + 3 = 5, the sum of 2 and 3" is an operand.
_EQUATION_RESULT = re.compile(
    r"(?:=|\bequals\b|\bis equal to\b)\s*+\$?\s*+(" + _NUMBER.pattern + r")", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|;|\s[-–—]\s|\s(?:because|since|which|so)\s", re.IGNORECASE)
_MATH_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_LETTER = r"(?:\(([A-Ea-e])\)|\b([A-E])\b)"
_BOXED_LETTER = re.compile(_LETTER)
_CHOICE_MARKED = re.compile(r"(?i:answer)(?:\s+(?i:is)\b)?[\s:*]*(?:(?i:option)\s*)?" + _LETTER)
_CHOICE_LINE = re.compile(r"^[\s*>]*(?:\(([A-Ea-e])\)|([A-E])(?:[.:)]|\s*$))")
_FENCE = re.compile(r"^[ \t]*+```[ \t]*+([\w+#.-]*+)[ \t]*+$", re.MULTILINE)


def extract_answer(
    text: str, answer_format: AnswerFormat = "auto", *, allow_fallback: bool = True
) -> str | None:
    """The final answer of one sample as a string, or None when nothing answer-like is found.

    ``allow_fallback=False`` drops the weakest guesses (last number, last line) for samples cut
    off by ``max_tokens``, whose last number is usually an intermediate result.
    """
    if answer_format == "code":
        return _last_fenced(text[-MAX_BLOCK_SCAN_CHARS:], languages=None)
    if answer_format == "json":
        return _json_answer(text[-MAX_BLOCK_SCAN_CHARS:])
    tail = text[-MAX_SCAN_CHARS:]
    if answer_format == "choice":
        return _choice_answer(tail, allow_fallback=allow_fallback)
    span = _marked_span(tail)
    if span is not None:
        found = _from_span(span, answer_format)
        if found is not None:
            return found
    if not allow_fallback:
        return None
    if answer_format == "text":
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        return _clip(lines[-1]) if lines else None
    result = _last_match(_EQUATION_RESULT, tail)
    if result is not None:
        return result.group(1)
    return _last_number(tail)


def extract_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox``), honouring nested braces."""
    starts = [m.end() for m in _BOX.finditer(text)][-_MAX_BOXES_TRIED:]
    for start in reversed(starts):
        depth = 1
        for i in range(start, min(len(text), start + MAX_ANSWER_CHARS)):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return None


def _marked_span(tail: str) -> str | None:
    """Text after the strongest answer marker present, or None when there is none."""
    boxed = extract_boxed(tail)
    if boxed:
        return boxed
    best: re.Match[str] | None = None
    for pattern in (_ANSWER_IS, _HASHES):
        for m in pattern.finditer(tail):
            if best is None or m.start() > best.start():
                best = m
    if best is None:
        for m in _ANSWER_LINE.finditer(tail):
            if m.group(1).strip():
                best = m
    if best is None:
        return None
    span = best.group(1)
    inner = extract_boxed(span)
    return inner if inner else _clean_span(span)


def _clean_span(span: str) -> str:
    """Cut a marker's line down to the answer: its math delimiters' content, or its first clause."""
    span = span.strip().strip("*_").strip()
    for opening, closing in _MATH_DELIMITERS:
        if span.startswith(opening):
            end = span.find(closing, len(opening))
            if end > len(opening):
                return _clip(span[len(opening) : end].strip())
            break
    cut = _SENTENCE_END.search(span)
    if cut is not None:
        span = span[: cut.start()]
    return _clip(span.strip().rstrip(".,").strip().strip("*_").strip())


def _from_span(span: str, answer_format: AnswerFormat) -> str | None:
    """The answer inside a marker's span: the span itself if it is a clean number or formula."""
    if not span:
        return None
    if answer_format == "text" or parse_number(span) is not None:
        return span
    if "\\" in span or looks_symbolic(span):
        return span
    first = _NUMBER.search(span)
    if first is not None:
        return first.group(0)
    return None if answer_format == "number" else span


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = None
    for found in pattern.finditer(text):  # noqa: B007 - keep the last one
        pass
    return found


def _last_number(tail: str) -> str | None:
    last = _last_match(_NUMBER, tail)
    return last.group(0) if last is not None else None


def _clip(answer: str) -> str:
    return answer[:MAX_ANSWER_CHARS]


def _choice_answer(tail: str, *, allow_fallback: bool) -> str | None:
    """An option letter A-E from a box, an "answer is (C)" phrase, or a last line like "B."."""
    boxed = extract_boxed(tail)
    if boxed:
        m = _BOXED_LETTER.search(boxed.replace("\\text", ""))
        if m is not None:
            return (m.group(1) or m.group(2)).upper()
    last = _last_match(_CHOICE_MARKED, tail)
    if last is not None:
        return (last.group(1) or last.group(2)).upper()
    if not allow_fallback:
        return None
    lines = [line for line in tail.splitlines() if line.strip()]
    if lines:
        m = _CHOICE_LINE.match(lines[-1])
        if m is not None:
            return (m.group(1) or m.group(2)).upper()
    return None


def _last_fenced(tail: str, languages: frozenset[str] | None) -> str | None:
    """Body of the last fenced block (of ``languages``, if given); unclosed runs to the end."""
    fences = list(_FENCE.finditer(tail))
    blocks: list[tuple[str, str]] = []
    i = 0
    while i < len(fences):
        opening = fences[i]
        end = fences[i + 1].start() if i + 1 < len(fences) else len(tail)
        blocks.append((opening.group(1).lower(), tail[opening.end() + 1 : end]))
        i += 2
    for lang, body in reversed(blocks):
        if languages is None or lang in languages:
            return body.strip("\n") if body.strip() else None
    return None


def _json_answer(tail: str) -> str | None:
    """The last fenced JSON block if it parses, else the last top-level ``{...}`` object."""
    fenced = _last_fenced(tail, languages=frozenset({"json", ""}))
    if fenced is not None:
        try:
            json.loads(fenced)
            return fenced.strip()
        except (ValueError, RecursionError):
            pass
    return _last_object(tail)


def _last_object(tail: str) -> str | None:
    """The last-ending top-level JSON object, scanning candidate ``{`` from the right.

    An object ends at a ``}``, so only braces before the last ``}`` are candidates, and each is
    decoded from a copy of the text up to it: a decode error counts the lines before its position,
    which in the whole tail would cost the whole tail per candidate. A candidate's decode may still
    read far (a nested prefix that never closes), so candidates stop once the characters read add
    up to ``_JSON_READ_FACTOR`` times the tail; the best object found by then is the answer.
    """
    last_close = tail.rfind("}")
    if last_close == -1:
        return None
    budget = _JSON_READ_FACTOR * max(len(tail), _JSON_MIN_READ)
    best: tuple[int, int] | None = None
    pos = tail.rfind("{", 0, last_close)
    for _ in range(_MAX_JSON_STARTS):
        if pos == -1 or budget <= 0:
            break
        is_object, end, read = _decode_object(tail[pos : last_close + 1])
        budget -= read
        if is_object and (best is None or pos + end >= best[1]):
            best = (pos, pos + end)  # the first hit, or an object enclosing it
        pos = tail.rfind("{", 0, pos)
    return tail[best[0] : best[1]] if best is not None else None


def _decode_object(text: str) -> tuple[bool, int, int]:
    """Whether ``text`` starts with a JSON object, where it ends, and how far decoding read."""
    try:
        value, end = _JSON.raw_decode(text)
    except json.JSONDecodeError as exc:
        # An unterminated string is reported at its opening quote, but was read to the end.
        return False, -1, len(text) if exc.msg.startswith("Unterminated string") else exc.pos + 1
    except (ValueError, RecursionError):  # an integer past int()'s digit limit; nesting too deep
        return False, -1, len(text)
    return isinstance(value, dict), end, end
