"""The OpenAI wire format of an upstream server, mapped to and from the engine protocol.

Pure functions, no I/O, so the mapping is tested without a network. Token counts per sample come
from vLLM's ``token_ids`` (asked for with ``return_token_ids``), else from the logprobs, else they
are estimated: one token per streamed delta, or the usage total shared by text length.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from decoding.engine import ChatPrompt, Prompt, SamplingSpec
from decoding.samples import FinishReason, GenerationChunk, SampleDelta, TokenLogprob

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"


@dataclass(frozen=True)
class UpstreamCall:
    """One upstream request: which route, and the body without its ``model``."""

    path: str
    body: dict[str, Any]
    chat: bool


def build_call(prompt: Prompt, spec: SamplingSpec, *, stream: bool) -> UpstreamCall:
    """The upstream request for one engine request of ``spec.n`` samples."""
    body: dict[str, Any] = {
        "n": spec.n,
        "temperature": spec.temperature,
        "top_p": spec.top_p,
        "max_tokens": spec.max_tokens,
        "presence_penalty": spec.presence_penalty,
        "frequency_penalty": spec.frequency_penalty,
        "stream": stream,
        # vLLM extra: each choice carries its token ids, so per-sample counts are exact.
        "return_token_ids": True,
    }
    if spec.top_k is not None:
        body["top_k"] = spec.top_k  # vLLM extra
    if spec.seed is not None:
        body["seed"] = spec.seed
    if spec.stop:
        body["stop"] = list(spec.stop)
    if stream:
        body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    chat = isinstance(prompt, ChatPrompt)
    if isinstance(prompt, ChatPrompt):
        body["messages"] = [dict(m) for m in prompt.messages]
        if spec.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = spec.logprobs
        return UpstreamCall(CHAT_PATH, body, chat)
    body["prompt"] = prompt.text
    if spec.logprobs is not None:
        body["logprobs"] = spec.logprobs
    return UpstreamCall(COMPLETIONS_PATH, body, chat)


def tokenize_body(prompt: Prompt, model: str) -> dict[str, Any]:
    """vLLM's ``/tokenize`` body that counts the prompt as the generation route will."""
    if isinstance(prompt, ChatPrompt):
        return {
            "model": model,
            "messages": [dict(m) for m in prompt.messages],
            "add_generation_prompt": True,
        }
    return {"model": model, "prompt": prompt.text}


def finish_reason(reason: Any) -> FinishReason | None:
    """OpenAI's finish reasons folded into the engine's three."""
    if reason is None:
        return None
    if reason in ("length", "abort"):
        return reason  # type: ignore[no-any-return]
    return "stop"


def chat_logprobs(raw: Any, k: int) -> list[TokenLogprob] | None:
    """Chat ``logprobs.content`` as engine logprobs, at most ``k`` alternatives each."""
    if not isinstance(raw, dict) or raw.get("content") is None:
        return None
    return [
        TokenLogprob(
            token=str(item.get("token", "")),
            logprob=float(item.get("logprob", 0.0)),
            top=tuple(
                (str(alt.get("token", "")), float(alt.get("logprob", 0.0)))
                for alt in (item.get("top_logprobs") or [])[:k]
            ),
        )
        for item in raw["content"]
    ]


def completion_logprobs(raw: Any, k: int) -> list[TokenLogprob] | None:
    """Completions ``logprobs`` (parallel lists) as engine logprobs, best alternatives first."""
    if not isinstance(raw, dict) or raw.get("tokens") is None:
        return None
    tokens, values = raw["tokens"], raw.get("token_logprobs") or []
    tops = raw.get("top_logprobs") or []
    result = []
    for i, token in enumerate(tokens):
        value = values[i] if i < len(values) else None
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        best = sorted(top.items(), key=lambda item: -float(item[1]))[:k]
        result.append(
            TokenLogprob(
                token=str(token),
                logprob=float(value) if value is not None else 0.0,
                top=tuple((str(t), float(lp)) for t, lp in best),
            )
        )
    return result


def choice_delta(choice: dict[str, Any], spec: SamplingSpec, *, chat: bool) -> SampleDelta:
    """One choice (whole or streamed) as a sample delta; ``token_count`` is -1 when unknown."""
    if chat:
        part = choice.get("message") or choice.get("delta") or {}
        text = part.get("content") or ""
    else:
        text = choice.get("text") or ""
    logprobs = None
    if spec.logprobs is not None:
        convert = chat_logprobs if chat else completion_logprobs
        logprobs = convert(choice.get("logprobs"), spec.logprobs)
    token_ids = choice.get("token_ids")
    if isinstance(token_ids, list):
        count = len(token_ids)
    elif logprobs is not None:
        count = len(logprobs)
    else:
        count = -1
    return SampleDelta(
        index=int(choice.get("index", 0)),
        text=str(text),
        token_count=count,
        logprobs=logprobs,
        finish_reason=finish_reason(choice.get("finish_reason")),
    )


def prompt_tokens_of(payload: dict[str, Any]) -> int | None:
    """The prompt's token count from ``usage`` or ``prompt_token_ids``, if the payload says."""
    usage = payload.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
        return int(usage["prompt_tokens"])
    ids = payload.get("prompt_token_ids")
    return len(ids) if isinstance(ids, list) else None


def parse_response(payload: dict[str, Any], spec: SamplingSpec, *, chat: bool) -> GenerationChunk:
    """A whole (non-streamed) response as one chunk holding every sample."""
    deltas = [choice_delta(c, spec, chat=chat) for c in payload.get("choices") or []]
    unknown = [d for d in deltas if d.token_count < 0]
    if unknown:
        usage = payload.get("usage") or {}
        total = int(usage.get("completion_tokens") or 0) - sum(
            d.token_count for d in deltas if d.token_count >= 0
        )
        chars = sum(len(d.text) for d in unknown)
        for d in unknown:  # an estimate: the server gave only the sum
            share = len(d.text) / chars if chars else 1 / len(unknown)
            d.token_count = max(0, round(total * share))
    return GenerationChunk(prompt_tokens=prompt_tokens_of(payload) or 0, deltas=deltas)


def stream_deltas(payload: dict[str, Any], spec: SamplingSpec, *, chat: bool) -> list[SampleDelta]:
    """The sample deltas of one streamed event; empty (role-only) deltas are dropped."""
    deltas = []
    for choice in payload.get("choices") or []:
        delta = choice_delta(choice, spec, chat=chat)
        if delta.token_count < 0:
            delta.token_count = 1 if delta.text else 0  # an estimate: one token per event
        if delta.text or delta.token_count or delta.logprobs or delta.finish_reason:
            deltas.append(delta)
    return deltas


async def sse_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """Lines of an event stream, split on ``\\n`` or ``\\r\\n`` only: httpx's ``aiter_lines``
    also splits on U+2028, U+0085 and friends, which JSON carries unescaped inside text."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line.removesuffix(b"\r").decode("utf-8", errors="replace")
    if buffer:
        yield buffer.removesuffix(b"\r").decode("utf-8", errors="replace")


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event, until ``[DONE]``."""
    data: list[str] = []
    async for line in lines:
        if line == "":
            if data:
                joined, data = "\n".join(data), []
                if joined.strip() == "[DONE]":
                    return
                yield joined
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive)
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data and "\n".join(data).strip() != "[DONE]":
        yield "\n".join(data)


class StreamBroken(Exception):
    """The upstream stream held an error event, bad JSON, or ended before every sample did."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(str(payload)[:200])
        self.status = status
        self.payload = payload


def _broken(message: str) -> StreamBroken:
    return StreamBroken(502, {"error": {"message": message}})


async def stream_chunks(
    lines: AsyncIterator[str], spec: SamplingSpec, *, chat: bool
) -> AsyncGenerator[GenerationChunk, None]:
    """Engine chunks from an upstream SSE stream, merged by choice index. The chunk finishing
    the last sample waits for the final usage event, so servers that report the prompt's
    token count only at the end still get it onto a chunk."""
    prompt_tokens, finished = 0, set[int]()
    held: GenerationChunk | None = None
    async for data in sse_events(lines):
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise _broken("the upstream sent a malformed stream") from exc
        if not isinstance(payload, dict):
            continue
        if "error" in payload:
            error = payload["error"]
            code = error.get("code") if isinstance(error, dict) else None
            status = code if isinstance(code, int) and 400 <= code < 600 else 500
            raise StreamBroken(status, payload)
        prompt_tokens = prompt_tokens_of(payload) or prompt_tokens
        deltas = stream_deltas(payload, spec, chat=chat)
        if not deltas:
            continue
        if held is not None:
            yield held
            held = None
        finished.update(d.index for d in deltas if d.finish_reason is not None)
        chunk = GenerationChunk(prompt_tokens=prompt_tokens, deltas=deltas)
        if len(finished) >= spec.n:
            held = chunk
        else:
            yield chunk
    if held is not None:
        held.prompt_tokens = prompt_tokens
        yield held
    if len(finished) < spec.n:
        raise _broken("the upstream stream ended before every sample finished")
