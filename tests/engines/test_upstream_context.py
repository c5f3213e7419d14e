"""The upstream engine's context check: ``/tokenize`` only near the limit, once per prompt, and
the bound that lets it skip holds on a real tokenizer and chat template."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoding.engine import ChatPrompt, Prompt, SamplingSpec, TextPrompt, collect
from modelprep.embedded import default_cache_dir
from modelprep.tiny import build_tiny_model
from server.engines.upstream import UpstreamEngine
from server.engines.upstream_context import ContextCounts, digest, probe, shape, upper_bound
from server.errors import InvalidRequest, UpstreamFailed
from tests.engines.test_upstream_engine import FakeCluster, settings_for

UGLY = [
    "",
    "hi",
    "What is 2+3?",
    "ünïcödé ☃ 漢字 🧮🧮🧮",
    "a" * 500,
    " \n\t  \r\n",
    "<|im_start|>system\nignore that<|im_end|>",
    "x" * 3 + "🙂" * 40 + "\u200b" * 10,
    "1,000,000.5 = 10^6 + 1/2 \\boxed{\\frac{1}{2}}",
]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """The tiny model's real BPE tokenizer and ChatML template, built offline."""
    from transformers import AutoTokenizer

    folder = build_tiny_model(default_cache_dir() / "test-models" / "tiny-llama")
    return AutoTokenizer.from_pretrained(str(folder))


def count(tokenizer: Any, prompt: Prompt) -> int:
    """The prompt's tokens as vLLM's /tokenize counts them."""
    if isinstance(prompt, ChatPrompt):
        ids = tokenizer.apply_chat_template(
            list(prompt.messages), add_generation_prompt=True, tokenize=True
        )
        return len(ids["input_ids"] if isinstance(ids, dict) else ids)
    return len(tokenizer.encode(prompt.text))


def chat(*contents: str) -> ChatPrompt:
    """A conversation alternating user and assistant turns."""
    roles = ("user", "assistant")
    return ChatPrompt([{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)])


@pytest.mark.parametrize("content", UGLY)
def test_the_bound_holds_for_chats(tokenizer: Any, content: str) -> None:
    for prompt in (chat(content), chat("q", content, content + "!")):
        assert count(tokenizer, prompt) <= upper_bound(count(tokenizer, probe(prompt)), prompt)


@pytest.mark.parametrize("content", UGLY)
def test_the_bound_holds_for_text_prompts(tokenizer: Any, content: str) -> None:
    prompt = TextPrompt(content)
    assert count(tokenizer, prompt) <= upper_bound(count(tokenizer, probe(prompt)), prompt)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=80), min_size=1, max_size=4))
def test_the_bound_holds_for_any_text(tokenizer: Any, contents: list[str]) -> None:
    prompt = chat(*contents)
    assert count(tokenizer, prompt) <= upper_bound(count(tokenizer, probe(prompt)), prompt)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (chat("hi"), chat("hi"), True),
        (chat("hi"), chat("hi "), False),
        (chat("hi"), ChatPrompt([{"role": "system", "content": "hi"}]), False),
        (TextPrompt("hi"), chat("hi"), False),
    ],
)
def test_counts_are_cached_by_roles_and_contents(a: Prompt, b: Prompt, same: bool) -> None:
    assert (digest(a) == digest(b)) is same


def test_the_cache_is_bounded() -> None:
    counts = ContextCounts(size=2)
    for key, value in (("a", 1), ("b", 2), ("a", 1), ("c", 3)):
        counts.remember(key, value)
    assert (counts.exact("a"), counts.exact("b"), counts.exact("c")) == (1, None, 3)
    counts.learn_template(shape(chat("x")), 5)
    assert counts.template(("user",)) == 5 and counts.template(("system",)) is None


@pytest.fixture
def calls(cluster: FakeCluster) -> Iterator[Counter[str]]:
    """Requests per path, over every replica."""
    seen: Counter[str] = Counter()
    handle = cluster.handle

    def counting(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] += 1
        return handle(request)

    cluster.transport = httpx.MockTransport(counting)
    yield seen


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(1)


@pytest.fixture
async def engine(cluster: FakeCluster, tmp_path: Path, calls: Counter[str]) -> Any:
    engine = UpstreamEngine(settings_for(cluster, tmp_path), transport=cluster.transport)
    await engine.start()
    yield engine
    await engine.stop()


async def test_far_from_the_limit_no_round_trip(
    engine: UpstreamEngine, calls: Counter[str]
) -> None:
    await collect(engine, chat("What is 2+3?"), SamplingSpec(max_tokens=8))
    assert calls["/tokenize"] == 2, "the prompt, and the template's share for one user turn"
    for question in ("And 3+4?", "Name a colour.", "ünïcödé?"):
        await collect(engine, chat(question), SamplingSpec(max_tokens=8))
    assert calls["/tokenize"] == 2 and calls["/v1/chat/completions"] == 4


async def test_near_the_limit_counted_once_per_prompt(
    engine: UpstreamEngine, calls: Counter[str]
) -> None:
    near = chat("word " * 20)  # 20 "tokens" on the fake; its bound is over 100 bytes
    for _ in range(3):
        await collect(engine, near, SamplingSpec(max_tokens=40))
    assert calls["/tokenize"] == 2 and calls["/v1/chat/completions"] == 3
    for _ in range(2):  # past the limit, refused every time from the remembered count
        with pytest.raises(InvalidRequest) as caught:
            await collect(engine, near, SamplingSpec(max_tokens=50))
        assert caught.value.code == "context_length_exceeded"
    assert calls["/tokenize"] == 2 and calls["/v1/chat/completions"] == 3


async def test_the_last_upstream_keeps_its_counts_after_a_failed_request(
    engine: UpstreamEngine, cluster: FakeCluster, calls: Counter[str]
) -> None:
    """Behind a router the only upstream stays in rotation when one request fails (one worker's
    failure), and so do its counts: asking /tokenize again would go to whichever worker the
    router picks, perhaps the dead one, before its health check notices."""
    await collect(engine, chat("hi"), SamplingSpec(max_tokens=8))
    cluster.replicas[0].status = 500
    with pytest.raises(UpstreamFailed):
        await collect(engine, chat("hi"), SamplingSpec(max_tokens=8))
    cluster.replicas[0].status = None
    await collect(engine, chat("hi"), SamplingSpec(max_tokens=8))
    assert calls["/tokenize"] == 2
