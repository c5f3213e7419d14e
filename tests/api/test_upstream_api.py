"""The OpenAI API on the upstream engine, in-process, through the official client: a replica's
failure reaches clients as an OpenAI error body with 502/503, and the server keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from server.engines.upstream import UpstreamEngine
from tests.engines.test_upstream_engine import MODEL, FakeCluster, settings_for
from tests.inprocess import serving

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(2)


@pytest.fixture
async def client(cluster: FakeCluster, tmp_path: Path) -> AsyncIterator[openai.AsyncOpenAI]:
    settings = settings_for(cluster, tmp_path, max_model_len=64)
    async with serving(settings, UpstreamEngine(settings, transport=cluster.transport)) as running:
        yield running.client


async def test_chat_and_completions_through_the_upstream(client: openai.AsyncOpenAI) -> None:
    chat = await client.chat.completions.create(
        model="quorum-name", messages=MESSAGES, n=2, max_tokens=8, seed=1
    )
    assert [c.index for c in chat.choices] == [0, 1]
    assert chat.usage is not None and chat.usage.completion_tokens == 6
    assert chat.system_fingerprint is not None and "upstream-vllm-0.32.0" in chat.system_fingerprint
    text = await client.completions.create(model="quorum-name", prompt="a b", max_tokens=2)
    assert text.choices[0].finish_reason == "length"
    assert text.usage is not None and text.usage.completion_tokens == 2


async def test_failed_replica_is_502_then_the_other_serves(
    client: openai.AsyncOpenAI, cluster: FakeCluster
) -> None:
    cluster.replicas[0].status = 500
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="quorum-name", messages=MESSAGES, max_tokens=4)
    assert caught.value.status_code == 502
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "upstream_error"
    for _ in range(3):
        await client.chat.completions.create(model="quorum-name", messages=MESSAGES, max_tokens=4)
    assert cluster.served() == [1, 3]


async def test_reset_mid_stream_is_an_error_event(
    client: openai.AsyncOpenAI, cluster: FakeCluster
) -> None:
    cluster.replicas[0].reset_after = 1
    stream = await client.chat.completions.create(
        model="quorum-name", messages=MESSAGES, max_tokens=4, stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        async for _ in stream:
            pass
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "upstream_error"


async def test_no_healthy_replica_is_503(client: openai.AsyncOpenAI, cluster: FakeCluster) -> None:
    for replica in cluster.replicas:
        replica.down = True
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="quorum-name", messages=MESSAGES, max_tokens=4)
    assert caught.value.status_code == 503


async def test_upstream_model_name_is_not_the_clients(
    client: openai.AsyncOpenAI, cluster: FakeCluster
) -> None:
    await client.chat.completions.create(model="quorum-name", messages=MESSAGES, max_tokens=4)
    (body,) = [b for r in cluster.replicas for b in r.generations]
    assert body["model"] == MODEL, "Quorum's served name maps to the upstream's model id"


async def test_ready_is_503_while_no_replica_is_healthy(tmp_path: Path) -> None:
    cluster = FakeCluster(2)
    settings = settings_for(cluster, tmp_path, max_model_len=64)
    engine = UpstreamEngine(settings, transport=cluster.transport)
    async with serving(settings, engine) as (_, http, _client):
        assert (await http.get("/ready")).status_code == 200
        for replica in cluster.replicas:
            replica.down = True
        await engine.probe_all()  # what the health loop does every interval
        ready = await http.get("/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "engine_unavailable"}
        assert (await http.get("/health")).status_code == 200  # alive: nothing to restart
        assert "quorum_ready 0.0" in (await http.get("/metrics")).text
        cluster.replicas[1].down = False
        await engine.probe_all()
        assert (await http.get("/ready")).status_code == 200
        assert "quorum_ready 1.0" in (await http.get("/metrics")).text
