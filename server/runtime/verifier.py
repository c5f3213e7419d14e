"""The server's ``decoding.verification.Verifier``: code in the sandbox, formulas in the judge.

Code candidates run through a ``JudgePool`` of their own (``code_runner``): the same killable
worker mechanism that bounds answer judging, with its own workers so that a slow candidate never
holds up formula judging. Each worker runs ``server.runtime.sandbox.run_candidate``, which starts
the candidate in a separate, limited child: the worker only waits and reads, so a candidate that
kills or starves its own process tree cannot touch the pool. The worker's own wall clock is the
candidate's plus a margin; past it the worker is killed too. Identical code runs once.

Formula checks (``decoding.math_check``) run in the answer judge, within its bounds.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from decoding.cancelling import cancel_and_wait
from decoding.judge import Judge, JudgeFailed
from decoding.math_check import check_math
from decoding.verification import (
    UNCHECKED,
    Check,
    CheckStatus,
    CodeSuite,
    MathCheck,
    VerifySpec,
)
from server.runtime.judge_pool import JudgePool
from server.runtime.sandbox import SandboxLimits, reap_sandbox, run_candidate
from server.runtime.settings import Settings

WORKER_MARGIN_S = 5.0  # past the candidate's wall clock: starting and killing its sandbox
# A worker only starts the sandbox and reads its report; but its children inherit its
# address-space cap, which only CAP_SYS_RESOURCE may raise: it must exceed the candidates'.
WORKER_MEMORY_MARGIN_MB = 64


def code_runner(settings: Settings) -> JudgePool:
    """The pool whose workers run code candidates (each in a sandboxed child)."""
    memory_mb = settings.verify_memory_mb + WORKER_MEMORY_MARGIN_MB
    return JudgePool(
        settings.verify_workers,
        settings.verify_timeout_s + WORKER_MARGIN_S,
        memory_mb,
        reap=reap_sandbox,
    )


def sandbox_limits(settings: Settings, timeout_s: float) -> SandboxLimits:
    """A candidate's limits: the request's wall clock, the settings' caps."""
    return SandboxLimits(
        timeout_s=timeout_s,
        cpu_s=max(1, math.ceil(timeout_s)),
        memory_mb=settings.verify_memory_mb,
        file_mb=settings.verify_file_mb,
        processes=settings.verify_processes,
    )


OVER_BUDGET = Check(None, "timeout", "not checked within the request's verification budget")


def _outcome(task: asyncio.Future[Check]) -> Check:
    return OVER_BUDGET if task.cancelled() else task.result()


class SandboxVerifier:
    """Checks code in sandboxed children run by ``runner``, formulas with ``judge``."""

    def __init__(self, runner: JudgePool, judge: Judge, settings: Settings) -> None:
        self._runner = runner
        self._judge = judge
        self._settings = settings

    async def check(self, spec: VerifySpec, answers: Sequence[str | None]) -> list[Check]:
        """One check per answer, run in parallel (bounded by the pools' workers) within the
        request's budget; checks still running past it are stopped (their workers killed)."""
        distinct = sorted({a for a in answers if a is not None})
        tasks = [asyncio.ensure_future(self._one(spec, answer)) for answer in distinct]
        if tasks:
            late: set[asyncio.Future[Check]] = set(tasks)
            try:
                _, late = await asyncio.wait(tasks, timeout=self._settings.verify_budget_s)
            finally:  # past the budget, or the caller left: stop (and kill) what still runs,
                # each cancelled once, so that a second cancel cannot cut a worker's kill short
                await cancel_and_wait(late)
        found = {answer: _outcome(task) for answer, task in zip(distinct, tasks, strict=True)}
        return [UNCHECKED if a is None else found[a] for a in answers]

    async def _one(self, spec: VerifySpec, answer: str) -> Check:
        if isinstance(spec, MathCheck):
            try:
                return await self._judge.run(check_math, answer, spec)
            except JudgeFailed as exc:  # a formula past the judge's bounds fails its check
                if exc.reason == "error":
                    return Check(None, "error", f"the check could not be made: {exc}")
                status: CheckStatus = "timeout" if exc.reason == "timeout" else "limit"
                return Check(False, status, f"checking it met a bound: {exc}")
        return await self._code(spec, answer)

    async def _code(self, suite: CodeSuite, code: str) -> Check:
        limits = sandbox_limits(self._settings, suite.timeout_s)
        try:
            return await self._runner.run(
                run_candidate, code, suite, limits, timeout_s=suite.timeout_s + WORKER_MARGIN_S
            )
        except JudgeFailed as exc:
            if exc.reason == "timeout":
                return Check(False, "timeout", f"the sandbox did not end: {exc}")
            return Check(None, "error", f"the sandbox could not run it: {exc}")
