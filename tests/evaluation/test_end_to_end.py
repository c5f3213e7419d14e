"""``run`` then ``report`` through the real app on a scripted engine that knows some answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decoding.engine import ChatPrompt, Prompt, SamplingSpec
from evaluation.cli import main
from evaluation.configs import parse_config
from evaluation.items.store import Item, interleave, load_items
from evaluation.results import ResultsFile, read_records
from evaluation.runner import run
from evaluation.targets import app_client
from tests.evaluation.conftest import scripted_app

ITEMS = interleave(load_items(split="dev"), 14)  # two of every set
VOTE_RIGHT = {item.id for i, item in enumerate(ITEMS) if i % 2 == 0}
GREEDY_RIGHT = {item.id for i, item in enumerate(ITEMS) if i % 3 == 0}
PNG = b"\x89PNG\r\n\x1a\n"


def reply(item: Item, right: bool) -> str:
    """What the scripted model says: the gold answer, or a wrong one, in the item's form."""
    if item.kind == "code":
        body = item.answer if right else "def nothing():\n    return None\n"
        return f"Here it is:\n```python\n{body}```"
    if item.kind == "choice":
        wrong = "A" if item.answer != "A" else "B"
        return f"The answer is {item.answer if right else wrong}."
    return f"Let me compute. The answer is {item.answer if right else '999999'}."


def script(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
    assert isinstance(prompt, ChatPrompt)
    item = next(i for i in ITEMS if i.question == prompt.messages[-1]["content"])
    if spec.temperature == 0.0:
        return reply(item, item.id in GREEDY_RIGHT)
    sample = (spec.seed or 0) - 1000 + index  # the sample's place in the seeded sequence
    return reply(item, item.id in VOTE_RIGHT and sample % 4 != 3)


@pytest.fixture
async def results(tmp_path: Path) -> Path:
    path = tmp_path / "results.jsonl"
    configs = [parse_config(s) for s in ("greedy", "samples=8 name=v8", "samples=100 name=big")]
    app = scripted_app(script, tmp_path / "cache")
    async with app_client(app) as client:
        with ResultsFile(path) as file:
            first = await run(client, ITEMS, configs, file, concurrency=3, progress=False)
        with ResultsFile(path) as file:
            again = await run(client, ITEMS, configs, file, concurrency=3, progress=False)
    n = len(ITEMS)
    assert (first.planned, first.answered, first.failed) == (3 * n, 2 * n, n)
    # Resumed: the answered pairs are skipped; the failed ones (samples over the cap) retried.
    assert (again.skipped, again.answered, again.failed) == (2 * n, 0, n)
    return path


def test_records_hold_the_request_and_the_full_response(results: Path) -> None:
    records = list(read_records(results))
    ok = [r for r in records if r["error"] is None]
    failed = [r for r in records if r["error"] is not None]
    assert {r["config"]["name"] for r in failed} == {"big"}
    assert all(r["error"]["status"] == 400 and "samples" in r["error"]["body"] for r in failed)
    vote = next(r for r in ok if r["config"]["name"] == "v8")
    assert vote["request"]["samples"] == 8 and vote["request"]["seed"] == 1000
    samples = vote["response"]["samples"]
    assert [s["seed"] for s in samples] == list(range(1000, 1008))
    assert all(
        {"text", "answer", "finish_reason", "mean_logprob", "tokens"} <= set(s) for s in samples
    )
    assert "question" not in vote["item"] and vote["wall_s"] >= 0


def test_report_scores_rules_and_writes_plots(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["command"][:3] == ["quorum", "eval", "report"]
    assert {
        "date",
        "git_commit",
        "receipts",
        "configs",
        "systems",
        "abstention",
        "comparisons",
        "notes",
        "plots",
    } <= set(report)
    assert report["receipts"] == [
        {
            "model": "scripted",
            "engine": "scripted",
            "engine_version": "0",
            "quorum_version": "0.1.0",
        }
    ]
    n = len(ITEMS)
    assert (report["configs"]["big"]["items"], report["configs"]["big"]["errors"]) == (0, n)
    assert report["configs"]["v8"]["items"] == n and report["configs"]["v8"]["errors"] == 0
    systems = report["systems"]
    assert systems["greedy"]["accuracy"]["k"] == len(GREEDY_RIGHT)
    assert systems["v8/majority@8"]["accuracy"]["k"] == len(VOTE_RIGHT)
    assert systems["v8/server"]["accuracy"]["k"] == len(VOTE_RIGHT)
    # One sample in four is wrong: sample 3 is the first wrong one, so N = 1, 2 are all right.
    assert systems["v8/majority@1"]["accuracy"]["k"] == len(VOTE_RIGHT)
    assert systems["v8/majority@8"]["accuracy"]["n"] == n
    low, high = systems["greedy"]["accuracy"]["ci95"]
    assert 0 <= low < len(GREEDY_RIGHT) / n < high <= 1
    # Every scripted sample has the same length, so all finish in one engine step together:
    # an in-batch stop has nothing left to stop.
    assert systems["v8/adaptive-beta"]["samples_used"] == 8
    assert set(systems["v8/majority@8"]["by_set"]) == {i.set for i in ITEMS}
    assert report["baselines"] == {"default_precise": "v8/majority@8", "greedy": "greedy"}
    first = report["comparisons"][0]
    assert (first["a"], first["b"]) == ("v8/majority@8", "greedy")
    right_both = len(VOTE_RIGHT & GREEDY_RIGHT)
    assert (first["both_right"], first["only_a"], first["only_b"]) == (
        right_both,
        len(VOTE_RIGHT) - right_both,
        len(GREEDY_RIGHT) - right_both,
    )
    curve = report["abstention"]["v8"]
    assert curve[0]["coverage"]["rate"] == 1.0
    assert any("deepconf" in note for note in report["notes"])
    for name in report["plots"]:
        assert (out / name).read_bytes().startswith(PNG)
    markdown = (out / "report.md").read_text()
    assert "| v8/majority@8 |" in markdown and "McNemar" in markdown


def test_items_check_passes_on_the_committed_files() -> None:
    assert main(["items", "--check"]) == 0


def test_run_against_an_absent_server_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "--url",
            "http://127.0.0.1:9",
            "--ready-timeout-s",
            "0",
            "--limit",
            "1",
            "--results",
            str(tmp_path / "r.jsonl"),
            "--no-progress",
        ]
    )
    assert code == 2
    assert "not ready" in capsys.readouterr().err


def test_shared_report_pairs_partial_runs_on_their_common_items(
    results: Path, tmp_path: Path
) -> None:
    """A config stopped part-way is compared with the others only on the items it reached."""
    partial = tmp_path / "partial.jsonl"
    records = [r for r in read_records(results) if r["config"]["name"] == "v8"]
    kept = {r["item"]["id"] for r in records[:3]}
    greedy_only = [r for r in read_records(results) if r["config"]["name"] == "greedy"]
    partial.write_text(
        "".join(json.dumps(r) + "\n" for r in greedy_only + records[:3]),
    )
    out = tmp_path / "shared"
    assert main(["report", str(partial), "--out", str(out), "--shared"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["shared_items_only"] is True
    assert report["systems"]["greedy"]["accuracy"]["n"] == len(kept)
    assert report["systems"]["greedy"]["accuracy"]["k"] == len(kept & GREEDY_RIGHT)
    assert report["comparisons"][0]["items"] == len(kept)
