"""What a way of answering cost and how often it was right, side by side on the same items.

A ``Cost`` is one row: which items it got right, the completion tokens and the wall time it
spent, and the samples that voted. Rows come from the harness's recorded runs (``measured``) or
from replays on them (``bench.rig.replay``); every row of a comparison covers the same items,
so the tables give accuracy with its Wilson 95% interval, tokens and wall time as ratios to the
first row, and the exact McNemar test against it (``evaluation.stats``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.rig.measure import ratio
from bench.rig.report import Report, Table
from evaluation.judge import ItemRun
from evaluation.stats import compare, wilson

COLUMNS = [
    "config",
    "items",
    "right",
    "accuracy",
    "95% CI",
    "samples/item",
    "tokens/item",
    "tokens ratio",
    "wall/item",
    "wall ratio",
]


@dataclass(frozen=True)
class Cost:
    """One way of answering over a set of items: right or not per item, and what it spent."""

    name: str
    right: Mapping[str, bool]  # item id -> the answer was right
    tokens: int  # completion tokens, over all items
    wall: float  # seconds (or engine steps, in a replay), over all items
    samples: int  # samples that finished and voted, over all items


def measured(name: str, runs: Mapping[str, ItemRun]) -> Cost:
    """A config as the server answered it: its voted answer, its usage, the client's wall time."""
    return Cost(
        name,
        {item: bool(run.server_answer_correct) for item, run in runs.items()},
        sum(run.completion_tokens for run in runs.values()),
        sum(run.wall_s for run in runs.values()),
        sum(1 for run in runs.values() for s in run.samples if s.finish_reason != "abort"),
    )


def cost_table(title: str, costs: Sequence[Cost]) -> Table:
    """Accuracy with its Wilson interval, and the per-item costs with their ratios to row one."""
    table = Table(title, COLUMNS)
    base = costs[0] if costs else None
    for cost in costs:
        items, right = len(cost.right), sum(cost.right.values())
        low, high = wilson(right, items)
        per_item = float(items) if items else float("nan")
        table.add(
            cost.name,
            items,
            right,
            right / per_item,
            f"{low:.2f}-{high:.2f}",
            cost.samples / per_item,
            cost.tokens / per_item,
            ratio(float(cost.tokens), float(base.tokens)) if base else None,
            cost.wall / per_item,
            ratio(cost.wall, base.wall) if base else None,
        )
    return table


def comparisons(costs: Sequence[Cost]) -> list[dict[str, Any]]:
    """Every row against the first on their shared items: the exact McNemar test."""
    if not costs:
        return []
    base = costs[0]
    return [asdict(compare(c.name, base.name, c.right, base.right)) for c in costs[1:]]


def comparison_table(costs: Sequence[Cost]) -> Table:
    """The paired comparisons as a table (the p-value as text, so small ones stay readable)."""
    base = costs[0].name if costs else "?"
    table = Table(
        f"Paired against {base} on the same items (exact McNemar)",
        ["config", "items", "both right", "only config", f"only {base}", "both wrong", "p"],
    )
    for pair in comparisons(costs):
        table.add(
            pair["a"],
            pair["items"],
            pair["both"],
            pair["only_a"],
            pair["only_b"],
            pair["neither"],
            f"{pair['p_value']:.3g}",
        )
    return table


def tabulate(report: Report, title: str, costs: Sequence[Cost]) -> None:
    """Both tables into the report, and their figures for ``--json``."""
    report.tables += [cost_table(title, costs), comparison_table(costs)]
    report.figures["rows"] = report.tables[-2].as_dicts()
    report.figures["comparisons"] = comparisons(costs)
