"""Precise mode's cross-field rules (``verify``, the greedy vote) agree between the server and
its ``/openapi.json``: each body the server refuses with a 400 the schema rejects, and each body
it serves the schema admits. The one rule a schema cannot state, test code that compiles, is
checked to be the documented exception."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest

from decoding.engine import Prompt, SamplingSpec
from server.engines.scripted import ScriptedEngine
from server.runtime.settings import Settings
from server.wire.precise import PRECISE_RULES
from server.wire.rules import Rule
from server.wire.verify import VERIFY_RULES
from tests.inprocess import InProcess, serving

BASE: dict[str, Any] = {"prompt": "Write add(a, b).", "samples": 2, "seed": 1, "max_tokens": 16}
TESTS = ["assert add(1, 2) == 3"]
CALL = {"args": [1, 2], "expected": 3}
CAP = 10.0  # the settings' verify_timeout_s (its default), checked below
KIND, SUBSTITUTE, EXPECTED, CALLS = VERIFY_RULES
WEIGHTING, CODE_FORMAT, MATHS_FORMAT, GREEDY = PRECISE_RULES


def code(**verify: Any) -> dict[str, Any]:
    """A code check (answer_format code) with ``verify``'s fields changed."""
    return {**BASE, "answer_format": "code", "verify": {"tests": TESTS, **verify}}


def maths(**fields: Any) -> dict[str, Any]:
    """A maths check by equation, with the request's ``fields`` changed."""
    return {**BASE, "verify": {"equation": "x^2 = 4"}, **fields}


def verify(fields: dict[str, Any], **request: Any) -> dict[str, Any]:
    """A request whose ``verify`` is exactly ``fields``."""
    return {**BASE, "verify": fields, **request}


Refusal = tuple[str, str]  # the error's param, and words its message contains
ROWS: list[tuple[str, dict[str, Any], Refusal | Rule | None]] = [
    # One kind: code (non-empty tests, or a test file) or maths (substitute or equation).
    ("code tests", code(), None),
    ("a test file alone", verify({"test_file": "assert True"}, answer_format="code"), None),
    ("an empty test file is code", verify({"test_file": ""}, answer_format="code"), None),
    ("neither kind", verify({}), KIND),
    ("empty tests are no code", verify({"tests": []}), KIND),
    ("both kinds", code(equation="x = 1"), KIND),
    # substitute and equation exclude each other; substitute needs expected.
    ("substitute and expected", verify({"substitute": {"x": 3}, "expected": "7"}), None),
    (
        "substitute and equation",
        verify({"substitute": {"x": 1}, "expected": 1, "equation": "x = 1"}),
        SUBSTITUTE,
    ),
    ("substitute without expected", verify({"substitute": {"x": 3}}), EXPECTED),
    (
        "substitute with a null expected",
        verify({"substitute": {"x": 3}, "expected": None}),
        EXPECTED,
    ),
    # Call tests and probes call entry_point.
    ("a call test with entry_point", code(tests=[CALL], entry_point="add"), None),
    ("empty probes call nothing", code(probes=[]), None),
    ("a call test without entry_point", code(tests=[CALL]), CALLS),
    ("probes without entry_point", code(probes=[[1, 2]]), CALLS),
    ("a null entry_point", code(tests=[CALL], entry_point=None), CALLS),
    # A verified vote counts each passing sample once.
    ("verify with majority said", {**code(), "vote_weighting": "majority"}, None),
    ("logprob weighting without verify", {**BASE, "vote_weighting": "logprob"}, None),
    ("logprob weighting, verify null", {**BASE, "verify": None, "vote_weighting": "logprob"}, None),
    ("verify with logprob weighting", {**code(), "vote_weighting": "logprob"}, WEIGHTING),
    ("maths with cisc weighting", maths(vote_weighting="cisc"), WEIGHTING),
    # Code needs answer_format code; maths a formula format.
    ("code tests, answer_format left auto", verify({"tests": TESTS}), CODE_FORMAT),
    ("code tests, answer_format math", verify({"tests": TESTS}, answer_format="math"), CODE_FORMAT),
    ("maths, answer_format left auto", maths(), None),
    ("maths, answer_format number", maths(answer_format="number"), None),
    ("maths, answer_format text", maths(answer_format="text"), MATHS_FORMAT),
    ("maths, answer_format code", maths(answer_format="code"), MATHS_FORMAT),
    # The greedy vote is one more sample than one.
    ("greedy vote, two samples", {**BASE, "greedy_vote": True}, None),
    ("greedy vote off, one sample", {**BASE, "samples": 1, "greedy_vote": False}, None),
    ("greedy vote, one sample", {**BASE, "samples": 1, "greedy_vote": True}, GREEDY),
    ("greedy vote, samples left 1", {"prompt": "hi", "greedy_vote": True}, GREEDY),
    # Field rules: an equation has '=', the time limit is the server's at most, JSON's types.
    ("an equation without '='", verify({"equation": "x^2"}), ("verify.equation", "pattern")),
    ("a time limit at the cap", code(timeout_s=CAP), None),
    ("code past the cap", code(timeout_s=CAP + 1), ("verify.timeout_s", "at most 10.0")),
    (
        "maths past the cap",
        maths(verify={"equation": "x = 1", "timeout_s": CAP + 1}),
        ("verify.timeout_s", "at most 10.0"),
    ),
    ("a time limit as a string", code(timeout_s="5"), ("verify.timeout_s", "number")),
    (
        "a boolean to substitute",
        verify({"substitute": {"x": True}, "expected": 1}),
        ("verify.substitute.x", ""),
    ),
    (
        "a call test named by a number",
        code(tests=[{**CALL, "name": 1}], entry_point="add"),
        ("verify.tests.0", ""),
    ),
]


def add_code(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
    """Every sample writes a right add(a, b), and says it is 2 (a maths answer)."""
    return "```python\ndef add(a, b):\n    return a + b\n```\nThe answer is 2."


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[tuple[InProcess, ScriptedEngine]]:
    engine = ScriptedEngine(script=add_code, max_model_len=512)
    async with serving(settings, engine) as running:
        yield running, engine


async def request_schema(running: InProcess) -> jsonschema.Draft202012Validator:
    """A validator for ``/v1/precise``'s body, read from the served ``/openapi.json``."""
    document = (await running.http.get("/openapi.json")).json()
    root = {"$ref": "#/components/schemas/PreciseRequest", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


def test_every_rule_has_a_row_that_breaks_it() -> None:
    broken = {row[2] for row in ROWS if isinstance(row[2], Rule)}
    assert broken == {*VERIFY_RULES, *PRECISE_RULES}


def test_the_cap_above_is_the_settings(settings: Settings) -> None:
    assert settings.verify_timeout_s == CAP


@pytest.mark.parametrize(("body", "refusal"), [row[1:] for row in ROWS], ids=[r[0] for r in ROWS])
async def test_the_schema_refuses_exactly_what_the_server_refuses(
    app: tuple[InProcess, ScriptedEngine], body: dict[str, Any], refusal: Refusal | Rule | None
) -> None:
    running, engine = app
    schema = await request_schema(running)
    response = await running.http.post("/v1/precise", json=body)
    if refusal is None:
        assert response.status_code == 200, response.text
        assert list(schema.iter_errors(body)) == []
        return
    assert not schema.is_valid(body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    if isinstance(refusal, Rule):
        param, words = refusal.param or "verify", refusal.message
    else:
        param, words = refusal
    assert (error["param"], error["type"]) == (param, "invalid_request_error"), error
    assert words in error["message"]
    assert engine.calls == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tests": ["assert add(1, 2) =="]}, "verify.tests.0"),
        ({"tests": ["assert True", "def f(:"]}, "verify.tests.1"),
        ({"test_file": "def test_x(:\n"}, "verify.test_file"),
    ],
)
async def test_code_that_does_not_compile_is_refused_though_the_schema_admits_it(
    app: tuple[InProcess, ScriptedEngine], fields: dict[str, Any], param: str
) -> None:
    """The one rule JSON Schema cannot state: the schema admits the body and says the rule in
    the fields' descriptions; the server refuses it, naming the source."""
    running, engine = app
    schema = await request_schema(running)
    body = verify(fields, answer_format="code")
    response = await running.http.post("/v1/precise", json=body)
    assert schema.is_valid(body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert "is not valid Python" in response.json()["error"]["message"]
    assert engine.calls == []
    described = schema.schema["components"]["schemas"]["VerifyOptions"]["properties"]
    assert all("must compile as Python" in described[f]["description"] for f in fields)
