"""Rules across a request's fields, stated once for the check and for ``/openapi.json``.

A rule is a condition on a pydantic model's fields that every request must meet. The same
object decides a parsed request (``broken``) and writes the JSON Schema that admits exactly the
request bodies meeting it (``stated``), so the schema refuses what the server refuses and no
more. Fields are read as the request sends them: absent means the field's default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

JsonSchema = dict[str, Any]


class Condition(Protocol):
    """Something a model's fields meet or not, and its JSON Schema."""

    def holds(self, model: BaseModel) -> bool:
        """Whether the parsed request meets it."""
        ...

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        """The JSON Schema admitting exactly the bodies of ``model`` that meet it."""
        ...


def _field(name: str, schema: JsonSchema) -> JsonSchema:
    return {"required": [name], "properties": {name: schema}}


@dataclass(frozen=True)
class Given:
    """The field is sent and not null."""

    name: str

    def holds(self, model: BaseModel) -> bool:
        return getattr(model, self.name) is not None

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        return _field(self.name, {"not": {"type": "null"}})


@dataclass(frozen=True)
class NonEmpty:
    """The field is a list with at least one item."""

    name: str

    def holds(self, model: BaseModel) -> bool:
        return bool(getattr(model, self.name))

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        return _field(self.name, {"type": "array", "minItems": 1})


@dataclass(frozen=True)
class HasObject:
    """The field is a list with an object (a nested model) among its items."""

    name: str

    def holds(self, model: BaseModel) -> bool:
        return any(isinstance(item, BaseModel) for item in getattr(model, self.name) or ())

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        return _field(self.name, {"type": "array", "contains": {"type": "object"}})


@dataclass(frozen=True)
class OneOfValues:
    """The field's value (its default when absent) is one of ``values``, by JSON type too."""

    name: str
    values: tuple[str | bool, ...]

    def holds(self, model: BaseModel) -> bool:
        return self._admits(getattr(model, self.name))

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        allowed = {self.name: {"enum": list(self.values)}}
        if self._admits(model.model_fields[self.name].default):
            return {"properties": allowed}
        return {"required": [self.name], "properties": allowed}

    def _admits(self, value: object) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)


@dataclass(frozen=True)
class AtLeast:
    """The field's value (its default when absent) is at least ``minimum``."""

    name: str
    minimum: int

    def holds(self, model: BaseModel) -> bool:
        return bool(getattr(model, self.name) >= self.minimum)

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        allowed = {self.name: {"minimum": self.minimum}}
        if model.model_fields[self.name].default >= self.minimum:
            return {"properties": allowed}
        return {"required": [self.name], "properties": allowed}


@dataclass(frozen=True)
class Inside:
    """The field is an object (of ``model``) that meets ``condition``."""

    name: str
    model: type[BaseModel]
    condition: Condition

    def holds(self, model: BaseModel) -> bool:
        value = getattr(model, self.name)
        return isinstance(value, self.model) and self.condition.holds(value)

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        inner = self.condition.schema(self.model)
        return _field(self.name, {"type": "object", "allOf": [inner]})


@dataclass(frozen=True)
class AnyOf:
    """At least one of the conditions holds."""

    conditions: tuple[Condition, ...]

    def holds(self, model: BaseModel) -> bool:
        return any(c.holds(model) for c in self.conditions)

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        return {"anyOf": [c.schema(model) for c in self.conditions]}


@dataclass(frozen=True)
class ExactlyOne:
    """Exactly one of the conditions holds."""

    conditions: tuple[Condition, ...]

    def holds(self, model: BaseModel) -> bool:
        return sum(c.holds(model) for c in self.conditions) == 1

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        return {"oneOf": [c.schema(model) for c in self.conditions]}


@dataclass(frozen=True)
class NotBoth:
    """The two conditions do not both hold."""

    first: Condition
    second: Condition

    def holds(self, model: BaseModel) -> bool:
        return not (self.first.holds(model) and self.second.holds(model))

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        return {"not": {"allOf": [self.first.schema(model), self.second.schema(model)]}}


@dataclass(frozen=True)
class Implies:
    """When ``when`` holds, ``then`` holds too."""

    when: Condition
    then: Condition

    def holds(self, model: BaseModel) -> bool:
        return not self.when.holds(model) or self.then.holds(model)

    def schema(self, model: type[BaseModel]) -> JsonSchema:
        return {"if": self.when.schema(model), "then": self.then.schema(model)}


@dataclass(frozen=True)
class Rule:
    """A condition every request meets, and the 400 that names it when one does not."""

    condition: Condition
    message: str
    param: str | None = None


def broken(rules: Sequence[Rule], model: BaseModel) -> Rule | None:
    """The first rule the parsed request breaks, or None."""
    return next((rule for rule in rules if not rule.condition.holds(model)), None)


def stated(
    rules: Sequence[Rule], extra: JsonSchema | None = None
) -> Callable[[JsonSchema, type[Any]], None]:
    """A ``json_schema_extra`` that writes the rules (and ``extra``) into a model's schema."""

    def write(schema: JsonSchema, model: type[Any]) -> None:
        schema.update(extra or {})
        schema["allOf"] = [rule.condition.schema(model) for rule in rules]

    return write
