"""Quorum in front of two real vLLM servers (``--upstream``): the in-process engine's protocol
behaviour, precise mode as one ``n=N`` request on one replica, client disconnects that abort the
upstream request (one ``n=N`` request, and adaptive mode's N streams), and a replica killed
mid-run (last, since it restarts that replica)."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import httpx
import openai
import pytest

import tests.e2e.test_tiny_model as tiny_checks
from tests.e2e.conftest import TINY
from tests.e2e.server_process import ServerProcess
from tests.e2e.upstream_fixtures import (  # noqa: F401 (the fixtures this module uses)
    VllmReplica,
    upstream_server_fixture,
    vllm_replicas_fixture,
)

pytestmark = pytest.mark.engine
MESSAGES: list[Any] = [{"role": "user", "content": "hello there"}]
SUCCESS = "vllm:request_success_total"
GENERATED = "vllm:generation_tokens_total"
FIRST_TOKENS = "vllm:time_to_first_token_seconds_count"  # one per request, at its first token
# The in-process engine's end-to-end checks, run unchanged against the upstream engine.
TINY_CHECKS = sorted(
    (f for name, f in vars(tiny_checks).items() if name.startswith("test_") and callable(f)),
    key=lambda f: f.__code__.co_firstlineno,
)


@pytest.fixture
def client(upstream_server: ServerProcess) -> Iterator[openai.OpenAI]:
    """The official client on Quorum-over-upstreams."""
    with openai.OpenAI(
        api_key="unused", base_url=f"{upstream_server.base_url}/v1", max_retries=0, timeout=120
    ) as official:
        yield official


def served(replicas: list[VllmReplica]) -> list[float]:
    """Finished sequences per replica (vLLM counts each of n samples)."""
    return [r.metric(SUCCESS) for r in replicas]


@pytest.mark.parametrize("check", TINY_CHECKS, ids=lambda f: f.__name__.removeprefix("test_"))
def test_same_behaviour_as_the_in_process_engine(
    check: Callable[..., None], client: openai.OpenAI, upstream_server: ServerProcess
) -> None:
    available = {"tiny": client, "tiny_server": upstream_server}
    check(**{name: available[name] for name in inspect.signature(check).parameters})


def test_precise_samples_are_one_request_on_one_replica(
    upstream_server: ServerProcess, vllm_replicas: list[VllmReplica]
) -> None:
    before = served(vllm_replicas)
    response = httpx.post(
        f"{upstream_server.base_url}/v1/precise",
        json={"messages": MESSAGES, "samples": 4, "seed": 7, "max_tokens": 12},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["samples_used"] == 4 and len(result["samples"]) == 4
    receipt = result["receipt"]
    assert (receipt["engine"], receipt["engine_version"]) == ("upstream", "vllm 0.32.0")
    added = sorted(a - b for a, b in zip(served(vllm_replicas), before, strict=True))
    assert added == [0, 4], "all four samples on one replica (one n=4 request)"


def test_precise_alias_through_the_client(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model=f"{TINY}:precise", messages=MESSAGES, max_tokens=8, seed=3
    )
    assert len(result.choices) == 1 and result.choices[0].finish_reason in ("stop", "length")


def test_client_disconnect_aborts_the_upstream_request(
    upstream_server: ServerProcess, vllm_replicas: list[VllmReplica], client: openai.OpenAI
) -> None:
    body = {"model": TINY, "messages": MESSAGES, "max_tokens": 480, "n": 4, "seed": 1}
    whole = client.chat.completions.create(**body)
    assert whole.usage is not None and whole.usage.completion_tokens > 1000, "long samples"
    generated = sum(r.metric(GENERATED) for r in vllm_replicas)
    url = f"{upstream_server.base_url}/v1/chat/completions"
    with httpx.stream("POST", url, json={**body, "stream": True}, timeout=60) as response:
        assert response.status_code == 200  # the head comes with the first token: hang up
    for _ in range(100):  # bounded poll until the replicas are idle
        if sum(r.metric("vllm:num_requests_running") for r in vllm_replicas) == 0:
            break
        time.sleep(0.2)
    added = sum(r.metric(GENERATED) for r in vllm_replicas) - generated
    full = whole.usage.completion_tokens
    print(f"\n[e2e] disconnect at the first token: the upstream generated {added:.0f} of {full}")
    assert added < full / 2, "closing the client closed the upstream request, which vLLM aborted"


def test_adaptive_samples_stop_on_the_replicas_when_the_vote_is_dropped(
    upstream_server: ServerProcess, vllm_replicas: list[VllmReplica]
) -> None:
    """Adaptive mode draws each sample as its own upstream stream; cutting samples (an early
    stop, a pruned trace, a client gone) closes those streams, and the replicas stop."""
    url = f"{upstream_server.base_url}/v1/precise"
    body = {"messages": MESSAGES, "samples": 4, "max_tokens": 480, "seed": 1, "temperature": 1.0}
    whole = httpx.post(url, json=body, timeout=120)
    assert whole.status_code == 200, whole.text
    full = whole.json()["usage"]["completion_tokens"]
    # The adaptive samples are these (sample i seeded seed + i): none ends by itself while a
    # hang-up travels to the replicas.
    assert min(s["tokens"] for s in whole.json()["samples"]) > 300, "long samples"
    adaptive = {**body, "adaptive": True, "stream": True}
    with httpx.stream("POST", url, json=adaptive, timeout=60) as response:
        assert response.status_code == 200
        lines = response.iter_lines()  # held: a dropped line iterator closes the connection
        first = next(line for line in lines if line.startswith("data:"))
        assert '"sampling"' in first
        # Hang up once samples are on a replica: the moment whose abort failed when the suite
        # ran slowly (a hang-up before the requests are sent has nothing to close).
        for _ in range(100):  # bounded poll
            in_flight = sum(_in_flight(r) for r in vllm_replicas)
            if in_flight >= 1:
                break
            time.sleep(0.1)
        ended = _ran_to_the_end(vllm_replicas)  # none may, from now on
        generated = sum(r.metric(GENERATED) for r in vllm_replicas)
    for _ in range(100):  # bounded poll until the replicas are idle (queued requests count)
        if sum(_in_flight(r) for r in vllm_replicas) == 0:
            break
        time.sleep(0.2)
    ended = _ran_to_the_end(vllm_replicas) - ended
    added = sum(r.metric(GENERATED) for r in vllm_replicas) - generated
    # Not asserted: on a loaded machine a replica's API server notices the close, and counts
    # tokens, seconds late (758 tokens were counted after a hang-up that aborted every sample).
    print(f"\n[e2e] adaptive vote dropped with {in_flight:.0f} samples on the replicas: "
          f"{ended:.0f} samples ran to their end after it; {added:.0f} tokens counted after it "
          f"(a whole vote: {full})")  # fmt: skip
    assert in_flight >= 1, "samples were on the replicas when the client left"
    assert sum(_in_flight(r) for r in vllm_replicas) == 0, "the replicas stopped every sample"
    assert ended == 0, "each sample's stream was closed and vLLM aborted it"


def _ran_to_the_end(replicas: list[VllmReplica]) -> float:
    """Sequences the replicas finished by a stop or their length (vLLM does not count the ones
    a client aborted)."""
    return sum(
        r.metric(SUCCESS, finished_reason=why) for r in replicas for why in ("stop", "length")
    )


def _long_request(base_url: str, seed: int, stream: bool, started: threading.Semaphore) -> Any:
    """One long generation; returns None on success, else the client's exception."""
    client = openai.OpenAI(api_key="unused", base_url=f"{base_url}/v1", max_retries=0, timeout=120)
    signalled = False
    try:
        if not stream:
            started.release()  # in flight once sent; the head comes only at the end
            signalled = True
            client.chat.completions.create(
                model=TINY, messages=MESSAGES, max_tokens=480, seed=seed, temperature=1.0
            )
            return None
        chunks = client.chat.completions.create(
            model=TINY, messages=MESSAGES, max_tokens=480, seed=seed, temperature=1.0, stream=True
        )
        for chunk in chunks:
            if not signalled and chunk.choices and chunk.choices[0].delta.content:
                started.release()
                signalled = True
        return None
    except openai.APIError as exc:
        return exc
    finally:
        client.close()
        if not signalled:
            started.release()


def _in_flight(replica: VllmReplica) -> float:
    """Requests a replica is running or queueing."""
    return replica.metric("vllm:num_requests_running") + replica.metric("vllm:num_requests_waiting")


def _kill_the_busiest(
    replicas: list[VllmReplica], futures: list[Future[Any]]
) -> tuple[VllmReplica, VllmReplica, float]:
    """Kill the replica busiest right now, once one is seen serving: (victim, survivor, its
    requests in flight). Samples end early at random and the replicas' gauges trail the
    clients, so one look can see both idle; the poll is bounded by the requests' own end."""
    deadline = time.monotonic() + 120
    while True:
        loads = [_in_flight(r) for r in replicas]
        if max(loads) >= 1:
            break
        pending = [f for f in futures if not f.done()]
        assert pending, "every request ended before a replica was seen serving"
        assert time.monotonic() < deadline, "no replica was seen serving within 120 s"
        wait(pending, timeout=0.05, return_when=FIRST_COMPLETED)  # a bounded poll, not a sync
    victim = replicas[loads.index(max(loads))]
    survivor = replicas[1 - replicas.index(victim)]
    victim.kill()
    return victim, survivor, max(loads)


def _is_replica_failure(error: Any) -> bool:
    """An OpenAI error body from Quorum saying the upstream failed (502) or none is left (503)."""
    body = getattr(error, "body", None)
    status = getattr(error, "status_code", None)
    code = body.get("code") if isinstance(body, dict) else None
    return code in ("upstream_error", "engine_unavailable") and status in (None, 502, 503)


def test_killed_replica_fails_only_its_requests_then_recovers(
    upstream_server: ServerProcess, vllm_replicas: list[VllmReplica], client: openai.OpenAI
) -> None:
    started = threading.Semaphore(0)
    plan = [(seed, seed % 4 != 3) for seed in range(8)]  # six streamed, two whole
    with ThreadPoolExecutor(len(plan)) as pool:
        futures = [
            pool.submit(_long_request, upstream_server.base_url, seed, stream, started)
            for seed, stream in plan
        ]
        for _ in plan:
            assert started.acquire(timeout=120), "requests did not start"
        victim, survivor, in_flight = _kill_the_busiest(vllm_replicas, futures)
        outcomes = [f.result() for f in futures]
    failures = [o for o in outcomes if o is not None]
    print(f"\n[e2e] killed a replica with {in_flight:.0f} requests in flight: "
          f"{len(failures)} of {len(plan)} failed: {[repr(f)[:80] for f in failures]}")  # fmt: skip
    assert in_flight >= 1, "the victim was serving when it died"
    assert 1 <= len(failures) <= in_flight, "only the victim's in-flight requests fail"
    assert all(_is_replica_failure(f) for f in failures), failures

    # Later requests succeed on the survivor, in every shape.
    before = survivor.metric(SUCCESS)
    whole = client.chat.completions.create(model=TINY, messages=MESSAGES, max_tokens=8)
    assert whole.choices[0].message.content is not None
    streamed = client.chat.completions.create(
        model=TINY, messages=MESSAGES, max_tokens=8, stream=True
    )
    assert sum(1 for c in streamed if c.choices and c.choices[0].finish_reason) == 1
    text = client.completions.create(model=TINY, prompt="one two", max_tokens=4)
    assert text.choices[0].finish_reason in ("stop", "length")
    voted = httpx.post(
        f"{upstream_server.base_url}/v1/precise",
        json={"messages": MESSAGES, "samples": 3, "max_tokens": 6},
        timeout=120,
    )
    assert voted.status_code == 200 and voted.json()["samples_used"] == 3, voted.text
    assert survivor.metric(SUCCESS) - before == 3 + 3, "every sample on the survivor"
    assert httpx.get(f"{upstream_server.base_url}/health").json() == {"status": "ok"}

    # The health checker brings the restarted replica back into rotation.
    restart_s = victim.restart()
    print(f"[e2e] replica restarted in {restart_s:.1f} s")
    for _ in range(60):
        client.chat.completions.create(model=TINY, messages=MESSAGES, max_tokens=2)
        if victim.metric(SUCCESS) > 0:
            break
        time.sleep(0.5)  # bounded poll for the 1 s health probe
    assert victim.metric(SUCCESS) > 0, "the restarted replica serves again"
