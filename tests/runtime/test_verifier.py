"""The server's verifier: formula checks in the judge (its bounds become failed checks), one
check per distinct answer, nothing to check for a missing answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from decoding.judge import Failure, InProcessJudge, JudgeFailed
from decoding.verification import UNCHECKED, MathCheck
from server.runtime.verifier import SandboxVerifier, code_runner
from tests.cancel_storm import cancel_on_every_turn
from tests.inprocess import make_settings

_T = TypeVar("_T")
EQUATION = MathCheck(equation="x^2 = 4")


class CountingJudge(InProcessJudge):
    """Runs judgements in a thread, counting them; or fails them all with ``failure``."""

    def __init__(self, failure: Failure | None = None) -> None:
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []
        self.failure = failure

    async def run(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        self.calls.append(args)
        if self.failure is not None:
            raise JudgeFailed(self.failure, "as told")
        return await super().run(fn, *args)


def _verifier(tmp_path: Path, judge: CountingJudge) -> SandboxVerifier:
    settings = make_settings(tmp_path)
    return SandboxVerifier(code_runner(settings), judge, settings)


async def test_each_distinct_answer_is_checked_once(tmp_path: Path) -> None:
    judge = CountingJudge()
    checks = await _verifier(tmp_path, judge).check(EQUATION, ["2", None, "3", "2", "-2"])
    assert [c.verified for c in checks] == [True, None, False, True, True]
    assert checks[1] == UNCHECKED
    assert sorted(args[0] for args in judge.calls) == ["-2", "2", "3"]


@pytest.mark.parametrize(
    ("failure", "verified", "status"),
    [("timeout", False, "timeout"), ("too_large", False, "limit"), ("error", None, "error")],
)
async def test_a_check_past_the_judges_bounds(
    tmp_path: Path, failure: Failure, verified: bool | None, status: str
) -> None:
    (check,) = await _verifier(tmp_path, CountingJudge(failure)).check(EQUATION, ["2"])
    assert (check.verified, check.status) == (verified, status)
    assert check.reason and failure in check.reason


class KillingJudge(InProcessJudge):
    """A judgement that never ends on its own and, when cancelled, takes a few turns of the
    loop to kill its worker, as the judge pool does."""

    def __init__(self) -> None:
        super().__init__()
        self.killed = 0

    async def run(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        try:
            await asyncio.Event().wait()
        finally:
            for _ in range(5):
                await asyncio.sleep(0)
            self.killed += 1
        raise AssertionError("unreachable")


async def test_a_caller_cancelled_again_and_again_still_has_every_check_killed(
    tmp_path: Path,
) -> None:
    judge = KillingJudge()
    caller = asyncio.create_task(_verifier(tmp_path, judge).check(EQUATION, ["1", "2", "3"]))
    await asyncio.sleep(0)  # the checks start
    await cancel_on_every_turn(caller)
    assert judge.killed == 3, "a second cancel cut a worker's kill short"
