"""What the OpenAI conformance checks (``bench.rig.conformance_checks``) are made of: the system
under test, requests, answers validated against OpenAI's own schemas (``bench.rig.openai_schema``),
and the runner.

A check is an async function of a ``Target`` that returns when the server conforms and raises
``CheckFailed`` with the reason when it does not; ``run_checks`` runs them one at a time, each
bounded by a timeout, and counts a check that errors (a dropped connection, a body that is not
JSON, a client exception) as failed with the error as its reason. Requests are small (at most
24 tokens, temperature 0 unless a check needs samples): the fourteen generate about 150 tokens
in all. bench/README.md lists what each check asks and why.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema
import openai

from bench.rig.openai_schema import validate

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
MODELS = "/v1/models"
PROMPT = "Count from 1 to 20, separated by commas."
CHECK_TIMEOUT_S = 300.0
MAX_STREAM_LINES = 10_000  # a stream of a few tokens has a few dozen lines; more is a runaway


class CheckFailed(Exception):
    """A server answered, and the answer breaks what OpenAI's API promises."""


@dataclass(frozen=True)
class Target:
    """One system under test: raw HTTP for the wire, the official client for its view."""

    http: httpx.AsyncClient  # base_url: the server's root, without /v1
    client: openai.AsyncOpenAI
    model: str


def expect(condition: object, reason: str) -> None:
    """Fail the check with ``reason`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(reason)


def conforms(payload: Any, schema: str) -> None:
    """Fail the check, saying where, unless ``payload`` matches OpenAI's named schema."""
    try:
        validate(payload, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "the body"
        raise CheckFailed(f"not OpenAI's {schema}: at {where}: {exc.message[:200]}") from None


def chat(target: Target, **extra: Any) -> dict[str, Any]:
    """A small greedy chat request for the target's model."""
    body: dict[str, Any] = {
        "model": target.model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 8,
        "temperature": 0.0,
    }
    return body | extra


async def answer(target: Target, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body``; its JSON object, or the check fails on any other status or body."""
    response = await target.http.post(path, json=body)
    expect(response.status_code == 200, f"HTTP {response.status_code}: {response.text[:200]}")
    return json_object(response)


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's body as a JSON object, or the check fails."""
    try:
        payload = response.json()
    except ValueError:
        raise CheckFailed(f"the body is not JSON: {response.text[:120]!r}") from None
    expect(isinstance(payload, dict), f"the body is not a JSON object: {response.text[:120]!r}")
    result: dict[str, Any] = payload
    return result


def refused(response: httpx.Response, status: int) -> dict[str, Any]:
    """The ``error`` object of an answer with ``status``, whatever its fields, or the check
    fails."""
    expect(
        response.status_code == status,
        f"HTTP {response.status_code} where {status} was due: {response.text[:200]}",
    )
    error = json_object(response).get("error")
    if not isinstance(error, dict):
        raise CheckFailed(f"no error object: {response.text[:200]}")
    return error


def refusal(response: httpx.Response, status: int) -> dict[str, Any]:
    """The ``error`` object of an OpenAI ``ErrorResponse`` with ``status``, or the check fails."""
    error = refused(response, status)
    conforms(response.json(), "ErrorResponse")
    return error


async def stream(target: Target, body: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """POST a streaming request: its chunks as JSON objects, and whether ``data: [DONE]``
    came last (and only last)."""
    events: list[str] = []
    async with target.http.stream("POST", CHAT, json=body | {"stream": True}) as response:
        expect(response.status_code == 200, f"HTTP {response.status_code}")
        async for line in response.aiter_lines():
            expect(len(events) < MAX_STREAM_LINES, "the stream does not end")
            if line.startswith("data:"):
                events.append(line.removeprefix("data:").removeprefix(" "))
    done = bool(events) and events[-1] == "[DONE]" and events.count("[DONE]") == 1
    chunks = []
    for event in events:
        if event == "[DONE]":
            continue
        try:
            chunk = json.loads(event)
        except ValueError:
            raise CheckFailed(f"a chunk is not JSON: {event[:120]!r}") from None
        expect(isinstance(chunk, dict), f"a chunk is not a JSON object: {event[:120]!r}")
        chunks.append(chunk)
    return chunks, done


def usage_adds_up(usage: Any) -> None:
    """Token counts present, and the total is the sum of its parts."""
    expect(isinstance(usage, dict), f"no usage: {usage!r}")
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    expect(
        isinstance(prompt, int) and isinstance(completion, int) and completion > 0,
        f"usage without token counts: {usage}",
    )
    expect(usage.get("total_tokens") == prompt + completion, f"usage does not add up: {usage}")


def stop_string(text: str) -> tuple[str, int] | None:
    """Three characters from the second half of a free answer to use as a stop string, and
    where they first occur (after the start, so something comes before them); None if the
    answer is too short or blank there."""
    for start in range(len(text) // 2, len(text) - 2):
        candidate = text[start : start + 3]
        if candidate.strip() and (first := text.find(candidate)) > 0:
            return candidate, first
    return None


Run = Callable[[Target], Awaitable[None]]


@dataclass(frozen=True)
class Check:
    """One named check: a short key for JSON, a row label, and the check itself."""

    key: str
    title: str
    run: Run


@dataclass(frozen=True)
class Outcome:
    """What one check found on one system."""

    key: str
    passed: bool
    reason: str = ""


async def run_checks(
    target: Target, checks: list[Check], timeout_s: float = CHECK_TIMEOUT_S
) -> list[Outcome]:
    """Every check in turn, each bounded by ``timeout_s``; an error is a failure with its
    reason, so one broken answer never stops the rest."""
    outcomes = []
    for check in checks:
        try:
            async with asyncio.timeout(timeout_s):
                await check.run(target)
        except CheckFailed as exc:
            outcomes.append(Outcome(check.key, False, one_line(str(exc))))
        except Exception as exc:  # the check errored: a failure, with why
            reason = f"error: {type(exc).__name__}: {exc}"
            if isinstance(exc, TimeoutError):
                reason = f"no answer within {timeout_s:g} s"
            outcomes.append(Outcome(check.key, False, one_line(reason)))
        else:
            outcomes.append(Outcome(check.key, True))
    return outcomes


def one_line(reason: str, limit: int = 300) -> str:
    """A reason on one line (it quotes bodies, HTML pages among them), cut to ``limit``."""
    return " ".join(reason.split())[:limit]
