"""The ``verify`` option planned before the first byte: a ``decoding.verification`` spec, or 400.

``refuse_broken_rules`` refuses options that do not go together (``PRECISE_RULES``: verify's
answer_format and vote_weighting, the greedy vote's samples), naming the option; ``VerifyOptions``
refuses its own (``VERIFY_RULES``). The schema states both. ``verify_spec`` then refuses, streamed
or not, a time limit past the server's (the schema's ``maximum``, from the settings) and test code
that does not compile (which no schema can state; the fields' descriptions say it).
"""

from __future__ import annotations

from collections.abc import Iterable

from decoding.verification import CodeSuite, MathCheck, VerifySpec
from server.errors import InvalidRequest
from server.runtime.settings import Settings
from server.wire.precise import PRECISE_RULES, PreciseOptions
from server.wire.rules import broken
from server.wire.verify import CallTest, VerifyOptions


def refuse_broken_rules(options: PreciseOptions) -> None:
    """400 naming the first precise-mode rule the options break."""
    if (rule := broken(PRECISE_RULES, options)) is not None:
        raise InvalidRequest(rule.message, param=rule.param)


def verify_spec(options: PreciseOptions, settings: Settings) -> VerifySpec | None:
    """The request's verification, every limit checked; None without ``verify``."""
    verify = options.verify
    if verify is None:
        return None
    if verify.timeout_s > settings.verify_timeout_s:
        raise InvalidRequest(
            f"verify.timeout_s must be at most {settings.verify_timeout_s}, got {verify.timeout_s}",
            param="verify.timeout_s",
        )
    if not verify.is_code:
        substitute = None
        if verify.substitute is not None:
            substitute = {name: str(value) for name, value in verify.substitute.items()}
        expected = None if verify.expected is None else str(verify.expected)
        return MathCheck(substitute, expected, verify.equation, verify.variable)
    _compiles(verify)
    return CodeSuite(
        tests=tuple(_test(t) for t in verify.tests or ()),
        entry_point=verify.entry_point,
        test_file=verify.test_file,
        probes=tuple(tuple(p) for p in verify.probes or ()),
        timeout_s=verify.timeout_s,
    )


def _test(test: str | CallTest) -> object:
    return test if isinstance(test, str) else test.model_dump()


def _compiles(verify: VerifyOptions) -> None:
    """400 for test code that is not Python (compiled only: nothing runs here)."""
    found = uncompiled_source(verify.tests or (), verify.test_file)
    if found is not None:
        param, error = found
        raise InvalidRequest(f"{param} is not valid Python: {error}", param=param)


def uncompiled_source(tests: Iterable[object], test_file: object) -> tuple[str, str] | None:
    """The first test source that does not compile, as (its ``param``, the compiler's error),
    else None. Sources are the string tests (``verify.tests.<i>``), then ``verify.test_file``;
    anything else (a call test, a missing file) is not source. Plain values, so that a raw
    request body can be asked too (the fuzz test does)."""
    sources: list[tuple[str, object]] = [(f"verify.tests.{i}", t) for i, t in enumerate(tests)]
    sources.append(("verify.test_file", test_file))
    for param, source in sources:
        if not isinstance(source, str):
            continue
        try:
            compile(source, param, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return param, str(exc)
    return None
