"""Which configs are the baselines, and how systems and abstention curves are built."""

from __future__ import annotations

import dataclasses
from typing import Any

from evaluation.analysis import abstention, build_systems, default_config, greedy_config
from evaluation.judge import ItemRun
from tests.evaluation.test_rules import run_of


def run(config: str, answers: list[str | None], **spec: Any) -> ItemRun:
    base = run_of(answers)
    full = {"name": config, "samples": len(answers), "temperature": 0.7, **spec}
    return dataclasses.replace(base, config=config, config_spec=full)


def test_default_is_the_plain_config_and_greedy_the_named_one() -> None:
    runs = {
        "hot": {"q": run("hot", ["5"] * 16, temperature=1.0)},
        "instr": {"q": run("instr", ["5"] * 16, suffix="End with the answer.")},
        "plain": {"q": run("plain", ["5"] * 8)},
        "single": {"q": run("single", ["5"], samples=1)},
        "greedy": {"q": run("greedy", ["5"], samples=1)},
    }
    assert default_config(runs) == "plain"
    assert greedy_config(runs) == "greedy"
    assert greedy_config({k: v for k, v in runs.items() if k != "greedy"}) == "single"
    assert default_config({"hot": runs["hot"]}) == "hot"
    assert default_config({"greedy": runs["greedy"]}) is None


def test_systems_cover_every_n_up_to_the_cap_and_note_absent_signals() -> None:
    runs = {"v": {"q": run("v", ["5", "6", "5", "5", "6", "5"])}}
    systems, notes = build_systems(runs)
    names = {s.name for s in systems}
    assert {"v/majority@1", "v/majority@2", "v/majority@4", "v/majority@6"} <= names
    assert "v/majority@8" not in names
    assert {"v/adaptive-beta", "v/adaptive-esc", "v/server"} <= names
    assert any("greedy+vote" in n and "no greedy config" in n for n in notes)
    assert any("deepconf-tail" in n for n in notes)


def test_abstention_curve_trades_coverage_for_precision() -> None:
    runs = {
        "v": {
            "right-sure": run("v", ["5"] * 4),
            "right-split": run("v", ["5", "5", "6", "7"]),
            "wrong-split": run("v", ["6", "7", "8", "6"]),
            "no-answer": run("v", [None] * 4),
        }
    }
    systems, _ = build_systems(runs)
    full = next(s for s in systems if s.name == "v/majority@4")
    curve = {p["min_agreement"]: p for p in abstention(full)}
    assert (curve[0.0]["coverage"]["k"], curve[0.0]["precision"]["k"]) == (3, 2)
    assert (curve[0.5]["coverage"]["k"], curve[0.5]["precision"]["k"]) == (3, 2)
    assert (curve[0.6]["coverage"]["k"], curve[0.6]["precision"]["k"]) == (1, 1)
    assert curve[1.0]["precision"]["rate"] == 1.0
