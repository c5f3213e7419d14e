"""What the server sends is valid, whatever went wrong: model output holding a lone surrogate is
rendered with U+FFFD (whole, streamed, with logprobs, as precise evidence), and a bug is a
500 ``internal_error`` with no internals, logged with the request id the client was given."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import pytest

from decoding.engine import Prompt, SamplingSpec
from decoding.samples import GenerationChunk
from server.engines.scripted import ScriptedEngine
from server.runtime.logging_setup import JsonFormatter
from tests.inprocess import MODEL, serving
from tests.reliability.conftest import CHAT, MESSAGES, make_settings
from tests.reliability.test_input_limits import assert_openai_error

BROKEN = "left \ud800 right \udfff"  # what an upstream's "\ud800" escape decodes to


def broken_script(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
    return BROKEN


def sse_payloads(body: bytes) -> list[Any]:
    events = [line[6:] for line in body.decode("utf-8").splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, {"model": MODEL, "messages": MESSAGES, "logprobs": True, "top_logprobs": 1}),
        (CHAT, {"model": MODEL, "messages": MESSAGES, "stream": True, "logprobs": True}),
        ("/v1/completions", {"model": MODEL, "prompt": "hi", "logprobs": 1, "max_tokens": 8}),
        ("/v1/completions", {"model": MODEL, "prompt": "hi", "stream": True}),
        ("/v1/precise", {"messages": MESSAGES, "samples": 3, "answer_format": "text"}),
        ("/v1/precise", {"messages": MESSAGES, "samples": 3, "stream": True}),
        (CHAT, {"model": f"{MODEL}:precise", "messages": MESSAGES, "samples": 2}),
        (CHAT, {"model": f"{MODEL}:precise", "messages": MESSAGES, "stream": True}),
    ],
)
async def test_model_output_that_is_not_unicode_is_replaced_not_a_500(
    tmp_cache: Path, path: str, body: dict[str, Any]
) -> None:
    engine = ScriptedEngine(script=broken_script, max_model_len=512)
    async with serving(make_settings(tmp_cache), engine) as (_, http, _client):
        response = await http.post(path, json=body)
        assert response.status_code == 200, response.text
        text = response.content.decode("utf-8")  # strict: valid UTF-8 throughout
        payloads = sse_payloads(response.content) if body.get("stream") else [json.loads(text)]
        assert not any("error" in p for p in payloads), text
        streamed = "".join(
            choice.get("delta", {}).get("content") or choice.get("text") or ""
            for p in payloads
            for choice in p.get("choices", [])
            if body.get("stream") and choice["index"] == 0
        )
        assert "left \ufffd right \ufffd" in streamed + json.dumps(payloads, ensure_ascii=False)
        assert (await http.get("/health")).status_code == 200


class FailingEngine(ScriptedEngine):
    """An engine adapter with a bug: a foreign exception it did not translate."""

    async def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncGenerator[GenerationChunk, None]:
        raise KeyError("/srv/quorum/secret.py: internal state")
        yield GenerationChunk(0)  # pragma: no cover - makes this an async generator


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Log lines as the server writes them (JSON, formatted when logged), captured."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_bug_is_a_500_internal_error_logged_with_the_request_id(
    tmp_cache: Path, json_log: io.StringIO, stream: bool
) -> None:
    engine = FailingEngine(max_model_len=512)
    async with serving(make_settings(tmp_cache), engine) as (_, http, _client):
        response = await http.post(
            CHAT,
            json={"model": MODEL, "messages": MESSAGES, "stream": stream},
            headers={"x-request-id": "req-bug-1"},
        )
        error = assert_openai_error(response, 500)
        assert error["type"] == "server_error"
        assert error["code"] == "internal_error"
        assert error["message"] == "internal server error"
        assert "secret" not in response.text and "KeyError" not in response.text
        assert response.headers["x-request-id"] == "req-bug-1"
        assert (await http.get("/health")).status_code == 200
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    bug = [line for line in lines if line["message"] == "unhandled error"]
    assert len(bug) == 1
    assert bug[0]["request_id"] == "req-bug-1"
    assert "KeyError" in bug[0]["exception"]
    access = [line for line in lines if line["logger"] == "quorum.access"]
    assert access[-1]["status"] == 500 and access[-1]["request_id"] == "req-bug-1"
