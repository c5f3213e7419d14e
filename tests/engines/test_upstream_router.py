"""Upstreams that are not one vLLM server. A router over replicas (vllm-router): a failed request
is one worker's failure, not the router's, and the router's readiness, not its strict
``/health``, says whether it can serve. Ray Serve LLM: its ``/tokenize`` is not vLLM's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from decoding.engine import ChatPrompt, SamplingSpec, collect
from server.engines.upstream import UpstreamEngine
from server.errors import EngineUnavailable, InvalidRequest, UpstreamFailed
from tests.engines.test_upstream_engine import FakeCluster, FakeReplica, settings_for

CHAT = ChatPrompt(messages=[{"role": "user", "content": "two plus three"}])


class FakeRouter(FakeReplica):
    """vllm-router's health endpoints: ``/health`` is 503 while ANY worker is down,
    ``/readiness`` is 503 only while none is healthy."""

    workers_down: int = 0
    workers: int = 2

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.down and request.url.path == "/health" and self.workers_down:
            return httpx.Response(503, text='Unhealthy servers: ["http://10.0.0.2:8000"]')
        if not self.down and request.url.path == "/readiness":
            ready = self.workers_down < self.workers
            return httpx.Response(200 if ready else 503, json={"status": "ready"})
        return super().handle(request)


def one_router() -> FakeCluster:
    cluster = FakeCluster(0)
    cluster.replicas.append(FakeRouter(port=9000))
    return cluster


@pytest.fixture
async def router_engine(tmp_path: Path) -> AsyncIterator[tuple[UpstreamEngine, FakeRouter]]:
    cluster = one_router()
    settings = settings_for(cluster, tmp_path, upstream_health_path="/readiness")
    engine = UpstreamEngine(settings, transport=cluster.transport)
    await engine.start()
    router = cluster.replicas[0]
    assert isinstance(router, FakeRouter)
    yield engine, router
    await engine.stop()


@pytest.mark.parametrize("failure", ["status", "reset"])
async def test_the_only_upstream_stays_in_rotation_after_a_failed_request(
    router_engine: tuple[UpstreamEngine, FakeRouter], failure: str
) -> None:
    engine, router = router_engine
    if failure == "status":
        router.status = 502  # the router's worker died under this request
    else:
        router.reset_after = 1
    with pytest.raises(UpstreamFailed):
        [c async for c in engine.generate(CHAT, SamplingSpec(max_tokens=8), stream=True)]
    assert engine.pool.replicas[0].usable, "one worker failed, not the router"
    router.status = router.reset_after = None
    generation = await collect(engine, CHAT, SamplingSpec(max_tokens=8))
    assert generation.samples[0].text, "the next request is served"


async def test_an_unreachable_only_upstream_leaves_rotation(
    router_engine: tuple[UpstreamEngine, FakeRouter],
) -> None:
    engine, router = router_engine
    router.down = True  # the router itself is gone: nothing can be served through it
    with pytest.raises(EngineUnavailable):
        await collect(engine, CHAT, SamplingSpec(max_tokens=8))
    assert not engine.pool.replicas[0].usable
    router.down = False
    assert await engine.probe_all()


@pytest.mark.parametrize(
    ("health_path", "workers_down", "usable"),
    [
        ("/health", 0, True),
        ("/health", 1, False),  # the default path turns a half-healthy router away
        ("/readiness", 1, True),
        ("/readiness", 2, False),
    ],
)
async def test_the_health_path_decides_what_healthy_means(
    tmp_path: Path, health_path: str, workers_down: int, usable: bool
) -> None:
    cluster = one_router()
    router = cluster.replicas[0]
    assert isinstance(router, FakeRouter)
    settings = settings_for(cluster, tmp_path, upstream_health_path=health_path)
    engine = UpstreamEngine(settings, transport=cluster.transport)
    await engine.start()
    try:
        router.workers_down = workers_down
        assert await engine.probe_all() is usable
        last_error = engine.pool.replicas[0].last_error or ""
        assert usable or f"{health_path} answered 503" in last_error
    finally:
        await engine.stop()


class FakeRayServe(FakeReplica):
    """Ray Serve LLM's OpenAI app: /-/healthz for health, and a /tokenize that answers 400."""

    tokenize_calls: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(404, json={"detail": "Not Found"})
        if request.url.path == "/-/healthz":
            return httpx.Response(200, text="success")
        if request.url.path == "/tokenize":
            self.tokenize_calls += 1
            return httpx.Response(400, json={"error": {"message": "Field required: prompt"}})
        return super().handle(request)


@pytest.mark.parametrize("tokenize", [True, False])
async def test_an_upstream_without_vllms_tokenize_is_served_with_the_check_off(
    tmp_path: Path, tokenize: bool
) -> None:
    cluster = FakeCluster(0)
    ray = FakeRayServe(port=9000)
    cluster.replicas.append(ray)
    settings = settings_for(
        cluster, tmp_path, upstream_health_path="/-/healthz", upstream_tokenize=tokenize
    )
    engine = UpstreamEngine(settings, transport=cluster.transport)
    await engine.start()
    try:
        if tokenize:
            with pytest.raises(InvalidRequest, match="prompt"):
                await collect(engine, CHAT, SamplingSpec(max_tokens=8))
        else:
            generation = await collect(engine, CHAT, SamplingSpec(n=2, max_tokens=8))
            assert len(generation.samples) == 2
        assert ray.tokenize_calls == (1 if tokenize else 0)
    finally:
        await engine.stop()
