"""``/openapi.json`` states what this server does, not only what its wire models say.

FastAPI documents a 422 this server never sends (validation errors are OpenAI's 400), and the
wire models know OpenAI's bounds but not this server's caps (``--max-n``, ``--max-samples``,
``--max-tokens-cap``, ``--max-temperature``, ``--max-top-p``, ``--verify-timeout-s``), which
the plan enforces with a 400. ``QuorumAPI`` drops the 422s and writes the caps of its settings
into the request schemas, so a client (or a fuzzer) reading the schema is refused exactly when
it breaks it. What a schema cannot state is said in descriptions: a completions batch counts
prompts x n against ``--max-n``, a prompt plus ``max_tokens`` must fit the context, and
``verify``'s test code must compile.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from server.runtime.settings import Settings

CHAT_BODIES = ("ChatCompletionRequest", "CreativeRequest")
OPENAI_BODIES = (*CHAT_BODIES, "CompletionRequest")
ALL_BODIES = (*OPENAI_BODIES, "PreciseRequest")


def _cap(prop: dict[str, Any], key: str, value: float) -> None:
    """Lower ``key`` (``maximum``, ``maxItems``) to ``value`` on the property's branches that
    it applies to (numbers for ``maximum``, arrays for ``maxItems``), keeping a lower bound."""
    kinds = ("integer", "number") if key == "maximum" else ("array",)
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") in kinds:
            branch[key] = min(branch.get(key, value), value)


def _exact_integer_bounds(node: Any) -> None:
    """FastAPI writes every bound as a float (``minimum: 1.0``); an integer's bounds go back to
    integers, so a generator near 2**63 does not round them (``wire.common`` keeps them exact
    as doubles)."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if isinstance(node.get(key), float) and node[key].is_integer():
                    node[key] = int(node[key])
        for child in node.values():
            _exact_integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _exact_integer_bounds(child)


def caps(settings: Settings) -> dict[str, dict[str, tuple[str, float]]]:
    """For each request body, the properties the settings bound, and how."""
    tokens = ("maximum", settings.tokens_cap)
    sampling = {
        "temperature": ("maximum", settings.max_temperature),
        "top_p": ("maximum", settings.max_top_p),
        "max_tokens": tokens,
    }
    table: dict[str, dict[str, tuple[str, float]]] = {}
    for body in OPENAI_BODIES:
        table[body] = {**sampling, "n": ("maximum", settings.max_n)}
    for body in CHAT_BODIES:
        table[body]["max_completion_tokens"] = tokens
    table["CompletionRequest"]["prompt"] = ("maxItems", settings.max_n)
    table["PreciseRequest"] = {**sampling, "samples": ("maximum", settings.max_samples)}
    table["VerifyOptions"] = {"timeout_s": ("maximum", settings.verify_timeout_s)}
    return table


def state_caps(schema: dict[str, Any], settings: Settings) -> None:
    """Write the settings' caps into the request schemas, and name the served models."""
    components = schema.get("components", {}).get("schemas", {})
    _exact_integer_bounds(components)
    for body, bounds in caps(settings).items():
        properties = components.get(body, {}).get("properties", {})
        for name, (key, value) in bounds.items():
            if name in properties:
                _cap(properties[name], key, value)
    name = settings.model_name
    for body, suffixes in (
        ("ChatCompletionRequest", ("", ":creative", ":precise")),
        ("CompletionRequest", ("", ":creative", ":precise")),
        ("CreativeRequest", ("", ":creative")),
        ("PreciseRequest", ("", ":precise")),
    ):
        model = components.get(body, {}).get("properties", {}).get("model")
        if model is not None:
            model["examples"] = [name + suffix for suffix in suffixes]
            model["description"] = (
                f"{model.get('description', '')} This server serves '{name}'; "
                "any other name is 404."
            ).strip()


class QuorumAPI(FastAPI):
    """FastAPI whose schema tells the truth: 400 with OpenAI's error body for validation, and
    this server's caps on the request fields."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings

    def openapi(self) -> dict[str, Any]:
        """The schema without FastAPI's 422 responses, with the settings' caps."""
        if self.openapi_schema is None:
            schema = super().openapi()
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    if isinstance(operation, dict):
                        operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            state_caps(schema, self.settings)
        return self.openapi_schema or {}
