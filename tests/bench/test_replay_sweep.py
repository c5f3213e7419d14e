"""The replay sweep of bench/adaptive.py: settings replayed on pooled fixed votes, tabulated
against the fixed vote, and the rule's picks printed only for a whole grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import adaptive
from bench.rig.costs import cost_table
from bench.rig.replay import SWEEP, replay_costs
from evaluation import tuning
from tests.evaluation.test_replay import CASES, WINDOW
from tests.evaluation.test_tuning import record_line, vote


def test_the_fixed_vote_is_the_base_and_the_old_rounds_come_last() -> None:
    votes = {name: vote(traces) for name, traces in CASES.items()}
    settings = tuning.grid(SWEEP[:2], [2], [10.0])
    measured = [tuning.measure(s, votes, WINDOW) for s in settings]
    costs = replay_costs(measured, votes)
    assert [c.name for c in costs] == [s.name for s in settings] + ["old sequential rounds"]
    rows = cost_table("t", costs).as_dicts()
    assert rows[0]["config"] == tuning.FIXED_VOTE and rows[0]["tokens ratio"] == 1.0
    for row, m in zip(rows[1:], measured[1:], strict=False):
        assert row["tokens ratio"] == pytest.approx(m.tokens / measured[0].tokens)
        assert row["wall ratio"] == pytest.approx(m.steps / measured[0].steps)


def test_the_command_pools_files_and_picks_only_for_a_whole_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one.write_text(record_line("a", "n16", 16) + "\n")
    two.write_text(record_line("a", "n8", 8) + "\n" + record_line("b", "n8", 8) + "\n")
    out = tmp_path / "out.json"
    args = ["--replay", str(one), str(two), "--config", "n16", "n8", "--samples", "8"]
    assert adaptive.main([*args, "--warmups", "2", "--percentiles", "50", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 votes: n16 (1), n8 (2), first 8 samples of each" in printed
    found = json.loads(out.read_text())
    names = [row["config"] for row in found["rows"]]
    assert names[0] == tuning.FIXED_VOTE and f"{SWEEP[1][0]} + prune w2 p50" not in names
    assert f"{SWEEP[0][0]} + prune w2 p50" in names and names[-1] == "old sequential rounds"
    assert found["choice"]["stopping"] == SWEEP[0][0]  # unanimous votes: nothing is lost
    assert adaptive.main([*args, "--only", SWEEP[0][0], "--json", str(out)]) == 0
    assert json.loads(out.read_text())["choice"] is None
    assert [r["config"] for r in json.loads(out.read_text())["rows"]] == [
        tuning.FIXED_VOTE,
        SWEEP[0][0],
        "old sequential rounds",
    ]
    with pytest.raises(SystemExit, match="not in the grid"):
        adaptive.main([*args, "--only", "no such rule"])
