"""Resuming a results file recorded before a config field existed: absent means the default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evaluation.configs import RunConfig, same_config
from evaluation.results import ResultsFile
from evaluation.runner import check_configs

OLD = RunConfig("t07x8", samples=8, extra={"token_confidences": True})


def recorded(drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
    """The config as an older harness recorded it: some fields absent, some values changed."""
    values = {**OLD.to_dict(), **changes}
    return {k: v for k, v in values.items() if k not in drop}


@pytest.mark.parametrize(
    ("stored", "requested", "same"),
    [
        (recorded(), OLD, True),
        (recorded(drop=("verify",)), OLD, True),  # written before ``verify`` existed
        (recorded(drop=("verify", "suffix")), OLD, True),
        (recorded(drop=("verify",)), RunConfig("t07x8", samples=8, verify=True), False),
        (recorded(drop=("samples",)), OLD, False),  # absent means 16, the default, not 8
        (recorded(samples=16), OLD, False),
        (recorded(extra={}), OLD, False),
        (recorded(unknown_field=1), OLD, False),  # a field this harness no longer knows
        (recorded(drop=("extra",)), RunConfig("t07x8", samples=8), True),
    ],
    ids=[
        "identical",
        "no-verify",
        "no-verify-no-suffix",
        "verify-requested",
        "no-samples",
        "samples-differ",
        "extra-differs",
        "unknown-field",
        "no-extra",
    ],
)
def test_a_missing_field_counts_as_its_default(
    stored: dict[str, Any], requested: RunConfig, same: bool
) -> None:
    assert same_config(stored, requested) is same


def test_a_file_from_before_verify_resumes(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsFile(path) as results:
        line = {"v": 1, "item": {"id": "a"}, "request": {}, "response": {"answer": "1"}}
        results.append({**line, "config": recorded(drop=("verify",)), "error": None})
    with ResultsFile(path) as results:
        check_configs(results, [OLD])
        with pytest.raises(ValueError, match="different config named 't07x8'"):
            check_configs(results, [RunConfig("t07x8", samples=8, verify=True)])
