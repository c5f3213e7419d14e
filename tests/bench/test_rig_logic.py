"""The rig's own logic, without servers: percentiles, ratios, the engine-switch pause, tables,
optillm's in-band errors, process-group liveness, and every scenario's options."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.rig import cli
from bench.rig.determinism import probe_text
from bench.rig.frontend import cpu_seconds, leaf_functions
from bench.rig.measure import Call, Switcher, percentile, ratio, rotated
from bench.rig.optillm import optillm_error
from bench.rig.report import Report, Table
from bench.rig.systems import System, group_alive
from bench.rig.vote_cost import judging_table


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([4.0, 3.0, 2.0, 1.0], 99, 4.0),  # with few values, p99 is the maximum
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 101)], 100, 100.0),
        ([2.0, 2.0, 2.0], 1, 2.0),
    ],
)
def test_percentile_by_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_nothing_measured_is_not_a_number() -> None:
    assert math.isnan(percentile([], 50))
    assert math.isnan(ratio(math.nan, 1.0)) and math.isnan(ratio(1.0, 0.0))
    assert ratio(3.0, 2.0) == 1.5


def system(name: str, engine: str) -> System:
    return System(name, f"http://127.0.0.1/{name}", "m", engine)


async def test_pauses_only_when_the_engine_changes() -> None:
    vllm, upstream, quorum = system("vllm", "vllm"), system("up", "vllm"), system("q", "q")
    switcher = Switcher(pause_s=0.0)
    for target in (vllm, upstream, vllm, quorum, quorum, upstream, vllm):
        await switcher.to(target)
    assert switcher.pauses == 2


def test_each_system_leads_a_round_in_turn() -> None:
    systems = [system(n, n) for n in "abc"]
    firsts = [rotated(systems, r)[0].name for r in range(4)]
    assert firsts == ["a", "b", "c", "a"]
    assert sorted(s.name for s in rotated(systems, 5)) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Error: Could not generate any candidates", True),
        ("  Error: upstream 400", True),
        (None, True),
        ("The answer is 5.", False),
        ("No error here: 5", False),
    ],
)
def test_optillm_errors_arrive_as_text(text: str | None, error: bool) -> None:
    assert optillm_error(text) is error


def test_tables_print_as_markdown_and_save_as_json(tmp_path: Path) -> None:
    table = Table("T", ["system", "p50 ms", "x"])
    table.add("vllm", 1234.5, 1.0)
    table.add("quorum", 9.876, math.nan)
    assert table.markdown().splitlines()[2:] == [
        "| system | p50 ms | x |",
        "| --- | --- | --- |",
        "| vllm | 1,234 | 1.00 |",
        "| quorum | 9.88 | n/a |",
    ]
    report = Report("s", {"date": "d"}, tables=[table], figures={"r": math.nan})
    report.save(tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["tables"]["T"][1] == {"system": "quorum", "p50 ms": 9.876, "x": None}
    assert saved["figures"] == {"r": None} and saved["failures"] == []


def test_every_scenario_has_its_options() -> None:
    parser = cli.parser()
    for name in cli.SCENARIOS:
        args = parser.parse_args([name, "--budget-s", "5"])
        assert args.scenario == name and args.budget_s == 5.0


def test_a_group_is_alive_until_its_last_process_is_reaped() -> None:
    """The rig waits on this before it calls an engine stopped: a zombie does not count."""
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        start_new_session=True,
    ) as child:
        assert group_alive(child.pid)
        child.kill()
        child.wait()
        assert not group_alive(child.pid)


@pytest.mark.parametrize(
    ("collapsed", "expected"),
    [
        ("", []),
        ("main;loop;step 3\nmain;loop;detok 1\n", [("step", 0.75), ("detok", 0.25)]),
        ("a;x 1\nb;x 1\nc;y 2\n", [("x", 0.5), ("y", 0.5)]),  # self time adds up across stacks
        ("a (f.py:1);b (g.py:2) 4\n", [("b (g.py:2)", 1.0)]),  # spaces inside a frame
        ("garbage line\nmain;x 2\n", [("x", 1.0)]),  # a line without a count is skipped
    ],
)
def test_profile_self_time_shares(collapsed: str, expected: list[tuple[str, float]]) -> None:
    assert leaf_functions(collapsed, 5) == expected


def test_a_process_cpu_time_grows_with_its_work() -> None:
    before = cpu_seconds(os.getpid())
    sum(i * i for i in range(3_000_000))
    assert cpu_seconds(os.getpid()) > before


def test_the_judging_benchmarks_rows_become_a_table() -> None:
    output = (
        "noise before the table\n"
        "           p50 ms   p99 ms  loop lag p50 ms     p99     max\n"
        "before       3.47    13.11             0.60    5.22   12.07\n"
        "after        7.79    58.63             0.39    8.20   nan\n"
        "after        x    1    2    3    4\n"  # not a row of figures
        "ratio after / before, p50: 2.24x\n"
    )
    rows = judging_table(output).rows
    assert [row[:3] for row in rows] == [["before", 3.47, 13.11], ["after", 7.79, 58.63]]
    assert math.isnan(rows[1][5])


ABSTAINED = {"answer": None, "text": None, "samples": [{"text": "The sky is blue because"}]}


@pytest.mark.parametrize(
    ("status", "payload", "precise", "expected"),
    [
        (200, ABSTAINED, True, "The sky is blue because"),  # no answer, still an output
        (200, {"text": "42", "samples": [{"text": "so 42"}]}, True, "so 42"),
        (200, {"text": "42", "samples": []}, True, None),
        (200, {"samples": [{"text": None}]}, True, None),
        (200, {"samples": "not a list"}, True, None),
        (500, ABSTAINED, True, None),
        (200, {"choices": [{"message": {"content": "hi"}}]}, False, "hi"),
        (200, {"choices": []}, False, None),
    ],
)
def test_the_probe_output_compared(
    status: int, payload: dict[str, object], precise: bool, expected: str | None
) -> None:
    assert probe_text(Call(status, 0.1, 1, payload), precise) == expected
