"""The judge protocol's in-process implementation and the verdict each failure stands for."""

from __future__ import annotations

import sys

import pytest

from decoding.judge import Failure, InProcessJudge, Judge, JudgeFailed, TooLarge, failure_of


def _int_str_limit() -> ValueError:
    try:
        str(10 ** (sys.get_int_max_str_digits() + 1))
    except ValueError as exc:
        return exc
    raise AssertionError("the int-to-str limit is off")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (MemoryError(), "too_large"),
        (RecursionError("maximum recursion depth exceeded"), "too_large"),
        (TooLarge("a value of more than 13000 bits"), "too_large"),
        (_int_str_limit(), "too_large"),
        (ValueError("not a number"), "error"),
        (ZeroDivisionError(), "error"),
        (KeyError("x"), "error"),
        (TimeoutError(), "error"),  # a judgement's own timeout is no kill by the judge
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_failure_of(error: BaseException, reason: Failure) -> None:
    assert failure_of(error) == reason


def test_in_process_judge_is_a_judge() -> None:
    assert isinstance(InProcessJudge(), Judge)


def _deep(n: int) -> int:
    return n if n == 0 else 1 + _deep(n - 1)


def _explode(kind: type[BaseException]) -> None:
    raise kind("boom")


async def test_in_process_judge_runs_and_maps_failures() -> None:
    judge = InProcessJudge()
    assert await judge.run(divmod, 7, 2) == (3, 1)
    assert judge.budget_s is None
    with pytest.raises(JudgeFailed) as deep:
        await judge.run(_deep, 10**6)
    assert deep.value.reason == "too_large"
    with pytest.raises(JudgeFailed) as broken:
        await judge.run(_explode, LookupError)
    assert broken.value.reason == "error" and "LookupError" in str(broken.value)
