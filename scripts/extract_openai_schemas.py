"""Extract the schemas the drop-in routes must meet from OpenAI's OpenAPI spec.

Usage: python scripts/extract_openai_schemas.py PATH/TO/openai-openapi.yaml
Writes bench/rig/reference/openai-schemas.json: the named schemas and everything they reference,
so the tests and the rig validate against OpenAI's own text (MIT licence) without the 3 MB file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOTS = [
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionResponse",
    "ListModelsResponse",
    "ErrorResponse",
]
PREFIX = "#/components/schemas/"


def refs(node: Any) -> set[str]:
    """Names of the schemas a node refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(PREFIX):
            found.add(ref[len(PREFIX) :])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def main(spec_path: str) -> None:
    """Write the closure of ROOTS under their refs."""
    spec = yaml.load(Path(spec_path).read_text(), Loader=yaml.CSafeLoader)
    schemas = spec["components"]["schemas"]
    keep: dict[str, Any] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = schemas[name]
        todo.extend(refs(schemas[name]) - keep.keys())
    out = Path(__file__).resolve().parents[1] / "bench/rig/reference/openai-schemas.json"
    source = {"source": "openai/openai-openapi @ f85dbe2 (2026-08-21), MIT licence"}
    out.write_text(json.dumps({**source, "schemas": keep}, indent=1, sort_keys=True) + "\n")
    print(f"{out}: {len(keep)} schemas")


if __name__ == "__main__":
    main(sys.argv[1])
