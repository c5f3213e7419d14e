"""Re-judge every sample of a result from its TEXT with decoding's own extraction and keys.

Each sample is judged twice: with today's truncation rule (a sample cut by ``max_tokens`` keeps
only a marked answer) and with the fallback allowed (its last number too). Each distinct answer
is scored once against the gold (``evaluation.scoring``). Nothing here calls a model, so one
generation serves every variant of extraction, voting and stopping.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from decoding.equivalence import AnswerFormat
from decoding.extraction import extract_answer
from decoding.normalizer import AnswerNormalizer
from evaluation.results import Record, is_ok, record_key
from evaluation.scoring import Scorer


@dataclass(frozen=True)
class Answer:
    """One extraction of one sample: canonical key (None: no answer), display, correctness."""

    key: str | None
    display: str | None
    correct: bool


@dataclass(frozen=True)
class JudgedSample:
    """A sample as the analysis sees it: both extractions, provenance and confidence signals."""

    index: int
    seed: int | None
    strict: Answer
    loose: Answer
    mean_logprob: float | None
    finish_reason: str | None
    tokens: int
    confidence: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemRun:
    """One (item, config) result, re-judged."""

    item_id: str
    set: str
    split: str
    kind: str
    config: str
    config_spec: Mapping[str, Any]
    samples: tuple[JudgedSample, ...]
    server_answer_correct: bool | None
    wall_s: float
    completion_tokens: int
    receipt: Mapping[str, Any]
    consecutive_seeds: bool


def confidence_fields(sample: Mapping[str, Any]) -> dict[str, float]:
    """Numeric per-sample confidence: ``confidence`` as a number, or a mapping of named ones."""
    raw = sample.get("confidence")
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        return {"confidence": float(raw)}
    if isinstance(raw, Mapping):
        return {
            str(k): float(v)
            for k, v in raw.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
    return {}


def _answer(extracted: str | None, normalizer: AnswerNormalizer, scorer: Scorer) -> Answer:
    if extracted is None:
        return Answer(None, None, False)
    canonical = normalizer.judged(extracted).canonical
    return Answer(canonical.key, canonical.display, scorer(canonical.display))


def _settle(normalizer: AnswerNormalizer, answers: Iterable[str | None]) -> None:
    """Key every extracted answer: cheap ones at once, formulas through decoding's judge (in
    this process: the analysis runs offline, on the results of our own runs)."""
    formulas = {a for a in answers if a is not None and normalizer.key_now(a) is None}
    if formulas:
        asyncio.run(normalizer.judge(formulas))


def judge_record(record: Record) -> ItemRun:
    """Re-judge one OK record's samples."""
    item, request, response = record["item"], record["request"], record["response"]
    fmt: AnswerFormat = request.get("answer_format", "auto")
    normalizer = AnswerNormalizer(fmt)
    scorer = Scorer(item["kind"], item["answer"], item.get("metadata", {}))
    raws = list(response.get("samples", []))
    texts = [str(raw.get("text") or "") for raw in raws]
    cut = [raw.get("finish_reason") == "length" for raw in raws]
    strict_answers = [
        extract_answer(t, fmt, allow_fallback=not c) for t, c in zip(texts, cut, strict=True)
    ]
    loose_answers = [
        extract_answer(t, fmt, allow_fallback=True) if c else a
        for t, c, a in zip(texts, cut, strict_answers, strict=True)
    ]
    _settle(normalizer, [*strict_answers, *loose_answers])
    judged: list[JudgedSample] = []
    for raw, truncated, found, loose_found in zip(
        raws, cut, strict_answers, loose_answers, strict=True
    ):
        strict = _answer(found, normalizer, scorer)
        loose = strict if not truncated else _answer(loose_found, normalizer, scorer)
        lp = raw.get("mean_logprob")
        judged.append(
            JudgedSample(
                index=int(raw.get("index", len(judged))),
                seed=raw.get("seed"),
                strict=strict,
                loose=loose,
                mean_logprob=float(lp) if isinstance(lp, int | float) else None,
                finish_reason=raw.get("finish_reason"),
                tokens=int(raw.get("tokens") or 0),
                confidence=confidence_fields(raw),
            )
        )
    judged.sort(key=lambda s: s.index)
    seeds = [s.seed for s in judged]
    consecutive = all(
        isinstance(a, int) and isinstance(b, int) and b == a + 1
        for a, b in itertools.pairwise(seeds)
    )
    answer = response.get("answer")
    usage = response.get("usage") or {}
    return ItemRun(
        item_id=item["id"],
        set=item["set"],
        split=item["split"],
        kind=item["kind"],
        config=record["config"]["name"],
        config_spec=record["config"],
        samples=tuple(judged),
        server_answer_correct=None if answer is None else scorer(str(answer)),
        wall_s=float(record.get("wall_s") or 0.0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        receipt=response.get("receipt") or {},
        consecutive_seeds=consecutive,
    )


def latest(
    records: Iterable[Record],
) -> tuple[dict[tuple[str, str], Record], set[tuple[str, str]]]:
    """The last OK record of each (item, config) pair, and the pairs that only have errors."""
    ok: dict[tuple[str, str], Record] = {}
    failed: set[tuple[str, str]] = set()
    for record in records:
        key = record_key(record)
        if is_ok(record):
            ok[key] = record
        else:
            failed.add(key)
    return ok, failed - set(ok)
