"""Validate responses against OpenAI's own schemas: ``reference/openai-schemas.json`` beside this
module, extracted from OpenAI's OpenAPI spec by ``scripts/extract_openai_schemas.py``. The tests
and the rig's ``conformance`` scenario both validate with it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).parent / "reference" / "openai-schemas.json"


def _nullable_to_31(node: Any) -> Any:
    """The spec still says ``nullable: true`` (OpenAPI 3.0); JSON Schema needs ``null`` allowed."""
    if isinstance(node, list):
        return [_nullable_to_31(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable_to_31(v) for k, v in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


@cache
def _definitions() -> dict[str, Any]:
    schemas = json.loads(SCHEMAS.read_text())["schemas"]
    text = json.dumps(_nullable_to_31(schemas)).replace("#/components/schemas/", "#/$defs/")
    definitions: dict[str, Any] = json.loads(text)
    return definitions


@cache
def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    """One checked validator per schema: checking the schema itself costs ~0.1 s, so it is
    done once, not on every payload."""
    schema = {"$defs": _definitions(), "$ref": f"#/$defs/{schema_name}"}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate(payload: Any, schema_name: str) -> None:
    """Raise ``jsonschema.ValidationError`` unless payload matches OpenAI's named schema."""
    error = jsonschema.exceptions.best_match(_validator(schema_name).iter_errors(payload))
    if error is not None:
        raise error
