"""Items 9 and 10: structured logs that never carry prompts, completions or keys; Prometheus
metrics by route, mode and status, with latency, queue depth, rejections and precise votes,
and no prompt text in any label."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from server.engines.scripted import ScriptedEngine
from server.runtime.logging_setup import JsonFormatter
from server.runtime.metrics import Metrics, observe_precise
from tests.inprocess import MODEL, serving
from tests.reliability.conftest import CHAT, MESSAGES, make_settings

CANARY = "canary-7f3a9c-zebra-quartz"
KEY = "sk-secret-canary-key-0042"


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_count_requests_by_route_mode_and_status(tmp_cache: Path) -> None:
    settings = make_settings(tmp_cache, max_inflight_samples=8)
    async with serving(settings, ScriptedEngine()) as (_, http, client):
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        await client.chat.completions.create(model=f"{MODEL}:creative", messages=MESSAGES, n=2)  # type: ignore[arg-type]
        await http.post("/v1/precise", json={"messages": [{"role": "user", "content": CANARY}]})
        await http.post(CHAT, json={"model": "nope", "messages": MESSAGES})
        await http.post(CHAT, content=b"{", headers={"content-type": "application/json"})
        await http.get(f"/v1/{CANARY}")
        scrape = await http.get("/metrics")
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert CANARY not in text, "no request text may become a label"
    found = samples_of(text)

    def requests(route: str, mode: str, status: str) -> float:
        labels = (("mode", mode), ("route", route), ("status", status))
        return found.get(("quorum_requests_total", labels), 0.0)

    assert requests(CHAT, "plain", "200") == 1
    assert requests(CHAT, "creative", "200") == 1
    assert requests("/v1/precise", "precise", "200") == 1
    assert found[("quorum_precise_samples_used_count", ())] == 1, (
        "the precise route records its vote"
    )
    assert requests(CHAT, "plain", "404") == 1
    assert requests(CHAT, "none", "400") == 1  # unparseable: no mode known
    assert requests("unmatched", "none", "404") == 1
    latency = ("quorum_request_duration_seconds_count", (("mode", "plain"), ("route", CHAT)))
    assert found[latency] == 2  # the 200 and the 404
    assert found[("quorum_admitted_samples", ())] == 0
    assert found[("quorum_admission_capacity_samples", ())] == 8
    assert found[("quorum_inflight_requests", ())] == 0
    assert found[("quorum_ready", ())] == 1


async def test_rejections_are_counted_by_reason(tmp_cache: Path) -> None:
    settings = make_settings(tmp_cache, api_keys=[SecretStr(KEY)], max_body_bytes=2048)
    async with serving(settings, ScriptedEngine()) as (_, http, _client):
        await http.post(CHAT, json={"model": MODEL, "messages": MESSAGES})
        await http.post(CHAT, content=b"x" * 4096, headers={"authorization": f"Bearer {KEY}"})
        text = (await http.get("/metrics")).text
    found = samples_of(text)
    assert found[("quorum_rejections_total", (("reason", "unauthenticated"),))] == 1
    assert found[("quorum_rejections_total", (("reason", "payload_too_large"),))] == 1
    assert found[("quorum_requests_total", (("mode", "none"), ("route", CHAT), ("status", "401")))]
    assert KEY not in text


def test_observe_precise_records_votes_of_the_current_request() -> None:
    metrics = Metrics()
    observe_precise(3, 0.5, False)  # outside a request: a no-op, never an error
    metrics.observe_precise(5, 0.8, False)
    metrics.observe_precise(4, None, True)
    found = samples_of(metrics.render().decode())
    assert found[("quorum_precise_samples_used_count", ())] == 2
    assert found[("quorum_precise_samples_used_sum", ())] == 9
    assert found[("quorum_precise_agreement_count", ())] == 1
    assert found[("quorum_precise_abstentions_total", ())] == 1


async def test_observe_precise_inside_a_request_reaches_the_apps_metrics(tmp_cache: Path) -> None:
    async with serving(make_settings(tmp_cache), ScriptedEngine()) as (app, http, _client):

        @app.get("/v1/test-vote")
        async def vote() -> dict[str, str]:
            observe_precise(6, 2 / 3, True)
            return {"ok": "yes"}

        assert (await http.get("/v1/test-vote")).status_code == 200
        found = samples_of((await http.get("/metrics")).text)
    assert found[("quorum_precise_samples_used_sum", ())] >= 6
    assert found[("quorum_precise_abstentions_total", ())] >= 1


async def test_logs_are_structured_and_never_carry_prompts_or_keys(
    tmp_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_cache, api_keys=[SecretStr(KEY)])
    formatter = JsonFormatter([KEY])
    headers = {"authorization": f"Bearer {KEY}", "x-request-id": "req-1"}
    canary_messages = [{"role": "user", "content": CANARY}]
    with caplog.at_level(logging.DEBUG):
        async with serving(settings, ScriptedEngine()) as (_, http, _client):
            ok = await http.post(
                CHAT, json={"model": MODEL, "messages": canary_messages}, headers=headers
            )
            assert CANARY in ok.text  # the echo engine answered with the canary
            await http.post(
                CHAT,
                json={"model": MODEL, "messages": canary_messages, "stream": True},
                headers=headers,
            )
            await http.post(CHAT, json={"model": CANARY, "messages": MESSAGES}, headers=headers)
            await http.post(
                CHAT, json={"model": MODEL}, headers={"authorization": "Bearer " + KEY[:-1]}
            )
    lines = [formatter.format(record) for record in caplog.records]
    at_info = [
        line
        for line, record in zip(lines, caplog.records, strict=True)
        if record.levelno >= logging.INFO
    ]
    assert not any(CANARY in line for line in at_info), "a prompt reached the logs"
    assert not any(KEY in line for line in lines), "a key reached the logs (any level)"
    assert not any(KEY[:-1] in line for line in lines), "a presented key reached the logs"
    access = [json.loads(line) for line in at_info if '"quorum.access"' in line]
    assert [entry["status"] for entry in access] == [200, 200, 404, 401]
    first = access[0]
    assert first["request_id"] == "req-1"
    assert first["route"] == CHAT and first["mode"] == "plain" and first["samples"] == 1
    assert isinstance(first["duration_ms"], float)


def test_the_formatter_scrubs_keys_even_when_a_library_logs_them() -> None:
    formatter = JsonFormatter([KEY])
    record = logging.LogRecord(
        "httpx", logging.DEBUG, __file__, 1, "sent headers %s", ({"authorization": KEY},), None
    )
    record.header = f"Bearer {KEY}"
    line = formatter.format(record)
    assert KEY not in line
    assert json.loads(line)["header"] == "Bearer [redacted]"
