"""Admission control over HTTP: read a request's weight in samples, admit it or refuse 429.

A request that would take the count past the cap is refused at once with 429, ``Retry-After``
and an OpenAI error body, rather than queued without bound; admitted requests keep their share
until their response has been sent in full (or their client went away). The weight is read from
the JSON body FastAPI has already parsed (``Request.json`` is cached), by an app-wide
dependency, so routes need no hook; the mode it sees also labels the request's metrics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from server.api.middleware.common import record_of
from server.errors import Overloaded
from server.runtime.admission import Admission
from server.runtime.settings import Settings

MODE_ROUTES = {"/v1/precise": "precise", "/v1/creative": "creative"}


def _positive_int(value: Any, default: int = 1) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return default


def request_mode(path: str, body: dict[str, Any]) -> str:
    """The mode a request asks for: by route, else by the model name's suffix."""
    if path in MODE_ROUTES:
        return MODE_ROUTES[path]
    model = body.get("model")
    if isinstance(model, str):
        suffix = model.rpartition(":")[2] if ":" in model else ""
        if suffix in ("creative", "precise"):
            return suffix
    return "plain"


def request_weight(path: str, body: dict[str, Any], settings: Settings) -> int:
    """Samples a request will ask the engine for, bounded by the server's caps (a request past
    them is refused with 400 later, by validation)."""
    if request_mode(path, body) == "precise":
        return min(_positive_int(body.get("samples")), settings.max_samples)
    n = _positive_int(body.get("n"))
    prompt = body.get("prompt")
    prompts = len(prompt) if path == "/v1/completions" and isinstance(prompt, list) else 1
    return min(n * max(prompts, 1), settings.max_n)


async def _json_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type:
        return {}
    try:
        body = await request.json()  # already parsed by FastAPI: a cached dict
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def admit(request: Request) -> AsyncIterator[None]:
    """App-wide dependency: reserve the request's samples, or refuse it with 429 at once."""
    path = str(request.scope["path"])
    if request.method != "POST" or not path.startswith("/v1/"):
        yield
        return
    admission: Admission = request.app.state.admission
    settings: Settings = request.app.state.quorum.settings
    body = await _json_body(request)
    weight = request_weight(path, body, settings)
    record = record_of(request.scope)
    if record is not None:
        record.mode = request_mode(path, body)
        record.samples = weight
    if not admission.try_acquire(weight):
        if record is not None:
            record.rejected = "overloaded"
        retry = str(settings.retry_after_s)
        raise Overloaded(
            f"The server is at capacity ({admission.capacity} samples running or queued); "
            f"retry after {retry} s.",
            headers={"Retry-After": retry},
        )
    try:
        yield
    finally:
        admission.release(weight)
