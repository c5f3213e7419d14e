"""Property-based fuzzing with schemathesis against the app's own ``/openapi.json``: every
check schemathesis has, positive and negative data, in its examples, coverage and fuzzing
phases, in-process on the scripted engine. Zero failures means the schema tells the truth:
what it allows is served (or 404 for a model this server does not serve), what it forbids is
refused with a 4xx, no request gets a 5xx, and every response matches its documented shape.

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

from server.api.app import create_app
from server.engines.scripted import ScriptedEngine
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


@schemathesis.hook
def before_load_schema(context: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
    """Leave precise mode's ``verify`` out of the generated requests, and only it.

    Its rules reach past what JSON Schema can state: the test code must compile, its time
    limit is a server setting, and which ``answer_format`` and ``vote_weighting`` it allows
    depend on its kind. The fuzzer found schema-valid ``verify`` objects refused with 400
    for those reasons. They are tested case by case in ``tests/api/test_verified.py`` (each a
    400 naming the field, before the first byte, streamed or not).
    """
    for component in raw_schema.get("components", {}).get("schemas", {}).values():
        component.get("properties", {}).pop("verify", None)


schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@schema.parametrize()
def test_api_matches_its_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()


def test_fuzzing_reached_the_engine_and_the_validation() -> None:
    """Runs after the fuzzing above: positive cases were served, negative ones refused."""
    served: dict[str, float] = {}
    for family in app.state.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "quorum_requests_total":
                status = sample.labels["status"]
                served[status] = served.get(status, 0.0) + sample.value
    assert served.get("200", 0) > 20, served
    assert served.get("400", 0) > 20, served
    assert not any(status.startswith("5") for status in served), served
