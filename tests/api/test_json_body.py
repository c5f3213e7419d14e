"""``parse_json_body``: what Python's json accepts and a server must not, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from server.api.json_body import MAX_DEPTH, parse_json_body
from server.errors import InvalidRequest


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": 1, "b": [true, null, "x"]}', {"a": 1, "b": [True, None, "x"]}),
        (b'{"t": 0.5}', {"t": 0.5}),
        # JSON has one number type: an integral number is an integer, whatever its spelling.
        (b'{"n": 2.0, "m": 1e3, "k": -0.0}', {"n": 2, "m": 1000, "k": 0}),
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate *pair* is one character
        (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # a UTF-8 byte-order mark is ignored
        ('{"text": "caf\u00e9 \u6f22\u5b57"}'.encode(), {"text": "caf\u00e9 \u6f22\u5b57"}),
        (nested(MAX_DEPTH), parse_json_body(nested(MAX_DEPTH))),
        (b'{"n": ' + b"9" * 40 + b"}", {"n": int("9" * 40)}),
    ],
)
def test_valid_json_parses_as_json_says(body: bytes, expected: Any) -> None:
    assert parse_json_body(body) == expected


def test_integral_floats_become_ints() -> None:
    assert isinstance(parse_json_body(b"2.0"), int)
    assert isinstance(parse_json_body(b"2.5"), float)


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (b"{not json", None, "not valid JSON: Expecting property name"),
        (b'{"a": 1,\n "b": tru}', None, "at line 2 column 7"),
        (b'{"a": 1} trailing', None, "Extra data at line 1 column 10"),
        (b"", None, "Expecting value at line 1 column 1"),
        (b'{"a": "\xff"}', None, "not valid UTF-8: byte 0xff at line 1 column 8"),
        (b'{"a": "\xed\xa0\x80"}', None, "not valid UTF-8"),  # a surrogate encoded in bytes
        (b"\xff\xfe{\x00}\x00", None, "not valid UTF-8"),  # UTF-16
        (b'{"t": NaN}', "t", "NaN is not valid JSON"),
        (b'{"t": Infinity}', "t", "Infinity is not valid JSON"),
        (b'{"a": [1, -Infinity]}', "a.1", "-Infinity is not valid JSON"),
        (b'{"max_tokens": 1e400}', "max_tokens", "1e400 is out of range"),
        (b'{"x": -1e999}', "x", "out of range"),
        (b'{"n": ' + b"1" * 101 + b"}", "n", "101 digits is out of range"),
        (b'{"n": -' + b"1" * 5000 + b"}", "n", "5000 digits"),  # past Python's own limit
        (b'{"m": [{"c": "\\ud800"}]}', "m.0.c", "lone surrogate"),
        (b'{"m": "ok \\udfff"}', "m", "lone surrogate"),
        (b'{"m": "\\ude00\\ud83d"}', "m", "lone surrogate"),  # a pair in the wrong order
        (b'{"\\udc00": 1}', "\ufffd", "key holds a lone surrogate"),
        (b'"\\ud800"', None, "lone surrogate"),
        (nested(MAX_DEPTH + 1), None, f"nested deeper than {MAX_DEPTH} levels"),
        (nested(5000), None, f"nested deeper than {MAX_DEPTH} levels"),
        (b'{"a":' * 200_000 + b"1" + b"}" * 200_000, None, "nested deeper"),
    ],
)
def test_what_python_accepts_and_json_does_not_is_a_400_saying_where(
    body: bytes, param: str | None, words: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_json_body(body)
    error = caught.value.body()["error"]
    assert error["param"] == param
    assert words in error["message"]
    assert caught.value.status == 400
    error["message"].encode("utf-8")  # what is said about the input is itself valid UTF-8


def test_a_long_flat_list_parses_whole() -> None:
    # 200,000 items: nothing is refused, so the walk builds no path (and does not recurse).
    body = b'{"messages": [' + b'"x",' * 200_000 + b'"x"]}'
    assert len(parse_json_body(body)["messages"]) == 200_001
