"""Pure decoding logic: the engine protocol, and precise mode (self-consistency) over it.

Knows nothing of HTTP or vLLM; imports only the standard library and math-verify.
"""

from decoding.engine import (
    ChatPrompt,
    Engine,
    EngineInfo,
    ManagedEngine,
    Prompt,
    SamplingSpec,
    TextPrompt,
    collect,
)
from decoding.equivalence import ANSWER_FORMATS, AnswerFormat, Canonical
from decoding.extraction import extract_answer
from decoding.judge import InProcessJudge, Judge, JudgeFailed, TooLarge, Verdict
from decoding.normalizer import AnswerNormalizer, Judged
from decoding.samples import (
    FinishReason,
    Generation,
    GenerationChunk,
    Sample,
    SampleDelta,
    TokenLogprob,
    fold,
)
from decoding.self_consistency import (
    BudgetReason,
    ConsistencyPlan,
    ConsistencyResult,
    ProgressHook,
    RoundProgress,
    SampleRecord,
    engine_spec,
    self_consistency,
)
from decoding.stopping import (
    BetaStopping,
    StoppingRule,
    WindowStopping,
    beta_confidence,
    beta_confidence_exact,
)
from decoding.symbolic import warm_up
from decoding.voting import AbstainCode, Ballot, VoteGroup, VoteResult, vote

__all__ = [
    "ANSWER_FORMATS",
    "AbstainCode",
    "AnswerFormat",
    "AnswerNormalizer",
    "Ballot",
    "BetaStopping",
    "BudgetReason",
    "Canonical",
    "ChatPrompt",
    "ConsistencyPlan",
    "ConsistencyResult",
    "Engine",
    "EngineInfo",
    "FinishReason",
    "Generation",
    "GenerationChunk",
    "InProcessJudge",
    "Judge",
    "JudgeFailed",
    "Judged",
    "ManagedEngine",
    "ProgressHook",
    "Prompt",
    "RoundProgress",
    "Sample",
    "SampleDelta",
    "SampleRecord",
    "SamplingSpec",
    "StoppingRule",
    "TextPrompt",
    "TokenLogprob",
    "TooLarge",
    "Verdict",
    "VoteGroup",
    "VoteResult",
    "WindowStopping",
    "beta_confidence",
    "beta_confidence_exact",
    "collect",
    "engine_spec",
    "extract_answer",
    "fold",
    "self_consistency",
    "vote",
    "warm_up",
]
