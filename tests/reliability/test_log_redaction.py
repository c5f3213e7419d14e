"""Secrets never reach a log line, at any level: the clients' API keys and the key Quorum sends
to its upstreams, even when a library logs request headers at debug level."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from server.cli import log_secrets
from server.engines.upstream import UpstreamEngine
from server.runtime.logging_setup import REDACTED, configure_logging
from tests.engines.test_upstream_engine import FakeCluster, settings_for
from tests.inprocess import serving

UPSTREAM_KEY = "sk-upstream-canary-5521"
CLIENT_KEY = "sk-client-canary-9034"
chatty = logging.getLogger("tests.chatty_library")


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The server's logging configured for the test, the test runner's restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


async def test_the_upstream_key_never_appears_in_a_log_line_at_debug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    cluster = FakeCluster(1)

    def logging_handler(request: httpx.Request) -> httpx.Response:
        # A library that logs every request's headers at debug level, as some do.
        chatty.debug("sending %s with headers %s", request.url, dict(request.headers))
        return cluster.handle(request)

    settings = settings_for(
        cluster,
        tmp_path,
        max_model_len=64,
        log_level="debug",
        upstream_api_key=SecretStr(UPSTREAM_KEY),
        api_keys=[SecretStr(CLIENT_KEY)],
    )
    configure_logging(settings.log_level, log_secrets(settings))
    engine = UpstreamEngine(settings, transport=httpx.MockTransport(logging_handler))
    async with serving(settings, engine) as (_, http, _client):
        response = await http.post(
            "/v1/chat/completions",
            json={"model": "quorum-name", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {CLIENT_KEY}"},
        )
        assert response.status_code == 200
        assert cluster.replicas[0].generations, "the request reached the upstream"
    logged = capsys.readouterr().err.splitlines()
    header_lines = [line for line in logged if "with headers" in line]
    assert header_lines, "the chatty library logged the upstream requests"
    assert all(f"Bearer {REDACTED}" in line for line in header_lines)
    for line in logged:
        assert UPSTREAM_KEY not in line
        assert CLIENT_KEY not in line
