"""UpstreamEngine against fake vLLM replicas behind ``httpx.MockTransport``: no engine, fast."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from decoding.engine import ChatPrompt, SamplingSpec, TextPrompt, collect
from decoding.samples import fold
from server.engines.upstream import UpstreamEngine, resolve_upstream_settings
from server.errors import EngineUnavailable, InvalidRequest, UpstreamFailed, UpstreamTimeout
from server.runtime.settings import Settings

CHAT = ChatPrompt(messages=[{"role": "user", "content": "two plus three"}])
MODEL = "fake-model"


class SseBody(httpx.AsyncByteStream):
    """A streamed body that can hold, break, and record being closed by the client."""

    def __init__(self, replica: FakeReplica, events: list[str]) -> None:
        self.replica, self.events = replica, events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i, event in enumerate(self.events):
            if i == 1 and self.replica.gate is not None:
                await self.replica.gate.wait()
            if i == self.replica.reset_after:
                raise httpx.ReadError("connection reset by peer")
            yield f"data: {event}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        self.replica.closed += 1


@dataclass
class FakeReplica:
    """One vLLM OpenAI server's behaviour, enough for the engine's paths."""

    port: int
    model: str = MODEL
    down: bool = False
    status: int | None = None  # answer generation requests with this error status
    reset_after: int | None = None  # streamed: reset the connection before this event
    slow: bool = False  # non-streamed: time out
    tokenize: bool = True
    gate: asyncio.Event | None = None  # streamed: hold after the first event until set
    generations: list[dict[str, Any]] = field(default_factory=list)
    closed: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/health":
            return httpx.Response(200)
        if path == "/version":
            return httpx.Response(200, json={"version": "0.32.0"})
        if path == "/v1/models":
            card = {"id": self.model, "owned_by": "vllm", "max_model_len": 64}
            return httpx.Response(200, json={"data": [card]})
        body = json.loads(request.content)
        if path == "/tokenize":
            if not self.tokenize:
                return httpx.Response(404, json={"detail": "Not Found"})
            words = " ".join(str(m["content"]) for m in body.get("messages", [])) or body["prompt"]
            return httpx.Response(200, json={"count": len(words.split()), "max_model_len": 64})
        self.generations.append(body)
        if self.status is not None:
            error = {"message": f"upstream {self.status}", "param": "n", "code": self.status}
            return httpx.Response(self.status, json={"error": error})
        if self.slow:
            raise httpx.ReadTimeout("timed out", request=request)
        return self._generation(body, chat=path.endswith("chat/completions"))

    def _generation(self, body: dict[str, Any], *, chat: bool) -> httpx.Response:
        n, limit = body["n"], body["max_tokens"]
        texts = [[f"r{self.port}", f" s{i}", " ok"][:limit] for i in range(n)]
        finish = "length" if limit < 3 else "stop"
        usage = {"prompt_tokens": 4, "completion_tokens": sum(len(t) for t in texts)}

        def choice(i: int, words: list[str], reason: str | None) -> dict[str, Any]:
            text = "".join(words)
            part = {"message" if not body["stream"] else "delta": {"content": text}}
            return {"index": i, **(part if chat else {"text": text}), "finish_reason": reason,
                    "token_ids": list(range(len(words)))}  # fmt: skip

        if not body["stream"]:
            choices = [choice(i, words, finish) for i, words in enumerate(texts)]
            return httpx.Response(200, json={"choices": choices, "usage": usage})
        events = [
            json.dumps({"choices": [choice(i, [w], finish if k == len(words) - 1 else None)],
                        "usage": {"prompt_tokens": 4}})
            for k in range(3) for i, words in enumerate(texts) for w in words[k : k + 1]
        ]  # fmt: skip
        events.append(json.dumps({"choices": [], "usage": usage}))
        return httpx.Response(200, stream=SseBody(self, events))


class FakeCluster:
    """Routes each request to the fake replica on its port."""

    def __init__(self, count: int) -> None:
        self.replicas = [FakeReplica(port=9000 + i) for i in range(count)]
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        return self.replicas[(request.url.port or 0) - 9000].handle(request)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{r.port}/v1" for r in self.replicas]

    def served(self) -> list[int]:
        return [len(r.generations) for r in self.replicas]


def settings_for(cluster: FakeCluster, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        upstreams=cluster.urls,
        served_name="quorum-name",
        cache_dir=tmp_path,
        upstream_health_interval_s=3600,  # tests probe by hand
        upstream_start_timeout_s=0,
        **extra,
    )


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(2)


@pytest.fixture
async def engine(cluster: FakeCluster, tmp_path: Path) -> AsyncIterator[UpstreamEngine]:
    upstream = UpstreamEngine(settings_for(cluster, tmp_path), transport=cluster.transport)
    await upstream.start()
    yield upstream
    await upstream.stop()


async def test_start_learns_the_model_context_and_version(engine: UpstreamEngine) -> None:
    info = engine.info
    assert (info.model, info.max_model_len, info.engine) == (MODEL, 64, "upstream")
    assert info.version == "vllm 0.32.0"
    assert all(r.usable for r in engine.pool.replicas)


async def test_n_samples_are_one_request_to_one_replica(
    engine: UpstreamEngine, cluster: FakeCluster
) -> None:
    generation = await collect(engine, CHAT, SamplingSpec(n=4, seed=3, max_tokens=8))
    assert cluster.served() in ([1, 0], [0, 1])
    (body,) = [b for r in cluster.replicas for b in r.generations]
    assert (body["model"], body["n"], body["seed"]) == (MODEL, 4, 3)
    assert [s.text.split()[1] for s in generation.samples] == ["s0", "s1", "s2", "s3"]
    assert generation.prompt_tokens == 4 and generation.completion_tokens == 12


async def test_requests_spread_across_replicas(
    engine: UpstreamEngine, cluster: FakeCluster
) -> None:
    for _ in range(4):
        await collect(engine, TextPrompt("a b"), SamplingSpec(max_tokens=8))
    assert cluster.served() == [2, 2]


async def test_streamed_samples_merge_and_count(engine: UpstreamEngine) -> None:
    spec = SamplingSpec(n=2, max_tokens=8)
    chunks = [c async for c in engine.generate(CHAT, spec, stream=True)]
    assert len(chunks) == 6, "one chunk per upstream delta"
    samples = fold(chunks, 2).samples
    assert [(s.text.split()[1:], s.token_count, s.finish_reason) for s in samples] == [
        (["s0", "ok"], 3, "stop"),
        (["s1", "ok"], 3, "stop"),
    ]


async def test_unreachable_replica_is_skipped_and_recovers_after_a_probe(
    engine: UpstreamEngine, cluster: FakeCluster
) -> None:
    cluster.replicas[0].down = True
    for _ in range(3):
        await collect(engine, CHAT, SamplingSpec(max_tokens=8))
    assert cluster.served() == [0, 3], "refused before sending: retried on the other replica"
    assert not engine.pool.replicas[0].healthy
    cluster.replicas[0].down = False
    assert await engine.probe_all()
    await collect(engine, CHAT, SamplingSpec(max_tokens=8))
    await collect(engine, CHAT, SamplingSpec(max_tokens=8))
    assert cluster.served()[0] >= 1, "back in rotation after a good probe"


async def test_all_replicas_down_is_503(engine: UpstreamEngine, cluster: FakeCluster) -> None:
    for replica in cluster.replicas:
        replica.down = True
    with pytest.raises(EngineUnavailable) as caught:
        await collect(engine, CHAT, SamplingSpec(max_tokens=8))
    assert caught.value.status == 503 and "2 configured" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_5xx_is_502_and_takes_the_replica_out(
    engine: UpstreamEngine, cluster: FakeCluster, stream: bool
) -> None:
    cluster.replicas[0].status = 500
    with pytest.raises(UpstreamFailed) as caught:
        [c async for c in engine.generate(CHAT, SamplingSpec(max_tokens=8), stream=stream)]
    assert caught.value.status == 502 and "upstream 500" in caught.value.message
    await collect(engine, CHAT, SamplingSpec(max_tokens=8))
    assert cluster.served() == [1, 1], "failed once, not replayed; next request elsewhere"


async def test_upstream_400_passes_its_message_and_keeps_the_replica(
    engine: UpstreamEngine, cluster: FakeCluster
) -> None:
    cluster.replicas[0].status = 400
    with pytest.raises(InvalidRequest) as caught:
        await collect(engine, CHAT, SamplingSpec(max_tokens=8))
    assert (caught.value.message, caught.value.param) == ("upstream 400", "n")
    assert engine.pool.replicas[0].usable


async def test_reset_mid_stream_is_502_after_the_first_delta(
    engine: UpstreamEngine, cluster: FakeCluster
) -> None:
    cluster.replicas[0].reset_after = 1
    received = []
    with pytest.raises(UpstreamFailed):
        async for chunk in engine.generate(CHAT, SamplingSpec(max_tokens=8), stream=True):
            received.append(chunk)
    assert len(received) == 1 and not engine.pool.replicas[0].healthy
    assert engine.pool.replicas[0].in_flight == 0


async def test_read_timeout_is_504(engine: UpstreamEngine, cluster: FakeCluster) -> None:
    cluster.replicas[0].slow = True
    with pytest.raises(UpstreamTimeout) as caught:
        await collect(engine, CHAT, SamplingSpec(max_tokens=8))
    assert caught.value.status == 504


async def test_context_overflow_is_checked_with_tokenize(
    engine: UpstreamEngine, cluster: FakeCluster
) -> None:
    long = ChatPrompt(messages=[{"role": "user", "content": "word " * 40}])
    with pytest.raises(InvalidRequest) as caught:
        await collect(engine, long, SamplingSpec(max_tokens=30))
    assert (caught.value.param, caught.value.code) == ("max_tokens", "context_length_exceeded")
    assert "64" in caught.value.message and cluster.served() == [0, 0]
    for replica in cluster.replicas:
        replica.tokenize = False  # an upstream without /tokenize enforces its own limits
    await collect(engine, long, SamplingSpec(max_tokens=30))
    assert sum(cluster.served()) == 1


async def test_closing_the_stream_closes_the_upstream_response(
    engine: UpstreamEngine, cluster: FakeCluster
) -> None:
    cluster.replicas[0].gate = asyncio.Event()  # never set: the upstream keeps generating
    stream = engine.generate(CHAT, SamplingSpec(max_tokens=8), stream=True)
    assert isinstance(stream, AsyncGenerator)
    first = await anext(stream)
    assert first.deltas and engine.pool.replicas[0].in_flight == 1
    await stream.aclose()  # what the server does when its client disconnects
    assert cluster.replicas[0].closed == 1, "the upstream connection is closed: vLLM aborts"
    assert engine.pool.replicas[0].in_flight == 0


async def test_cancelling_a_waiting_stream_closes_the_upstream_response(
    engine: UpstreamEngine, cluster: FakeCluster
) -> None:
    cluster.replicas[0].gate = asyncio.Event()
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in engine.generate(CHAT, SamplingSpec(max_tokens=8), stream=True):
            started.set()  # the next read waits on the gate, like a slow generation

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()  # what uvicorn does to the handler when its client goes away
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cluster.replicas[0].closed == 1 and engine.pool.replicas[0].in_flight == 0


async def test_a_replica_serving_another_model_stays_out(tmp_path: Path) -> None:
    cluster = FakeCluster(2)
    cluster.replicas[1].model = "other-model"
    engine = UpstreamEngine(settings_for(cluster, tmp_path), transport=cluster.transport)
    await engine.start()
    try:
        assert [r.usable for r in engine.pool.replicas] == [True, False]
        assert "other-model" in (engine.pool.replicas[1].last_error or "")
    finally:
        await engine.stop()


async def test_start_fails_when_no_replica_answers(tmp_path: Path) -> None:
    cluster = FakeCluster(1)
    cluster.replicas[0].down = True
    engine = UpstreamEngine(settings_for(cluster, tmp_path), transport=cluster.transport)
    with pytest.raises(EngineUnavailable):
        await engine.start()


async def test_generate_before_start_is_503(cluster: FakeCluster, tmp_path: Path) -> None:
    engine = UpstreamEngine(settings_for(cluster, tmp_path), transport=cluster.transport)
    with pytest.raises(EngineUnavailable):
        await collect(engine, CHAT, SamplingSpec(max_tokens=8))


async def test_settings_take_name_and_context_from_the_upstream(
    cluster: FakeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = UpstreamEngine.__init__

    def with_fake_transport(self: UpstreamEngine, settings: Settings, **_: Any) -> None:
        original(self, settings, transport=cluster.transport)

    monkeypatch.setattr(UpstreamEngine, "__init__", with_fake_transport)
    unnamed = Settings(upstreams=cluster.urls, cache_dir=tmp_path, upstream_start_timeout_s=0)
    resolved = await resolve_upstream_settings(unnamed)
    assert (resolved.model_name, resolved.max_model_len) == (MODEL, 64)
    named = settings_for(cluster, tmp_path, max_model_len=32)
    for replica in cluster.replicas:
        replica.down = True  # a name and a context given: the upstreams are not even asked
    kept = await resolve_upstream_settings(named)
    assert (kept.model_name, kept.max_model_len) == ("quorum-name", 32)
    for replica in cluster.replicas:
        replica.down = False
    cluster.replicas[0].model = cluster.replicas[1].model = "ollama:tag"
    with pytest.raises(ValueError, match="served-name"):
        await resolve_upstream_settings(unnamed)
