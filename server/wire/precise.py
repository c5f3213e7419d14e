"""Precise mode's wire shapes: ``POST /v1/precise`` and the evidence of a vote.

The same options ride on ``<name>:precise`` chat and completions requests as extra body fields
(``extra_body`` in the openai client); the evidence then travels in the response's extra
top-level field ``quorum``.

``PRECISE_RULES`` are the options that only go together (with ``verify``, and the greedy vote):
the plan refuses a request breaking one with a 400 naming its ``param``, and ``/v1/precise``'s
schema states them (``server.wire.rules``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.wire.chat import ChatMessage
from server.wire.common import STRICT_REQUEST, SamplingFields, Usage
from server.wire.rules import AtLeast, Given, Implies, Inside, OneOfValues, Rule, stated
from server.wire.verify import CODE, MATHS, VerifyOptions

AnswerFormatName = Literal["auto", "number", "math", "choice", "text", "json", "code"]
JudgeVerdict = Literal["ok", "timeout", "too_large", "error"]
DEFAULT_PRECISE_TEMPERATURE = 0.7
DEFAULT_PRUNE_TOP_K = 5
DEFAULT_PRUNE_WARMUP = 4
DEFAULT_PRUNE_PERCENTILE = 90.0  # decoding.pruning's default, chosen by replay
SampleStop = Literal["pruned", "consensus", "budget"]
MATH_FORMATS = ("auto", "math", "number")


class PreciseOptions(BaseModel):
    """How to sample and decide; every fan-out field is capped by the server's settings.
    Unknown fields are refused, so a misspelt option is not silently dropped."""

    model_config = ConfigDict(extra="forbid", **STRICT_REQUEST)

    samples: int = Field(1, ge=1, description="Samples to vote over (1: greedy). Capped.")
    temperature: float | None = Field(
        None,
        ge=0.0,
        le=2.0,
        description=f"Sampling temperature for samples > 1 (default "
        f"{DEFAULT_PRECISE_TEMPERATURE}: diverse enough that independent reasoning paths can "
        "disagree, cool enough that most stay coherent; Wang et al. 2022 used 0.5-0.7). "
        "Ignored for one sample, which is greedy.",
    )
    answer_format: AnswerFormatName = Field(
        "auto", description="How answers are extracted and compared."
    )
    min_agreement: float = Field(
        0.0, ge=0.0, le=1.0, description="Abstain when the winner's share of votes is lower."
    )
    adaptive: bool = Field(
        False,
        description="Start every sample at once and stop as soon as the finished ones settle "
        "the vote; the running samples are then aborted.",
    )
    stopping_rule: Literal["beta", "esc", "consensus"] = Field(
        "esc",
        description="Adaptive stopping rule: esc (the last 3 finished samples agree; the "
        "default, the fewest tokens at the fixed vote's accuracy when measured), beta "
        "(Adaptive-Consistency's Beta posterior >= 0.95) or consensus (DeepConf: the leader "
        "holds 95% of the vote). With prune, votes weigh their confidence.",
    )
    max_total_tokens: int | None = Field(
        None, ge=1, description="Completion-token budget over all samples."
    )
    deadline_ms: int | None = Field(
        None, ge=1, le=600_000, description="Wall-clock budget; on expiry, vote on what finished."
    )
    top_logprobs: int = Field(
        0,
        ge=0,
        le=20,
        description="Top-k alternatives per token asked of the engine for each sample's "
        "confidence (DeepConf); 0: the sampled token's logprob only.",
    )
    confidence_window: int = Field(
        32, ge=1, le=4096, description="Tokens per sliding group for lowest_group confidence."
    )
    confidence_tail: int = Field(
        32, ge=1, le=4096, description="Last tokens averaged for tail confidence."
    )
    token_confidences: bool = Field(
        False, description="Report each sample's per-token confidences (for offline tuning)."
    )
    # Adaptive precise mode: in-flight pruning (DeepConf online) and the greedy vote.
    prune: bool = Field(
        False,
        description="Abort samples whose sliding-window confidence falls below a threshold "
        "calibrated on the first finished samples, and leave them out of the vote (DeepConf "
        f"online). Asks for top-{DEFAULT_PRUNE_TOP_K} logprobs unless top_logprobs is set.",
    )
    prune_warmup: int = Field(
        DEFAULT_PRUNE_WARMUP,
        ge=1,
        description="Finished samples that calibrate the pruning threshold.",
    )
    prune_percentile: float = Field(
        DEFAULT_PRUNE_PERCENTILE,
        ge=0.0,
        le=100.0,
        description="The threshold is this percentile of the warm-up samples' lowest-group "
        "confidences: higher prunes more (90, the default, is DeepConf-low, which prunes most "
        "samples; 10 is DeepConf-high, which prunes about 10%).",
    )
    greedy_vote: bool = Field(
        False,
        description="A greedy (temperature 0) sample joins the vote as one more sample.",
    )
    vote_weighting: Literal["majority", "logprob", "cisc", "lowest_group", "tail", "mean"] = Field(
        "majority",
        description="How much each sample's vote counts: majority (1 each), logprob "
        "(geometric-mean token probability), cisc (softmax of confidence), or a DeepConf "
        "confidence (lowest_group, tail, mean; needs top_logprobs > 0).",
    )
    keep_top: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Share of the most confident samples that vote (DeepConf's filter; 1: all).",
    )
    truncated_votes: Literal["marked", "any"] = Field(
        "marked",
        description="A sample cut by max_tokens votes only with a marked answer (marked), or "
        "also with its last number (any). One greedy sample always answers what it can.",
    )
    answer_instruction: bool = Field(
        False,
        description="Append 'End with: The answer is <answer>.' to the last user message, so "
        "extraction reads a marked answer instead of guessing.",
    )
    verify: VerifyOptions | None = Field(
        None,
        description="Check candidates before they vote: code against tests in a sandbox, or a "
        "formula by substitution or an equation; failing candidates do not vote.",
    )


PRECISE_RULES = (
    Rule(
        Implies(Given("verify"), OneOfValues("vote_weighting", ("majority",))),
        "verify counts each passing sample once: vote_weighting must be majority",
        "vote_weighting",
    ),
    Rule(
        Implies(Inside("verify", VerifyOptions, CODE), OneOfValues("answer_format", ("code",))),
        'verify with tests needs answer_format "code"',
        "answer_format",
    ),
    Rule(
        Implies(Inside("verify", VerifyOptions, MATHS), OneOfValues("answer_format", MATH_FORMATS)),
        f"a maths check needs answer_format one of {MATH_FORMATS}",
        "answer_format",
    ),
    Rule(
        Implies(OneOfValues("greedy_vote", (True,)), AtLeast("samples", 2)),
        "greedy_vote needs samples > 1 (one sample is greedy already)",
        "greedy_vote",
    ),
)


class PreciseRequest(PreciseOptions, SamplingFields):
    """``POST /v1/precise``: a chat (``messages``) or a raw ``prompt``, and precise options
    (a seed is drawn when none is given, and reported in the receipt)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=stated(
            PRECISE_RULES,
            {
                # Exactly one of them is given, and not null (the validator below says the same).
                "oneOf": [
                    {"required": ["messages"], "properties": {"messages": {"type": "array"}}},
                    {"required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
                ]
            },
        ),
        **STRICT_REQUEST,
    )

    model: str | None = Field(None, description="The served name, alone or with :precise.")
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    prompt: str | None = Field(None, min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    stream: bool = False

    @model_validator(mode="after")
    def _one_prompt(self) -> PreciseRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of messages or prompt")
        return self


class VoteOut(BaseModel):
    """One distinct answer, its votes and the samples that gave it."""

    answer: str
    count: int
    samples: list[int]


class ConfidenceOut(BaseModel):
    """How sure the model was while writing a sample (higher is surer; see decoding.confidence)."""

    mean: float
    lowest_group: float
    tail: float


class SampleOut(BaseModel):
    """One sample's text, what was extracted from it, and how to reproduce it."""

    index: int
    text: str
    answer: str | None
    finish_reason: str | None
    seed: int | None
    mean_logprob: float | None
    tokens: int
    voted: bool
    judge: JudgeVerdict | None = Field(
        None,
        description="How judging the extracted answer went: ok, or why it is kept as its "
        "normalised text: timeout, too_large, error (null: no answer to judge).",
    )
    confidence: ConfidenceOut | None = None
    token_confidences: list[float] | None = None
    stopped: SampleStop | None = Field(
        None,
        description="Why the sample was stopped or left out: pruned (below the confidence "
        "threshold), consensus (the vote was settled first), budget (deadline or token budget); "
        "null: it ran to its end.",
    )
    greedy: bool = Field(False, description="The greedy vote's sample (temperature 0).")
    verified: bool | None = Field(
        None, description="With verify: whether it passed (null: not checked or not checkable)."
    )
    verify_reason: str | None = Field(None, description="Why it passed or failed verification.")


class PruningOut(BaseModel):
    """How pruning went: the threshold (null until calibrated) and the samples it came from."""

    threshold: float | None
    warmup: list[int]


class Receipt(BaseModel):
    """Everything needed to replay the request to the same result."""

    model: str
    engine: str
    engine_version: str
    # Whether batching could change these samples: see ``ModelCard.determinism``.
    determinism: Literal["batch_invariant", "none", "unknown"]
    quorum_version: str
    sampling: dict[str, Any]
    plan: dict[str, Any]
    seeds: list[int | None]
    finished: list[int] = Field(
        default_factory=list, description="The samples that ran to their end (indices)."
    )
    cut: list[int] = Field(
        default_factory=list,
        description="The samples aborted mid-generation (pruned, vote settled, or budget): "
        "replaying their seeds regenerates them in full.",
    )


class Evidence(BaseModel):
    """The vote and its evidence: shared by ``/v1/precise`` and the ``quorum`` extra field."""

    answer: str | None
    text: str | None
    agreement: float
    votes: list[VoteOut]
    samples: list[SampleOut]
    samples_used: int
    unparsed: int
    abstained: bool
    abstain_reason: str | None
    stopped_early: bool
    budget_exhausted: bool
    budget_reason: str | None
    stop_reason: Literal["consensus", "decided"] | None = Field(
        None,
        description="Why an adaptive vote stopped early: consensus (its stopping rule) or "
        "decided (the running samples could no longer change the answer).",
    )
    pruning: PruningOut | None = None
    truncated: bool = Field(
        False, description="The answer comes from a sample cut by max_tokens (its best reading)."
    )
    verified_samples: int | None = Field(None, description="With verify: samples that passed.")
    winner_verified: bool | None = Field(None, description="With verify: the answer passed.")
    receipt: Receipt


class PreciseAnswer(Evidence):
    """``precise.answer``: the voted answer with its evidence and usage."""

    id: str
    object: Literal["precise.answer"] = "precise.answer"
    created: int
    model: str
    usage: Usage
