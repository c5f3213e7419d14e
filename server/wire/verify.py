"""The ``verify`` precise option: how candidates are checked before they vote.

Code (``answer_format: "code"``): ``tests`` (assertion strings, or calls of ``entry_point``
with ``args``/``kwargs`` and an ``expected`` result), a ``test_file`` body, ``probes`` (argument
lists whose outputs group passing candidates by behaviour) and ``timeout_s``. Maths:
``substitute`` (values for the answer's symbols) with ``expected``, or an ``equation``.

Which fields go together is ``VERIFY_RULES``: checked on every request and written into the
schema (``server.wire.rules``). Test code must also compile, which no schema can state: its
fields say so, and the plan refuses code that does not with a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.wire.common import STRICT_REQUEST
from server.wire.rules import (
    AnyOf,
    ExactlyOne,
    Given,
    HasObject,
    Implies,
    NonEmpty,
    NotBoth,
    Rule,
    broken,
    stated,
)

MAX_TESTS = 64
MAX_SOURCE_CHARS = 65_536
COMPILES = " Each must compile as Python, or the request is refused (400) before any sampling."

# What makes a verify object a code check, a maths check, or one that calls entry_point.
CODE = AnyOf((NonEmpty("tests"), Given("test_file")))
MATHS = AnyOf((Given("substitute"), Given("equation")))
CALLS = AnyOf((HasObject("tests"), NonEmpty("probes")))
VERIFY_RULES = (
    Rule(
        ExactlyOne((CODE, MATHS)),
        "give code tests (tests or test_file) or a maths check, not both",
    ),
    Rule(NotBoth(Given("substitute"), Given("equation")), "give substitute or equation, not both"),
    Rule(Implies(Given("substitute"), Given("expected")), "substitute needs expected"),
    Rule(Implies(CALLS, Given("entry_point")), "call tests and probes need entry_point"),
)


class CallTest(BaseModel):
    """One call of the entry point and the result it must return (compared with ``==``)."""

    model_config = ConfigDict(extra="forbid", **STRICT_REQUEST)

    name: str | None = Field(None, max_length=200)
    args: list[Any] = Field(default_factory=list, max_length=64)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    expected: Any = None


class VerifyOptions(BaseModel):
    """Checks candidates must pass to vote; the server caps their time and resources."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=stated(VERIFY_RULES), **STRICT_REQUEST
    )

    tests: list[str | CallTest] | None = Field(
        None,
        max_length=MAX_TESTS,
        description="Code tests: Python statements (e.g. 'assert add(1, 2) == 3') or calls of "
        "entry_point with args, kwargs and the expected result." + COMPILES,
    )
    test_file: str | None = Field(
        None,
        max_length=MAX_SOURCE_CHARS,
        description="A test module body: its top-level asserts and test* functions run." + COMPILES,
    )
    entry_point: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        max_length=100,
        description="The function the call tests and probes call.",
    )
    probes: list[list[Any]] | None = Field(
        None,
        max_length=MAX_TESTS,
        description="Extra argument lists: passing candidates with equal outputs on them (and "
        "on the tests) form one behaviour group.",
    )
    timeout_s: float = Field(
        5.0,
        gt=0,
        description="Wall-clock (and CPU) limit per candidate, at most the server's "
        "--verify-timeout-s (its maximum here).",
    )
    substitute: dict[str, str | int | float] | None = Field(
        None, max_length=16, description="Maths: values for the answer's symbols."
    )
    expected: str | int | float | None = Field(
        None, description="Maths: what the answer must equal after substitution."
    )
    equation: str | None = Field(
        None,
        max_length=500,
        pattern="=",
        description="Maths: an equation 'lhs = rhs' the answer solves.",
    )
    variable: str | None = Field(
        None, max_length=20, description="Maths: the equation's unknown (default: its only one)."
    )

    @model_validator(mode="after")
    def _rules(self) -> VerifyOptions:
        if (rule := broken(VERIFY_RULES, self)) is not None:
            raise ValueError(rule.message)
        return self

    @property
    def is_code(self) -> bool:
        """Whether this checks code (else a formula)."""
        return CODE.holds(self)
