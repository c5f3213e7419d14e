"""Server-sent events the way OpenAI streams them, with honest errors after the stream began.

Wire formatting only (no HTTP framework): the API layer wraps these strings in a response.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypeVar

from pydantic import BaseModel

from server.errors import InternalError, QuorumError
from server.wire.text import json_text

log = logging.getLogger(__name__)
T = TypeVar("T")

DONE = "data: [DONE]\n\n"


def event(payload: BaseModel | dict[str, Any]) -> str:
    """One ``data:`` event, valid UTF-8 JSON whatever the model wrote (``json_text``)."""
    return f"data: {json_text(payload)}\n\n"


async def primed(source: AsyncGenerator[T, None]) -> AsyncIterator[T]:
    """Pull the first item now, so errors before any output still get a proper HTTP status."""
    try:
        first = await anext(source)
    except StopAsyncIteration:
        first_items: list[T] = []
    else:
        first_items = [first]

    async def replay() -> AsyncIterator[T]:
        try:
            for item in first_items:
                yield item
            async for item in source:
                yield item
        finally:
            await source.aclose()

    return replay()


async def with_done(events: AsyncIterator[str]) -> AsyncIterator[str]:
    """Append ``[DONE]``; an error mid-stream becomes an SSE error event, then ``[DONE]``."""
    try:
        async for chunk in events:
            yield chunk
    except QuorumError as exc:
        yield event(exc.body())
    except Exception:
        log.exception("stream failed")  # a bug: the request id is on the line (logging_setup)
        yield event(InternalError("internal error while streaming").body())
    yield DONE
