"""What precise mode is asked to do and what it answers: the plan, each sample's record, the
result with its evidence, and the progress reports heard while it samples.

``decoding.self_consistency`` runs the plan; these types are kept apart so that the server, the
evaluation harness and the benches can name them without the runner's machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from decoding.confidence import Confidence, ConfidenceSpec
from decoding.equivalence import ANSWER_FORMATS, AnswerFormat
from decoding.judge import Verdict
from decoding.pruning import PruneSpec
from decoding.referee import Verdict as StopReason
from decoding.samples import FinishReason
from decoding.stopping import StoppingRule, WindowStopping
from decoding.voting import AbstainCode, VoteGroup
from decoding.weighting import DEFAULT_CISC_TEMPERATURE, WEIGHTINGS, Weighting

BudgetReason = Literal["deadline", "max_total_tokens"]
SampleStop = Literal["pruned", "consensus", "budget"]
TruncatedVotes = Literal["marked", "any"]


@dataclass(frozen=True)
class ConsistencyPlan:
    """How precise mode samples and decides: sample cap, format, abstention, adaptivity, budget."""

    samples: int = 1
    answer_format: AnswerFormat = "auto"
    min_agreement: float = 0.0
    adaptive: bool = False
    stopping: StoppingRule = field(default_factory=WindowStopping)
    max_total_tokens: int | None = None
    deadline_ms: float | None = None
    confidence: ConfidenceSpec = field(default_factory=ConfidenceSpec)
    # Adaptive precise mode: in-flight pruning and the greedy vote.
    prune: PruneSpec | None = None
    greedy_vote: bool = False
    weighting: Weighting = "majority"
    keep_top: float = 1.0
    cisc_temperature: float = DEFAULT_CISC_TEMPERATURE
    truncated_votes: TruncatedVotes = "marked"

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if not 0.0 < self.keep_top <= 1.0:
            raise ValueError(f"keep_top must be in (0, 1], got {self.keep_top}")
        if self.cisc_temperature <= 0:
            raise ValueError(f"cisc_temperature must be > 0, got {self.cisc_temperature}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.answer_format not in ANSWER_FORMATS:
            raise ValueError(
                f"answer_format must be one of {ANSWER_FORMATS}, got {self.answer_format!r}"
            )
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be in [0, 1], got {self.min_agreement}")
        if self.max_total_tokens is not None and self.max_total_tokens < 1:
            raise ValueError(f"max_total_tokens must be >= 1, got {self.max_total_tokens}")
        if self.deadline_ms is not None and self.deadline_ms <= 0:
            raise ValueError(f"deadline_ms must be > 0, got {self.deadline_ms}")
        if self.greedy_vote and self.samples == 1:
            raise ValueError("greedy_vote needs samples > 1 (one sample is greedy already)")

    @property
    def fan_out(self) -> bool:
        """Whether each sample is its own engine request, so it can be stopped alone."""
        return self.samples > 1 and (self.adaptive or self.prune is not None)


@dataclass(frozen=True)
class SampleRecord:
    """One sample as the response reports it: text, extracted and canonical answer, provenance."""

    index: int
    text: str
    answer: str | None
    canonical: str | None
    finish_reason: FinishReason | None
    seed: int | None
    mean_logprob: float | None
    token_count: int
    voted: bool
    judge: Verdict | None = None  # how judging its answer went; None: no answer to judge
    confidence: Confidence | None = None
    token_confidences: tuple[float, ...] | None = None
    stopped: SampleStop | None = None  # why it was stopped or left out; None: it ran to its end
    greedy: bool = False  # the greedy vote's sample (temperature 0)


@dataclass(frozen=True)
class ConsistencyResult:
    """All a precise-mode response needs; ``answer``, ``text``, ``winner_index`` None on abstain."""

    answer: str | None
    text: str | None
    winner_index: int | None
    agreement: float
    votes: tuple[VoteGroup, ...]
    samples: tuple[SampleRecord, ...]
    samples_used: int
    parsed: int
    unparsed: int
    abstained: bool
    abstain_code: AbstainCode | None
    abstain_reason: str | None
    stopped_early: bool
    budget_exhausted: bool
    budget_reason: BudgetReason | None
    prompt_tokens: int
    completion_tokens: int
    engine_requests: int
    stop_reason: StopReason | None = None  # why an adaptive vote stopped early
    threshold: float | None = None  # the pruning threshold, once calibrated
    warmup: tuple[int, ...] = ()  # the samples that calibrated it
    truncated: bool = False  # the winning sample was cut by max_tokens


@dataclass(frozen=True)
class RoundProgress:
    """What is known after each settled sample: for honest progress reports while sampling.
    ``round`` numbers the reports; ``sample`` is the one just settled (voted or pruned)."""

    round: int
    samples_drawn: int
    samples_cap: int
    tallies: dict[str, int]
    unparsed: int
    sample: int | None = None
    pruned: bool = False
    running: int = 0


ProgressHook = Callable[[RoundProgress], None]
