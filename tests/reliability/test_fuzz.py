"""Property-based fuzzing with schemathesis against the app's own ``/openapi.json``: every
check schemathesis has, positive and negative data, in its examples, coverage and fuzzing
phases, in-process on the scripted engine. Zero failures means the schema tells the truth:
what it allows is served (or 404 for a model this server does not serve), what it forbids is
refused with a 4xx, no request gets a 5xx, and every response matches its documented shape.

One rule no JSON Schema can state: precise mode's ``verify`` test code must compile (the field
descriptions say so). A schema-valid body whose test code does not compile is still generated
and sent; the one failure dropped (``filter_failure``) is a positive case refused with a 400
that names exactly the first source ``compile()`` rejects here. Every other rule of ``verify``
is in the schema and fuzzed like any field, both ways.

Bounded: a fixed number of examples per operation and mode, no shrinking, a fixed seed
(deterministic). Select it with ``-m fuzz``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure
from schemathesis.openapi.checks import RejectedPositiveData

from server.api.app import create_app
from server.engines.scripted import ScriptedEngine
from server.serving.verify_plan import uncompiled_source
from tests.reliability.conftest import make_settings

pytestmark = pytest.mark.fuzz
MAX_EXAMPLES = 60
# Large enough that no generated prompt overflows it: the context check has its own tests, and a
# schema cannot state a prompt's token count.
CONTEXT = 1_000_000

config = SchemathesisConfig.from_dict(
    {
        "seed": 20_240_601,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "no-shrink": True},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
        },
        # Every check, with its default expectations: nothing is switched off or widened.
        "checks": {"enabled": True},
    }
)

app = create_app(
    make_settings(
        Path(tempfile.gettempdir()),
        max_n=4,
        max_samples=4,
        max_tokens_cap=64,
        default_max_tokens=16,
        max_temperature=1.5,
        max_top_p=0.95,
        max_model_len=CONTEXT,
    ),
    ScriptedEngine(max_model_len=CONTEXT),
)


schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def first_source_not_compiling(body: object) -> str | None:
    """The ``param`` of the first ``verify`` test source that is not Python, as the plan names
    it; None when all compile (or the body has no such sources)."""
    verify = body.get("verify") if isinstance(body, dict) else None
    if not isinstance(verify, dict):
        return None
    tests = verify.get("tests")
    found = uncompiled_source(tests if isinstance(tests, list) else [], verify.get("test_file"))
    return None if found is None else found[0]


@schema.hook
def filter_failure(
    context: schemathesis.HookContext,
    failure: Failure,
    case: schemathesis.Case[Any],
    response: schemathesis.Response,
) -> bool:
    """Keep every failure but a schema-valid body refused because its test code does not
    compile: a 400 whose ``param`` is the source that ``compile()`` rejects here too."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return True
    param = first_source_not_compiling(case.body)
    if param is None:
        return True
    error = response.json()["error"]
    documented = error["param"] == param and error["message"].startswith(f"{param} is not valid")
    return not documented


@schema.parametrize()
def test_api_matches_its_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()


def test_fuzzing_reached_the_engine_and_the_validation() -> None:
    """Runs after the fuzzing above: positive cases were served (verify's checks among them),
    negative ones refused."""
    served: dict[str, float] = {}
    checked = 0.0
    for family in app.state.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "quorum_requests_total":
                status = sample.labels["status"]
                served[status] = served.get(status, 0.0) + sample.value
            checked += sample.value if sample.name == "quorum_precise_verified_total" else 0
    assert checked > 0, "no generated verify reached the checks"
    assert served.get("200", 0) > 20, served
    assert served.get("400", 0) > 20, served
    assert not any(status.startswith("5") for status in served), served
