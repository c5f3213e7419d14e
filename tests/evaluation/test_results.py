"""The results file: crash-safe appends, resume after a torn last line, config identity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evaluation.configs import RunConfig
from evaluation.results import ResultsFile, read_records, repair_tail
from evaluation.runner import check_configs


def record(item: str, config: str = "greedy", *, ok: bool = True) -> dict[str, Any]:
    return {
        "v": 1,
        "item": {"id": item},
        "config": {"name": config},
        "request": {},
        "response": {"answer": "1"} if ok else None,
        "error": None if ok else {"type": "http", "status": 500},
    }


def test_appended_records_read_back_and_count_as_done(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsFile(path) as results:
        results.append(record("a"))
        results.append(record("b", ok=False))
    with ResultsFile(path) as again:
        assert again.done == {("a", "greedy")}  # the error is retried, not skipped
    assert [r["item"]["id"] for r in read_records(path)] == ["a", "b"]


@pytest.mark.parametrize(
    "torn",
    [b'{"v":1,"item":{"id":"c"', b"{", b'{"v":1}', "é".encode()[:1]],
    ids=["half-record", "one-brace", "complete-json-no-newline", "half-utf8"],
)
def test_resume_after_a_torn_last_line(tmp_path: Path, torn: bytes) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsFile(path) as results:
        results.append(record("a"))
        results.append(record("b"))
    intact = path.read_bytes()
    with path.open("ab") as handle:
        handle.write(torn)  # a crash in the middle of the next write
    assert [r["item"]["id"] for r in read_records(path)] == ["a", "b"]
    with ResultsFile(path) as resumed:
        assert resumed.repaired_bytes == len(torn)
        assert resumed.done == {("a", "greedy"), ("b", "greedy")}
        resumed.append(record("c"))
    assert path.read_bytes().startswith(intact)
    assert [r["item"]["id"] for r in read_records(path)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("content", "removed"),
    [(b"", 0), (b"x\n", 0), (b"x\ny", 1), (b"no newline at all", 17), (b"a\n" * 40_000 + b"zz", 2)],
)
def test_repair_tail(tmp_path: Path, content: bytes, removed: int) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    assert repair_tail(path) == removed
    assert path.read_bytes() == content[: len(content) - removed]


def test_missing_file_needs_no_repair(tmp_path: Path) -> None:
    assert repair_tail(tmp_path / "absent.jsonl") == 0


def test_garbage_lines_in_the_middle_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = [json.dumps(record("a")), "not json", json.dumps([1, 2]), json.dumps(record("b"))]
    path.write_text("\n".join(lines) + "\n")
    assert [r["item"]["id"] for r in read_records(path)] == ["a", "b"]


def test_a_changed_config_under_an_old_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    old = RunConfig("vote", samples=16)
    with ResultsFile(path) as results:
        results.append({**record("a", "vote"), "config": old.to_dict()})
    with ResultsFile(path) as results:
        check_configs(results, [old])  # the same config resumes
        with pytest.raises(ValueError, match="different config named 'vote'"):
            check_configs(results, [RunConfig("vote", samples=8)])


def test_duplicate_config_names_are_refused(tmp_path: Path) -> None:
    with ResultsFile(tmp_path / "r.jsonl") as results, pytest.raises(ValueError, match="unique"):
        check_configs(results, [RunConfig("x"), RunConfig("x", samples=4)])
