"""Property-based fuzzing with schemathesis against the app's own ``/openapi.json``,
positive and negative, in-process on the scripted engine: no 5xx, responses match the schema.

Bounded in time: 40 examples per operation and mode, no shrinking, a fixed seed (deterministic).
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

MAX_EXAMPLES = 40

config = SchemathesisConfig.from_dict(
    {
        "seed": 20_240_601,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "no-shrink": True},
        # The scripted engine answers in microseconds; 5xx or a schema mismatch is a failure.
        "checks": {
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            # Off: pydantic's lax mode accepts some schema-violating values on purpose (false
            # as temperature 0.0, "1" as 1), as vLLM does; what matters here is no 5xx.
            "negative_data_rejection": {"enabled": False},
            "positive_data_acceptance": {"enabled": False},
        },
    }
)

app = create_app(
    make_settings(
        Path(tempfile.gettempdir()),
        max_n=4,
        max_samples=4,
        max_tokens_cap=64,
        default_max_tokens=16,
    ),
    ScriptedEngine(max_model_len=512),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@schema.parametrize()
def test_api_survives_fuzzing(case: schemathesis.Case[Any]) -> None:
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
