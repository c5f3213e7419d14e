"""Smoke runs of every rig scenario on the tiny model, so the rig cannot rot: each runs as the
one command the README gives, with tiny sizes, and its JSON has the promised shape. Figures
are not checked (they are the bench's to report, not a test's to assert)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelprep.embedded import default_cache_dir
from modelprep.tiny import build_tiny_model
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]
TINY = ["--model", "tiny", "--max-model-len", "256", "--budget-s", "300", "--switch-pause", "0"]


def rig(tmp_path: Path, *args: str, timeout_s: float = 600) -> dict[str, Any]:
    """Run ``python -m bench.rig ARGS --json``; the saved report."""
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.rig", *args, "--json", str(out), "--logs", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["failures"] == [], report["failures"]
    assert report["context"]["command"].startswith("python -m bench.rig")
    assert "### " in done.stdout, "the tables are printed"
    return report


@pytest.fixture(scope="module")
def tiny_quorum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One in-process Quorum on the tiny model for the scenarios that only need one."""
    folder = tmp_path_factory.mktemp("rig")
    model = build_tiny_model(default_cache_dir() / "test-models" / "tiny-llama")
    server = ServerProcess(
        ["--model", str(model), "--served-name", "tiny-llama", "--max-model-len", "256"],
        folder / "quorum.log",
        env={"TMPDIR": str(folder)},
    )
    yield server
    assert server.stop() == 0


def test_overhead_starts_all_three_systems_and_compares_them(tmp_path: Path) -> None:
    report = rig(
        tmp_path, "overhead", *TINY, "--lengths", "1,4", "--rounds", "1", "--clients", "1,2",
        "--burst-tokens", "4", "--per-client", "1", "--burst-rounds", "1", "--cycles", "1",
    )  # fmt: skip
    latency = report["tables"]["Latency (one chat, temperature 0)"]
    cells = {(row["system"], row["max_tokens"]) for row in latency}
    systems = {"vllm", "quorum", "quorum-upstream"}
    assert cells == {(s, n) for s in systems for n in (1, 4)}
    assert all(row["n"] == 1 and row["errors"] == 0 for row in latency)
    assert all(row["p50 x"] == 1.0 for row in latency if row["system"] == "vllm")
    assert set(report["figures"]["per_token_ms"]) == systems
    throughput = report["figures"]["throughput"]
    assert set(throughput) == {f"{s}@{c}" for s in systems for c in (1, 2)}
    assert all(cell["tokens/s"] > 0 for cell in throughput.values())


def test_cost_of_n_against_greedy_raw_and_the_loop(
    tmp_path: Path, tiny_quorum: ServerProcess
) -> None:
    report = rig(
        tmp_path, "cost-of-n", *TINY, "--quorum-url", tiny_quorum.base_url,
        "--samples", "2,4", "--max-tokens", "4", "--rounds", "1",
    )  # fmt: skip
    rows = report["figures"]["cost_of_n"]
    assert [row["N"] for row in rows] == [1, 2, 4]
    assert rows[0]["x greedy"] == 1.0
    assert all(row["raw n=N ms"] > 0 and row["N sequential ms"] > 0 for row in rows[1:])
    assert all(row["N concurrent n=1 ms"] > 0 for row in rows[1:])


def test_determinism_counts_distinct_outputs_under_load(
    tmp_path: Path, tiny_quorum: ServerProcess
) -> None:
    report = rig(
        tmp_path, "determinism", *TINY, "--url", tiny_quorum.base_url,
        "--probes", "8", "--concurrency", "2", "--background", "2", "--max-tokens", "6",
    )  # fmt: skip
    figures = report["figures"]
    assert figures["probes"] == 8 and figures["failed"] == 0
    assert sum(figures["counts"]) == 8 and figures["distinct"] == len(figures["counts"]) >= 1
    assert figures["mode"] == "none", "the CPU engine promises no batch invariance"


def test_vote_cost_runs_the_judging_bench(tmp_path: Path) -> None:
    report = rig(tmp_path, "vote-cost", "--votes", "5", "--budget-s", "300")
    judging = ROOT / "bench" / "judging.py"
    if judging.exists():
        assert report["figures"]["exit_code"] == 0
    else:
        assert any("judging.py" in note for note in report["notes"])


def on_two_items(
    tmp_path: Path, quorum: ServerProcess, scenario: str, *args: str
) -> dict[str, Any]:
    """A scenario that runs the evaluation harness, on two short items and a few tokens."""
    items = ["--sets", "basic_arithmetic", "--limit", "2", "--max-tokens", "8"]
    return rig(tmp_path, scenario, *TINY, "--quorum-url", quorum.base_url, *items, *args)


def saved_results(report: dict[str, Any], pairs: int) -> None:
    """The harness's results file, one line per (item, config), and its report beside it."""
    results = Path(report["figures"]["results"])
    assert len(results.read_text().splitlines()) == pairs
    assert (results.parent / "eval-report" / "report.md").exists()


def test_evaluation_greedy_against_a_vote_on_eval_items(
    tmp_path: Path, tiny_quorum: ServerProcess
) -> None:
    report = on_two_items(tmp_path, tiny_quorum, "evaluation", "--samples", "2")
    rows = report["figures"]["rows"]
    assert [row["config"] for row in rows] == ["greedy", "n2-t0.7-m8"]
    assert all(row["items"] == 2 for row in rows)
    assert rows[0]["tokens ratio"] == rows[0]["wall ratio"] == 1.0
    assert [row["samples/item"] for row in rows] == [1.0, 2.0]
    (pair,) = report["figures"]["comparisons"]
    assert (pair["a"], pair["b"], pair["items"]) == ("n2-t0.7-m8", "greedy", 2)
    saved_results(report, pairs=2 * 2)


def test_adaptive_against_a_fixed_vote_and_the_old_rounds(
    tmp_path: Path, tiny_quorum: ServerProcess
) -> None:
    report = on_two_items(tmp_path, tiny_quorum, "adaptive", "--samples", "4", "--prune")
    rows = report["figures"]["rows"]
    assert [row["config"] for row in rows] == [
        "n4-t0.7",
        "adaptive",
        "adaptive-prune",
        "sequential rounds (replayed, wall estimated)",
    ]
    assert all(row["items"] == 2 and 1 <= row["samples/item"] <= 4 for row in rows)
    assert rows[0]["samples/item"] == 4 and rows[0]["tokens ratio"] == 1.0
    assert [pair["a"] for pair in report["figures"]["comparisons"]] == [
        r["config"] for r in rows[1:]
    ]
    saved_results(report, pairs=2 * 3)


OPTILLM = os.environ.get("QUORUM_BENCH_OPTILLM") or shutil.which("optillm")


@pytest.mark.skipif(
    OPTILLM is None, reason="optillm is not installed (QUORUM_BENCH_OPTILLM=path/to/optillm)"
)
def test_optillm_side_by_side(tmp_path: Path) -> None:
    report = rig(
        tmp_path, "optillm", *TINY, "--optillm", str(OPTILLM), "--items", "2",
        "--samples", "2", "--max-tokens", "8",
    )  # fmt: skip
    rows = report["figures"]["rows"]
    assert [row["system"] for row in rows] == ["quorum-upstream", "optillm"]
    assert all(row["items"] == 2 for row in rows)


def test_frontend_cpu_per_token_for_each_system(tmp_path: Path) -> None:
    report = rig(
        tmp_path, "frontend-cpu", *TINY, "--clients", "2", "--max-tokens", "4",
        "--bursts", "1", "--per-client", "1",
    )  # fmt: skip
    cells = report["figures"]["systems"]
    assert set(cells) == {"vllm", "quorum"}
    assert all(c["tokens"] > 0 and c["errors"] == 0 for c in cells.values())
    assert all(c["front_ms_per_token"] >= 0 < c["engine_ms_per_token"] for c in cells.values())


def test_conformance_checks_every_system(tmp_path: Path) -> None:
    report = rig(tmp_path, "conformance", *TINY)
    systems = report["figures"]["systems"]
    assert list(systems) == ["vllm", "quorum", "quorum-upstream"]
    keys = [check["key"] for check in report["figures"]["checks"]]
    assert len(keys) == 14
    assert all(list(s["outcomes"]) == keys for s in systems.values())
    rows = report["tables"]["OpenAI conformance (14 checks)"]
    assert len(rows) == 15 and rows[-1]["check"] == "passed"
    for name, cell in systems.items():
        assert rows[-1][name] == f"{cell['passed']}/14"
        failed = [o["reason"] for o in cell["outcomes"].values() if not o["passed"]]
        assert len(failed) == 14 - cell["passed"] and all(failed), "every failure says why"
