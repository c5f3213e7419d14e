"""Run configs from the command line, and the request bodies they make."""

from __future__ import annotations

from typing import Any

import pytest

from evaluation.configs import RunConfig, parse_config
from evaluation.items.store import Item

ITEM = Item("chain_sum-0001", "chain_sum", "dev", "What is 2 + 3?", "5", "number")
CHOICE = Item("choice-0001", "choice", "dev", "Pick one.\nA. x\nB. y", "B", "choice")


@pytest.mark.parametrize(
    ("spec", "name", "fields"),
    [
        ("greedy", "greedy", {"samples": 1, "temperature": 0.0}),
        ("vote", "n16-t0.7", {"samples": 16, "temperature": 0.7}),
        ("samples=8 temperature=1.0", "n8-t1", {"samples": 8, "temperature": 1.0}),
        ("samples=1", "greedy", {"samples": 1, "temperature": 0.0}),
        ("samples=16 max_tokens=512 name=long", "long", {"max_tokens": 512}),
        ("samples=4 seed=7", "n4-t0.7-s7", {"seed": 7}),
        ("samples=4 answer_format=number", "n4-t0.7-number", {"answer_format": "number"}),
        (
            "suffix='End with: The answer is <answer>.' name=instr",
            "instr",
            {"suffix": "End with: The answer is <answer>."},
        ),
        (
            "extra.min_agreement=0.5 extra.adaptive=true",
            None,
            {"extra": {"min_agreement": 0.5, "adaptive": True}},
        ),
    ],
)
def test_parse_config(spec: str, name: str | None, fields: dict[str, Any]) -> None:
    config = parse_config(spec)
    if name is not None:
        assert config.name == name
    for key, value in fields.items():
        assert getattr(config, key) == value


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("samples=0", "samples"),
        ("temperature=3", "temperature"),
        ("answer_format=poem", "answer_format"),
        ("bogus=1", "unknown config key"),
        ("samples", "not key=value"),
        ("name='two words'", "one word"),
    ],
)
def test_bad_configs_are_refused(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_config(spec)


def test_a_suffix_or_extra_changes_the_default_name() -> None:
    plain = parse_config("samples=16")
    assert parse_config("samples=16 suffix=x").name != plain.name
    assert parse_config("samples=16 extra.top_p=0.9").name != plain.name


def test_request_bodies() -> None:
    vote = RunConfig(
        "v",
        samples=16,
        temperature=0.7,
        suffix="End with: The answer is <answer>.",
        extra={"min_agreement": 0.5},
    )
    body = vote.request(ITEM)
    assert body["messages"] == [
        {"role": "user", "content": "What is 2 + 3?\nEnd with: The answer is <answer>."}
    ]
    assert (body["samples"], body["temperature"], body["seed"]) == (16, 0.7, 1000)
    assert (body["answer_format"], body["min_agreement"]) == ("auto", 0.5)
    greedy = RunConfig("g", samples=1).request(CHOICE)
    assert "temperature" not in greedy
    assert greedy["answer_format"] == "choice"
    assert RunConfig("n", answer_format="number").request(CHOICE)["answer_format"] == "number"


CODE = Item(
    "code-0000",
    "code",
    "dev",
    "Write add(a, b).",
    "def add(a, b):\n    return a + b\n",
    "code",
    {"entry_point": "add", "tests": ["assert add(2, 3) == 5"]},
)


def test_a_verified_config_sends_a_code_items_tests_and_only_those() -> None:
    config = parse_config("samples=8 verify=true")
    assert config.verify and config.name == "n8-t0.7-verified"
    body = config.request(CODE)
    assert body["verify"] == {
        "tests": ["assert add(2, 3) == 5"],
        "entry_point": "add",
        "timeout_s": 5.0,
    }
    assert "verify" not in config.request(ITEM)
    assert "verify" not in parse_config("samples=8").request(CODE)
