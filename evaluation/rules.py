"""Vote rules: small functions from a prefix of judged samples to a decision, and stopping rules.

A rule gets the samples (in seed order) and the item's context (the greedy config's sample, if
joined) and returns a ``Decision``, or None when it cannot apply (its signal is absent), so the
report can say so instead of scoring a silent fallback.

- ``majority``: today's default, ``decoding.vote`` itself (ties: summed mean logprob, then the
  earliest sample); a sample cut by ``max_tokens`` votes only with a marked answer.
- ``majority-fallback``: the same, but a cut sample also votes with its fallback answer.
- ``logprob``, ``cisc``, ``deepconf-lowest-group``, ``deepconf-tail``, ``deepconf-mean``: the
  server's ``vote_weighting`` options, computed by the server's own code
  (``decoding.weighting``); the DeepConf ones are None when samples carry no ``confidence``.
- ``top10`` / ``top50`` / ``top90``: the server's ``keep_top`` option (DeepConf's offline filter):
  the most confident share of the samples (lowest-group confidence, else mean logprob) votes.
- ``greedy+vote``: ``majority`` with the greedy config's answer as one more ballot.

``replay_adaptive`` replays an adaptive vote (``decoding.self_consistency``) on the samples of a
fixed one: all start together and each generates one token per engine step, so sample i
finishes at step ``tokens_i``; ``decoding.Referee`` takes the same decisions as live (stopping,
and pruning from the recorded per-token confidences), and the replay counts the tokens the
adaptive run would have generated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from decoding.confidence import Confidence
from decoding.equivalence import Canonical
from decoding.pruning import ConfidenceGate, PruneSpec
from decoding.referee import Referee
from decoding.stopping import BetaStopping, StoppingRule, WindowStopping
from decoding.voting import Ballot, vote
from decoding.weighting import Weighting, weigh
from evaluation.judge import Answer, JudgedSample


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


def _confidence(sample: JudgedSample) -> Confidence | None:
    """The sample's DeepConf confidence as decoding's type, when the server sent all of it."""
    values = [sample.confidence.get(name) for name in ("mean", "lowest_group", "tail")]
    if any(v is None for v in values):
        return None
    mean, lowest, tail = (float(v or 0.0) for v in values)
    return Confidence(mean=mean, lowest_group=lowest, tail=tail)


def served(
    samples: Sequence[JudgedSample], weighting: Weighting = "majority", keep_top: float = 1.0
) -> Decision:
    """The server's own vote (``decoding.weighting.weigh`` then ``decoding.vote``) with a
    weighting and a keep-top share, so the analysis measures exactly what a request option does."""
    right: dict[str, bool] = {}
    ballots = []
    for sample in samples:
        ballots.append(_ballot(sample, sample.strict))
        if sample.strict.key is not None:
            right.setdefault(sample.strict.key, sample.strict.correct)
    confidences = {s.index: _confidence(s) for s in samples}
    result = vote(weigh(ballots, confidences, weighting, keep_top))
    if result.winner_key is None:
        return Decision(None, False, result.agreement, len(samples))
    return Decision(result.winner_key, right[result.winner_key], result.agreement, len(samples))


def majority(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
    """Today's default vote."""
    return majority_of(samples)


def majority_fallback(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
    """Cut samples also vote with their fallback (last-number) answer."""
    return majority_of(samples, loose=True)


def _weighted(weighting: Weighting, needs_confidence: bool) -> Rule:
    def rule(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
        if needs_confidence and any(_confidence(s) is None for s in samples):
            return None
        if weighting in ("logprob", "cisc") and any(s.mean_logprob is None for s in samples):
            return None
        return served(samples, weighting)

    rule.__doc__ = f"The server's ``vote_weighting={weighting}``."
    return rule


def _top(share: float) -> Rule:
    def rule(samples: Sequence[JudgedSample], ctx: Context) -> Decision | None:
        if all(_confidence(s) is None and s.mean_logprob is None for s in samples):
            return None
        return served(samples, keep_top=share)

    rule.__doc__ = f"The server's ``keep_top={share}``: majority over the most confident."
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
    "logprob": _weighted("logprob", needs_confidence=False),
    "cisc": _weighted("cisc", needs_confidence=False),
    "deepconf-lowest-group": _weighted("lowest_group", needs_confidence=True),
    "deepconf-tail": _weighted("tail", needs_confidence=True),
    "deepconf-mean": _weighted("mean", needs_confidence=True),
    "top10": _top(0.10),
    "top50": _top(0.50),
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
        pruned_before = len(referee.pruned)
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
        # The standing moves only when samples end or are pruned: ask the rule only then.
        moved = bool(ending) or len(referee.pruned) > pruned_before
        if stopping is not None and moved and referee.verdict() is not None:
            cut.update({index: step for index in referee.running})
            break
        if not referee.running:
            break  # the rest were pruned: the vote ends with its last unpruned sample
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
