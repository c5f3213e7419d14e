"""Answers to canonical keys within bounds: cheap keys in process, formulas through a ``Judge``.

``AnswerNormalizer`` maps each extracted answer to a ``Judged``: its ``Canonical`` key (equal keys
vote together) and the verdict of its judging. It works in two steps, so that the cheap part
never waits for the expensive one and the expensive one never runs unbounded:

1. ``key_now`` (synchronous: run it off the event loop, next to extraction). Numbers, fractions,
   choice letters, text, JSON and code get their keys here (``decoding.equivalence``), bounded by
   the input caps. Answers that look like formulas are left for step 2.
2. ``judge`` (async). Formulas go to the judge once per DISTINCT answer string, concurrently
   (``decoding.symbolic.judge_formula``). Rational values share the number keys (``2^{10}`` votes
   with ``1024``); other formulas are grouped with an equal representative by ``FormulaIndex``:
   cheap numeric fingerprints first, then an equality check in the judge for fingerprint
   matches only, so 64 distinct formulas cost 64 judgements and a handful of checks, not
   64 * 63 / 2.

An answer whose judging failed keeps its text key and says why (``timeout``, ``too_large``,
``error``). The judge bounds each judgement (its per-task time and memory limits), and the
normalizer bounds all of a request's judging by the judge's ``budget_s``: past it, the formulas
left are kept as text with the verdict ``timeout``. One normalizer per request; not thread-safe
(its two steps take turns, never overlap).
"""

from __future__ import annotations

import asyncio
import cmath
from collections.abc import Iterable
from dataclasses import dataclass

from decoding.equivalence import (
    ANSWER_FORMATS,
    AnswerFormat,
    Canonical,
    canonical_choice,
    canonical_code,
    canonical_json,
    display_text,
    looks_symbolic,
    number_key,
    parse_number,
    strip_decorations,
    text_key,
)
from decoding.judge import InProcessJudge, Judge, JudgeFailed, Verdict
from decoding.symbolic import FormulaJudgement, formulas_equal, judge_formula

_Found = FormulaJudgement | JudgeFailed | None  # a formula's judgement, its failure, or no formula


@dataclass(frozen=True)
class Judged:
    """An answer's canonical form and how its judging went ("ok", or why it is kept as text)."""

    canonical: Canonical
    verdict: Verdict = "ok"


class FormulaIndex:
    """Representatives of the distinct formulas seen so far, each with its canonical form."""

    def __init__(self, judge: Judge) -> None:
        self._judge = judge
        self._entries: list[tuple[str, FormulaJudgement, Canonical]] = []
        self.verifies = 0

    async def find(self, formula: str, judgement: FormulaJudgement) -> Canonical | None:
        """An equal representative's canonical form, or None; ``JudgeFailed`` when a check
        could not be made within bounds."""
        for representative, known, canonical in self._entries:
            if judgement.key is not None and judgement.key == known.key:
                return canonical  # sympy made the same expression of both: no check needed
            if not _may_equal(judgement, known):
                continue
            self.verifies += 1
            if await self._judge.run(formulas_equal, representative, formula):
                return canonical
        return None

    def add(self, formula: str, judgement: FormulaJudgement, canonical: Canonical) -> None:
        """Register ``formula`` as the representative of a new group."""
        self._entries.append((formula, judgement, canonical))


def _may_equal(a: FormulaJudgement, b: FormulaJudgement) -> bool:
    """Whether two formulas are worth a check: close fingerprints, or none and the same kind."""
    if a.mark is None or b.mark is None:
        return a.mark is b.mark and a.kind == b.kind
    return cmath.isclose(a.mark, b.mark, rel_tol=1e-9, abs_tol=1e-12)


class AnswerNormalizer:
    """Maps answers to ``Judged`` keys, once per distinct string, merging equal formulas."""

    def __init__(self, answer_format: AnswerFormat = "auto", judge: Judge | None = None) -> None:
        if answer_format not in ANSWER_FORMATS:
            raise ValueError(
                f"unknown answer_format {answer_format!r}; expected one of {ANSWER_FORMATS}"
            )
        self.answer_format: AnswerFormat = answer_format
        self._judge: Judge = InProcessJudge() if judge is None else judge
        self._cache: dict[str, Judged] = {}
        self._formulas = FormulaIndex(self._judge)
        self._spent_s = 0.0
        self.symbolic_parses = 0

    @property
    def verifies(self) -> int:
        """Equality checks of fingerprint matches run so far."""
        return self._formulas.verifies

    def key_now(self, answer: str) -> Judged | None:
        """The answer's key when it needs no judge (or was judged already), else None."""
        known = self._cache.get(answer)
        if known is None:
            canonical = self._cheap(answer)
            if canonical is None:
                return None
            known = self._cache[answer] = Judged(canonical)
        return known

    def judged(self, answer: str) -> Judged:
        """The key of an answer that ``key_now`` or ``judge`` has settled."""
        return self._cache[answer]

    async def canonical(self, answer: str) -> Judged:
        """One answer's key, judging it if it needs to be (for single answers and tests)."""
        known = self.key_now(answer)
        if known is None:
            await self.judge([answer])
            known = self._cache[answer]
        return known

    async def judge(self, formulas: Iterable[str]) -> None:
        """Settle the keys of formula answers (those ``key_now`` left), within the budget."""
        todo = [f for f in dict.fromkeys(formulas) if f not in self._cache]
        if not todo:
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        budget = self._judge.budget_s
        try:
            async with asyncio.timeout(None if budget is None else budget - self._spent_s):
                found = await self._judge_each(todo)
                for answer in todo:  # in first-seen order, so groups do not depend on timing
                    self._cache[answer] = await self._settle(answer, found[answer])
        except TimeoutError:
            pass  # the budget is spent: what is left stays text
        finally:
            self._spent_s += loop.time() - started
        for answer in todo:
            self._cache.setdefault(answer, Judged(text_key(answer), "timeout"))

    def _cheap(self, answer: str) -> Canonical | None:
        """The key of an answer that needs no judge; None for a formula."""
        fmt = self.answer_format
        if fmt == "choice":
            letter = canonical_choice(answer)
            return Canonical(f"choice:{letter}", letter) if letter else text_key(answer)
        if fmt == "json":
            dumped = canonical_json(answer)
            return Canonical(f"json:{dumped}", dumped) if dumped is not None else text_key(answer)
        if fmt == "code":
            code = canonical_code(answer)
            return Canonical(f"code:{code}", code)
        if fmt == "text":
            return text_key(answer)
        value = parse_number(answer)
        if value is not None:
            return number_key(value)
        return None if looks_symbolic(answer) else text_key(answer)

    async def _judge_each(self, answers: list[str]) -> dict[str, _Found]:
        """Every formula's judgement, concurrently (the judge decides how many run at once)."""
        found: dict[str, _Found] = {}

        async def one(answer: str) -> None:
            self.symbolic_parses += 1
            try:
                found[answer] = await self._judge.run(judge_formula, strip_decorations(answer))
            except JudgeFailed as failed:
                found[answer] = failed

        async with asyncio.TaskGroup() as group:
            for answer in answers:
                group.create_task(one(answer))
        return found

    async def _settle(self, answer: str, found: _Found) -> Judged:
        """The key a judgement gives: a number, an equal formula's, its own, or text."""
        if isinstance(found, JudgeFailed):
            return Judged(text_key(answer), found.reason)
        if found is None:
            return Judged(text_key(answer))
        if found.value is not None:
            return Judged(number_key(found.value))
        formula = strip_decorations(answer)
        try:
            known = await self._formulas.find(formula, found)
        except JudgeFailed as failed:
            return Judged(text_key(answer), failed.reason)
        if known is not None:
            return Judged(known)
        canonical = Canonical(found.key or f"sym:{formula}", display_text(formula))
        self._formulas.add(formula, found, canonical)
        return Judged(canonical)
