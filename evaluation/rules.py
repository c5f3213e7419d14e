"""Vote rules: small functions from a prefix of judged samples to a decision, and stopping rules.

A rule gets the samples (in seed order) and the item's context (the greedy config's sample, if
joined) and returns a ``Decision``, or None when it cannot apply (its signal is absent), so the
report can say so instead of scoring a silent fallback.

- ``majority``: today's default, ``decoding.vote`` itself (ties: summed mean logprob, then the
  earliest sample); a sample cut by ``max_tokens`` votes only with a marked answer.
- ``majority-fallback``: the same, but a cut sample also votes with its fallback answer.
- ``logprob``: each answer weighted by exp(mean token logprob), the geometric-mean probability.
- ``cisc``: CISC (Taubenfeld et al. 2025): softmax over samples of confidence / 0.5, where the
  confidence is a numeric per-sample ``confidence`` field if the server sends one, else the mean
  token logprob.
- ``deepconf-lowest-group`` / ``deepconf-tail`` (Fu et al. 2025, DeepConf): weights from the
  per-sample ``confidence`` fields of those names (higher: more confident); None when absent.
- ``top10`` / ``top90``: keep the 10% / 90% most confident samples (DeepConf's lowest-group
  confidence when present, else mean logprob; at least one), then ``majority``.
- ``greedy+vote``: ``majority`` with the greedy config's answer as one more ballot.

``replay_adaptive`` replays an adaptive vote (``decoding.self_consistency``) on the samples of a
fixed one: all start together and each generates one token per engine step, so sample i
finishes at step ``tokens_i``; ``decoding.Referee`` takes the same decisions as live (stopping,
and pruning from the recorded per-token confidences), and the replay counts the tokens the
adaptive run would have generated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from decoding.equivalence import Canonical
from decoding.pruning import ConfidenceGate, PruneSpec
from decoding.referee import Referee
from decoding.stopping import BetaStopping, StoppingRule, WindowStopping
from decoding.voting import Ballot, vote
from evaluation.judge import Answer, JudgedSample

CISC_TEMPERATURE = 0.5


@dataclass(frozen=True)
class Decision:
    """What a rule answered (None: no answer), whether it is right, its support, samples used."""

    key: str | None
    correct: bool
    agreement: float
    used: int


@dataclass(frozen=True)
class Context:
    """What a rule may use besides the samples: the greedy config's sample for the same item."""

    greedy: JudgedSample | None = None


Rule = Callable[[Sequence[JudgedSample], Context], Decision | None]


def _ballot(sample: JudgedSample, answer: Answer, index: int | None = None) -> Ballot:
    canonical = None if answer.key is None else Canonical(answer.key, answer.display or "")
    return Ballot(sample.index if index is None else index, canonical, sample.mean_logprob)


def majority_of(
    samples: Sequence[JudgedSample],
    *,
    loose: bool = False,
    min_agreement: float = 0.0,
    extra: Sequence[tuple[Ballot, bool]] = (),
) -> Decision:
    """``decoding.vote`` over the samples' answers, plus extra (ballot, correct) pairs."""
    right: dict[str, bool] = {}
    ballots = []
    for sample in samples:
        answer = sample.loose if loose else sample.strict
        ballots.append(_ballot(sample, answer))
        if answer.key is not None:
            right.setdefault(answer.key, answer.correct)
    for ballot, correct in extra:
        ballots.append(ballot)
        if ballot.answer is not None:
            right.setdefault(ballot.answer.key, correct)
    result = vote(ballots, min_agreement=min_agreement)
    if result.winner_key is None or result.abstained:
        return Decision(None, False, result.agreement, len(samples))
    return Decision(result.winner_key, right[result.winner_key], result.agreement, len(samples))


def weighted_of(samples: Sequence[JudgedSample], weights: Sequence[float]) -> Decision:
    """Answer with the largest total weight; ties go to the earliest sample's answer."""
    totals: dict[str, float] = {}
    first: dict[str, int] = {}
    right: dict[str, bool] = {}
    for sample, weight in zip(samples, weights, strict=True):
        key = sample.strict.key
        if key is None:
            continue
        totals[key] = totals.get(key, 0.0) + weight
        first.setdefault(key, sample.index)
        right.setdefault(key, sample.strict.correct)
    if not totals:
        return Decision(None, False, 0.0, len(samples))
    best = max(totals, key=lambda k: (totals[k], -first[k]))
    mass = sum(totals.values())
    share = totals[best] / mass if mass > 0 else 0.0
    return Decision(best, right[best], share, len(samples))


def majority(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
    """Today's default vote."""
    return majority_of(samples)


def majority_fallback(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
    """Cut samples also vote with their fallback (last-number) answer."""
    return majority_of(samples, loose=True)


def logprob(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
    """Weights exp(mean logprob); None when the samples carry no logprobs."""
    if any(s.mean_logprob is None for s in samples):
        return None
    return weighted_of(samples, [math.exp(s.mean_logprob or 0.0) for s in samples])


def _signal(sample: JudgedSample, name: str) -> float | None:
    return sample.confidence.get(name)


def cisc(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
    """Softmax(confidence / T) weights; confidence is the ``confidence`` field or mean logprob."""
    scores = [_signal(s, "confidence") for s in samples]
    if any(v is None for v in scores):
        scores = [s.mean_logprob for s in samples]
    if any(v is None for v in scores):
        return None
    values = [float(v) / CISC_TEMPERATURE for v in scores if v is not None]
    top = max(values)
    weights = [math.exp(v - top) for v in values]
    return weighted_of(samples, weights)


def _deepconf(name: str) -> Rule:
    def rule(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
        values = [_signal(s, name) for s in samples]
        if any(v is None for v in values):
            return None
        return weighted_of(samples, [max(0.0, float(v or 0.0)) for v in values])

    rule.__doc__ = f"Weights from the per-sample ``confidence.{name}`` field."
    return rule


def _confidence_rank(sample: JudgedSample) -> float:
    value = _signal(sample, "lowest_group")
    if value is None:
        value = sample.mean_logprob
    return float("-inf") if value is None else value


def _top(share: float) -> Rule:
    def rule(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
        if all(_confidence_rank(s) == float("-inf") for s in samples):
            return None
        keep = max(1, math.ceil(share * len(samples)))
        ranked = sorted(samples, key=lambda s: (-_confidence_rank(s), s.index))[:keep]
        decision = majority_of(sorted(ranked, key=lambda s: s.index))
        return Decision(decision.key, decision.correct, decision.agreement, len(samples))

    rule.__doc__ = f"Majority over the {share:.0%} most confident samples."
    return rule


def greedy_plus_vote(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
    """The greedy answer counts as one more vote; None without a greedy result for the item."""
    if ctx.greedy is None:
        return None
    greedy = ctx.greedy.strict
    extra = (_ballot(ctx.greedy, greedy, index=len(samples)), greedy.correct)
    return majority_of(samples, extra=[extra])


RULES: dict[str, Rule] = {
    "majority": majority,
    "majority-fallback": majority_fallback,
    "logprob": logprob,
    "cisc": cisc,
    "deepconf-lowest-group": _deepconf("lowest_group"),
    "deepconf-tail": _deepconf("tail"),
    "top10": _top(0.10),
    "top90": _top(0.90),
    "greedy+vote": greedy_plus_vote,
}

STOPPING: dict[str, StoppingRule] = {"beta": BetaStopping(), "esc": WindowStopping()}


@dataclass(frozen=True)
class Replay:
    """An adaptive vote replayed: its decision, the tokens it generates, its engine steps."""

    decision: Decision
    tokens: int
    steps: int
    pruned: int


def replay_adaptive(
    samples: Sequence[JudgedSample],
    stopping: StoppingRule | None,
    *,
    prune: PruneSpec | None = None,
    window: int = 32,
    min_agreement: float = 0.0,
) -> Replay:
    """Replay the in-batch adaptive vote step by step (see the module docstring)."""
    gate = None if prune is None else ConfidenceGate(prune, window)
    referee = Referee(
        [s.index for s in samples], stopping=stopping, gate=gate, min_agreement=min_agreement
    )
    cut: dict[int, int] = {}
    last = max((s.tokens for s in samples), default=0)
    step = 0
    for step in range(last + 1):
        live = [s for s in samples if s.index in referee.running]
        for sample in live:
            if 0 < step <= sample.tokens:
                scores = sample.token_confidences[step - 1 : step]
                if referee.tokens(sample.index, scores):
                    cut[sample.index] = step
        ending = [s for s in live if s.tokens == step]
        for sample in ending:
            for index in referee.finish(sample.index):
                cut.setdefault(index, step)
        for sample in ending:
            if sample.finish_reason != "abort":
                referee.vote(sample.index, sample.strict.key)
        if stopping is not None and referee.verdict() is not None:
            cut.update({index: step for index in referee.running})
            break
    voters = set(referee.voters)
    decision = majority_of([s for s in samples if s.index in voters], min_agreement=min_agreement)
    spent = sum(min(s.tokens, cut.get(s.index, s.tokens)) for s in samples)
    return Replay(decision, spent, step, len(referee.pruned))


def simulate_adaptive(samples: Sequence[JudgedSample], rule: StoppingRule) -> Decision:
    """The decision of ``replay_adaptive`` with ``rule`` and no pruning."""
    return replay_adaptive(samples, rule).decision


def support(decision: Decision, threshold: float) -> bool:
    """Whether a decision answers (not abstains) at ``min_agreement`` = threshold."""
    return decision.key is not None and decision.agreement >= threshold
