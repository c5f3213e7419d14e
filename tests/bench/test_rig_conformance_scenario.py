"""The conformance scenario around its checks, without an engine: the runner's failures, the
stop string it picks, the table, which systems it starts together, and the command itself
against a scripted ``quorum serve``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.rig import conformance
from bench.rig.conformance_checks import CHECKS
from bench.rig.conformance_kit import Check, CheckFailed, Outcome, Target, run_checks, stop_string
from bench.rig.systems import Setup
from tests.e2e.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
MODEL = "scripted-model"


async def fails(target: Target) -> None:
    raise CheckFailed("the answer broke a rule:\n<html>\n  <h1>Bad Request</h1>")


async def errors(target: Target) -> None:
    raise KeyError("choices")


async def hangs(target: Target) -> None:
    await asyncio.Event().wait()


async def passes(target: Target) -> None:
    return None


async def test_every_check_runs_and_an_error_or_a_hang_is_a_failure_with_its_reason() -> None:
    checks = [Check(f.__name__, f.__name__, f) for f in (fails, errors, hangs, passes)]
    target: Any = None  # these checks never touch it
    outcomes = await run_checks(target, checks, timeout_s=0.05)
    assert outcomes == [
        Outcome("fails", False, "the answer broke a rule: <html> <h1>Bad Request</h1>"),
        Outcome("errors", False, "error: KeyError: 'choices'"),
        Outcome("hangs", False, "no answer within 0.05 s"),
        Outcome("passes", True),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1, 2, 3, 4, 5, 6", (" 4,", 8)),
        ("abcdef", ("def", 3)),
        ("ab", None),  # too short
        ("", None),
        ("x      ", None),  # only blanks in the second half
        ("abcabcabc", ("bca", 1)),  # repeated: its first occurrence counts
        ("aaaaaa", None),  # every candidate first occurs at the start: nothing precedes it
        ("héllo wörld", (" wö", 5)),  # unicode: characters, not bytes
    ],
)
def test_the_stop_string_comes_from_the_second_half_and_something_precedes_it(
    text: str, expected: tuple[str, int] | None
) -> None:
    picked = stop_string(text)
    assert picked == expected
    if picked is not None:
        stop, first = picked
        assert text.index(stop) == first > 0 and len(stop.strip()) > 0


def test_the_table_has_a_row_per_check_a_column_per_system_and_totals() -> None:
    checks = CHECKS[:3]
    vllm = [Outcome("chat", True), Outcome("stream", False, "no [DONE]")]
    results = {
        "vllm": [*vllm, Outcome("stream-usage", True)],
        "quorum": [Outcome(c.key, True) for c in checks],
    }
    table = conformance.tabulate(checks, results)
    assert table.columns == ["check", "vllm", "quorum"]
    assert [row[1:] for row in table.rows] == [
        ["pass", "pass"],
        ["fail", "pass"],
        ["pass", "pass"],
        ["2/3", "3/3"],
    ]
    assert table.rows[1][0] == f"2. {checks[1].title}"
    assert conformance.reasons(checks, results) == ["vllm failed 2 (stream): no [DONE]"]


def options(**given: Any) -> SimpleNamespace:
    """The scenario's options as argparse would give them."""
    defaults = {"systems": None, "optillm": None, "vllm_url": None, "quorum_url": None}
    defaults |= {"model": "tiny", "served_name": None}
    return SimpleNamespace(**(defaults | given))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, ["vllm", "quorum", "quorum-upstream"]),
        ({"optillm": "/x/optillm"}, ["vllm", "quorum", "quorum-upstream", "optillm"]),
        ({"systems": "quorum"}, ["quorum"]),
        ({"systems": "optillm,vllm,"}, ["vllm", "optillm"]),  # the table's order, not the option's
        ({"systems": "quorum", "optillm": "/x/optillm"}, ["quorum"]),  # --systems decides
    ],
)
def test_which_systems_are_checked(given: dict[str, str], expected: list[str]) -> None:
    assert conformance.wanted(options(**given)) == expected


def test_an_unknown_system_is_refused() -> None:
    with pytest.raises(SystemExit, match="gpt"):
        conformance.wanted(options(systems="quorum,gpt"))


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[int]]:
    """A setup that prepares no model, counting how often it was asked for."""
    asked: list[int] = []

    def setup(args: Any) -> Setup:
        asked.append(1)
        return Setup(tmp_path / "model", MODEL, 256, tmp_path, tmp_path)

    monkeypatch.setattr(conformance, "setup_from", setup)
    yield asked


def test_vllm_starts_with_what_stands_in_front_of_it_then_quorum_alone(
    no_model: list[int], tmp_path: Path
) -> None:
    optillm = tmp_path / "optillm"
    optillm.touch()
    args = options(optillm=str(optillm))
    front, alone = conformance.groups(args, conformance.wanted(args))
    assert [s.name for s in front] == ["vllm", "quorum-upstream", "optillm"]
    vllm = front[0]
    assert all(s.engine == vllm.engine for s in front), "one engine behind the first group"
    upstream, optillm_process = front[1].process, front[2].process
    assert upstream is not None and f"{vllm.base_url}/v1" in upstream.command
    assert optillm_process is not None and f"{vllm.base_url}/v1" in optillm_process.command
    assert [s.name for s in alone] == ["quorum"] and alone[0].engine != vllm.engine
    assert no_model == [1], "the model is prepared once"


def test_servers_given_by_url_are_asked_and_nothing_is_prepared(no_model: list[int]) -> None:
    args = options(vllm_url="http://v:1/v1", quorum_url="http://q:2", systems="vllm,quorum")
    found = conformance.groups(args, conformance.wanted(args))
    assert [[(s.name, s.base_url, s.process) for s in group] for group in found] == [
        [("vllm", "http://v:1", None)],
        [("quorum", "http://q:2", None)],
    ]
    assert no_model == []


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``quorum serve`` on the scripted engine (hidden test setting): a real process, no model."""
    folder = tmp_path_factory.mktemp("scripted")
    server = ServerProcess(
        ["--served-name", MODEL, "--max-model-len", "512"],
        folder / "quorum.log",
        env={"QUORUM_TEST_ENGINE": "scripted", "QUORUM_CACHE_DIR": str(folder / "cache")},
    )
    yield server
    assert server.stop() == 0


def test_the_command_checks_a_running_quorum_and_saves_the_table(
    scripted: ServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.rig", "conformance", "--systems", "quorum",
         "--quorum-url", scripted.base_url, "--served-name", MODEL, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| check | quorum |" in done.stdout and "| passed | 13/14 |" in done.stdout
    report = json.loads(out.read_text())
    quorum = report["figures"]["systems"]["quorum"]
    assert quorum["passed"] == 13
    failed = {key: o["reason"] for key, o in quorum["outcomes"].items() if not o["passed"]}
    # the scripted engine offers one alternative per token at most: the check sees it
    assert list(failed) == ["logprobs"] and "not 2 each" in failed["logprobs"]
    assert f"quorum failed 9 (logprobs): {failed['logprobs']}" in report["notes"]
    assert [c["key"] for c in report["figures"]["checks"]] == [c.key for c in CHECKS]
