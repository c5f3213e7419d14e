"""Verified voting on a precise result: check every candidate, re-vote among those that pass.

``verify(result, plan, verifier)`` runs the plan's checks (``decoding.verification``) on each
sample's extracted answer with the server's verifier (code in the sandbox, formulas in the
judge), re-votes, and counts the outcomes in ``/metrics``; ``annotate`` puts each sample's
``verified`` and reason, and the top-level counts, on the wire evidence.
"""

from __future__ import annotations

from dataclasses import asdict

from decoding.consistency import ConsistencyResult
from decoding.verification import VerifiedResult, Verifier, verified_vote
from server.runtime.metrics import observe_verified
from server.serving.plan import Plan
from server.wire.precise import Evidence


async def verify(result: ConsistencyResult, plan: Plan, verifier: Verifier) -> VerifiedResult:
    """The vote among the candidates that pass the plan's checks."""
    if plan.verify is None or plan.consistency is None:
        raise ValueError("not a verified plan")
    answers = [record.answer if record.voted else None for record in result.samples]
    checks = await verifier.check(plan.verify, answers)
    outcome = verified_vote(result, checks, plan.consistency.min_agreement)
    observe_verified([check.status for check in checks])
    return outcome


def annotate(proof: Evidence, outcome: VerifiedResult, plan: Plan) -> Evidence:
    """The evidence with every sample's verification, the top-level counts, and the checks in
    the receipt's plan (so that it still replays the request)."""
    samples = [
        sample.model_copy(update={"verified": check.verified, "verify_reason": check.reason})
        for sample, check in zip(proof.samples, outcome.checks, strict=True)
    ]
    checks = {} if plan.verify is None else {"verify": asdict(plan.verify)}
    receipt = proof.receipt.model_copy(update={"plan": {**proof.receipt.plan, **checks}})
    return proof.model_copy(
        update={
            "receipt": receipt,
            "samples": samples,
            "verified_samples": outcome.verified,
            "winner_verified": outcome.winner_verified,
        }
    )
