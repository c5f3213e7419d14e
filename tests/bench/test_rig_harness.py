"""The rig's evaluation scenarios without an engine: the harness asked item by item within the
budget (against a fake Quorum on ``httpx.MockTransport``), the configs each scenario sends, the
cost table and paired comparison, and the old sequential rounds replayed on fixed votes."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.rig import accuracy, adaptive, cli
from bench.rig.costs import Cost, comparisons, cost_table, measured
from bench.rig.harness import ask_items, first_error, judged
from bench.rig.measure import Deadline
from bench.rig.replay import round_sizes, rounds_cost, sequential_rounds
from evaluation.configs import RunConfig
from evaluation.items.store import Item
from evaluation.judge import Answer, JudgedSample
from evaluation.results import read_records

GREEDY = RunConfig("greedy", samples=1, temperature=0.0, max_tokens=8)
VOTE = RunConfig("n4-t0.7", samples=4, max_tokens=8)
ITEMS = [
    Item("q-0", "sums", "dev", "What is 2 + 3?", "5", "number"),
    Item("q-1", "sums", "dev", "What is 4 + 4?", "8", "number"),
    Item("q-2", "sums", "dev", "What is 1 + 6?", "7", "number"),
]


class Countdown(Deadline):
    """A budget that runs out after ``checks`` looks at it, whatever the clock says."""

    def __init__(self, checks: int) -> None:
        super().__init__(3600.0)
        self.left = checks

    def passed(self) -> bool:
        if self.left <= 0:
            self.hit = True
        self.left -= 1
        return self.hit


Answers = Callable[[str, dict[str, Any]], str | None]  # question, body -> the answer, or a 500


def fake_quorum(answers: Answers) -> httpx.AsyncClient:
    """A ``/v1/precise`` that answers ``answers(question, body)`` in every sample, 3 tokens each;
    an adaptive request aborts its second half."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        question = body["messages"][0]["content"]
        answer = answers(question, body)
        if answer is None:
            return httpx.Response(500, json={"error": {"message": "engine died"}})
        n = body["samples"]
        samples = [
            {
                "index": i,
                "seed": body["seed"] + i,
                "text": f"So the answer is {answer}.",
                "finish_reason": "abort" if body.get("adaptive") and i >= n // 2 else "stop",
                "tokens": 3,
            }
            for i in range(n)
        ]
        usage = {"completion_tokens": 3 * n}
        return httpx.Response(200, json={"answer": answer, "samples": samples, "usage": usage})

    return httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://fake")


def right_answer(question: str, body: dict[str, Any]) -> str:
    return {item.question: item.answer for item in ITEMS}[question]


def asked_pairs(path: Path) -> list[tuple[str, str]]:
    return [(r["item"]["id"], r["config"]["name"]) for r in read_records(path)]


async def test_every_config_on_every_item_in_a_rotated_order(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    async with fake_quorum(right_answer) as client:
        asked = await ask_items(client, ITEMS, [GREEDY, VOTE], path, Countdown(99))
    assert (asked.planned, asked.started, asked.failed, asked.out_of_time) == (3, 3, 0, False)
    assert asked_pairs(path) == [
        ("q-0", "greedy"),
        ("q-0", "n4-t0.7"),
        ("q-1", "n4-t0.7"),
        ("q-1", "greedy"),
        ("q-2", "greedy"),
        ("q-2", "n4-t0.7"),
    ]
    seeds = {r["config"]["name"]: r["request"]["seed"] for r in read_records(path)}
    assert seeds == {"greedy": 1000, "n4-t0.7": 1000}, "the same seeds for every config"


@pytest.mark.parametrize("checks", [0, 1, 2])
async def test_no_item_starts_once_the_budget_is_spent(tmp_path: Path, checks: int) -> None:
    path = tmp_path / "results.jsonl"
    async with fake_quorum(right_answer) as client:
        asked = await ask_items(client, ITEMS, [GREEDY, VOTE], path, Countdown(checks))
    assert asked.started == checks and asked.out_of_time
    assert sorted({item for item, _ in asked_pairs(path)}) == [i.id for i in ITEMS[:checks]]
    assert len(asked_pairs(path)) == 2 * checks, "an item started is finished"


async def test_a_run_on_the_same_results_goes_on_where_the_budget_stopped_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.jsonl"
    asked_of: list[str] = []

    def counting(question: str, body: dict[str, Any]) -> str:
        asked_of.append(question)
        return right_answer(question, body)

    async with fake_quorum(counting) as client:
        first = await ask_items(client, ITEMS, [GREEDY, VOTE], path, Countdown(1))
        second = await ask_items(client, ITEMS, [GREEDY, VOTE], path, Countdown(99))
    assert (first.started, first.out_of_time) == (1, True)
    assert (second.already, second.started, second.out_of_time) == (1, 2, False)
    assert asked_of.count(ITEMS[0].question) == 2, "the first item was not asked again"
    assert sorted(asked_pairs(path)) == sorted(
        (item.id, config) for item in ITEMS for config in ("greedy", "n4-t0.7")
    )


async def test_failures_are_counted_and_the_items_left_out(tmp_path: Path) -> None:
    def flaky(question: str, body: dict[str, Any]) -> str | None:
        vote_on_q1 = question == ITEMS[1].question and body["samples"] > 1
        return None if vote_on_q1 else right_answer(question, body)

    path = tmp_path / "results.jsonl"
    async with fake_quorum(flaky) as client:
        asked = await ask_items(client, ITEMS, [GREEDY, VOTE], path, Countdown(99))
    assert asked.failed == 1
    assert "engine died" in str(first_error(path))
    runs = await asyncio.to_thread(judged, path, ["greedy", "n4-t0.7"])
    assert {name: sorted(by_item) for name, by_item in runs.items()} == {
        "greedy": ["q-0", "q-2"],
        "n4-t0.7": ["q-0", "q-2"],
    }, "only the items every config answered"


async def test_the_recorded_runs_make_the_cost_rows(tmp_path: Path) -> None:
    def greedy_wrong_on_q0(question: str, body: dict[str, Any]) -> str:
        wrong = question == ITEMS[0].question and body["samples"] == 1
        return "6" if wrong else right_answer(question, body)

    adaptive_vote = RunConfig("adaptive", samples=4, max_tokens=8, extra={"adaptive": True})
    path = tmp_path / "results.jsonl"
    async with fake_quorum(greedy_wrong_on_q0) as client:
        await ask_items(client, ITEMS, [GREEDY, VOTE, adaptive_vote], path, Countdown(99))
    runs = await asyncio.to_thread(judged, path, ["greedy", "n4-t0.7", "adaptive"])
    costs = [measured(name, runs[name]) for name in ("greedy", "n4-t0.7", "adaptive")]
    rows = cost_table("t", costs).as_dicts()
    assert [(r["config"], r["items"], r["right"]) for r in rows] == [
        ("greedy", 3, 2),
        ("n4-t0.7", 3, 3),
        ("adaptive", 3, 3),
    ]
    assert [r["samples/item"] for r in rows] == [1.0, 4.0, 2.0], "aborted samples did not vote"
    assert [r["tokens ratio"] for r in rows] == [1.0, 4.0, 4.0]
    (pair, _) = comparisons(costs)
    assert (pair["a"], pair["b"], pair["only_a"], pair["only_b"]) == ("n4-t0.7", "greedy", 1, 0)


def cost(name: str, right: Sequence[bool], tokens: int, wall: float) -> Cost:
    return Cost(name, {f"q-{i}": r for i, r in enumerate(right)}, tokens, wall, len(right))


def test_the_table_gives_wilson_intervals_and_ratios_to_the_first_row() -> None:
    rows = cost_table(
        "t", [cost("greedy", [True, False], 20, 2.0), cost("vote", [True, True], 160, 5.0)]
    ).as_dicts()
    assert rows[0]["95% CI"] == "0.09-0.91" and rows[1]["95% CI"] == "0.34-1.00"
    assert (rows[0]["tokens ratio"], rows[0]["wall ratio"]) == (1.0, 1.0)
    assert (rows[1]["tokens ratio"], rows[1]["wall ratio"]) == (8.0, 2.5)
    assert (rows[1]["tokens/item"], rows[1]["wall/item"]) == (80.0, 2.5)


def test_nothing_answered_is_not_a_number() -> None:
    (row,) = cost_table("t", [cost("greedy", [], 0, 0.0)]).as_dicts()
    assert row["items"] == 0 and row["95% CI"] == "0.00-1.00"
    assert all(math.isnan(row[k]) for k in ("accuracy", "tokens/item", "tokens ratio"))


def test_mcnemar_pairs_every_row_with_the_first_on_shared_items() -> None:
    base = cost("greedy", [True, False, False, True], 4, 1.0)
    vote = cost("vote", [True, True, True, False], 16, 2.0)
    unpaired = Cost("other", {"elsewhere": True}, 1, 1.0, 1)
    first, second = comparisons([base, vote, unpaired])
    assert (first["both"], first["only_a"], first["only_b"], first["neither"]) == (1, 2, 1, 0)
    assert first["p_value"] == 1.0
    assert second["items"] == 0 and second["p_value"] == 1.0


@pytest.mark.parametrize(
    ("cap", "sizes"),
    [(1, [2]), (2, [2]), (4, [2, 2]), (5, [2, 2, 4]), (16, [2, 2, 4, 8]), (17, [2, 2, 4, 8, 16])],
)
def test_the_old_rounds_double_what_was_drawn(cap: int, sizes: list[int]) -> None:
    assert round_sizes(cap) == sizes


def sample(index: int, key: str | None, tokens: int, correct: bool = True) -> JudgedSample:
    answer = Answer(key, key, correct and key is not None)
    return JudgedSample(index, 1000 + index, answer, answer, None, "stop", tokens)


UNANIMOUS = [sample(i, "num:7/1", 10 + i) for i in range(16)]
SPLIT = [sample(i, f"num:{i}/1", 10 + i, correct=i == 0) for i in range(16)]


@pytest.mark.parametrize(
    ("samples", "correct", "used", "tokens", "share"),
    [
        # four agreeing samples settle the Beta rule after rounds of 2 and 2
        (UNANIMOUS, True, 4, 10 + 11 + 12 + 13, (11 + 13) / 25),
        # in any order: rounds draw in seed order
        (UNANIMOUS[::-1], True, 4, 10 + 11 + 12 + 13, (11 + 13) / 25),
        # never settled: every round, each as long as its longest sample; the first answer wins
        (SPLIT, True, 16, sum(range(10, 26)), (11 + 13 + 17 + 25) / 25),
        # no extractable answer: nothing to settle, nothing right
        ([sample(i, None, 5) for i in range(4)], False, 4, 20, 2.0),
        ([], False, 0, 0, 0.0),
    ],
)
def test_the_old_rounds_replayed(
    samples: list[JudgedSample], correct: bool, used: int, tokens: int, share: float
) -> None:
    rounds = sequential_rounds(samples)
    assert (rounds.correct, rounds.used, rounds.tokens) == (correct, used, tokens)
    assert rounds.share == pytest.approx(share)


def test_the_rounds_wall_is_the_votes_scaled_by_their_critical_path() -> None:
    class Run:
        def __init__(self, samples: list[JudgedSample], wall_s: float) -> None:
            self.samples, self.wall_s = samples, wall_s

    fixed: dict[str, Any] = {"a": Run(UNANIMOUS, 50.0), "b": Run(SPLIT, 10.0)}
    rounds = rounds_cost("rounds", fixed, lambda r: float(r.wall_s))
    assert rounds.wall == pytest.approx(50.0 * 24 / 25 + 10.0 * 66 / 25)
    assert (rounds.samples, dict(rounds.right)) == (20, {"a": True, "b": True})


def options(scenario: str, *flags: str) -> argparse.Namespace:
    return cli.parser().parse_args([scenario, *flags])


def test_the_evaluation_scenario_asks_greedy_then_a_vote() -> None:
    greedy, vote = accuracy.configs(options("evaluation", "--max-tokens", "32"))
    assert (greedy.name, greedy.samples, greedy.temperature) == ("greedy", 1, 0.0)
    assert (vote.name, vote.samples, vote.temperature) == ("n8-t0.7-m32", 8, 0.7)
    assert greedy.max_tokens == vote.max_tokens == 32
    assert options("evaluation").split == "dev" and options("evaluation").limit == 40


def test_the_adaptive_scenario_asks_a_fixed_vote_then_adaptive() -> None:
    fixed, live, pruned = adaptive.configs(options("adaptive", "--samples", "8", "--prune"))
    assert [c.name for c in (fixed, live, pruned)] == ["n8-t0.7", "adaptive", "adaptive-prune"]
    assert {c.samples for c in (fixed, live, pruned)} == {8}
    assert (fixed.extra, live.extra) == ({}, {"adaptive": True})
    assert pruned.extra == {"adaptive": True, "prune": True}
    assert len(adaptive.configs(options("adaptive"))) == 2


@pytest.mark.parametrize(
    ("scenario", "flags"),
    [
        ("evaluation", ["--samples", "1"]),
        ("evaluation", ["--temperature", "3"]),
        ("evaluation", ["--max-tokens", "0"]),
        ("adaptive", ["--samples", "1"]),
    ],
)
def test_options_the_harness_refuses_end_the_run_plainly(scenario: str, flags: list[str]) -> None:
    module = accuracy if scenario == "evaluation" else adaptive
    with pytest.raises(SystemExit, match=r"bench\.rig"):
        module.configs(options(scenario, *flags))
