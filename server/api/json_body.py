"""A request body's JSON, parsed strictly, so no client input can reach the app as a 500.

Python's ``json`` module is lenient where a server must not be: it accepts ``NaN`` and
``Infinity`` (not JSON), turns ``1e400`` into an infinite float, recurses once per nesting level
(a deep enough body raises ``RecursionError``), decodes ``"\\ud800"`` into a lone surrogate that
no later encoder can write, and converts integers of any length. ``parse_json_body`` refuses
each of these with a 400 that says what and where (``param`` is the JSON path, dotted as in
validation errors), and leaves the rest to pydantic, whose strict mode then refuses wrong types.
Numbers follow JSON's data model rather than Python's: ``2.0`` is the integer 2.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from server.errors import InvalidRequest
from server.wire.text import LONE_SURROGATE, replace_lone_surrogates

# Deeper than any request this server accepts (a chat's text part is 5 levels down), shallow
# enough that nothing after the parser recurses near Python's limit.
MAX_DEPTH = 64
# Past int64 and uint64; longer integers are refused before Python converts them.
MAX_INT_DIGITS = 40
# A lone surrogate can only come from a \\uD800-\\uDFFF escape: strict UTF-8 decoding refuses
# encoded ones. Bodies without such an escape (nearly all) skip the search for them.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class _Refused:
    """A JSON value the parser stood in for, refused once its path is known."""

    what: str


class _Decoder(json.JSONDecoder):
    """``json``'s decoder with NaN, Infinity, out-of-range floats and overlong integers
    replaced by ``_Refused`` stand-ins (counted, so clean bodies skip the search for them)."""

    def __init__(self) -> None:
        super().__init__(
            parse_float=self._float, parse_int=self._int, parse_constant=self._constant
        )
        self.refused = 0

    def _stand_in(self, what: str) -> _Refused:
        self.refused += 1
        return _Refused(what)

    def _constant(self, name: str) -> _Refused:
        return self._stand_in(f"{name} is not valid JSON (JSON numbers are finite)")

    def _float(self, text: str) -> int | float | _Refused:
        value = float(text)
        if math.isinf(value):
            return self._stand_in(f"the number {text[:40]} is out of range")
        # JSON has one number type: 2.0 and 2e0 are the integer 2 (as JSON Schema says), so an
        # integer field takes them; a float field takes an int anyway.
        return int(value) if value.is_integer() else value

    def _int(self, text: str) -> int | _Refused:
        digits = len(text.lstrip("-"))
        if digits > MAX_INT_DIGITS:
            return self._stand_in(f"an integer of {digits} digits is out of range")
        return int(text)


def _line_column(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line} column {column}"


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")  # JSON on the wire is UTF-8 (RFC 8259); a BOM is ignored
    except UnicodeDecodeError as exc:
        where = _line_column(body[: exc.start].decode("utf-8", "replace"), exc.start)
        raise InvalidRequest(
            f"the request body is not valid UTF-8: byte 0x{body[exc.start]:02x} at {where}"
        ) from exc


class _Node:
    """A container met by the walk, with the way back to the root (paths are built only for
    the value that is refused)."""

    __slots__ = ("depth", "key", "parent", "value")

    def __init__(self, value: Any, depth: int, parent: _Node | None, key: str | int) -> None:
        self.value, self.depth, self.parent, self.key = value, depth, parent, key

    def refuse(self, key: str | int | None, problem: str) -> InvalidRequest:
        """The 400 for a problem at ``key`` of this container (or at the container itself)."""
        keys = [] if key is None else [str(key)]
        node: _Node | None = self
        while node is not None and node.parent is not None:
            keys.append(str(node.key))
            node = node.parent
        where = replace_lone_surrogates(".".join(reversed(keys))) or None
        return InvalidRequest(f"{where}: {problem}" if where else problem, param=where)


def _scalar_problem(value: Any, surrogates: bool) -> str | None:
    if isinstance(value, _Refused):
        return value.what
    if surrogates and isinstance(value, str) and LONE_SURROGATE.search(value):
        return "the text holds a lone surrogate (an unpaired \\ud800-\\udfff escape), not Unicode"
    return None


def _check(value: Any, *, scalars: bool, surrogates: bool) -> None:
    """Walk the containers iteratively: depth always; scalars and keys only when the text held
    a stand-in or a surrogate escape, so a clean body costs one pass over its containers."""
    root = _Node(value, 1, None, "")
    if scalars and (problem := _scalar_problem(value, surrogates)) is not None:
        raise root.refuse(None, problem)
    stack = [root] if isinstance(value, dict | list) else []
    while stack:
        node = stack.pop()
        if node.depth > MAX_DEPTH:
            raise InvalidRequest(f"the request body is nested deeper than {MAX_DEPTH} levels")
        items = node.value.items() if isinstance(node.value, dict) else enumerate(node.value)
        children = []
        for key, child in items:
            if surrogates and isinstance(key, str) and LONE_SURROGATE.search(key):
                raise node.refuse(key, "a key holds a lone surrogate, not Unicode")
            if isinstance(child, dict | list):
                children.append(_Node(child, node.depth + 1, node, key))
            elif scalars and (problem := _scalar_problem(child, surrogates)) is not None:
                raise node.refuse(key, problem)
        stack.extend(reversed(children))


def parse_json_body(body: bytes) -> Any:
    """The body's JSON value, or a 400 naming what in it is not valid JSON, nested too deep,
    out of range, or not Unicode (and where: ``param`` is its dotted path)."""
    text = _decode(body)
    decoder = _Decoder()
    try:
        value = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not valid JSON: {exc.msg} at {_line_column(text, exc.pos)}"
        ) from exc
    except RecursionError as exc:  # the C decoder's own depth limit, below ours in a deep stack
        raise InvalidRequest(f"the request body is nested deeper than {MAX_DEPTH} levels") from exc
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    _check(value, scalars=surrogates or decoder.refused > 0, surrogates=surrogates)
    return value
