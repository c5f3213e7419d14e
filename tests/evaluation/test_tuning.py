"""Choosing defaults by replay: the grid, the rule that picks, and the pooled votes it reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decoding.pruning import PruneSpec
from decoding.stopping import BetaStopping, WindowStopping
from evaluation import tuning
from evaluation.judge import ItemRun
from evaluation.rules import replay_adaptive
from evaluation.tuning import FIXED_VOTE, Measured, Setting
from tests.evaluation.test_replay import CASES, WINDOW, Trace, recorded

RULES = [("beta 0.95", BetaStopping()), ("esc 5", WindowStopping())]


def measured(name: str, tokens: int, correct: int, n: int = 105, steps: int = 10) -> Measured:
    rule, _, pruned = name.partition(" + ")
    spec = PruneSpec(4, 10.0) if pruned else None
    setting = Setting(name, None if rule in ("fixed", FIXED_VOTE) else rule, None, spec)
    right = {str(i): i < correct for i in range(n)}
    return Measured(setting, tokens, steps, 0, 8 * n, right)


def test_the_grid_lists_no_pruning_first_then_each_rule_with_each_pruning() -> None:
    names = [s.name for s in tuning.grid(RULES, [2, 4], [10.0, 90.0])]
    assert names[:3] == [FIXED_VOTE, "beta 0.95", "esc 5"]
    assert names[3:7] == [f"fixed + prune w{w} p{p}" for w in (2, 4) for p in (10, 90)]
    assert names[-1] == "esc 5 + prune w4 p90"
    assert len(names) == 3 + 3 * 4


@pytest.mark.parametrize(
    ("n", "base", "correct", "ok"),
    [
        (105, 30, 30, True),
        (105, 30, 29, True),  # 1.05 items allowed: one
        (105, 30, 28, False),
        (99, 30, 29, False),  # 0.99 items allowed: none
        (100, 30, 29, True),
        (300, 80, 77, True),
        (300, 80, 76, False),
        (105, 0, 0, True),
    ],
)
def test_eligible_allows_one_item_lost_per_hundred(
    n: int, base: int, correct: int, ok: bool
) -> None:
    fixed = measured(FIXED_VOTE, 1000, base, n)
    assert tuning.eligible(measured("esc 5", 10, correct, n), fixed) is ok


def test_choose_takes_the_fewest_tokens_among_the_eligible() -> None:
    fixed = measured(FIXED_VOTE, 1000, 30)
    cheap_wrong = measured("beta 0.75", 300, 25)
    kept = measured("beta 0.8", 800, 29)
    dear = measured("beta 0.95", 950, 31)
    assert tuning.choose([dear, cheap_wrong, kept], fixed) is kept
    assert tuning.choose([cheap_wrong], fixed) is None


def test_choose_breaks_ties_by_steps_then_order() -> None:
    fixed = measured(FIXED_VOTE, 1000, 30)
    first, second = measured("beta 0.95", 800, 30, steps=9), measured("esc 5", 800, 30, steps=9)
    fewer_steps = measured("esc 3", 800, 30, steps=8)
    assert tuning.choose([first, second], fixed) is first
    assert tuning.choose([first, second, fewer_steps], fixed) is fewer_steps


def test_choose_defaults_prunes_under_the_chosen_rule_and_turns_pruning_on_only_if_it_pays() -> (
    None
):
    fixed = measured(FIXED_VOTE, 1000, 30)
    grid = [
        fixed,
        measured("beta 0.95", 900, 30),
        measured("esc 5", 700, 30),
        measured("beta 0.95 + prune w4 p10", 400, 30),  # not under the chosen rule
        measured("esc 5 + prune w4 p10", 600, 29),
        measured("fixed + prune w4 p10", 950, 30),  # eligible, but saves only 5%
    ]
    picked = tuning.choose_defaults(grid, fixed)
    assert picked.stopping is grid[2] and picked.prune is grid[4]
    assert picked.prune_alone is grid[5] and not picked.prune_by_default
    grid[5] = measured("fixed + prune w4 p10", 900, 29)
    assert tuning.choose_defaults(grid, fixed).prune_by_default
    grid[5] = measured("fixed + prune w4 p10", 500, 28)  # cheap, but two items lost
    assert not tuning.choose_defaults(grid, fixed).prune_by_default


def test_choose_defaults_falls_back_when_no_rule_is_eligible() -> None:
    fixed = measured(FIXED_VOTE, 1000, 30)
    grid = [fixed, measured("esc 5", 700, 20), measured("beta 0.95 + prune w4 p10", 900, 30)]
    picked = tuning.choose_defaults(grid, fixed, fallback_rule="beta 0.95")
    assert picked.stopping is None and picked.prune is grid[2]


def vote(traces: list[Trace]) -> ItemRun:
    """A recorded fixed vote of these traces."""
    samples = recorded(traces)
    return ItemRun("q", "s", "dev", "number", "c", {}, samples, None, 0.0, 0, {}, True)


def test_measure_replays_every_vote_as_the_referee_would() -> None:
    votes = {f"v{i}": vote(traces) for i, traces in enumerate(CASES.values())}
    fixed, beta, pruned = (
        tuning.measure(s, votes, WINDOW) for s in tuning.grid(RULES[:1], [2], [10.0])[:3]
    )
    assert fixed.tokens == sum(t.tokens for traces in CASES.values() for t in traces)
    assert fixed.voted == 8 * len(CASES) and fixed.pruned == 0
    assert beta.tokens < fixed.tokens and beta.voted < fixed.voted
    assert pruned.setting.name == "fixed + prune w2 p10" and pruned.pruned > 0
    for measured in (fixed, beta, pruned):
        single = {
            key: replay_adaptive(
                run.samples, measured.setting.stopping, prune=measured.setting.prune, window=WINDOW
            )
            for key, run in votes.items()
        }
        assert measured.tokens == sum(r.tokens for r in single.values())
        assert measured.steps == sum(r.steps for r in single.values())
        assert measured.right == {key: r.decision.correct for key, r in single.items()}


def record_line(item: str, config: str, samples: int) -> str:
    texts = [
        {"index": i, "text": "so the answer is 7.", "finish_reason": "stop", "tokens": 5}
        for i in range(samples)
    ]
    return json.dumps(
        {
            "v": 1,
            "item": {"id": item, "set": "s", "split": "dev", "answer": "7", "kind": "number"},
            "config": {"name": config, "samples": samples},
            "request": {"answer_format": "auto"},
            "response": {"answer": "7", "samples": texts},
            "error": None,
        }
    )


def test_load_votes_pools_files_and_configs_and_cuts_to_the_first_samples(tmp_path: Path) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one.write_text(record_line("a", "n16", 16) + "\n" + record_line("a", "other", 8) + "\n")
    two.write_text(record_line("a", "n8", 8) + "\n" + record_line("b", "n8", 8) + "\n")
    votes = tuning.load_votes([one, two], ["n16", "n8"], samples=8)
    assert sorted(votes) == ["one.jsonl:n16:a", "two.jsonl:n8:a", "two.jsonl:n8:b"]
    assert [s.index for s in votes["one.jsonl:n16:a"].samples] == list(range(8))
    assert votes["two.jsonl:n8:b"].config == "n8"
    two.write_text(record_line("c", "n8", 4) + "\n")
    with pytest.raises(ValueError, match="4 < 8"):
        tuning.load_votes([two], ["n8"], samples=8)
    with pytest.raises(ValueError, match="no OK runs"):
        tuning.load_votes([one], ["n16", "absent"])
