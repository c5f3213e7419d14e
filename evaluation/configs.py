"""Run configs: how each item is asked (samples, temperature, tokens, seed, format, suffix, extras).

A config is written on the command line as shell-like ``key=value`` words, or as a preset name::

    greedy                                  samples=1 (the server decodes greedily)
    vote                                    samples=16 temperature=0.7
    "samples=16 temperature=0.7 suffix='End with: The answer is <answer>.' name=n16-instr"
    "samples=8 extra.min_agreement=0.5"     extra.KEY=VALUE is sent as a request field
    "samples=8 verify=true name=n8-verified" code items: candidates run the item's tests first

Values are JSON when they parse as JSON, else strings. Sample i of a request gets seed
``seed + i``, so the first N samples of a 16-sample run are an N-sample run (decoding's seed
scheme), and one 16-sample generation serves the analysis of every N <= 16.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from evaluation.items.store import Item

DEFAULT_SAMPLES = 16
DEFAULT_TEMPERATURE = 0.7
DEFAULT_MAX_TOKENS = 256
DEFAULT_SEED = 1000
VERIFY_TIMEOUT_S = 5.0
FORMATS = ("auto", "number", "math", "choice", "text", "json", "code")
KIND_FORMAT = {"number": "auto", "choice": "choice", "code": "code"}


@dataclass(frozen=True)
class RunConfig:
    """One way of asking every item; ``answer_format`` None means the item kind's own format."""

    name: str
    samples: int = DEFAULT_SAMPLES
    temperature: float = DEFAULT_TEMPERATURE
    max_tokens: int = DEFAULT_MAX_TOKENS
    seed: int = DEFAULT_SEED
    answer_format: str | None = None
    suffix: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    verify: bool = False  # verified voting: a code item's tests go in the request's ``verify``

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"config {self.name!r}: samples must be >= 1")
        if self.max_tokens < 1:
            raise ValueError(f"config {self.name!r}: max_tokens must be >= 1")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"config {self.name!r}: temperature must be in [0, 2]")
        if self.answer_format is not None and self.answer_format not in FORMATS:
            raise ValueError(f"config {self.name!r}: answer_format must be one of {FORMATS}")
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(f"config name must be one word, got {self.name!r}")

    @property
    def greedy(self) -> bool:
        """One sample: the server decodes at temperature 0 whatever the temperature says."""
        return self.samples == 1

    def to_dict(self) -> dict[str, Any]:
        """The config as recorded in every result line."""
        return asdict(self)

    def answer_format_for(self, item: Item) -> str:
        """The format sent for this item: the config's, else the item kind's."""
        return self.answer_format or KIND_FORMAT[item.kind]

    def request(self, item: Item) -> dict[str, Any]:
        """The ``POST /v1/precise`` body for one item."""
        content = item.question if not self.suffix else f"{item.question}\n{self.suffix}"
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": content}],
            "samples": self.samples,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "answer_format": self.answer_format_for(item),
        }
        if not self.greedy:
            body["temperature"] = self.temperature
        if self.verify and item.kind == "code":
            tests, entry = item.metadata["tests"], item.metadata["entry_point"]
            body["verify"] = {"tests": tests, "entry_point": entry, "timeout_s": VERIFY_TIMEOUT_S}
        body.update(self.extra)
        return body


PRESETS: dict[str, RunConfig] = {
    "greedy": RunConfig("greedy", samples=1, temperature=0.0),
    "vote": RunConfig("n16-t0.7"),
}
DEFAULT_CONFIGS = ("greedy", "vote")


def default_name(config: RunConfig) -> str:
    """A readable name from the fields that differ from the defaults."""
    parts = ["greedy" if config.greedy else f"n{config.samples}-t{config.temperature:g}"]
    if config.max_tokens != DEFAULT_MAX_TOKENS:
        parts.append(f"m{config.max_tokens}")
    if config.seed != DEFAULT_SEED:
        parts.append(f"s{config.seed}")
    if config.answer_format:
        parts.append(config.answer_format)
    if config.suffix:
        parts.append("sfx" + _digest(config.suffix))
    if config.extra:
        parts.append("x" + _digest(json.dumps(config.extra, sort_keys=True)))
    if config.verify:
        parts.append("verified")
    return "-".join(parts)


def _defaults() -> dict[str, Any]:
    """Every field's default value (a factory's product for ``extra``)."""
    found: dict[str, Any] = {}
    for spec in fields(RunConfig):
        if spec.default is not MISSING:
            found[spec.name] = spec.default
        elif spec.default_factory is not MISSING:
            found[spec.name] = spec.default_factory()
    return found


def same_config(recorded: Mapping[str, Any], config: RunConfig) -> bool:
    """Whether a recorded config is this one, a field it lacks counting as that field's default:
    a results file written before a field existed (no ``verify`` then) still resumes."""
    defaults = _defaults()
    return {**defaults, **recorded} == {**defaults, **config.to_dict()}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_config(spec: str) -> RunConfig:
    """A config from a preset name or ``key=value`` words (see the module docstring)."""
    if spec.strip() in PRESETS:
        return PRESETS[spec.strip()]
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for word in shlex.split(spec):
        key, sep, raw = word.partition("=")
        if not sep:
            raise ValueError(f"config word {word!r} is not key=value")
        if key.startswith("extra."):
            extra[key.removeprefix("extra.")] = _value(raw)
        elif key in ("name", "suffix", "answer_format"):
            fields[key] = raw
        elif key in ("samples", "max_tokens", "seed"):
            fields[key] = int(raw)
        elif key == "temperature":
            fields[key] = float(raw)
        elif key == "verify":
            fields[key] = bool(_value(raw))
        else:
            raise ValueError(f"unknown config key {key!r} in {spec!r}")
    name = fields.pop("name", None)
    config = RunConfig(name="unnamed", extra=extra, **fields)
    if config.greedy and "temperature" not in fields:
        config = replace(config, temperature=0.0)
    return replace(config, name=name or default_name(config))
