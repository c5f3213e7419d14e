"""Answers to keys within bounds: cheap keys in process, formulas through a judge, verdicts.

Fake judges stand in for the server's pool here: one that fails with a given reason, one that
never answers (only a budget ends it), and one that counts what it is asked.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from decoding.equivalence import AnswerFormat
from decoding.judge import Failure, InProcessJudge, JudgeFailed
from decoding.normalizer import AnswerNormalizer, FormulaIndex
from decoding.symbolic import judge_formula

T = TypeVar("T")


class CountingJudge(InProcessJudge):
    """In process, counting the judgements asked for, by function name."""

    def __init__(self, budget_s: float | None = None) -> None:
        super().__init__(budget_s=budget_s)
        self.asked: Counter[str] = Counter()

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        self.asked[fn.__name__] += 1
        return await super().run(fn, *args)


class FailingJudge(CountingJudge):
    """Fails every judgement named ``failing`` with ``reason``; runs the others."""

    def __init__(self, reason: Failure, failing: str = "judge_formula") -> None:
        super().__init__()
        self.reason: Failure = reason
        self.failing = failing

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        if fn.__name__ == self.failing:
            self.asked[fn.__name__] += 1
            raise JudgeFailed(self.reason)
        return await super().run(fn, *args)


class StuckJudge(CountingJudge):
    """Never answers: only the budget ends a judgement; counts the ones cancelled."""

    def __init__(self, budget_s: float) -> None:
        super().__init__(budget_s=budget_s)
        self.cancelled = 0
        self.entered = asyncio.Semaphore(0)  # released once per judgement that started

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        self.asked[fn.__name__] += 1
        self.entered.release()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("answer_format", "answer", "key"),
    [
        ("auto", "1,000", "num:1000/1"),
        ("auto", "-3/6", "num:-1/2"),
        ("auto", "Paris.", "text:paris"),
        ("auto", "x" * 500, "text:" + "x" * 500),  # too long to be a formula: no judge
        ("choice", "(b)", "choice:B"),
        ("json", '{"b": 1, "a": 2}', 'json:{"a":2,"b":1}'),
        ("code", "x = 1  \n", "code:x = 1"),
        ("text", "\\frac{1}{2}", "text:\\frac{1}{2}"),
    ],
)
def test_cheap_answers_need_no_judge(answer_format: AnswerFormat, answer: str, key: str) -> None:
    judge = CountingJudge()
    judged = AnswerNormalizer(answer_format, judge).key_now(answer)
    assert judged is not None and (judged.canonical.key, judged.verdict) == (key, "ok")
    assert not judge.asked


@pytest.mark.parametrize("answer", ["\\frac{1}{2}", "2^{10}", "\\sqrt{2}", "x+1", "5!"])
def test_formulas_are_left_for_the_judge(answer: str) -> None:
    assert AnswerNormalizer("auto", CountingJudge()).key_now(answer) is None


@pytest.mark.parametrize("reason", ["timeout", "too_large", "error"])
async def test_a_formula_that_cannot_be_judged_keeps_its_text_and_says_why(
    reason: Failure,
) -> None:
    normalizer = AnswerNormalizer("auto", FailingJudge(reason))
    judged = await normalizer.canonical("\\frac{ 1 }{2}.")
    assert judged.verdict == reason
    assert (judged.canonical.key, judged.canonical.display) == (
        "text:\\frac{ 1 }{2}",
        "\\frac{ 1 }{2}",
    )
    assert (await normalizer.canonical("0.5")).verdict == "ok"  # the fast path is unaffected


async def test_a_failed_equality_check_keeps_the_text_and_says_why() -> None:
    judge = FailingJudge("timeout", failing="formulas_equal")
    normalizer = AnswerNormalizer("auto", judge)
    first = await normalizer.canonical("\\frac{\\sqrt{2}}{2}")
    second = await normalizer.canonical("\\frac{1}{\\sqrt{2}}")  # same fingerprint: a check
    assert (first.verdict, first.canonical.key) == ("ok", "sym:sqrt(2)/2")
    assert second.verdict == "timeout" and second.canonical.key.startswith("text:")
    assert judge.asked["formulas_equal"] == 1


async def test_distinct_formulas_are_judged_once_each_and_concurrently_grouped() -> None:
    judge = CountingJudge()
    normalizer = AnswerNormalizer("auto", judge)
    answers = ["\\frac{1}{2}", "\\sqrt{8}", "2\\sqrt{2}", "\\sqrt{8}", "2^{3/2}", "\\frac{1}{2}"]
    await normalizer.judge(answers)
    keys = [normalizer.judged(a).canonical.key for a in answers]
    assert keys[0] == keys[5] == "num:1/2"
    assert len({keys[1], keys[2], keys[3], keys[4]}) == 1
    assert judge.asked["judge_formula"] == 4  # the distinct strings
    assert judge.asked["formulas_equal"] == 2  # one per fingerprint match
    await normalizer.judge(answers)
    assert judge.asked["judge_formula"] == 4  # settled answers are never judged again


async def test_the_budget_ends_judging_and_the_rest_is_text() -> None:
    judge = StuckJudge(budget_s=0.05)
    normalizer = AnswerNormalizer("auto", judge)
    await normalizer.judge(["\\sqrt{2}", "\\sqrt{3}", "x+1"])
    assert [normalizer.judged(a).verdict for a in ["\\sqrt{2}", "\\sqrt{3}", "x+1"]] == [
        "timeout"
    ] * 3
    assert judge.cancelled == judge.asked["judge_formula"] == 3  # nothing left running
    await normalizer.judge(["\\sqrt{5}"])  # the budget is spent for the whole request
    assert normalizer.judged("\\sqrt{5}").verdict == "timeout"


async def test_cancelling_the_caller_cancels_its_judgements() -> None:
    judge = StuckJudge(budget_s=3600)
    normalizer = AnswerNormalizer("auto", judge)
    task = asyncio.create_task(normalizer.judge(["\\sqrt{2}", "\\sqrt{3}"]))
    for _ in range(2):
        await judge.entered.acquire()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert judge.cancelled == 2


async def test_index_checks_only_fingerprint_matches() -> None:
    judge = CountingJudge()
    index = FormulaIndex(judge)
    irrational = [k for k in range(2, 40) if round(k**0.5) ** 2 != k]  # rationals get no index
    for k in irrational:
        formula = f"\\frac{{\\sqrt{{{k}}}}}{{{k + 1}}}"
        judged = judge_formula(formula)
        assert judged is not None and judged.value is None
        assert await index.find(formula, judged) is None
        index.add(formula, judged, judged)  # type: ignore[arg-type]  # any value will do
    assert index.verifies == 0
    same_key = judge_formula("\\sqrt{3}/4")  # sympy prints it as the k=3 entry: no check
    assert same_key is not None and await index.find("\\sqrt{3}/4", same_key) is not None
    assert index.verifies == 0
    rewritten = "\\frac{\\sqrt{3}}{4}(\\sin^2 y + \\cos^2 y)"  # another key, the same value
    probe = judge_formula(rewritten)
    assert probe is not None
    assert await index.find(rewritten, probe) is not None and index.verifies == 1


async def test_sets_compare_only_with_sets() -> None:
    normalizer = AnswerNormalizer("auto", CountingJudge())
    first = await normalizer.canonical("\\{1, 2\\}")
    assert (await normalizer.canonical("\\{2, 1\\}")).canonical == first.canonical
    assert (await normalizer.canonical("(1, 2)")).canonical != first.canonical
