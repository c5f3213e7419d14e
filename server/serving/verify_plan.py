"""The ``verify`` option planned before the first byte: a ``decoding.verification`` spec, or 400.

Refused here, streamed or not: code tests without ``answer_format: "code"``, a maths check on a
format that is not a formula, a time limit past the server's, test code that does not compile,
and confidence weighting (a verified vote counts each passing sample once).
"""

from __future__ import annotations

from decoding.verification import CodeSuite, MathCheck, VerifySpec
from server.errors import InvalidRequest
from server.runtime.settings import Settings
from server.wire.precise import PreciseOptions
from server.wire.verify import CallTest, VerifyOptions

MATH_FORMATS = ("auto", "math", "number")


def verify_spec(options: PreciseOptions, settings: Settings) -> VerifySpec | None:
    """The request's verification, every limit checked; None without ``verify``."""
    verify = options.verify
    if verify is None:
        return None
    if options.vote_weighting != "majority":
        raise InvalidRequest(
            "verify counts each passing sample once: vote_weighting must be majority",
            param="vote_weighting",
        )
    if not verify.is_code:
        if options.answer_format not in MATH_FORMATS:
            raise InvalidRequest(
                f"a maths check needs answer_format one of {MATH_FORMATS}", param="answer_format"
            )
        if verify.equation is not None and "=" not in verify.equation:
            raise InvalidRequest("verify.equation needs '='", param="verify.equation")
        substitute = None
        if verify.substitute is not None:
            substitute = {name: str(value) for name, value in verify.substitute.items()}
        expected = None if verify.expected is None else str(verify.expected)
        return MathCheck(substitute, expected, verify.equation, verify.variable)
    if options.answer_format != "code":
        raise InvalidRequest('verify with tests needs answer_format "code"', param="answer_format")
    if verify.timeout_s > settings.verify_timeout_s:
        raise InvalidRequest(
            f"verify.timeout_s must be at most {settings.verify_timeout_s}, got {verify.timeout_s}",
            param="verify.timeout_s",
        )
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
    sources: list[tuple[str, object]] = [
        (f"verify.tests.{i}", t) for i, t in enumerate(verify.tests or ())
    ]
    sources.append(("verify.test_file", verify.test_file))
    for param, source in sources:
        if not isinstance(source, str):
            continue
        try:
            compile(source, param, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise InvalidRequest(f"{param} is not valid Python: {exc}", param=param) from None
