"""Structured logging: one JSON object per line, extras as fields, secrets scrubbed.

Prompts and completions are never passed to a logger by Quorum; API keys (the clients' and the
upstreams') are additionally scrubbed from every formatted line, so a library that logs headers
at debug level cannot leak them either. A line logged while a request is served carries its
``request_id`` (``REQUEST_ID``, set by the observing middleware), so a bug's traceback can be
matched to the client's ``x-request-id``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from contextvars import ContextVar

REDACTED = "[redacted]"
REQUEST_ID: ContextVar[str | None] = ContextVar("quorum_request_id", default=None)
# Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per log line, with ``extra`` fields, and known secrets replaced."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self._scrub(record.getMessage()),
        }
        if (request_id := REQUEST_ID.get()) is not None:
            payload["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = (
                    value
                    if isinstance(value, int | float | bool | None)
                    else (self._scrub(str(value)))
                )
        if record.exc_info:
            payload["exception"] = self._scrub(self.formatException(record.exc_info))
        return self._scrub(json.dumps(payload))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Structured logs on stderr at the configured level; ``secrets`` never appear in them."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
