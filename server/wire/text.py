"""Text that can go on the wire: a Python ``str`` may hold lone surrogates (``"\\ud800"``, from a
JSON escape or a broken byte sequence), which are neither Unicode scalar values nor encodable
as UTF-8. Client input holding one is refused; anything the server sends has them replaced, so
model output (an upstream's JSON may carry such an escape) cannot turn a response into a 500.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def replace_lone_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it encodes as UTF-8."""
    return LONE_SURROGATE.sub(REPLACEMENT, text)


def _replaced(value: Any) -> Any:
    """A JSON-shaped value (our own response, a few levels deep) with its text made valid."""
    if isinstance(value, str):
        return replace_lone_surrogates(value)
    if isinstance(value, dict):
        return {_replaced(key): _replaced(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_replaced(item) for item in value]
    return value


def json_text(payload: BaseModel | dict[str, Any]) -> str:
    """Compact JSON for a wire model or a dict: non-finite floats as null (as pydantic does),
    lone surrogates as U+FFFD. The fast path is pydantic's; only text it cannot encode pays
    for the replacing copy."""
    try:
        if isinstance(payload, BaseModel):
            return payload.model_dump_json()
        return to_json(payload).decode()
    except PydanticSerializationError:
        data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
        return to_json(_replaced(data)).decode()
