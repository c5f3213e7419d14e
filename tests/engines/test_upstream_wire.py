"""The upstream wire mapping: request bodies, responses, SSE parsing, errors and replica choice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from decoding.engine import ChatPrompt, SamplingSpec, TextPrompt
from decoding.samples import GenerationChunk, TokenLogprob, fold
from server.engines.upstream_errors import error_fields, status_error, transport_error
from server.engines.upstream_pool import ReplicaPool, base_url, redact
from server.engines.upstream_wire import (
    StreamBroken,
    build_call,
    finish_reason,
    parse_response,
    sse_events,
    sse_lines,
    stream_chunks,
)
from server.errors import (
    EngineUnavailable,
    InvalidRequest,
    Overloaded,
    UpstreamFailed,
    UpstreamTimeout,
)

CHAT = ChatPrompt(messages=[{"role": "user", "content": "hi"}])


async def _aiter(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def _events(raw: list[bytes]) -> list[str]:
    return [e async for e in sse_events(sse_lines(_aiter(raw)))]


async def _chunks(events: list[dict[str, Any] | str], spec: SamplingSpec) -> list[GenerationChunk]:
    raw = "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)
    lines = sse_lines(_aiter([raw.encode()]))
    return [c async for c in stream_chunks(lines, spec, chat=True)]


def _delta(index: int, text: str, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": index, "delta": {"content": text}, "finish_reason": finish, **extra}
    return {"choices": [choice]}


@pytest.mark.parametrize(
    ("spec", "stream", "expected"),
    [
        (SamplingSpec(), False, {"n": 1, "max_tokens": 256, "stream": False}),
        (
            SamplingSpec(n=4, temperature=0.7, top_k=20, seed=9, stop=("\n",), logprobs=3),
            False,
            {"n": 4, "temperature": 0.7, "top_k": 20, "seed": 9, "stop": ["\n"], "top_logprobs": 3},
        ),
        (SamplingSpec(logprobs=0), False, {"logprobs": True, "top_logprobs": 0}),
        (
            SamplingSpec(presence_penalty=0.5, frequency_penalty=-0.5),
            True,
            {
                "presence_penalty": 0.5,
                "frequency_penalty": -0.5,
                "stream_options": {"include_usage": True, "continuous_usage_stats": True},
            },
        ),
    ],
)
def test_chat_body_maps_every_sampling_field(
    spec: SamplingSpec, stream: bool, expected: dict[str, Any]
) -> None:
    call = build_call(CHAT, spec, stream=stream)
    assert (call.path, call.chat) == ("/v1/chat/completions", True)
    assert call.body["messages"] == [{"role": "user", "content": "hi"}]
    assert call.body["return_token_ids"] is True
    assert expected.items() <= call.body.items()
    for absent in ("seed", "top_k", "stop", "logprobs"):
        if getattr(spec, absent) in (None, ()):
            assert absent not in call.body, "unset fields are left to the upstream's defaults"


def test_completions_body_uses_the_integer_logprobs() -> None:
    call = build_call(TextPrompt("the cat"), SamplingSpec(logprobs=2), stream=False)
    assert (call.path, call.chat) == ("/v1/completions", False)
    assert call.body["prompt"] == "the cat" and call.body["logprobs"] == 2
    assert "top_logprobs" not in call.body and "messages" not in call.body


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("stop", "stop"), ("length", "length"), ("abort", "abort"), ("tool_calls", "stop"),
     ("content_filter", "stop"), (None, None)],
)  # fmt: skip
def test_finish_reasons_fold_into_three(raw: str | None, expected: str | None) -> None:
    assert finish_reason(raw) == expected


def test_chat_response_with_token_ids_and_logprobs() -> None:
    logprobs = {
        "content": [
            {"token": "a", "logprob": -0.1, "top_logprobs": [{"token": "a", "logprob": -0.1},
                                                           {"token": "b", "logprob": -2.0}]},
            {"token": "é", "logprob": -0.3, "top_logprobs": []},
        ]
    }  # fmt: skip
    payload = {
        "choices": [
            {"index": 1, "message": {"content": "aé"}, "logprobs": logprobs,
             "finish_reason": "length", "token_ids": [5, 6, 7]},
            {"index": 0, "message": {"content": None}, "finish_reason": "stop", "token_ids": []},
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3},
    }  # fmt: skip
    chunk = parse_response(payload, SamplingSpec(n=2, logprobs=1), chat=True)
    generation = fold([chunk], 2)
    assert generation.prompt_tokens == 11
    first, second = generation.samples
    assert (first.text, first.token_count, first.finish_reason) == ("", 0, "stop")
    assert (second.text, second.token_count, second.finish_reason) == ("aé", 3, "length")
    assert second.logprobs == [
        TokenLogprob("a", -0.1, (("a", -0.1),)),
        TokenLogprob("é", -0.3, ()),
    ], "top alternatives are cut to the k asked for"


def test_completion_logprobs_sort_alternatives_best_first() -> None:
    logprobs = {
        "tokens": [" up", " four"],
        "token_logprobs": [-6.6, -6.4],
        "top_logprobs": [{" up": -6.6, " dog": -5.7}, {" four": -6.4, " 6": -5.9}],
    }
    payload = {
        "choices": [{"index": 0, "text": " up four", "logprobs": logprobs, "finish_reason": None}]
    }
    chunk = parse_response(payload, SamplingSpec(logprobs=1), chat=False)
    (delta,) = chunk.deltas
    assert delta.token_count == 2, "counted from the logprobs when token_ids are absent"
    assert delta.logprobs == [
        TokenLogprob(" up", -6.6, ((" dog", -5.7),)),
        TokenLogprob(" four", -6.4, ((" 6", -5.9),)),
    ]


@pytest.mark.parametrize(
    ("texts", "total", "expected"),
    [(["abc"], 7, [7]), (["aaa", "a"], 8, [6, 2]), (["", ""], 4, [2, 2]), (["x"], 0, [0])],
)
def test_counts_without_token_ids_share_the_usage_total(
    texts: list[str], total: int, expected: list[int]
) -> None:
    payload = {
        "choices": [{"index": i, "text": t, "finish_reason": "stop"} for i, t in enumerate(texts)],
        "usage": {"prompt_tokens": 1, "completion_tokens": total},
    }
    chunk = parse_response(payload, SamplingSpec(n=len(texts)), chat=False)
    assert [d.token_count for d in chunk.deltas] == expected


async def test_sse_parsing_handles_split_reads_comments_and_unicode_line_separators() -> None:
    text = "a\u2028b\x85c"  # httpx's aiter_lines would cut the JSON here
    body = (
        f'data: {{"t": "{text}"}}\r\n\r\n'
        ": keep-alive\n\n"
        'data: {"x":\ndata: 1}\n\n'  # one event, two data lines
        "data: [DONE]\n\n"
    )
    raw = body.encode()
    pieces = [raw[i : i + 3] for i in range(0, len(raw), 3)]  # multi-byte chars split too
    assert await _events(pieces) == [f'{{"t": "{text}"}}', '{"x":\n1}']


async def test_sse_without_done_or_final_blank_line_still_yields_the_last_event() -> None:
    assert await _events([b"data: 1\n\ndata: 2"]) == ["1", "2"]


async def test_stream_merges_by_index_and_final_chunk_carries_late_usage() -> None:
    events: list[dict[str, Any] | str] = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        _delta(0, "a", token_ids=[1]),
        _delta(1, "x", token_ids=[2]),
        _delta(0, "b", "stop", token_ids=[3]),
        _delta(1, "", "length", token_ids=[4, 5]),
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5}},
        "[DONE]",
    ]
    chunks = await _chunks(events, SamplingSpec(n=2))
    assert len(chunks) == 4, "role-only and usage-only events carry no deltas"
    assert chunks[-1].prompt_tokens == 9
    generation = fold(chunks, 2)
    assert [(s.text, s.token_count, s.finish_reason) for s in generation.samples] == [
        ("ab", 2, "stop"),
        ("x", 3, "length"),
    ]


async def test_stream_counts_one_token_per_event_without_token_ids() -> None:
    chunks = await _chunks([_delta(0, "a"), _delta(0, "b", "stop")], SamplingSpec())
    assert fold(chunks, 1).samples[0].token_count == 2


@pytest.mark.parametrize(
    ("events", "status"),
    [
        ([_delta(0, "a"), {"error": {"message": "boom", "code": 500}}], 500),
        ([{"error": {"message": "bad", "type": "BadRequestError", "code": 400}}], 400),
        ([_delta(0, "a")], 502),
        (["{not json"], 502),
    ],
)
async def test_broken_streams_raise(events: list[dict[str, Any] | str], status: int) -> None:
    with pytest.raises(StreamBroken) as caught:
        await _chunks(events, SamplingSpec())
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("status", "kind", "http_status", "blamed"),
    [
        (400, InvalidRequest, 400, False),
        (422, InvalidRequest, 400, False),
        (429, Overloaded, 429, False),
        (401, UpstreamFailed, 502, False),
        (404, UpstreamFailed, 502, True),
        (500, UpstreamFailed, 502, True),
        (503, UpstreamFailed, 502, True),
        (504, UpstreamTimeout, 504, False),
    ],
)
def test_status_errors(status: int, kind: type, http_status: int, blamed: bool) -> None:
    body = {"error": {"message": "upstream says no", "param": "n", "code": status}}
    error, blame = status_error(status, body, retry_after="3")
    assert isinstance(error, kind) and error.status == http_status and blame == blamed
    if kind is InvalidRequest:
        assert (error.message, error.param) == ("upstream says no", "n")
    if kind is Overloaded:
        assert error.headers == {"Retry-After": "3"}


def test_transport_errors() -> None:
    timeout, blame = transport_error(httpx.ReadTimeout("slow"))
    assert (timeout.status, blame) == (504, False)
    reset, blame = transport_error(httpx.RemoteProtocolError("peer closed"))
    assert (reset.status, reset.code, blame) == (502, "upstream_error", True)
    assert reset.body()["error"]["type"] == "server_error"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"error": {"message": "m", "param": "p"}}, ("m", "p")),
        ({"detail": "fastapi style"}, ("fastapi style", None)),
        ({"error": "plain"}, ("plain", None)),
        ("text", ("text", None)),
    ],
)
def test_error_fields(payload: Any, expected: tuple[str, str | None]) -> None:
    assert error_fields(payload) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:1/", "http://h:1"),
        ("http://h:1/v1", "http://h:1"),
        (" http://h/v1/ ", "http://h"),
    ],
)
def test_base_url(url: str, expected: str) -> None:
    assert base_url(url) == expected


def test_pick_prefers_fewest_in_flight_then_round_robin() -> None:
    pool = ReplicaPool(["http://a", "http://b", "http://c", "http://a/v1"])
    assert [r.url for r in pool.replicas] == ["http://a", "http://b", "http://c"]
    for r in pool.replicas:
        r.healthy, r.model = True, "m"
    assert [pool.pick().url for _ in range(4)] == ["http://a", "http://b", "http://c", "http://a"]
    pool.replicas[1].in_flight = 0
    pool.replicas[0].in_flight = pool.replicas[2].in_flight = 2
    assert pool.pick().url == "http://b"
    assert pool.pick(exclude={"http://b"}).url in {"http://a", "http://c"}
    pool.mark_failed(pool.replicas[1], "reset")
    assert "http://b" not in {pool.pick().url for _ in range(6)}


def test_no_usable_replica_is_503_naming_each_state() -> None:
    pool = ReplicaPool(["http://a", "http://b"])
    pool.replicas[0].healthy = True  # healthy but its model is unknown: not usable
    pool.mark_failed(pool.replicas[1], "ConnectError")
    with pytest.raises(EngineUnavailable) as caught:
        pool.pick()
    assert caught.value.status == 503 and "2 configured" in caught.value.message
    assert pool.describe() == "http://a down; http://b down (ConnectError)"
    assert redact("http://user:secret@h:1") == "http://h:1", "logs carry no credentials"
