"""The ``verify`` precise option: how candidates are checked before they vote.

Code (``answer_format: "code"``): ``tests`` (assertion strings, or calls of ``entry_point``
with ``args``/``kwargs`` and an ``expected`` result), a ``test_file`` body, ``probes`` (argument
lists whose outputs group passing candidates by behaviour) and ``timeout_s``. Maths:
``substitute`` (values for the answer's symbols) with ``expected``, or an ``equation``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_TESTS = 64
MAX_SOURCE_CHARS = 65_536


class CallTest(BaseModel):
    """One call of the entry point and the result it must return (compared with ``==``)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    args: list[Any] = Field(default_factory=list, max_length=64)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    expected: Any = None


class VerifyOptions(BaseModel):
    """Checks candidates must pass to vote; the server caps their time and resources."""

    model_config = ConfigDict(extra="forbid")

    tests: list[str | CallTest] | None = Field(
        None,
        max_length=MAX_TESTS,
        description="Code tests: Python statements (e.g. 'assert add(1, 2) == 3') or calls of "
        "entry_point with args, kwargs and the expected result.",
    )
    test_file: str | None = Field(
        None,
        max_length=MAX_SOURCE_CHARS,
        description="A test module body: its top-level asserts and test* functions run.",
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
        5.0, gt=0, description="Wall-clock (and CPU) limit per candidate, capped by the server."
    )
    substitute: dict[str, str | int | float] | None = Field(
        None, max_length=16, description="Maths: values for the answer's symbols."
    )
    expected: str | int | float | None = Field(
        None, description="Maths: what the answer must equal after substitution."
    )
    equation: str | None = Field(
        None, max_length=500, description="Maths: an equation 'lhs = rhs' the answer solves."
    )
    variable: str | None = Field(
        None, max_length=20, description="Maths: the equation's unknown (default: its only one)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> VerifyOptions:
        code = bool(self.tests) or self.test_file is not None
        maths = self.substitute is not None or self.equation is not None
        if code == maths:
            raise ValueError("give code tests (tests or test_file) or a maths check, not both")
        if self.substitute is not None and self.equation is not None:
            raise ValueError("give substitute or equation, not both")
        if self.substitute is not None and self.expected is None:
            raise ValueError("substitute needs expected")
        calls = any(isinstance(t, CallTest) for t in self.tests or ()) or bool(self.probes)
        if calls and self.entry_point is None:
            raise ValueError("call tests and probes need entry_point")
        return self

    @property
    def is_code(self) -> bool:
        """Whether this checks code (else a formula)."""
        return bool(self.tests) or self.test_file is not None
