"""The route class of the inference routes: strict JSON in, and no bug answered as anything but
an ``InternalError``.

FastAPI parses a JSON body with ``json.loads`` and, for anything it did not expect, answers a
generic 400 (or a 500 for what escapes it). ``StrictJsonRoute`` parses the body first, with
``parse_json_body`` (bounded depth, no NaN, no lone surrogates), so every refusal names what is
wrong; FastAPI and the admission dependency then read the parsed value from the request. An
exception that is neither a Quorum error nor a validation error is a bug here: it is logged with
the request id and answered 500 ``internal_error``, inside the middleware, so the reply still
carries ``x-request-id`` and is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from server.api.json_body import parse_json_body
from server.errors import InternalError, QuorumError

log = logging.getLogger(__name__)
_EXPECTED = (QuorumError, RequestValidationError, HTTPException)


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI would parse a body of this content type as JSON."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class ParsedBodyRequest(Request):
    """A request whose body was read once and whose JSON is parsed strictly, once."""

    def __init__(self, scope: Scope, receive: Receive, body: bytes) -> None:
        super().__init__(scope, receive)
        self._raw = body
        self._parsed: Any = None
        self._is_parsed = False

    async def body(self) -> bytes:
        """The body as received."""
        return self._raw

    async def json(self) -> Any:
        """The body's JSON value (a 400 ``InvalidRequest`` if it is not acceptable JSON)."""
        if not self._is_parsed:
            self._parsed = parse_json_body(self._raw)
            self._is_parsed = True
        return self._parsed


class StrictJsonRoute(APIRoute):
    """An ``APIRoute`` that parses JSON bodies strictly and turns bugs into 500s it logs."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given a request whose JSON body is already parsed."""
        handle = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            body = await request.body()
            parsed = ParsedBodyRequest(request.scope, request.receive, body)
            try:
                if body and is_json(request.headers.get("content-type")):
                    await parsed.json()  # refused here, with its reason, not by FastAPI
                return await handle(parsed)
            except _EXPECTED:
                raise
            except Exception as exc:
                log.exception("unhandled error")  # with the request id (logging_setup)
                raise InternalError("internal server error") from exc

        return strict_handler
