"""Numeric item sets from reasoning-gym's generators, with configs sized for a 135M model.

The configs are sized on SmolLM2-135M, measured on the embedded model (greedy / 16-sample vote at
temperature 0.7): with one- or two-digit terms, sums and mixed expressions were near hopeless
(about 1 in 6 either way, 2-digit chain sums with negative results never right); with one-digit
terms, chain sums were 6/20 greedy and 9/20 by vote, mixed expressions 2/20 and 3/20. So the two
main sets use one-digit terms (two or three of them), where a vote has room to help; products keep
one or two digits, and leg counting and gsm_symbolic are the hard end. Where a question
carries an arithmetic expression, its gold answer is recomputed exactly from the expression
(``exact_value``) and items whose answer disagrees are dropped, so a generator bug cannot put a
wrong gold answer into the data. Duplicate questions are skipped, so dev and test never share one.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from evaluation.items.store import Item

_DROPPED_METADATA = frozenset({"source_dataset", "difficulty", "answer_cot"})


@dataclass(frozen=True)
class GymSet:
    """One reasoning-gym generator, its config, and how many dev and test items to keep."""

    name: str
    generator: str
    config: dict[str, Any]
    dev: int
    test: int
    check_expression: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


GYM_SETS: tuple[GymSet, ...] = (
    GymSet(
        "basic_arithmetic",
        "basic_arithmetic",
        # Parentheses on: reasoning-gym's parenthesis-free path evaluates left to right, ignoring
        # precedence; the other path is evaluated by Python. Division off: it floors.
        {
            "min_terms": 2,
            "max_terms": 3,
            "min_digits": 1,
            "max_digits": 1,
            "operators": ["+", "-", "*"],
            "allow_parentheses": True,
            "allow_negation": False,
            "format_style": "simple",
            "whitespace": "single",
        },
        dev=75,
        test=150,
        check_expression=True,
    ),
    GymSet(
        "chain_sum",
        "chain_sum",
        {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 1, "allow_negation": False},
        dev=75,
        test=150,
        check_expression=True,
    ),
    GymSet(
        "products",
        "products",
        {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2, "allow_negation": False},
        dev=20,
        test=40,
        check_expression=True,
    ),
    GymSet(
        "leg_counting",
        "leg_counting",
        {"min_animals": 2, "max_animals": 3, "min_instances": 1, "max_instances": 4},
        dev=20,
        test=40,
    ),
    GymSet("gsm_symbolic", "gsm_symbolic", {"difficulty": 1.0}, dev=20, test=40),
)


def set_seed(seed: int, name: str) -> int:
    """A per-set seed, so sets drawn with one base seed are not correlated with each other."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31)


def exact_value(expression: str) -> Fraction:
    """The exact value of an integer expression with + - * / and parentheses (nothing else)."""
    tree = ast.parse(expression.replace("×", "*"), mode="eval")
    return _value(tree.body)


def _value(node: ast.expr) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
    raise ValueError(f"not a plain arithmetic expression: {ast.dump(node)[:80]}")


def gym_items(spec: GymSet, seed: int) -> tuple[list[Item], dict[str, int]]:
    """The set's unique, verified items in generation order (split assigned later), and counts."""
    import reasoning_gym

    wanted = spec.dev + spec.test
    pool = wanted * 4  # room for duplicates and dropped items; part of the recorded config
    dataset = reasoning_gym.create_dataset(
        spec.generator, seed=set_seed(seed, spec.name), size=pool, **spec.config
    )
    seen: set[str] = set()
    items: list[Item] = []
    counts = {"duplicates": 0, "wrong_gold": 0}
    for index in range(pool):
        if len(items) == wanted:
            break
        entry = dataset[index]
        question, answer = str(entry["question"]).strip(), str(entry["answer"]).strip()
        if question in seen:
            counts["duplicates"] += 1
            continue
        metadata = {k: v for k, v in entry["metadata"].items() if k not in _DROPPED_METADATA}
        if spec.check_expression and exact_value(metadata["expression"]) != Fraction(answer):
            counts["wrong_gold"] += 1
            continue
        seen.add(question)
        metadata = _plain(metadata)
        items.append(
            Item(
                f"{spec.name}-{len(items):04d}",
                spec.name,
                "dev",
                question,
                answer,
                "number",
                metadata,
            )
        )
    if len(items) < wanted:
        raise RuntimeError(f"{spec.name}: only {len(items)} usable items of {wanted} wanted")
    return items, counts


def gym_config(spec: GymSet, seed: int) -> dict[str, Any]:
    """The exact generator call, for the manifest."""
    pool = (spec.dev + spec.test) * 4
    return {"seed": set_seed(seed, spec.name), "size": pool, **spec.config}


def _plain(value: Any) -> Any:
    """Tuples to lists, dataclasses to dicts, other objects to strings: plain JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # e.g. a Fraction in gsm_symbolic's variables
